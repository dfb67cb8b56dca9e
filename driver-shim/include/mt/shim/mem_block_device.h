// MemBlockDevice: an in-memory BlockDevice for tests. It enforces the O_DIRECT
// contract of BlockDevice exactly like the real one, and remembers which writes
// are not flushed yet so PowerCut() can drop them (or tear the last one).
#pragma once

#include <memory>
#include <mutex>
#include <random>
#include <vector>

#include "mt/shim/block_device.h"
#include "mt/shim/fault.h"

namespace mt::shim {

class VolatileBytes;

class MemBlockDevice final : public BlockDevice {
 public:
  MemBlockDevice(std::string name, uint64_t size, uint32_t logical_block_size = 512,
                 uint32_t physical_block_size = 4096);
  ~MemBlockDevice() override;

  const std::string& name() const override { return name_; }
  uint64_t size() const override { return size_; }
  uint32_t logical_block_size() const override { return lbs_; }
  uint32_t physical_block_size() const override { return pbs_; }
  Status ReadAt(uint64_t offset, void* buf, size_t len) override;
  Status WriteAt(uint64_t offset, const void* buf, size_t len) override;
  Status Flush() override;
  Status Discard(uint64_t offset, uint64_t len) override;  // zeroes the range

  // Test helpers.
  // Drops every write not covered by a Flush() (see PowerCutOptions).
  void PowerCut(const PowerCutOptions& options = {});
  // The current content (including unflushed writes).
  std::vector<uint8_t> Contents() const;
  bool HasUnflushedWrites() const;
  uint64_t writes() const;

 private:
  const std::string name_;
  const uint64_t size_;
  const uint32_t lbs_, pbs_;
  mutable std::mutex mu_;
  std::unique_ptr<VolatileBytes> data_;
  uint64_t writes_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace mt::shim
