// AlignedBuffer: alignment, size and zero fill; large buffers are aligned to
// 2 MiB so that they can be backed by transparent huge pages.
#include "mt/shim/aligned_buffer.h"

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

}  // namespace
}  // namespace mt
