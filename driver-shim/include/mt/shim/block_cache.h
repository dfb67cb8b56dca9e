// BlockCache: a process-wide, bounded cache of large page-aligned blocks.
//
// Why: every frame payload (up to 64 MiB), resync read buffer and journal
// group-commit buffer used to be fresh memory from the C library, i.e. a new
// mmap whose every 4 KiB page faults on first touch and is unmapped again on
// free. On a virtual machine a page fault costs microseconds, so receiving
// 1 GiB in 8 MiB frames cost more CPU in faults (262,144 of them) than in
// decrypting it. Blocks of at least kMinCachedBytes are instead kept when
// freed, up to kCapacityBytes in all, and handed out again: the steady state
// of a stream touches memory that is already mapped.
//
// Contract:
//  - Allocate(bytes) returns `bytes` (rounded up to a size class: at most 25%
//    more) of memory aligned to kDirectIoAlignment — to 2 MiB, with
//    transparent huge pages advised, for classes of 2 MiB and more. Its
//    contents are indeterminate (not zeroed). Throws std::bad_alloc.
//  - Free(p, bytes) with the same `bytes` as its Allocate. The block goes to
//    the cache if it fits in kCapacityBytes, else back to the C library.
//  - Release() gives every cached block back (ReleaseFreeMemory calls it).
// Thread-safe (one mutex; taken once per block, not per byte).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mt::shim {

class BlockCache {
 public:
  static constexpr size_t kMinCachedBytes = 256u << 10;   // smaller: plain aligned_alloc
  static constexpr size_t kMaxCachedBytes = 16u << 20;    // larger: never cached
  static constexpr size_t kCapacityBytes = 64u << 20;     // cached at most, in all

  static void* Allocate(size_t bytes);
  static void Free(void* p, size_t bytes) noexcept;
  static void Release() noexcept;

  // The size class `bytes` is served from (bytes itself below
  // kMinCachedBytes, rounded up to the page size).
  static size_t ClassBytes(size_t bytes);
  // Bytes held in the cache now; blocks served from the cache so far.
  static size_t CachedBytes();
  static uint64_t Reused();
};

}  // namespace mt::shim
