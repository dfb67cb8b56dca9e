#include "mt/shim/mem_block_device.h"

#include <cstring>

#include "volatile_bytes.h"

namespace mt::shim {

MemBlockDevice::MemBlockDevice(std::string name, uint64_t size, uint32_t lbs, uint32_t pbs)
    : name_(std::move(name)), size_(size), lbs_(lbs), pbs_(pbs),
      data_(std::make_unique<VolatileBytes>()) {
  std::vector<uint8_t> zero(size, 0);
  data_->Write(0, zero.data(), zero.size());
  data_->Sync();
}

MemBlockDevice::~MemBlockDevice() = default;

Status MemBlockDevice::ReadAt(uint64_t offset, void* buf, size_t len) {
  MT_RETURN_IF_ERROR(CheckBlockIo(*this, "read", offset, buf, len));
  std::lock_guard<std::mutex> l(mu_);
  std::memcpy(buf, data_->bytes().data() + offset, len);
  return Status::Ok();
}

Status MemBlockDevice::WriteAt(uint64_t offset, const void* buf, size_t len) {
  MT_RETURN_IF_ERROR(CheckBlockIo(*this, "write", offset, buf, len));
  std::lock_guard<std::mutex> l(mu_);
  data_->Write(offset, buf, len);
  ++writes_;
  return Status::Ok();
}

Status MemBlockDevice::Flush() {
  std::lock_guard<std::mutex> l(mu_);
  data_->Sync();
  return Status::Ok();
}

Status MemBlockDevice::Discard(uint64_t offset, uint64_t len) {
  MT_RETURN_IF_ERROR(CheckBlockIo(*this, "discard", offset, nullptr, len));
  std::vector<uint8_t> zero(len, 0);
  std::lock_guard<std::mutex> l(mu_);
  data_->Write(offset, zero.data(), zero.size());
  return Status::Ok();
}

void MemBlockDevice::PowerCut(const PowerCutOptions& options) {
  std::lock_guard<std::mutex> l(mu_);
  rng_.seed(options.seed);
  data_->PowerCut(options, rng_);
}

std::vector<uint8_t> MemBlockDevice::Contents() const {
  std::lock_guard<std::mutex> l(mu_);
  return data_->bytes();
}

bool MemBlockDevice::HasUnflushedWrites() const {
  std::lock_guard<std::mutex> l(mu_);
  return data_->has_unsynced();
}

uint64_t MemBlockDevice::writes() const {
  std::lock_guard<std::mutex> l(mu_);
  return writes_;
}

}  // namespace mt::shim
