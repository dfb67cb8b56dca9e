#include "mt/shim/detach.h"

#include <fcntl.h>
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

}  // namespace mt::shim
