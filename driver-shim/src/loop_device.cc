#include "mt/shim/loop_device.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstring>

#include "posix_io.h"

namespace mt::shim {
namespace {

class PosixLoopDevice : public LoopDevice {
 public:
  PosixLoopDevice(std::string path, DevNumber dev, UniqueFd fd)
      : path_(std::move(path)), dev_(dev), fd_(std::move(fd)) {}
  const std::string& path() const override { return path_; }
  DevNumber dev() const override { return dev_; }

 private:
  std::string path_;
  DevNumber dev_;
  UniqueFd fd_;  // keeps an autoclear device attached until the next holder opens it
};

// Binds `file_fd` to the loop device `loop_fd`: LOOP_CONFIGURE (Linux 5.8+)
// in one step, LOOP_SET_FD + LOOP_SET_STATUS64 on older kernels (EL8).
int Configure(int loop_fd, int file_fd, const std::string& file, bool autoclear) {
  loop_info64 info{};
  std::strncpy(reinterpret_cast<char*>(info.lo_file_name), file.c_str(), LO_NAME_SIZE - 1);
  if (autoclear) info.lo_flags |= LO_FLAGS_AUTOCLEAR;
#ifdef LOOP_CONFIGURE
  loop_config cfg{};
  cfg.fd = static_cast<uint32_t>(file_fd);
  cfg.info = info;
  if (::ioctl(loop_fd, LOOP_CONFIGURE, &cfg) == 0) return 0;
  if (errno != EINVAL && errno != ENOTTY) return errno;
#endif
  if (::ioctl(loop_fd, LOOP_SET_FD, file_fd) != 0) return errno;
  if (::ioctl(loop_fd, LOOP_SET_STATUS64, &info) != 0) {
    const int err = errno;
    (void)::ioctl(loop_fd, LOOP_CLR_FD, 0);
    return err;
  }
  return 0;
}

}  // namespace

Result<std::unique_ptr<LoopDevice>> AttachLoop(const std::string& file, bool autoclear) {
  UniqueFd ctl(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!ctl)
    return Status(Errc::kUnavailable, std::string("loop devices are not available (/dev/loop-control: ") +
                                          std::strerror(errno) + "; load the loop module)");
  UniqueFd file_fd(::open(file.c_str(), O_RDWR | O_CLOEXEC));
  if (!file_fd) return Status::FromErrno(errno, file);
  // Another program may take the free device between GET_FREE and the bind:
  // EBUSY then, and the next free one is tried.
  for (int attempt = 0; attempt < 16; ++attempt) {
    const int n = ::ioctl(ctl.get(), LOOP_CTL_GET_FREE);
    if (n < 0) return Status::FromErrno(errno, "/dev/loop-control (LOOP_CTL_GET_FREE)");
    const std::string path = "/dev/loop" + std::to_string(n);
    UniqueFd loop(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!loop) return Status::FromErrno(errno, path);
    const int err = Configure(loop.get(), file_fd.get(), file, autoclear);
    if (err == EBUSY) continue;
    if (err != 0) return Status::FromErrno(err, "attach " + file + " to " + path);
    struct stat st {};
    if (::fstat(loop.get(), &st) != 0) return Status::FromErrno(errno, path);
    DevNumber dev{major(st.st_rdev), minor(st.st_rdev)};
    return std::unique_ptr<LoopDevice>(new PosixLoopDevice(path, dev, std::move(loop)));
  }
  return Status(Errc::kBusy, "no free loop device for " + file + " after 16 attempts");
}

}  // namespace mt::shim
