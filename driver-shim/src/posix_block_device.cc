// The real BlockDevice: pread/pwrite on an O_DIRECT file descriptor.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "mt/shim/aligned_buffer.h"
#include "mt/shim/block_device.h"
#include "posix_io.h"

namespace mt::shim {

Status CheckBlockIo(const BlockDevice& dev, const char* op, uint64_t offset, const void* buf,
                    uint64_t len) {
  const uint32_t lbs = dev.logical_block_size();
  if (!IsAligned(offset, lbs) || !IsAligned(len, lbs) || (buf != nullptr && !IsAligned(buf, lbs))) {
    return Status(Errc::kMisaligned,
                  std::string(op) + " " + dev.name() + ": offset " + std::to_string(offset) +
                      ", length " + std::to_string(len) +
                      " or buffer address is not a multiple of the logical block size " +
                      std::to_string(lbs));
  }
  if (offset > dev.size() || len > dev.size() - offset) {
    return Status(Errc::kOutOfRange, std::string(op) + " " + dev.name() + ": range " +
                                         std::to_string(offset) + "+" + std::to_string(len) +
                                         " ends beyond the device size " +
                                         std::to_string(dev.size()));
  }
  return Status::Ok();
}

namespace {

class PosixBlockDevice final : public BlockDevice {
 public:
  PosixBlockDevice(std::string name, UniqueFd fd, bool is_block, uint64_t size, uint32_t lbs,
                   uint32_t pbs)
      : name_(std::move(name)), fd_(std::move(fd)), is_block_(is_block), size_(size), lbs_(lbs),
        pbs_(pbs) {}

  const std::string& name() const override { return name_; }
  uint64_t size() const override { return size_; }
  uint32_t logical_block_size() const override { return lbs_; }
  uint32_t physical_block_size() const override { return pbs_; }

  Status ReadAt(uint64_t offset, void* buf, size_t len) override {
    MT_RETURN_IF_ERROR(CheckBlockIo(*this, "read", offset, buf, len));
    return PreadFull(fd_.get(), buf, len, offset, name_);
  }

  Status WriteAt(uint64_t offset, const void* buf, size_t len) override {
    MT_RETURN_IF_ERROR(CheckBlockIo(*this, "write", offset, buf, len));
    return PwriteFull(fd_.get(), buf, len, offset, name_);
  }

  // fdatasync on a block device node makes the kernel issue a cache flush
  // (REQ_PREFLUSH) to the device; on an image file it flushes the file system.
  Status Flush() override {
    if (fdatasync(fd_.get()) != 0) return Status::FromErrno(errno, "flush " + name_);
    return Status::Ok();
  }

  Status Discard(uint64_t offset, uint64_t len) override {
    MT_RETURN_IF_ERROR(CheckBlockIo(*this, "discard", offset, nullptr, len));
    if (len == 0) return Status::Ok();
    if (is_block_) {
      uint64_t range[2] = {offset, len};
      if (ioctl(fd_.get(), BLKDISCARD, range) != 0)
        return Status::FromErrno(errno, "discard " + name_);
    } else if (fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                         static_cast<off_t>(offset), static_cast<off_t>(len)) != 0) {
      return Status::FromErrno(errno, "discard (punch hole) " + name_);
    }
    return Status::Ok();
  }

 private:
  std::string name_;
  UniqueFd fd_;
  bool is_block_;
  uint64_t size_;
  uint32_t lbs_;
  uint32_t pbs_;
};

}  // namespace

Result<std::unique_ptr<BlockDevice>> OpenBlockDevice(const std::string& path,
                                                     const BlockDeviceOptions& options) {
  int flags = O_CLOEXEC | (options.writable ? O_RDWR : O_RDONLY);
  if (options.direct) flags |= O_DIRECT;
  if (options.exclusive) flags |= O_EXCL;
  UniqueFd fd(open(path.c_str(), flags));
  if (!fd) {
    const int err = errno;
    if (err == EINVAL && options.direct)
      return Status(Errc::kUnavailable,
                    "open " + path + ": the file system does not support O_DIRECT", err);
    if (err == EBUSY && options.exclusive)
      return Status(Errc::kBusy,
                    "open " + path +
                        ": device is in use (mounted, or held by device-mapper, md or another "
                        "process)",
                    err);
    return Status::FromErrno(err, "open " + path);
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
  uint64_t size = 0;
  uint32_t lbs = 4096, pbs = 4096;
  const bool is_block = S_ISBLK(st.st_mode);
  if (is_block) {
    int ilbs = 0;
    unsigned int ipbs = 0;
    if (ioctl(fd.get(), BLKGETSIZE64, &size) != 0)
      return Status::FromErrno(errno, "BLKGETSIZE64 " + path);
    if (ioctl(fd.get(), BLKSSZGET, &ilbs) != 0) return Status::FromErrno(errno, "BLKSSZGET " + path);
    if (ioctl(fd.get(), BLKPBSZGET, &ipbs) != 0)
      return Status::FromErrno(errno, "BLKPBSZGET " + path);
    lbs = static_cast<uint32_t>(ilbs);
    pbs = ipbs;
  } else if (S_ISREG(st.st_mode)) {
    size = static_cast<uint64_t>(st.st_size) / lbs * lbs;
  } else {
    return Status(Errc::kInvalidArgument, path + " is neither a block device nor a regular file");
  }
  return std::unique_ptr<BlockDevice>(
      new PosixBlockDevice(path, std::move(fd), is_block, size, lbs, pbs));
}

bool IsBlockDeviceNode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
}

}  // namespace mt::shim
