#include "mt/shim/aligned_buffer.h"

#include <new>

namespace mt {

AlignedBuffer::AlignedBuffer(size_t size, size_t alignment) {
  if (size == 0) return;
  if (alignment == 0 || alignment > kDirectIoAlignment || kDirectIoAlignment % alignment != 0) throw std::bad_alloc();
  *this = Uninitialized(size);
  std::memset(data_.get(), 0, size_);
}

AlignedBuffer AlignedBuffer::Uninitialized(size_t size) {
  AlignedBuffer b;
  if (size == 0) return b;
  b.size_ = static_cast<size_t>(AlignUp(size, kDirectIoAlignment));
  // Huge-page advice for large buffers is BlockCache's (classes >= 2 MiB):
  // the journals' 16 MiB group-commit buffers are written with O_DIRECT and
  // the kernel pins every page per write — 8 huge pages instead of 4096.
  void* p = shim::BlockCache::Allocate(b.size_);
  b.data_ = std::unique_ptr<uint8_t, Free>(static_cast<uint8_t*>(p), Free{b.size_});
  return b;
}

void AlignedBuffer::Free::operator()(uint8_t* p) const noexcept { shim::BlockCache::Free(p, bytes); }

}  // namespace mt
