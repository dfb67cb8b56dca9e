#include "stream/messages.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "stream/block_hash.h"
#include "test_frames.h"

namespace mt::stream {
namespace {

using ::testing::HasSubstr;

proto::Hello MakeHello(uint32_t min, uint32_t max) {
  proto::Hello h;
  h.set_min_version(min);
  h.set_max_version(max);
  h.set_stream_name("vm-0042");
  h.set_sender_id("ps-1");
  return h;
}

TEST(StreamMessages, VersionNegotiationPicksTheHighestCommonVersion) {
  Result<uint32_t> v = NegotiateVersion(MakeHello(1, 1));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 1u);
  EXPECT_EQ(testing::ValueOf(NegotiateVersion(MakeHello(1, 5), 2, 3)), 3u);
  EXPECT_EQ(testing::ValueOf(NegotiateVersion(MakeHello(3, 5), 1, 4)), 4u);
  EXPECT_EQ(testing::ValueOf(NegotiateVersion(MakeHello(1, 2), 2, 7)), 2u);
}

TEST(StreamMessages, NoCommonVersionIsAProtocolError) {
  Result<uint32_t> v = NegotiateVersion(MakeHello(2, 3), 1, 1);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), Errc::kProtocol);
  EXPECT_EQ(v.status().message(), "no common protocol version: sender speaks 2..3, receiver 1..1");
  EXPECT_FALSE(NegotiateVersion(MakeHello(1, 1), 2, 3).ok());
}

TEST(StreamMessages, MalformedHelloIsAProtocolError) {
  EXPECT_EQ(NegotiateVersion(MakeHello(3, 2)).status().message(), "hello: bad version range 3..2");
  EXPECT_EQ(NegotiateVersion(MakeHello(0, 1)).status().code(), Errc::kProtocol);
  proto::Hello h = MakeHello(1, 1);
  h.clear_stream_name();
  EXPECT_THAT(NegotiateVersion(h).status().message(), HasSubstr("stream name must be 1..255"));
  h = MakeHello(1, 1);
  h.set_sender_id("ps\x01");
  EXPECT_THAT(NegotiateVersion(h).status().message(), HasSubstr("sender id must be"));
}

TEST(StreamMessages, ErrorFramesCarryTheErrcName) {
  for (Errc c : {Errc::kProtocol, Errc::kAuth, Errc::kOutOfRange, Errc::kMisaligned,
                 Errc::kCorruption, Errc::kNotFound}) {
    const Status s(c, "what went wrong");
    FrameHeader h = ErrorFrame(s);
    ASSERT_TRUE(h.has_error());
    EXPECT_EQ(h.error().code(), ErrcName(c));
    const Status back = StatusFromError(h.error());
    EXPECT_EQ(back.code(), c);
    EXPECT_EQ(back.message(), "what went wrong");
  }
  EXPECT_EQ(ErrorFrame(Status(Errc::kAuth, "x")).error().code(), "auth");
}

TEST(StreamMessages, UnknownErrorCodeBecomesProtocolError) {
  proto::Error e;
  e.set_code("quota-exceeded");
  e.set_message("too much");
  const Status s = StatusFromError(e);
  EXPECT_EQ(s.code(), Errc::kProtocol);
  EXPECT_EQ(s.message(), "peer error 'quota-exceeded': too much");
}

TEST(StreamMessages, PrintableNames) {
  EXPECT_TRUE(IsPrintableName("a b~", 1, 4));
  EXPECT_FALSE(IsPrintableName("", 1, 4));
  EXPECT_FALSE(IsPrintableName("abcde", 1, 4));
  EXPECT_FALSE(IsPrintableName("a\x7f", 1, 4));
  EXPECT_FALSE(IsPrintableName("\xc3\xa9", 1, 4));  // UTF-8 is not printable ASCII
}

TEST(StreamMessages, HashBlockCountRoundsUp) {
  EXPECT_EQ(HashBlockCount(65536, 65536), 1u);
  EXPECT_EQ(HashBlockCount(65536 + 512, 65536), 2u);
  EXPECT_EQ(HashBlockCount(512, 65536), 1u);
  EXPECT_EQ(HashBlockCount(0, 65536), 0u);
}

TEST(StreamMessages, WritePayloadBytesIsZeroForADiscard) {
  proto::Write w;
  w.set_length(4096);
  EXPECT_EQ(WritePayloadBytes(w), 4096u);
  w.set_flags(proto::WRITE_FLAG_DISCARD | proto::WRITE_FLAG_FUA);
  EXPECT_EQ(WritePayloadBytes(w), 0u);
}

std::string Hex(const uint8_t* p, size_t n) {
  std::string s;
  char b[3];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, "%02x", p[i]);
    s += b;
  }
  return s;
}

TEST(BlockHash, OneSha256PerBlockLastOneShorter) {
  // "abcabca": blocks "abc", "abc", "a" with a block size of 3.
  const std::string data = "abcabca";
  std::vector<uint8_t> out = {0xff};
  ASSERT_TRUE(HashBlocks(reinterpret_cast<const uint8_t*>(data.data()), data.size(), 3, &out).ok());
  ASSERT_EQ(out.size(), 1u + 3 * kBlockHashBytes);
  const std::string abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  EXPECT_EQ(Hex(out.data() + 1, 32), abc);
  EXPECT_EQ(Hex(out.data() + 33, 32), abc);
  EXPECT_EQ(Hex(out.data() + 65, 32),
            "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb");  // SHA-256("a")
}

}  // namespace
}  // namespace mt::stream
