#include "mt/shim/mem_file_system.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "mt/shim/aligned_buffer.h"
#include "volatile_bytes.h"

namespace mt::shim {

struct MemFileSystem::Node {
  VolatileBytes data;
  uint64_t reserved = 0;  // end of the space Preallocate reserved (may pass the size)
  // The bytes the file takes on the volume.
  uint64_t Used() const { return std::max<uint64_t>(data.size(), reserved); }
};

namespace {

std::string Normalize(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

// A handle. All state lives in the Node; the file system's mutex guards it.
class MemFile final : public File {
 public:
  MemFile(std::string path, std::shared_ptr<MemFileSystem::Node> node,
          std::shared_ptr<std::mutex> mu, bool writable, bool direct,
          std::function<Status(uint64_t)> reserve)
      : path_(std::move(path)), node_(std::move(node)), mu_(std::move(mu)), writable_(writable),
        direct_(direct), reserve_(std::move(reserve)) {}

  const std::string& path() const override { return path_; }
  uint64_t Size() const override {
    std::lock_guard<std::mutex> l(*mu_);
    return node_->data.size();
  }

  Result<size_t> ReadAt(uint64_t offset, void* buf, size_t len) override {
    if (direct_) MT_RETURN_IF_ERROR(CheckDirectFileIo(path_, "read", offset, buf, len));
    std::lock_guard<std::mutex> l(*mu_);
    const auto& b = node_->data.bytes();
    if (offset >= b.size()) return size_t{0};
    const size_t n = static_cast<size_t>(std::min<uint64_t>(len, b.size() - offset));
    if (n > 0) std::memcpy(buf, b.data() + offset, n);
    return n;
  }

  Status WriteAt(uint64_t offset, const void* buf, size_t len) override {
    MT_RETURN_IF_ERROR(CheckWritable("write"));
    if (direct_) MT_RETURN_IF_ERROR(CheckDirectFileIo(path_, "write", offset, buf, len));
    std::lock_guard<std::mutex> l(*mu_);
    const uint64_t end = offset + len;
    if (end > node_->Used()) MT_RETURN_IF_ERROR(reserve_(end - node_->Used()));
    node_->data.Write(offset, buf, len);
    return Status::Ok();
  }

  Status Sync() override {
    std::lock_guard<std::mutex> l(*mu_);
    node_->data.Sync();
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    MT_RETURN_IF_ERROR(CheckWritable("truncate"));
    std::lock_guard<std::mutex> l(*mu_);
    if (size > node_->Used()) MT_RETURN_IF_ERROR(reserve_(size - node_->Used()));
    // As on a real file system, cutting a file frees what lay past the cut,
    // reserved space included.
    if (size < node_->data.size()) node_->reserved = std::min(node_->reserved, size);
    node_->data.Resize(size);
    return Status::Ok();
  }

  // Takes the space as used (Space() counts it) without changing Size(), as
  // fallocate(FALLOC_FL_KEEP_SIZE) does; kNoSpace when it does not fit.
  Status Preallocate(uint64_t offset, uint64_t len) override {
    MT_RETURN_IF_ERROR(CheckWritable("preallocate"));
    std::lock_guard<std::mutex> l(*mu_);
    const uint64_t end = offset + len;
    if (end > node_->Used()) MT_RETURN_IF_ERROR(reserve_(end - node_->Used()));
    node_->reserved = std::max(node_->reserved, end);
    return Status::Ok();
  }

 private:
  Status CheckWritable(const char* op) const {
    if (writable_) return Status::Ok();
    return Status(Errc::kPermissionDenied, std::string(op) + " " + path_ + ": opened read-only");
  }

  std::string path_;
  std::shared_ptr<MemFileSystem::Node> node_;
  std::shared_ptr<std::mutex> mu_;
  bool writable_, direct_;
  std::function<Status(uint64_t)> reserve_;  // REQUIRES: *mu_ held
};

}  // namespace

MemFileSystem::MemFileSystem(uint64_t capacity)
    : mu_(std::make_shared<std::mutex>()), capacity_(capacity) {
  dirs_.insert("/");
  dirs_.insert(".");
}

MemFileSystem::~MemFileSystem() = default;

uint64_t MemFileSystem::UsedLocked() const {
  uint64_t used = 0;
  for (const auto& [path, node] : files_) used += node->Used();
  return used;
}

Result<std::unique_ptr<File>> MemFileSystem::OpenFile(const std::string& raw,
                                                      const FileOptions& o) {
  const std::string path = Normalize(raw);
  std::lock_guard<std::mutex> l(*mu_);
  auto it = files_.find(path);
  if (it == files_.end()) {
    if (!o.create) return Status(Errc::kNotFound, "open " + path + ": No such file or directory", 2);
    if (dirs_.count(ParentDir(path)) == 0)
      return Status(Errc::kNotFound, "open " + path + ": parent directory missing", 2);
    it = files_.emplace(path, std::make_shared<Node>()).first;
  } else if (o.create && o.must_not_exist) {
    return Status(Errc::kAlreadyExists, "open " + path + ": File exists", 17);
  }
  auto reserve = [this](uint64_t more) -> Status {
    if (UsedLocked() + more > capacity_)
      return Status(Errc::kNoSpace, "No space left on device (simulated capacity)", 28);
    return Status::Ok();
  };
  return std::unique_ptr<File>(new MemFile(path, it->second, mu_, o.writable, o.direct, reserve));
}

Status MemFileSystem::Rename(const std::string& from_raw, const std::string& to_raw) {
  const std::string from = Normalize(from_raw), to = Normalize(to_raw);
  std::lock_guard<std::mutex> l(*mu_);
  auto it = files_.find(from);
  if (it == files_.end()) return Status(Errc::kNotFound, "rename " + from + ": No such file", 2);
  if (dirs_.count(ParentDir(to)) == 0)
    return Status(Errc::kNotFound, "rename to " + to + ": parent directory missing", 2);
  auto node = it->second;
  files_.erase(it);
  files_[to] = std::move(node);
  return Status::Ok();
}

Status MemFileSystem::Remove(const std::string& raw) {
  const std::string path = Normalize(raw);
  std::lock_guard<std::mutex> l(*mu_);
  if (files_.erase(path) == 0) return Status(Errc::kNotFound, "remove " + path + ": No such file", 2);
  return Status::Ok();
}

Status MemFileSystem::CreateDir(const std::string& raw) {
  const std::string path = Normalize(raw);
  {
    std::lock_guard<std::mutex> l(*mu_);
    if (dirs_.count(path) != 0) return Status::Ok();
    if (files_.count(path) != 0)
      return Status(Errc::kAlreadyExists, path + " exists and is not a directory");
  }
  const std::string parent = ParentDir(path);
  if (parent != path) MT_RETURN_IF_ERROR(CreateDir(parent));
  std::lock_guard<std::mutex> l(*mu_);
  dirs_.insert(path);
  return Status::Ok();
}

Status MemFileSystem::RemoveDir(const std::string& raw) {
  const std::string path = Normalize(raw);
  std::lock_guard<std::mutex> l(*mu_);
  if (dirs_.count(path) == 0) return Status(Errc::kNotFound, "rmdir " + path + ": No such directory", 2);
  const std::string prefix = path + "/";
  for (const auto& [p, n] : files_)
    if (p.compare(0, prefix.size(), prefix) == 0)
      return Status(Errc::kBusy, "rmdir " + path + ": Directory not empty", 39);
  for (const auto& d : dirs_)
    if (d.compare(0, prefix.size(), prefix) == 0)
      return Status(Errc::kBusy, "rmdir " + path + ": Directory not empty", 39);
  dirs_.erase(path);
  return Status::Ok();
}

Result<std::vector<std::string>> MemFileSystem::ListDir(const std::string& raw) {
  const std::string path = Normalize(raw);
  std::lock_guard<std::mutex> l(*mu_);
  if (dirs_.count(path) == 0)
    return Status(Errc::kNotFound, "list directory " + path + ": No such directory", 2);
  std::vector<std::string> names;
  auto add_child = [&](const std::string& p) {
    if (p != path && ParentDir(p) == path) names.push_back(p.substr(p.find_last_of('/') + 1));
  };
  for (const auto& [p, n] : files_) add_child(p);
  for (const auto& d : dirs_) add_child(d);
  std::sort(names.begin(), names.end());
  return names;
}

bool MemFileSystem::Exists(const std::string& raw) {
  const std::string path = Normalize(raw);
  std::lock_guard<std::mutex> l(*mu_);
  return files_.count(path) != 0 || dirs_.count(path) != 0;
}

Result<uint64_t> MemFileSystem::FileSize(const std::string& raw) {
  const std::string path = Normalize(raw);
  std::lock_guard<std::mutex> l(*mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return Status(Errc::kNotFound, "stat " + path + ": No such file", 2);
  return it->second->data.size();
}

Result<SpaceInfo> MemFileSystem::Space(const std::string&) {
  std::lock_guard<std::mutex> l(*mu_);
  SpaceInfo s;
  s.capacity = capacity_;
  const uint64_t used = UsedLocked();
  s.available = used >= capacity_ ? 0 : capacity_ - used;
  return s;
}

void MemFileSystem::PowerCut(const PowerCutOptions& options) {
  std::lock_guard<std::mutex> l(*mu_);
  rng_.seed(options.seed);
  for (auto& [path, node] : files_) node->data.PowerCut(options, rng_);
}

std::vector<uint8_t> MemFileSystem::Contents(const std::string& raw) {
  std::lock_guard<std::mutex> l(*mu_);
  auto it = files_.find(Normalize(raw));
  return it == files_.end() ? std::vector<uint8_t>{} : it->second->data.bytes();
}

void MemFileSystem::set_capacity(uint64_t capacity) {
  std::lock_guard<std::mutex> l(*mu_);
  capacity_ = capacity;
}

}  // namespace mt::shim
