#include "mt/shim/aligned_buffer.h"

#include <sys/mman.h>

#include <new>

namespace mt {

namespace {
// Buffers of at least this size are aligned to it and asked to be backed by
// transparent huge pages: the journals' group-commit buffers (16 MiB) are
// written with O_DIRECT, and the kernel pins every page of such a buffer for
// each write — 8 huge pages instead of 4096 small ones per 16 MiB. Advice
// only: without THP (or with it off) the buffer is ordinary memory.
constexpr size_t kHugePageBytes = 2u << 20;
}  // namespace

AlignedBuffer::AlignedBuffer(size_t size, size_t alignment) {
  if (size == 0) return;
  size_ = static_cast<size_t>(AlignUp(size, alignment));
  const bool huge = size_ >= kHugePageBytes && alignment <= kHugePageBytes;
  void* p = nullptr;
  if (posix_memalign(&p, huge ? kHugePageBytes : alignment, size_) != 0) throw std::bad_alloc();
  if (huge) (void)madvise(p, size_, MADV_HUGEPAGE);  // before the first touch below
  std::memset(p, 0, size_);
  data_.reset(static_cast<uint8_t*>(p));
}

}  // namespace mt
