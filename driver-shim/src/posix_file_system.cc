// The real FileSystem: POSIX calls, every directory change fsynced.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "mt/shim/aligned_buffer.h"
#include "mt/shim/file_system.h"
#include "posix_io.h"

namespace mt::shim {

std::string ParentDir(const std::string& path) {
  const auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

Status CheckDirectFileIo(const std::string& path, const char* op, uint64_t offset,
                         const void* buf, size_t len) {
  if (IsAligned(offset, kDirectIoAlignment) && IsAligned(len, kDirectIoAlignment) &&
      IsAligned(buf, kDirectIoAlignment))
    return Status::Ok();
  return Status(Errc::kMisaligned, std::string(op) + " " + path + " at " + std::to_string(offset) +
                                       " length " + std::to_string(len) +
                                       ": O_DIRECT file I/O must be 4096-byte aligned");
}

Status WriteFileAtomically(FileSystem& fs, const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  if (fs.Exists(tmp)) MT_RETURN_IF_ERROR(fs.Remove(tmp));
  {
    FileOptions o;
    o.writable = o.create = o.must_not_exist = true;
    MT_ASSIGN_OR_RETURN(std::unique_ptr<File> f, fs.OpenFile(tmp, o));
    MT_RETURN_IF_ERROR(f->WriteAt(0, text.data(), text.size()));
    MT_RETURN_IF_ERROR(f->Sync());
  }
  return fs.Rename(tmp, path);
}

Result<std::string> ReadSmallFile(FileSystem& fs, const std::string& path, uint64_t max_bytes) {
  MT_ASSIGN_OR_RETURN(std::unique_ptr<File> f, fs.OpenFile(path, FileOptions{}));
  if (f->Size() > max_bytes)
    return Status(Errc::kCorruption, path + ": " + std::to_string(f->Size()) +
                                         " bytes, more than the " + std::to_string(max_bytes) +
                                         " such a file may have");
  std::string text(f->Size(), '\0');
  MT_ASSIGN_OR_RETURN(size_t got, f->ReadAt(0, text.data(), text.size()));
  text.resize(got);
  return text;
}

namespace {

Status SyncDirectory(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return Status::FromErrno(errno, "open directory " + dir);
  if (::fsync(fd.get()) != 0) return Status::FromErrno(errno, "fsync directory " + dir);
  return Status::Ok();
}

class PosixFile final : public File {
 public:
  PosixFile(std::string path, UniqueFd fd, uint64_t size, bool direct)
      : path_(std::move(path)), fd_(std::move(fd)), size_(size), direct_(direct) {}

  const std::string& path() const override { return path_; }
  uint64_t Size() const override { return size_; }

  Result<size_t> ReadAt(uint64_t offset, void* buf, size_t len) override {
    MT_RETURN_IF_ERROR(CheckDirect("read", offset, buf, len));
    return PreadUpTo(fd_.get(), buf, len, offset, path_);
  }

  Status WriteAt(uint64_t offset, const void* buf, size_t len) override {
    MT_RETURN_IF_ERROR(CheckDirect("write", offset, buf, len));
    MT_RETURN_IF_ERROR(PwriteFull(fd_.get(), buf, len, offset, path_));
    size_ = std::max<uint64_t>(size_, offset + len);
    return Status::Ok();
  }

  Status Sync() override {
    if (::fdatasync(fd_.get()) != 0) return Status::FromErrno(errno, "fdatasync " + path_);
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0)
      return Status::FromErrno(errno, "truncate " + path_);
    size_ = size;
    return Status::Ok();
  }

  Status Preallocate(uint64_t offset, uint64_t len) override {
    if (len == 0) return Status::Ok();
    if (::fallocate(fd_.get(), FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(len)) != 0) {
      // Not every file system can preallocate (tmpfs before 6.x, NFS): space is
      // then simply taken as written.
      if (errno == EOPNOTSUPP) return Status::Ok();
      return Status::FromErrno(errno, "preallocate " + path_);
    }
    return Status::Ok();
  }

 private:
  Status CheckDirect(const char* op, uint64_t offset, const void* buf, size_t len) const {
    return direct_ ? CheckDirectFileIo(path_, op, offset, buf, len) : Status::Ok();
  }

  std::string path_;
  UniqueFd fd_;
  uint64_t size_;
  bool direct_;
};

class RealFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<File>> OpenFile(const std::string& path,
                                         const FileOptions& o) override {
    int flags = O_CLOEXEC | (o.writable ? O_RDWR : O_RDONLY);
    if (o.create) flags |= O_CREAT;
    if (o.create && o.must_not_exist) flags |= O_EXCL;
    if (o.direct) flags |= O_DIRECT;
    const bool existed = ::access(path.c_str(), F_OK) == 0;
    UniqueFd fd(::open(path.c_str(), flags, 0600));
    if (!fd) {
      if (errno == EINVAL && o.direct)
        return Status(Errc::kUnavailable, "open " + path + ": O_DIRECT not supported here", EINVAL);
      return Status::FromErrno(errno, "open " + path);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
    if (o.create && !existed) MT_RETURN_IF_ERROR(SyncDirectory(ParentDir(path)));
    return std::unique_ptr<File>(
        new PosixFile(path, std::move(fd), static_cast<uint64_t>(st.st_size), o.direct));
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0)
      return Status::FromErrno(errno, "rename " + from + " to " + to);
    MT_RETURN_IF_ERROR(SyncDirectory(ParentDir(to)));
    if (ParentDir(from) != ParentDir(to)) MT_RETURN_IF_ERROR(SyncDirectory(ParentDir(from)));
    return Status::Ok();
  }

  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return Status::FromErrno(errno, "remove " + path);
    return SyncDirectory(ParentDir(path));
  }

  Status CreateDir(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) return Status::Ok();
      return Status(Errc::kAlreadyExists, path + " exists and is not a directory");
    }
    const std::string parent = ParentDir(path);
    if (parent != path) MT_RETURN_IF_ERROR(CreateDir(parent));
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
      return Status::FromErrno(errno, "mkdir " + path);
    return SyncDirectory(parent);
  }

  Status RemoveDir(const std::string& path) override {
    if (::rmdir(path.c_str()) != 0) return Status::FromErrno(errno, "rmdir " + path);
    return SyncDirectory(ParentDir(path));
  }

  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(path.c_str()), ::closedir);
    if (!dir) return Status::FromErrno(errno, "list directory " + path);
    std::vector<std::string> names;
    errno = 0;
    while (dirent* e = ::readdir(dir.get())) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    if (errno != 0) return Status::FromErrno(errno, "read directory " + path);
    std::sort(names.begin(), names.end());
    return names;
  }

  bool Exists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }

  Result<uint64_t> FileSize(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
    return static_cast<uint64_t>(st.st_size);
  }

  Result<SpaceInfo> Space(const std::string& path) override {
    struct statvfs sv {};
    if (::statvfs(path.c_str(), &sv) != 0) return Status::FromErrno(errno, "statvfs " + path);
    SpaceInfo info;
    info.capacity = static_cast<uint64_t>(sv.f_blocks) * sv.f_frsize;
    info.available = static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
    return info;
  }
};

}  // namespace

FileSystem& PosixFileSystem() {
  static RealFileSystem fs;
  return fs;
}

}  // namespace mt::shim
