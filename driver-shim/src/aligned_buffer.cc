#include "mt/shim/aligned_buffer.h"

#include <new>

namespace mt {

AlignedBuffer::AlignedBuffer(size_t size, size_t alignment) {
  if (size == 0) return;
  size_ = static_cast<size_t>(AlignUp(size, alignment));
  void* p = nullptr;
  if (posix_memalign(&p, alignment, size_) != 0) throw std::bad_alloc();
  std::memset(p, 0, size_);
  data_.reset(static_cast<uint8_t*>(p));
}

}  // namespace mt
