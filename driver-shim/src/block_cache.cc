#include "mt/shim/block_cache.h"

#include <sys/mman.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "mt/shim/aligned_buffer.h"

namespace mt::shim {

namespace {

constexpr size_t kHugePageBytes = 2u << 20;

struct Cache {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> free_blocks;  // class bytes -> blocks
  size_t cached = 0;
  uint64_t reused = 0;
};

Cache& TheCache() {
  static Cache* c = new Cache;  // never destroyed: blocks may be freed during exit
  return *c;
}

bool Cached(size_t class_bytes) {
  return class_bytes >= BlockCache::kMinCachedBytes && class_bytes <= BlockCache::kMaxCachedBytes;
}

void* NewBlock(size_t class_bytes) {
  const bool huge = class_bytes >= kHugePageBytes;
  void* p = nullptr;
  if (posix_memalign(&p, huge ? kHugePageBytes : kDirectIoAlignment, class_bytes) != 0) throw std::bad_alloc();
  if (huge) (void)madvise(p, class_bytes, MADV_HUGEPAGE);  // advice only
  return p;
}

}  // namespace

size_t BlockCache::ClassBytes(size_t bytes) {
  size_t b = AlignUp(bytes == 0 ? 1 : bytes, kDirectIoAlignment);
  if (b < kMinCachedBytes) return b;
  // Four classes per power of two: the step is a quarter of the largest power
  // of two not above b, so a block is at most 25% larger than asked.
  size_t top = 1;
  while (top <= b / 2) top *= 2;
  const size_t step = top / 4;
  return AlignUp(b, step);
}

void* BlockCache::Allocate(size_t bytes) {
  const size_t cls = ClassBytes(bytes);
  if (Cached(cls)) {
    Cache& c = TheCache();
    std::lock_guard<std::mutex> l(c.mu);
    auto it = c.free_blocks.find(cls);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.cached -= cls;
      ++c.reused;
      return p;
    }
  }
  return NewBlock(cls);
}

void BlockCache::Free(void* p, size_t bytes) noexcept {
  if (p == nullptr) return;
  const size_t cls = ClassBytes(bytes);
  if (Cached(cls)) {
    Cache& c = TheCache();
    std::lock_guard<std::mutex> l(c.mu);
    if (c.cached + cls <= kCapacityBytes) {
      try {
        c.free_blocks[cls].push_back(p);
        c.cached += cls;
        return;
      } catch (...) {  // no memory for the list entry: free the block instead
      }
    }
  }
  std::free(p);
}

void BlockCache::Release() noexcept {
  Cache& c = TheCache();
  std::map<size_t, std::vector<void*>> blocks;
  {
    std::lock_guard<std::mutex> l(c.mu);
    blocks.swap(c.free_blocks);
    c.cached = 0;
  }
  for (auto& [cls, ps] : blocks)
    for (void* p : ps) std::free(p);
}

size_t BlockCache::CachedBytes() {
  Cache& c = TheCache();
  std::lock_guard<std::mutex> l(c.mu);
  return c.cached;
}

uint64_t BlockCache::Reused() {
  Cache& c = TheCache();
  std::lock_guard<std::mutex> l(c.mu);
  return c.reused;
}

}  // namespace mt::shim
