#include "stream/auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "test_frames.h"

namespace mt::stream {
namespace {

using ::testing::HasSubstr;

Nonce Counting(uint8_t from) {
  Nonce n;
  for (size_t i = 0; i < n.size(); ++i) n[i] = static_cast<uint8_t>(from + i);
  return n;
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

TEST(StreamAuth, TranscriptIsServerNonceStreamNameSenderNonce) {
  const std::string t = AuthTranscript(Counting(0), "vm-0042", Counting(32));
  ASSERT_EQ(t.size(), 32u + 7u + 32u);
  EXPECT_EQ(t.substr(32, 7), "vm-0042");
  EXPECT_EQ(static_cast<uint8_t>(t[0]), 0);
  EXPECT_EQ(static_cast<uint8_t>(t[39]), 32);
  EXPECT_EQ(static_cast<uint8_t>(t[70]), 63);
}

// The example in docs/formats/stream.md (also computed with Python's hmac).
TEST(StreamAuth, MacIsHmacSha256OfTheTranscript) {
  Result<Mac> mac = ComputeAuthMac("stream-credential", Counting(0), "vm-0042", Counting(32));
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(Hex(mac->data(), mac->size()),
            "35818a59e17ab41f31b3315138b08ea08d934f2134d997fbfcff20636ce75cfe");
}

TEST(StreamAuth, EmptyKeyIsRefused) {
  EXPECT_EQ(ComputeAuthMac("", Counting(0), "s", Counting(1)).status().code(),
            Errc::kInvalidArgument);
}

TEST(StreamAuth, VerifyAcceptsTheRightKey) {
  proto::AuthChallenge challenge;
  const Nonce server = testing::ValueOf(RandomNonce());
  challenge.set_server_nonce(server.data(), server.size());
  Result<proto::AuthResponse> response = AnswerChallenge("s3cret", challenge, "vm-0042");
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_TRUE(VerifyAuthResponse("s3cret", server, "vm-0042", *response).ok());
}

TEST(StreamAuth, VerifyRejectsAWrongKey) {
  proto::AuthChallenge challenge;
  const Nonce server = testing::ValueOf(RandomNonce());
  challenge.set_server_nonce(server.data(), server.size());
  proto::AuthResponse response = testing::ValueOf(AnswerChallenge("wrong", challenge, "vm-0042"));
  Status s = VerifyAuthResponse("s3cret", server, "vm-0042", response);
  EXPECT_EQ(s.code(), Errc::kAuth);
  EXPECT_EQ(s.message(), "authentication failed for stream 'vm-0042'");
}

TEST(StreamAuth, VerifyRejectsAnswersToAnotherChallengeOrStream) {
  proto::AuthChallenge challenge;
  const Nonce server = Counting(0);
  challenge.set_server_nonce(server.data(), server.size());
  proto::AuthResponse response = testing::ValueOf(AnswerChallenge("s3cret", challenge, "vm-0042"));
  EXPECT_EQ(VerifyAuthResponse("s3cret", Counting(1), "vm-0042", response).code(), Errc::kAuth);
  EXPECT_EQ(VerifyAuthResponse("s3cret", server, "vm-0043", response).code(), Errc::kAuth);
  proto::AuthResponse tampered = response;
  tampered.mutable_sender_nonce()->at(0) ^= 1;
  EXPECT_EQ(VerifyAuthResponse("s3cret", server, "vm-0042", tampered).code(), Errc::kAuth);
  tampered = response;
  tampered.mutable_mac()->at(31) ^= 1;
  EXPECT_EQ(VerifyAuthResponse("s3cret", server, "vm-0042", tampered).code(), Errc::kAuth);
}

TEST(StreamAuth, WrongSizedFieldsAreProtocolErrors) {
  proto::AuthResponse r;
  r.set_sender_nonce(std::string(31, 'n'));
  r.set_mac(std::string(32, 'm'));
  Status s = VerifyAuthResponse("k", Counting(0), "s", r);
  EXPECT_EQ(s.code(), Errc::kProtocol);
  EXPECT_EQ(s.message(), "auth response: sender nonce of 31 bytes, expected 32");
  r.set_sender_nonce(std::string(32, 'n'));
  r.set_mac(std::string(20, 'm'));
  EXPECT_THAT(VerifyAuthResponse("k", Counting(0), "s", r).message(),
              HasSubstr("MAC of 20 bytes, expected 32"));
  proto::AuthChallenge c;
  c.set_server_nonce("short");
  EXPECT_EQ(AnswerChallenge("k", c, "s").status().code(), Errc::kProtocol);
}

TEST(StreamAuth, RandomNoncesDiffer) {
  Result<Nonce> a = RandomNonce(), b = RandomNonce();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

}  // namespace
}  // namespace mt::stream
