#include "mt/shim/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>

#include "posix_io.h"

namespace mt::shim {
namespace {

class PosixFileLock : public FileLock {
 public:
  explicit PosixFileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  // Closing the descriptor releases the flock.

 private:
  UniqueFd fd_;
};

}  // namespace

Result<std::unique_ptr<FileLock>> TryLockFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return Status::FromErrno(errno, path);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return Status(Errc::kBusy, path + " is locked by another holder");
    return Status::FromErrno(errno, "lock " + path);
  }
  return std::unique_ptr<FileLock>(new PosixFileLock(std::move(fd)));
}

}  // namespace mt::shim
