// AlignedBuffer: alignment, size and zero fill; large buffers are aligned to
// 2 MiB so that they can be backed by transparent huge pages.
#include "mt/shim/aligned_buffer.h"

#include <gtest/gtest.h>

#include <algorithm>

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

}  // namespace
}  // namespace mt
