#include "mt/shim/crc32c.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mt {
namespace {

TEST(Crc32c, StandardCheckValue) {
  // The CRC-32C check value from RFC 3720 / the Rocksoft catalogue.
  EXPECT_EQ(crc32c::Value("123456789", 9), 0xE3069283u);
}

TEST(Crc32c, Rfc3720TestVectors) {
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xff), inc(32);
  for (int i = 0; i < 32; ++i) inc[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(crc32c::Value(zeros.data(), 32), 0x8A9136AAu);
  EXPECT_EQ(crc32c::Value(ones.data(), 32), 0x62A8AB43u);
  EXPECT_EQ(crc32c::Value(inc.data(), 32), 0x46DD794Eu);
}

TEST(Crc32c, ExtendEqualsWhole) {
  std::string s = "hello, master target";
  uint32_t a = crc32c::Value(s.data(), 7);
  EXPECT_EQ(crc32c::Extend(a, s.data() + 7, s.size() - 7), crc32c::Value(s.data(), s.size()));
  EXPECT_EQ(crc32c::Value(nullptr, 0), 0u);
}

}  // namespace
}  // namespace mt
