// AlignedBuffer: alignment, size and zero fill; large buffers are aligned to
// 2 MiB so that they can be backed by transparent huge pages. BlockCache:
// large blocks are reused, within its capacity, and given back on Release.
#include "mt/shim/aligned_buffer.h"

#include "mt/shim/block_cache.h"
#include "mt/shim/memory.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace mt {
namespace {

TEST(AlignedBuffer, SmallBufferIsPageAlignedRoundedAndZero) {
  AlignedBuffer b(5000);
  EXPECT_EQ(b.size(), 8192u);
  EXPECT_TRUE(IsAligned(b.data(), kDirectIoAlignment));
  EXPECT_TRUE(std::all_of(b.data(), b.data() + b.size(), [](uint8_t v) { return v == 0; }));
}

TEST(AlignedBuffer, LargeBufferIsHugePageAlignedWithItsOwnSize) {
  AlignedBuffer b((16u << 20) + 4096);
  EXPECT_EQ(b.size(), (16u << 20) + 4096) << "size is rounded to the alignment asked, not 2 MiB";
  EXPECT_TRUE(IsAligned(b.data(), 2u << 20));
  EXPECT_TRUE(std::all_of(b.data(), b.data() + b.size(), [](uint8_t v) { return v == 0; }));
}

TEST(AlignedBuffer, EmptyAndMoved) {
  AlignedBuffer a;
  EXPECT_TRUE(a.empty());
  AlignedBuffer b(4096);
  AlignedBuffer c(std::move(b));
  EXPECT_EQ(c.size(), 4096u);
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
}

TEST(PageAlignedAllocator, VectorStaysPageAlignedAsItGrowsAndCopiesValues) {
  std::vector<uint8_t, PageAlignedAllocator<uint8_t>> v;
  for (size_t n : {size_t{1}, size_t{5000}, size_t{1} << 20, (size_t{3} << 20) + 7}) {
    const size_t at = v.size();
    v.resize(at + n);  // new bytes are not zeroed: fill them
    std::memset(v.data() + at, static_cast<int>(n & 0xff), n);
    EXPECT_TRUE(IsAligned(v.data(), kDirectIoAlignment)) << n;
  }
  EXPECT_EQ(v[0], 1);
  EXPECT_EQ(v.back(), static_cast<uint8_t>(((size_t{3} << 20) + 7) & 0xff));
  const std::vector<uint8_t> src = {1, 2, 3, 4};
  v.assign(src.begin(), src.end());  // value construction still copies values
  EXPECT_TRUE(std::equal(v.begin(), v.end(), src.begin(), src.end()));
  std::vector<uint8_t, PageAlignedAllocator<uint8_t>> w(3, 9);
  EXPECT_EQ(w, (std::vector<uint8_t, PageAlignedAllocator<uint8_t>>{9, 9, 9}));
}

using shim::BlockCache;

TEST(BlockCache, ClassesAreAtMostAQuarterLargerThanAsked) {
  EXPECT_EQ(BlockCache::ClassBytes(5000), 8192u) << "small: the page-rounded size";
  EXPECT_EQ(BlockCache::ClassBytes(8u << 20), 8u << 20);
  EXPECT_EQ(BlockCache::ClassBytes((8u << 20) + 1), 10u << 20);
  for (size_t n = BlockCache::kMinCachedBytes; n < (64u << 20); n = n * 5 / 4 + 4097) {
    const size_t c = BlockCache::ClassBytes(n);
    EXPECT_GE(c, n);
    EXPECT_LE(c, n + n / 4 + 4096) << n;
    EXPECT_TRUE(IsAligned(c, kDirectIoAlignment)) << n;
  }
}

// The point of the cache: a frame's payload reuses the pages of the one
// before (no page faults), and a buffer that promises zeroes still has them.
TEST(BlockCache, AFreedLargeBlockIsHandedOutAgainAndAlignedBufferZeroesIt) {
  shim::ReleaseFreeMemory();
  const uint64_t reused = BlockCache::Reused();
  uint8_t* first = nullptr;
  {
    std::vector<uint8_t, PageAlignedAllocator<uint8_t>> payload;
    payload.resize(8u << 20);
    std::memset(payload.data(), 0xab, payload.size());
    first = payload.data();
    EXPECT_TRUE(IsAligned(first, 2u << 20));
  }
  EXPECT_EQ(BlockCache::CachedBytes(), 8u << 20);
  AlignedBuffer b(8u << 20);
  EXPECT_EQ(b.data(), first) << "the freed payload's block is reused";
  EXPECT_EQ(BlockCache::Reused(), reused + 1);
  EXPECT_EQ(BlockCache::CachedBytes(), 0u);
  EXPECT_TRUE(std::all_of(b.data(), b.data() + b.size(), [](uint8_t v) { return v == 0; }));
}

TEST(BlockCache, HoldsAtMostItsCapacityAndReleaseEmptiesIt) {
  shim::ReleaseFreeMemory();
  const size_t block = 8u << 20;
  const size_t n = BlockCache::kCapacityBytes / block + 3;
  std::vector<void*> blocks;
  for (size_t i = 0; i < n; ++i) blocks.push_back(BlockCache::Allocate(block));
  for (void* p : blocks) BlockCache::Free(p, block);
  EXPECT_EQ(BlockCache::CachedBytes(), BlockCache::kCapacityBytes) << "the rest went back to the C library";
  void* huge = BlockCache::Allocate(BlockCache::kMaxCachedBytes * 2);
  BlockCache::Free(huge, BlockCache::kMaxCachedBytes * 2);
  EXPECT_EQ(BlockCache::CachedBytes(), BlockCache::kCapacityBytes) << "blocks above kMaxCachedBytes are never kept";
  shim::ReleaseFreeMemory();
  EXPECT_EQ(BlockCache::CachedBytes(), 0u);
}

}  // namespace
}  // namespace mt
