// Fault-injecting wrappers: any BlockDevice or FileSystem (real or fake) whose
// every operation first asks a FaultController. Used to fail the n-th
// operation, to make one device fail all I/O, and (with the Mem fakes
// underneath) to stop the world at a simulated power cut.
#pragma once

#include <memory>

#include "mt/shim/block_device.h"
#include "mt/shim/fault.h"
#include "mt/shim/file_system.h"

namespace mt::shim {

class FaultInjectingBlockDevice final : public BlockDevice {
 public:
  // REQUIRES: `faults` outlives this object.
  FaultInjectingBlockDevice(std::shared_ptr<BlockDevice> base, FaultController& faults)
      : base_(std::move(base)), faults_(faults) {}

  const std::string& name() const override { return base_->name(); }
  uint64_t size() const override { return base_->size(); }
  uint32_t logical_block_size() const override { return base_->logical_block_size(); }
  uint32_t physical_block_size() const override { return base_->physical_block_size(); }
  Status ReadAt(uint64_t offset, void* buf, size_t len) override {
    MT_RETURN_IF_ERROR(faults_.Check("read", name()));
    return base_->ReadAt(offset, buf, len);
  }
  Status WriteAt(uint64_t offset, const void* buf, size_t len) override {
    MT_RETURN_IF_ERROR(faults_.Check("write", name()));
    return base_->WriteAt(offset, buf, len);
  }
  Status Flush() override {
    MT_RETURN_IF_ERROR(faults_.Check("flush", name()));
    return base_->Flush();
  }
  Status Discard(uint64_t offset, uint64_t len) override {
    MT_RETURN_IF_ERROR(faults_.Check("discard", name()));
    return base_->Discard(offset, len);
  }

 private:
  std::shared_ptr<BlockDevice> base_;
  FaultController& faults_;
};

class FaultInjectingFileSystem final : public FileSystem {
 public:
  // REQUIRES: `base` and `faults` outlive this object and every file it opens.
  FaultInjectingFileSystem(FileSystem& base, FaultController& faults)
      : base_(base), faults_(faults) {}

  Result<std::unique_ptr<File>> OpenFile(const std::string& path,
                                         const FileOptions& options) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;
  Status CreateDir(const std::string& path) override;
  Status RemoveDir(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    return base_.ListDir(path);
  }
  bool Exists(const std::string& path) override { return base_.Exists(path); }
  Result<uint64_t> FileSize(const std::string& path) override { return base_.FileSize(path); }
  Result<SpaceInfo> Space(const std::string& path) override { return base_.Space(path); }

 private:
  FileSystem& base_;
  FaultController& faults_;
};

}  // namespace mt::shim
