#include "mt/shim/detach.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace mt::shim {

Status RedirectStdinStdoutToDevNull() {
  const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) return Status::FromErrno(errno, "open /dev/null");
  Status s;
  if (::dup2(null, STDIN_FILENO) < 0 || ::dup2(null, STDOUT_FILENO) < 0)
    s = Status::FromErrno(errno, "dup2 /dev/null");
  ::close(null);
  return s;
}

Result<int> DetachWithReadiness() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe2");
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return Status::FromErrno(e, "fork");
  }
  if (pid > 0) {  // the parent: wait for readiness or for the child's end
    ::close(fds[1]);
    char c = 0;
    ssize_t n;
    do {
      n = ::read(fds[0], &c, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1 && c == 'R') ::_exit(0);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
  }
  ::close(fds[0]);
  ::setsid();
  if (::chdir("/") != 0) {  // cannot fail for "/"; nothing to do if it did
  }
  (void)RedirectStdinStdoutToDevNull();  // a failure leaves them as they were
  return fds[1];
}

void NotifyDetachedParent(int ready_fd) {
  if (ready_fd < 0) return;
  const char c = 'R';
  while (::write(ready_fd, &c, 1) < 0 && errno == EINTR) {
  }
  ::close(ready_fd);
}

bool IsTerminal(int fd) { return ::isatty(fd) == 1; }

}  // namespace mt::shim
