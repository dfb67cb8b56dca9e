// Running a system tool (mkfs.ext4, ...) as a child process: argv is passed as
// is (no shell), stdout and stderr are captured, the environment is kept.
#pragma once

#include <string>
#include <vector>

#include "mt/shim/status.h"

namespace mt::shim {

struct ProcessResult {
  int exit_code = 0;  // 128 + signal number when killed by a signal
  std::string out, err;
};

// kNotFound when argv[0] cannot be executed (not installed).
Result<ProcessResult> RunProcess(const std::vector<std::string>& argv);

}  // namespace mt::shim
