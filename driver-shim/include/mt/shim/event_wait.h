// Waiting for events without sleep-and-poll: poll(2) over descriptors, and
// SIGINT / SIGTERM as a descriptor (signalfd) so "until interrupted" loops
// wait on one poll.
#pragma once

#include <memory>
#include <vector>

#include "mt/shim/status.h"

namespace mt::shim {

// Blocks until at least one of `fds` is readable (POLLIN, POLLHUP or POLLERR)
// or timeout_ms passes (-1: no timeout). Returns, per fd, whether it is ready;
// all false on timeout. EINTR is retried. Negative fds are ignored.
Result<std::vector<bool>> WaitReadable(const std::vector<int>& fds, int timeout_ms);

// SIGINT and SIGTERM delivered through a signalfd.
// REQUIRES: Install() before any thread is started (the signals are blocked
// in the calling thread and inherited by threads created after it).
class StopSignals {
 public:
  static Result<std::unique_ptr<StopSignals>> Install();
  ~StopSignals();  // closes the fd and unblocks the signals
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  int fd() const { return fd_; }
  // Reads the pending signal: its number, or 0 when none was pending.
  int Take();

 private:
  explicit StopSignals(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace mt::shim
