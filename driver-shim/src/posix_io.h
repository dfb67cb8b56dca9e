// Private helpers of the POSIX implementations: an owning fd and full-length
// pread/pwrite loops that retry EINTR and short transfers.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <string>

#include "mt/shim/status.h"

namespace mt::shim {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    reset(o.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Reads exactly len bytes; reaching end of file first is kIoError.
Status PreadFull(int fd, void* buf, size_t len, uint64_t offset, const std::string& name);
// Reads up to len bytes, stopping early only at end of file.
Result<size_t> PreadUpTo(int fd, void* buf, size_t len, uint64_t offset, const std::string& name);
Status PwriteFull(int fd, const void* buf, size_t len, uint64_t offset, const std::string& name);

}  // namespace mt::shim
