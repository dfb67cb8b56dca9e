#include "mt/shim/mem_block_device.h"

#include <gtest/gtest.h>

#include "mt/shim/aligned_buffer.h"

namespace mt::shim {
namespace {

AlignedBuffer Filled(size_t n, uint8_t v) {
  AlignedBuffer b(n);
  std::memset(b.data(), v, n);
  return b;
}

TEST(MemBlockDevice, WriteThenReadBack) {
  MemBlockDevice dev("mem0", 1 << 20);
  auto w = Filled(8192, 0xab);
  ASSERT_TRUE(dev.WriteAt(4096, w.data(), 8192).ok());
  AlignedBuffer r(8192);
  ASSERT_TRUE(dev.ReadAt(4096, r.data(), 8192).ok());
  EXPECT_EQ(std::memcmp(r.data(), w.data(), 8192), 0);
}

TEST(MemBlockDevice, MisalignedOffsetLengthOrBufferIsRejectedAndChangesNothing) {
  MemBlockDevice dev("mem0", 1 << 20, 512);
  auto w = Filled(4096 + 512, 0x11);
  Status s = dev.WriteAt(100, w.data(), 512);
  EXPECT_EQ(s.code(), Errc::kMisaligned);
  EXPECT_NE(s.message().find("mem0"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("logical block size 512"), std::string::npos) << s.message();
  EXPECT_EQ(dev.WriteAt(0, w.data(), 100).code(), Errc::kMisaligned);
  EXPECT_EQ(dev.WriteAt(0, w.data() + 1, 512).code(), Errc::kMisaligned);
  AlignedBuffer r(512);
  EXPECT_EQ(dev.ReadAt(512, r.data() + 8, 256).code(), Errc::kMisaligned);
  EXPECT_EQ(dev.writes(), 0u);
  EXPECT_EQ(dev.Contents(), std::vector<uint8_t>(1 << 20, 0));
}

TEST(MemBlockDevice, OutOfRangeIsRejected) {
  MemBlockDevice dev("mem0", 1 << 20);
  auto w = Filled(4096, 1);
  EXPECT_EQ(dev.WriteAt((1 << 20) - 2048, w.data(), 4096).code(), Errc::kOutOfRange);
  EXPECT_EQ(dev.WriteAt(UINT64_MAX - 511, w.data(), 4096).code(), Errc::kOutOfRange);
  EXPECT_TRUE(dev.WriteAt((1 << 20) - 4096, w.data(), 4096).ok());
}

TEST(MemBlockDevice, PowerCutDropsExactlyTheUnflushedWrites) {
  MemBlockDevice dev("mem0", 64 * 1024);
  auto a = Filled(4096, 0xaa), b = Filled(4096, 0xbb), c = Filled(4096, 0xcc);
  ASSERT_TRUE(dev.WriteAt(0, a.data(), 4096).ok());
  ASSERT_TRUE(dev.WriteAt(8192, a.data(), 4096).ok());
  ASSERT_TRUE(dev.Flush().ok());
  const auto durable = dev.Contents();
  ASSERT_TRUE(dev.WriteAt(0, b.data(), 4096).ok());      // overwrites flushed data
  ASSERT_TRUE(dev.WriteAt(2048, c.data(), 4096).ok());   // overlaps the previous write
  ASSERT_TRUE(dev.WriteAt(16384, c.data(), 4096).ok());  // fresh region
  EXPECT_TRUE(dev.HasUnflushedWrites());
  dev.PowerCut();
  EXPECT_EQ(dev.Contents(), durable);
  EXPECT_FALSE(dev.HasUnflushedWrites());
}

TEST(MemBlockDevice, TornLastWriteKeepsASectorAlignedPrefix) {
  bool saw_partial = false;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    MemBlockDevice dev("mem0", 64 * 1024);
    auto a = Filled(8192, 0xaa);
    ASSERT_TRUE(dev.WriteAt(4096, a.data(), 8192).ok());
    PowerCutOptions o;
    o.tear_last = true;
    o.seed = seed;
    dev.PowerCut(o);
    const auto img = dev.Contents();
    size_t kept = 0;
    while (kept < 8192 && img[4096 + kept] == 0xaa) ++kept;
    EXPECT_EQ(kept % 512, 0u);
    for (size_t i = 4096 + kept; i < img.size(); ++i) ASSERT_EQ(img[i], 0) << "seed " << seed;
    if (kept > 0 && kept < 8192) saw_partial = true;
  }
  EXPECT_TRUE(saw_partial);
}

TEST(MemBlockDevice, FlushedDataSurvivesPowerCut) {
  MemBlockDevice dev("mem0", 64 * 1024);
  auto a = Filled(4096, 0x5a);
  ASSERT_TRUE(dev.WriteAt(4096, a.data(), 4096).ok());
  ASSERT_TRUE(dev.Flush().ok());
  PowerCutOptions o;
  o.tear_last = true;
  dev.PowerCut(o);
  EXPECT_EQ(dev.Contents()[4096], 0x5a);
  EXPECT_EQ(dev.Contents()[8191], 0x5a);
}

}  // namespace
}  // namespace mt::shim
