#include "posix_io.h"

#include <cerrno>

namespace mt::shim {

Result<size_t> PreadUpTo(int fd, void* buf, size_t len, uint64_t offset, const std::string& name) {
  auto* p = static_cast<uint8_t*>(buf);
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, p + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read " + name + " at " + std::to_string(offset + done));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

Status PreadFull(int fd, void* buf, size_t len, uint64_t offset, const std::string& name) {
  MT_ASSIGN_OR_RETURN(size_t n, PreadUpTo(fd, buf, len, offset, name));
  if (n != len)
    return Status(Errc::kIoError, "read " + name + " at " + std::to_string(offset + n) +
                                      ": unexpected end of device");
  return Status::Ok();
}

Status PwriteFull(int fd, const void* buf, size_t len, uint64_t offset, const std::string& name) {
  const auto* p = static_cast<const uint8_t*>(buf);
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pwrite(fd, p + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + name + " at " + std::to_string(offset + done));
    }
    if (n == 0)
      return Status(Errc::kNoSpace, "write " + name + " at " + std::to_string(offset + done) +
                                        ": device accepted no bytes");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace mt::shim
