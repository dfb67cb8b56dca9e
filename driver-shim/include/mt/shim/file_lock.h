// An exclusive advisory lock on a file (flock), held while the object lives.
// mtctl takes one per retention volume so that two operations that rewrite
// targets or retention (rollback, export, commit, vsnap create/remove,
// release) never run at once.
#pragma once

#include <memory>
#include <string>

#include "mt/shim/status.h"

namespace mt::shim {

class FileLock {
 public:
  virtual ~FileLock() = default;  // releases the lock
};

// Creates `path` if needed and locks it without waiting: kBusy when another
// holder (another process, or another FileLock in this one) has it.
Result<std::unique_ptr<FileLock>> TryLockFile(const std::string& path);

}  // namespace mt::shim
