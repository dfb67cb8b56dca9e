// Control-socket framing without sockets: u32 LE length + protobuf body,
// delivered whole, byte by byte, several at once, too large, cut short.
#include "control/framing.h"

#include <gtest/gtest.h>

#include "mt/control.pb.h"

namespace mt::control {
namespace {

proto::ControlRequest PairAddRequest() {
  proto::ControlRequest r;
  auto* a = r.mutable_pair_add();
  a->set_stream("vm1");
  auto* d = a->add_disks();
  d->set_disk(0);
  d->set_target("naa.6000c29a1b2c3d4e");
  return r;
}

TEST(ControlFraming, HeaderIsTheLittleEndianBodyLength) {
  const proto::ControlRequest r = PairAddRequest();
  auto frame = EncodeControlFrame(r);
  ASSERT_TRUE(frame.ok()) << frame.status().ToString();
  const size_t n = r.ByteSizeLong();
  ASSERT_EQ(frame->size(), kFrameHeaderBytes + n);
  EXPECT_EQ(static_cast<unsigned char>((*frame)[0]), n & 0xff);
  EXPECT_EQ(static_cast<unsigned char>((*frame)[1]), (n >> 8) & 0xff);
  EXPECT_EQ((*frame)[2], 0);
  EXPECT_EQ((*frame)[3], 0);
}

TEST(ControlFraming, TheExampleOfDocsFormatsControlMd) {
  proto::ControlRequest r;
  r.mutable_pause()->set_stream("vm1");
  auto frame = EncodeControlFrame(r);
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(*frame, std::string("\x07\x00\x00\x00\x22\x05\x0a\x03vm1", 11));
}

TEST(ControlFraming, RoundTripOfOneRequest) {
  auto frame = EncodeControlFrame(PairAddRequest());
  ASSERT_TRUE(frame.ok());
  ControlFrameDecoder d;
  ASSERT_TRUE(d.Put(frame->data(), frame->size()).ok());
  auto body = d.Next();
  ASSERT_TRUE(body.has_value());
  proto::ControlRequest back;
  ASSERT_TRUE(ParseControlMessage(*body, &back).ok());
  EXPECT_EQ(back.pair_add().stream(), "vm1");
  EXPECT_EQ(back.pair_add().disks(0).target(), "naa.6000c29a1b2c3d4e");
  EXPECT_FALSE(d.Next().has_value());
  EXPECT_TRUE(d.Eof().ok());
}

TEST(ControlFraming, ByteByByteDeliveryCompletesOnTheLastByte) {
  auto frame = EncodeControlFrame(PairAddRequest());
  ASSERT_TRUE(frame.ok());
  ControlFrameDecoder d;
  for (size_t i = 0; i < frame->size(); ++i) {
    EXPECT_EQ(d.BytesNeeded(), i < kFrameHeaderBytes ? kFrameHeaderBytes - i : frame->size() - i);
    EXPECT_FALSE(d.Next().has_value()) << "complete after only " << i << " bytes";
    ASSERT_TRUE(d.Put(frame->data() + i, 1).ok());
  }
  EXPECT_TRUE(d.Next().has_value());
}

TEST(ControlFraming, TwoFramesInOnePutComeOutInOrder) {
  proto::ControlRequest a, b;
  a.mutable_pause()->set_stream("a");
  b.mutable_resume()->set_stream("b");
  std::string bytes = *EncodeControlFrame(a) + *EncodeControlFrame(b);
  ControlFrameDecoder d;
  ASSERT_TRUE(d.Put(bytes.data(), bytes.size()).ok());
  proto::ControlRequest x, y;
  ASSERT_TRUE(ParseControlMessage(*d.Next(), &x).ok());
  ASSERT_TRUE(ParseControlMessage(*d.Next(), &y).ok());
  EXPECT_EQ(x.pause().stream(), "a");
  EXPECT_EQ(y.resume().stream(), "b");
}

TEST(ControlFraming, AnEmptyMessageIsAFrameOfItsOwn) {
  proto::ControlResponse empty;  // a default message serializes to no bytes
  auto frame = EncodeControlFrame(empty);
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(frame->size(), kFrameHeaderBytes);
  ControlFrameDecoder d;
  ASSERT_TRUE(d.Put(frame->data(), frame->size()).ok());
  auto body = d.Next();
  ASSERT_TRUE(body.has_value());
  EXPECT_TRUE(body->empty());
}

TEST(ControlFraming, DeclaredLengthOverTheLimitIsRefusedBeforeTheBody) {
  ControlFrameDecoder d(1024);
  const unsigned char header[] = {0x01, 0x04, 0x00, 0x00};  // 1025
  Status s = d.Put(header, sizeof header);
  EXPECT_EQ(s.code(), Errc::kProtocol);
  EXPECT_NE(s.message().find("1025 bytes"), std::string::npos) << s.message();
  // It stays failed.
  EXPECT_EQ(d.Put("x", 1).code(), Errc::kProtocol);
  EXPECT_FALSE(d.Next().has_value());
}

TEST(ControlFraming, TheDefaultLimitRefusesFourGigabytes) {
  ControlFrameDecoder d;
  const unsigned char header[] = {0xff, 0xff, 0xff, 0xff};
  EXPECT_EQ(d.Put(header, sizeof header).code(), Errc::kProtocol);
}

TEST(ControlFraming, AnOversizedSecondFrameIsCaughtAfterTheFirst) {
  proto::ControlRequest a;
  a.mutable_get_status();
  std::string bytes = *EncodeControlFrame(a);
  bytes += std::string("\xff\xff\xff\x7f", 4);
  ControlFrameDecoder d;
  ASSERT_TRUE(d.Put(bytes.data(), bytes.size()).ok());  // the first frame is fine
  EXPECT_TRUE(d.Next().has_value());
  EXPECT_EQ(d.Eof().code(), Errc::kProtocol);
  EXPECT_EQ(d.Put("", 0).code(), Errc::kProtocol);
}

TEST(ControlFraming, EndOfStreamInsideAFrameSaysHowMuchIsMissing) {
  auto frame = EncodeControlFrame(PairAddRequest());
  ControlFrameDecoder d;
  ASSERT_TRUE(d.Put(frame->data(), frame->size() - 3).ok());
  Status s = d.Eof();
  EXPECT_EQ(s.code(), Errc::kProtocol);
  EXPECT_NE(s.message().find("3 more bytes"), std::string::npos) << s.message();
}

TEST(ControlFraming, EndOfStreamBetweenFramesIsClean) {
  ControlFrameDecoder d;
  EXPECT_TRUE(d.Eof().ok());
}

TEST(ControlFraming, ABodyThatIsNotTheMessageIsAProtocolError) {
  proto::ControlRequest r;
  Status s = ParseControlMessage(std::string("\xff\xff\xff\xff\xff", 5), &r);
  EXPECT_EQ(s.code(), Errc::kProtocol);
  EXPECT_NE(s.message().find("ControlRequest"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace mt::control
