// Test fixture helpers for the integration tier: real loop devices backed by
// sparse files, made with losetup (util-linux) and detached on destruction.
#pragma once

#include <string>

namespace mt::test {

// True when the process may create loop devices and mount (root).
bool IsRoot();

// Runs a shell command; returns its exit status. Output goes to the test log.
int Run(const std::string& command);
// Runs a shell command and returns its stdout with the trailing newline removed.
std::string Capture(const std::string& command);

// A directory for scratch files on a real disk file system (not tmpfs, which
// may not support O_DIRECT): $MT_TEST_SCRATCH, else /var/tmp.
std::string ScratchDir();

class LoopDevice {
 public:
  // Creates a sparse backing file of `size` bytes and attaches it with
  // `losetup --direct-io=on` (and --sector-size when non-zero). On failure
  // path() is empty and error() says why.
  explicit LoopDevice(unsigned long long size, unsigned sector_size = 0);
  ~LoopDevice();
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;

  const std::string& path() const { return path_; }
  const std::string& backing_file() const { return file_; }
  const std::string& error() const { return error_; }

 private:
  std::string path_, file_, error_;
};

}  // namespace mt::test

// Skips the current test (reported as skipped with the reason) when not root.
#define MT_REQUIRE_ROOT()                                                         \
  do {                                                                            \
    if (!::mt::test::IsRoot()) GTEST_SKIP() << "needs root (loop devices, mounts)"; \
  } while (0)
