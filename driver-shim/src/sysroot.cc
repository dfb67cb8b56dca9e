#include "mt/shim/sysroot.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>

#include "posix_io.h"

namespace mt::shim {

std::string TrimRight(std::string_view s) {
  size_t n = s.size();
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
                   s[n - 1] == '\0')) {
    --n;
  }
  return std::string(s.substr(0, n));
}

SysRoot::SysRoot(std::string prefix) : prefix_(std::move(prefix)) {
  while (prefix_.size() > 1 && prefix_.back() == '/') prefix_.pop_back();
  if (prefix_ == "/") prefix_.clear();
}

std::string SysRoot::Path(std::string_view abs) const {
  std::string p = prefix_;
  p.append(abs);
  return p;
}

Result<std::string> SysRoot::ReadFile(std::string_view abs, size_t limit) const {
  const std::string path = Path(abs);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return Status::FromErrno(errno, "open " + path);
  std::string out;
  char buf[4096];
  // sysfs attributes must be read with read(), not pread at offsets: some
  // (binary VPD pages) are produced whole on the first read.
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read " + path);
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > limit)
      return Status(Errc::kOutOfRange,
                    "read " + path + ": larger than " + std::to_string(limit) + " bytes");
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<std::string> SysRoot::ReadAttr(std::string_view abs) const {
  MT_ASSIGN_OR_RETURN(std::string s, ReadFile(abs, 65536));
  return TrimRight(s);
}

std::string SysRoot::ReadAttrOr(std::string_view abs, std::string fallback) const {
  auto r = ReadAttr(abs);
  return r.ok() ? std::move(r).value() : std::move(fallback);
}

Result<uint64_t> SysRoot::ReadUint(std::string_view abs) const {
  MT_ASSIGN_OR_RETURN(std::string s, ReadAttr(abs));
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
    return Status(Errc::kCorruption, Path(abs) + ": not a decimal number: '" + s + "'");
  errno = 0;
  const unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
  if (errno == ERANGE) return Status(Errc::kCorruption, Path(abs) + ": number out of range");
  return static_cast<uint64_t>(v);
}

bool SysRoot::Exists(std::string_view abs) const {
  struct stat st;
  return ::stat(Path(abs).c_str(), &st) == 0;
}

bool SysRoot::IsDir(std::string_view abs) const {
  struct stat st;
  return ::stat(Path(abs).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Result<std::vector<std::string>> SysRoot::ListDir(std::string_view abs) const {
  const std::string path = Path(abs);
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open directory " + path);
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(fd), ::closedir);
  if (!dir) {
    const int err = errno;
    ::close(fd);
    return Status::FromErrno(err, "opendir " + path);
  }
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    const dirent* e = ::readdir(dir.get());
    if (e == nullptr) {
      if (errno != 0) return Status::FromErrno(errno, "readdir " + path);
      break;
    }
    const std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    names.emplace_back(n);
  }
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::string> SysRoot::ReadLink(std::string_view abs) const {
  const std::string path = Path(abs);
  char buf[PATH_MAX];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  if (n < 0) return Status::FromErrno(errno, "readlink " + path);
  return std::string(buf, static_cast<size_t>(n));
}

Result<std::string> SysRoot::RealPath(std::string_view abs) const {
  const std::string path = Path(abs);
  std::unique_ptr<char, void (*)(void*)> real(::realpath(path.c_str(), nullptr), std::free);
  if (!real) return Status::FromErrno(errno, "realpath " + path);
  std::string r = real.get();
  if (prefix_.empty()) return r;
  std::unique_ptr<char, void (*)(void*)> root(::realpath(prefix_.c_str(), nullptr), std::free);
  if (!root) return Status::FromErrno(errno, "realpath " + prefix_);
  const std::string_view rp = root.get();
  if (r.compare(0, rp.size(), rp) != 0 || (r.size() > rp.size() && r[rp.size()] != '/'))
    return Status(Errc::kInvalidArgument, path + " resolves outside the root " + prefix_);
  r.erase(0, rp.size());
  return r.empty() ? std::string("/") : r;
}

Status SysRoot::WriteFile(std::string_view abs, std::string_view data) const {
  const std::string path = Path(abs);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return Status::FromErrno(errno, "open " + path + " for writing");
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + path);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace mt::shim
