#include "mt/shim/event_wait.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

namespace mt::shim {

Result<std::vector<bool>> WaitReadable(const std::vector<int>& fds, int timeout_ms) {
  std::vector<pollfd> p;
  p.reserve(fds.size());
  for (int fd : fds) p.push_back(pollfd{fd, POLLIN, 0});
  for (;;) {
    const int r = ::poll(p.data(), p.size(), timeout_ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "poll");
    }
    std::vector<bool> ready(fds.size(), false);
    for (size_t i = 0; i < p.size(); ++i)
      ready[i] = p[i].fd >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
    return ready;
  }
}

namespace {
sigset_t StopSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}
}  // namespace

Result<std::unique_ptr<StopSignals>> StopSignals::Install() {
  const sigset_t set = StopSet();
  if (const int r = pthread_sigmask(SIG_BLOCK, &set, nullptr); r != 0)
    return Status::FromErrno(r, "block SIGINT/SIGTERM");
  const int fd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    return Status::FromErrno(err, "signalfd");
  }
  return std::unique_ptr<StopSignals>(new StopSignals(fd));
}

StopSignals::~StopSignals() {
  ::close(fd_);
  const sigset_t set = StopSet();
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

int StopSignals::Take() {
  signalfd_siginfo info;
  for (;;) {
    const ssize_t n = ::read(fd_, &info, sizeof info);
    if (n == static_cast<ssize_t>(sizeof info)) return static_cast<int>(info.ssi_signo);
    if (n < 0 && errno == EINTR) continue;
    return 0;
  }
}

}  // namespace mt::shim
