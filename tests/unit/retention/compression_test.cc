#include "retention/compression.h"

#include <gtest/gtest.h>

#include <random>

namespace mt::retention {
namespace {

RecordHeader HeaderFor(const StoredForm& f, uint32_t len) {
  RecordHeader h;
  h.seq = 1;
  h.flags = f.flags;
  h.length = len;
  h.stored_length = static_cast<uint32_t>(f.size);
  return h;
}

TEST(PayloadEncoder, AllZeroBlocksStoreNothing) {
  PayloadEncoder e;
  std::vector<uint8_t> zero(65536, 0);
  StoredForm f = e.Encode(zero.data(), zero.size());
  EXPECT_EQ(f.flags, kFlagZero);
  EXPECT_EQ(f.size, 0u);
  std::vector<uint8_t> out(65536, 0xff);
  ASSERT_TRUE(ExpandPayload(HeaderFor(f, 65536), nullptr, 0, out.data()).ok());
  EXPECT_EQ(out, zero);
}

TEST(PayloadEncoder, CompressibleDataIsStoredCompressedAndExpandsExactly) {
  PayloadEncoder e;
  std::vector<uint8_t> text(65536);
  for (size_t i = 0; i < text.size(); ++i) text[i] = "master target "[i % 14];
  StoredForm f = e.Encode(text.data(), text.size());
  EXPECT_EQ(f.flags, kFlagZstd);
  EXPECT_LT(f.size, text.size() / 10);
  std::vector<uint8_t> out(text.size());
  ASSERT_TRUE(ExpandPayload(HeaderFor(f, 65536), f.data, f.size, out.data()).ok());
  EXPECT_EQ(out, text);
  EXPECT_EQ(e.bytes_in(), 65536u);
  EXPECT_EQ(e.bytes_stored(), f.size);
}

TEST(PayloadEncoder, IncompressibleDataIsStoredRaw) {
  PayloadEncoder e;
  std::vector<uint8_t> rnd(65536);
  std::mt19937 rng(1);
  for (auto& b : rnd) b = static_cast<uint8_t>(rng());
  StoredForm f = e.Encode(rnd.data(), rnd.size());
  EXPECT_EQ(f.flags, 0u);
  EXPECT_EQ(f.data, rnd.data());
  EXPECT_EQ(f.size, rnd.size());
}

TEST(PayloadEncoder, CompressionCanBeTurnedOff) {
  PayloadEncoder e(false);
  std::vector<uint8_t> text(8192, 'a');
  EXPECT_EQ(e.Encode(text.data(), text.size()).flags, 0u);
}

TEST(PayloadEncoder, DamagedCompressedPayloadIsCorruption) {
  PayloadEncoder e;
  std::vector<uint8_t> text(8192, 'a');
  StoredForm f = e.Encode(text.data(), text.size());
  ASSERT_EQ(f.flags, kFlagZstd);
  std::vector<uint8_t> stored(f.data, f.data + f.size);
  RecordHeader h = HeaderFor(f, 8192);
  h.length = 4096;  // header disagrees with the content
  std::vector<uint8_t> out(8192);
  EXPECT_EQ(ExpandPayload(h, stored.data(), stored.size(), out.data()).code(), Errc::kCorruption);
}

}  // namespace
}  // namespace mt::retention
