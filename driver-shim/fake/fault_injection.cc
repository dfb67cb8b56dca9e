#include "mt/shim/fault_injection.h"

namespace mt::shim {
namespace {

class FaultInjectingFile final : public File {
 public:
  FaultInjectingFile(std::unique_ptr<File> base, FaultController& faults)
      : base_(std::move(base)), faults_(faults) {}

  const std::string& path() const override { return base_->path(); }
  uint64_t Size() const override { return base_->Size(); }
  Result<size_t> ReadAt(uint64_t offset, void* buf, size_t len) override {
    MT_RETURN_IF_ERROR(faults_.Check("read", path()));
    return base_->ReadAt(offset, buf, len);
  }
  Status WriteAt(uint64_t offset, const void* buf, size_t len) override {
    MT_RETURN_IF_ERROR(faults_.Check("write", path()));
    return base_->WriteAt(offset, buf, len);
  }
  Status Sync() override {
    MT_RETURN_IF_ERROR(faults_.Check("sync", path()));
    return base_->Sync();
  }
  Status Truncate(uint64_t size) override {
    MT_RETURN_IF_ERROR(faults_.Check("truncate", path()));
    return base_->Truncate(size);
  }
  Status Preallocate(uint64_t offset, uint64_t len) override {
    MT_RETURN_IF_ERROR(faults_.Check("preallocate", path()));
    return base_->Preallocate(offset, len);
  }

 private:
  std::unique_ptr<File> base_;
  FaultController& faults_;
};

}  // namespace

Result<std::unique_ptr<File>> FaultInjectingFileSystem::OpenFile(const std::string& path,
                                                                 const FileOptions& options) {
  if (options.create) MT_RETURN_IF_ERROR(faults_.Check("create", path));
  MT_ASSIGN_OR_RETURN(auto file, base_.OpenFile(path, options));
  return std::unique_ptr<File>(new FaultInjectingFile(std::move(file), faults_));
}

Status FaultInjectingFileSystem::Rename(const std::string& from, const std::string& to) {
  MT_RETURN_IF_ERROR(faults_.Check("rename", from));
  return base_.Rename(from, to);
}

Status FaultInjectingFileSystem::Remove(const std::string& path) {
  MT_RETURN_IF_ERROR(faults_.Check("remove", path));
  return base_.Remove(path);
}

Status FaultInjectingFileSystem::CreateDir(const std::string& path) {
  MT_RETURN_IF_ERROR(faults_.Check("mkdir", path));
  return base_.CreateDir(path);
}

Status FaultInjectingFileSystem::RemoveDir(const std::string& path) {
  MT_RETURN_IF_ERROR(faults_.Check("rmdir", path));
  return base_.RemoveDir(path);
}

}  // namespace mt::shim
