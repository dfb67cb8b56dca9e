// AlignedBuffer: heap memory aligned for O_DIRECT I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <utility>

#include "mt/shim/block_cache.h"

namespace mt {

// Alignment that satisfies O_DIRECT on every device we support (page size).
inline constexpr size_t kDirectIoAlignment = 4096;

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // Zero-filled buffer of `size` bytes; size is rounded up to the alignment.
  // Aborts (like operator new) if memory cannot be had. Large buffers come
  // from, and go back to, shim::BlockCache (already-mapped memory). The
  // alignment is at most kDirectIoAlignment.
  explicit AlignedBuffer(size_t size, size_t alignment = kDirectIoAlignment);
  // The same without the zero fill, for a buffer that is filled right away
  // (a read, a memcpy): its bytes are indeterminate until written.
  static AlignedBuffer Uninitialized(size_t size);
  AlignedBuffer(AlignedBuffer&& o) noexcept : data_(std::move(o.data_)), size_(o.size_) { o.size_ = 0; }
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    data_ = std::move(o.data_);
    size_ = o.size_;
    o.size_ = 0;
    return *this;
  }

  uint8_t* data() { return data_.get(); }
  const uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  // Gives the block back to the cache it came from (shim::BlockCache).
  struct Free {
    size_t bytes;  // no initializer: value-initialized (0) by unique_ptr
    void operator()(uint8_t* p) const noexcept;
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t size_ = 0;
};

// Allocator of page-aligned memory (kDirectIoAlignment) for standard
// containers: a std::vector<uint8_t, PageAlignedAllocator<uint8_t>> can be
// handed to O_DIRECT I/O as is. Sizes are rounded up to the alignment.
//
// For buffers that are filled right after they grow: resize() default-
// initializes, i.e. new bytes are NOT zeroed (indeterminate until written).
// Fill them with memcpy after resize(): a range insert()/assign() through a
// non-standard allocator is an element-by-element loop in libstdc++.
// Large blocks come from shim::BlockCache: a frame payload reuses the memory
// of an earlier one instead of faulting in fresh pages.
template <typename T>
struct PageAlignedAllocator {
  using value_type = T;
  PageAlignedAllocator() noexcept = default;
  template <typename U>
  PageAlignedAllocator(const PageAlignedAllocator<U>&) noexcept {}  // NOLINT: rebinding
  T* allocate(size_t n) { return static_cast<T*>(shim::BlockCache::Allocate(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { shim::BlockCache::Free(p, n * sizeof(T)); }
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;  // default-init: no zero fill
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  bool operator==(const PageAlignedAllocator<U>&) const noexcept { return true; }
  template <typename U>
  bool operator!=(const PageAlignedAllocator<U>&) const noexcept { return false; }
};

inline bool IsAligned(uint64_t v, uint64_t alignment) { return alignment != 0 && v % alignment == 0; }
inline bool IsAligned(const void* p, uint64_t alignment) {
  return IsAligned(reinterpret_cast<uintptr_t>(p), alignment);
}
inline uint64_t AlignUp(uint64_t v, uint64_t alignment) { return (v + alignment - 1) / alignment * alignment; }

}  // namespace mt
