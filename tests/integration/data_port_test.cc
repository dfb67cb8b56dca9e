// The data port over real TLS on 127.0.0.1 (receiver + session + runtime):
// handshake, acknowledgements, one sender per stream, and the bad-input
// corpus — every bad input gets its error frame (code = ErrcName, message
// naming the problem) and a close, and leaves WAL, undo and targets
// byte-identical (architecture invariant 7).
#include <gtest/gtest.h>

#include "data_port_fixture.h"

namespace mt::daemon::test {
namespace {

using stream::Frame;
using stream::FrameHeader;

class DataPortCorpusTest : public DataPortTest {
 protected:
  // Connects, authenticates and stores seqs 1..10 on disk 0 (acked and applied).
  std::unique_ptr<RawTlsClient> ConnectWithPrefix() {
    auto c = std::make_unique<RawTlsClient>();
    EXPECT_TRUE(c->Connect(port()));
    auto w = c->Authenticate(kStream, key_);
    EXPECT_TRUE(w && w->type() == FrameHeader::kWelcome);
    if (w && w->type() == FrameHeader::kWelcome && w->header.welcome().resume_seq() == 0) {
      auto [h, p] = Batch(1, 10);
      EXPECT_TRUE(c->Write(Encode(h, p)));
      EXPECT_TRUE(c->WaitAck(10));
    }
    EXPECT_TRUE(runtime_->WaitApplied(10'000).ok());
    return c;
  }

  // Sends `bytes` (then, if asked, half-closes), expects one error frame with
  // `code` whose message contains `text`, a close, and no change on disk.
  void ExpectRejected(RawTlsClient* c, const std::vector<uint8_t>& bytes, const std::string& code,
                      const std::string& text, bool half_close = false) {
    const Snapshot before = Take();
    EXPECT_FALSE(before.files.empty()) << "the prefix should be in the WAL/undo";
    ASSERT_TRUE(c->Write(bytes));
    if (half_close) c->ShutdownWrite();
    const std::vector<Frame> frames = c->ReadUntilClosed();
    ASSERT_EQ(frames.size(), 1u) << "expected exactly the error frame";
    ASSERT_EQ(frames[0].type(), FrameHeader::kError);
    EXPECT_EQ(frames[0].header.error().code(), code) << frames[0].header.error().message();
    EXPECT_NE(frames[0].header.error().message().find(text), std::string::npos)
        << "message: " << frames[0].header.error().message();
    Settle();
    EXPECT_TRUE(Take() == before) << "WAL, undo or a target changed";
    EXPECT_EQ(runtime_->Health().durable_seq, before.files.empty() ? 0u : 10u);
  }
};

TEST_F(DataPortTest, AuthenticatedSenderGetsWelcomeAndAcks) {
  RawTlsClient c;
  ASSERT_TRUE(c.Connect(port()));
  EXPECT_EQ(c.PeerFingerprint(), identity_.fingerprint);
  auto w = c.Authenticate(kStream, key_);
  ASSERT_TRUE(w);
  ASSERT_EQ(w->type(), FrameHeader::kWelcome);
  EXPECT_EQ(w->header.welcome().resume_seq(), 0u);
  ASSERT_EQ(w->header.welcome().disks_size(), 2);
  EXPECT_EQ(w->header.welcome().disks(1).size_bytes(), kDiskSize);
  auto [h, p] = Batch(1, 8, 4096, 1, 1 << 20);
  ASSERT_TRUE(c.Write(Encode(h, p)));
  ASSERT_TRUE(c.WaitAck(8));
  ASSERT_TRUE(runtime_->WaitApplied(10'000).ok());
  std::vector<uint8_t> t = disks_[1]->Contents();
  EXPECT_TRUE(std::equal(p.begin(), p.end(), t.begin() + (1 << 20)));
}

TEST_F(DataPortTest, PingIsAnsweredWithPong) {
  RawTlsClient c;
  ASSERT_TRUE(c.Connect(port()));
  ASSERT_TRUE(c.Authenticate(kStream, key_));
  FrameHeader h;
  h.mutable_ping()->set_id(77);
  ASSERT_TRUE(c.Write(Encode(h)));
  auto f = c.ReadFrame();
  ASSERT_TRUE(f);
  ASSERT_EQ(f->type(), FrameHeader::kPong);
  EXPECT_EQ(f->header.pong().id(), 77u);
}

TEST_F(DataPortTest, ResendOfDurableItemsIsAckedAndNotStoredTwice) {
  {
    RawTlsClient c;
    ASSERT_TRUE(c.Connect(port()));
    ASSERT_TRUE(c.Authenticate(kStream, key_));
    auto [h, p] = Batch(1, 4);
    ASSERT_TRUE(c.Write(Encode(h, p)));
    ASSERT_TRUE(c.WaitAck(4));
  }
  Settle();
  const Snapshot before = Take();
  RawTlsClient c;
  ASSERT_TRUE(c.Connect(port()));
  auto w = c.Authenticate(kStream, key_);
  ASSERT_TRUE(w && w->type() == FrameHeader::kWelcome);
  EXPECT_EQ(w->header.welcome().resume_seq(), 4u);
  auto [h, p] = Batch(1, 4);  // a resend of what is durable
  ASSERT_TRUE(c.Write(Encode(h, p)));
  ASSERT_TRUE(c.WaitAck(4));
  ASSERT_TRUE(runtime_->WaitApplied(10'000).ok());
  EXPECT_TRUE(Take() == before);
  auto [h2, p2] = Batch(5, 2);  // and it goes on from 5
  ASSERT_TRUE(c.Write(Encode(h2, p2)));
  ASSERT_TRUE(c.WaitAck(6));
}

TEST_F(DataPortTest, SecondSenderOfAConnectedStreamIsRefusedUntilTheFirstIsGone) {
  auto first = std::make_unique<RawTlsClient>();
  ASSERT_TRUE(first->Connect(port()));
  auto w = first->Authenticate(kStream, key_);
  ASSERT_TRUE(w && w->type() == FrameHeader::kWelcome);

  RawTlsClient second;
  ASSERT_TRUE(second.Connect(port()));
  auto e = second.Authenticate(kStream, key_);
  ASSERT_TRUE(e);
  ASSERT_EQ(e->type(), FrameHeader::kError);
  EXPECT_EQ(e->header.error().code(), "busy");
  EXPECT_NE(e->header.error().message().find("already connected"), std::string::npos)
      << e->header.error().message();
  EXPECT_FALSE(second.ReadFrame()) << "the refused connection must be closed";

  first.reset();  // the first sender goes away
  ASSERT_TRUE(WaitFor([&] { return receiver_->sessions() == 0; }, std::chrono::seconds(10)));
  RawTlsClient third;
  ASSERT_TRUE(third.Connect(port()));
  auto w3 = third.Authenticate(kStream, key_);
  ASSERT_TRUE(w3);
  EXPECT_EQ(w3->type(), FrameHeader::kWelcome);
}

TEST_F(DataPortTest, WrongCredentialIsRefusedWithAuthError) {
  const Snapshot before = Take();
  RawTlsClient c;
  ASSERT_TRUE(c.Connect(port()));
  auto e = c.Authenticate(kStream, std::string(32, 'x'));
  ASSERT_TRUE(e);
  ASSERT_EQ(e->type(), FrameHeader::kError);
  EXPECT_EQ(e->header.error().code(), "auth");
  EXPECT_EQ(e->header.error().message(), "authentication failed for stream 'vm1'");
  EXPECT_FALSE(c.ReadFrame());
  Settle();
  EXPECT_TRUE(Take() == before);
}

TEST_F(DataPortTest, UnknownStreamLooksLikeAWrongCredential) {
  RawTlsClient c;
  ASSERT_TRUE(c.Connect(port()));
  auto e = c.Authenticate("no-such-vm", key_);
  ASSERT_TRUE(e);
  ASSERT_EQ(e->type(), FrameHeader::kError);
  EXPECT_EQ(e->header.error().code(), "auth");
  EXPECT_EQ(e->header.error().message(), "authentication failed for stream 'no-such-vm'");
}

TEST_F(DataPortTest, NoCommonProtocolVersionIsRefused) {
  RawTlsClient c;
  ASSERT_TRUE(c.Connect(port()));
  FrameHeader h;
  h.mutable_hello()->set_min_version(2);
  h.mutable_hello()->set_max_version(3);
  h.mutable_hello()->set_stream_name(kStream);
  ASSERT_TRUE(c.Write(Encode(h)));
  auto frames = c.ReadUntilClosed();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].header.error().code(), "protocol");
  EXPECT_NE(frames[0].header.error().message().find("no common protocol version"), std::string::npos);
}

TEST_F(DataPortTest, DataBeforeAuthenticationIsAProtocolError) {
  const Snapshot before = Take();
  RawTlsClient c;
  ASSERT_TRUE(c.Connect(port()));
  auto [h, p] = Batch(1, 1);
  ASSERT_TRUE(c.Write(Encode(h, p)));
  auto frames = c.ReadUntilClosed();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].header.error().code(), "protocol");
  // Refused at its header: no payload before authentication.
  EXPECT_NE(frames[0].header.error().message().find("before authentication"), std::string::npos)
      << frames[0].header.error().message();
  Settle();
  EXPECT_TRUE(Take() == before);
}

// Before authentication no frame may carry a payload and headers are small
// (docs/formats/stream.md): the peer gets its error at the header, and the
// receiver reserves nothing for the 64 MiB it claims.
TEST_F(DataPortTest, PayloadBeforeAuthenticationIsRefusedAtTheHeader) {
  const Snapshot before = Take();
  RawTlsClient c;
  ASSERT_TRUE(c.Connect(port()));
  auto [h, p] = Batch(1, 16);  // 64 KiB of it follow the header
  h.set_payload_length(stream::kDefaultMaxPayloadBytes);
  h.set_payload_crc32c(0);
  std::vector<uint8_t> bytes = HeaderOnly(h);
  bytes.insert(bytes.end(), p.begin(), p.end());
  ASSERT_TRUE(c.Write(bytes));
  auto frames = c.ReadUntilClosed();
  ASSERT_EQ(frames.size(), 1u) << "expected the error frame at once";
  EXPECT_EQ(frames[0].header.error().code(), "protocol");
  EXPECT_EQ(frames[0].header.error().message(),
            "write-batch frame payload of 67108864 bytes over the limit of 0 bytes before "
            "authentication");
  Settle();
  EXPECT_TRUE(Take() == before);
}

TEST_F(DataPortTest, LargeHeaderBeforeAuthenticationIsRefused) {
  RawTlsClient c;
  ASSERT_TRUE(c.Connect(port()));
  FrameHeader h;
  h.mutable_hello()->set_min_version(1);
  h.mutable_hello()->set_max_version(1);
  h.mutable_hello()->set_stream_name(kStream);
  h.mutable_hello()->set_sender_id(std::string(8192, 's'));
  ASSERT_TRUE(c.Write(Encode(h)));
  auto frames = c.ReadUntilClosed();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].header.error().code(), "protocol");
  EXPECT_NE(frames[0].header.error().message().find("over the limit of 4096 bytes before "
                                                    "authentication"),
            std::string::npos)
      << frames[0].header.error().message();
}

TEST_F(DataPortTest, PlaintextToTheTlsPortIsClosedAndChangesNothing) {
  const Snapshot before = Take();
  RawTlsClient c;
  ASSERT_TRUE(c.ConnectTcp(port()));
  FrameHeader h;
  h.mutable_hello()->set_min_version(1);
  h.mutable_hello()->set_max_version(1);
  h.mutable_hello()->set_stream_name(kStream);
  ASSERT_TRUE(c.WriteRaw(Encode(h)));
  // The receiver closes (perhaps after a TLS alert record); never a frame.
  std::string got;
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    char buf[4096];
    const ssize_t n = ::recv(c.fd(), buf, sizeof buf, 0);
    if (n <= 0) {
      EXPECT_TRUE(n == 0 || errno == ECONNRESET) << "no close within 5 s: " << strerror(errno);
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  if (!got.empty()) {
    EXPECT_EQ(got[0], '\x15') << "only a TLS alert record may come back";
  }
  Settle();
  EXPECT_TRUE(Take() == before);
}

// --- framing errors (FrameDecoder) ------------------------------------------

TEST_F(DataPortCorpusTest, BadPayloadCrcIsCorruption) {
  auto c = ConnectWithPrefix();
  auto [h, p] = Batch(11, 2);
  std::vector<uint8_t> bytes = Encode(h, p);
  bytes.back() ^= 0x40;  // payload changed after the header's CRC
  ExpectRejected(c.get(), bytes, "corruption", "payload CRC mismatch");
}

TEST_F(DataPortCorpusTest, HeaderOverTheLimitIsRefusedBeforeItArrives) {
  auto c = ConnectWithPrefix();
  std::vector<uint8_t> bytes = {0x81, 0x80, 0x04};  // varint 65537
  bytes.resize(bytes.size() + 100, 0);
  ExpectRejected(c.get(), bytes, "protocol", "over the limit");
}

TEST_F(DataPortCorpusTest, PayloadOverTheLimitIsRefusedBeforeItArrives) {
  auto c = ConnectWithPrefix();
  auto [h, p] = Batch(11, 1);
  h.set_payload_length((64u << 20) + 1);
  h.set_payload_crc32c(0);
  const std::string header = h.SerializeAsString();
  std::vector<uint8_t> bytes = {static_cast<uint8_t>(header.size())};  // < 128
  ASSERT_LT(header.size(), 128u);
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.insert(bytes.end(), p.begin(), p.end());
  ExpectRejected(c.get(), bytes, "protocol", "over the limit");
}

TEST_F(DataPortCorpusTest, TruncatedFrameIsAProtocolError) {
  auto c = ConnectWithPrefix();
  auto [h, p] = Batch(11, 2);
  std::vector<uint8_t> bytes = Encode(h, p);
  bytes.resize(bytes.size() / 2);
  ExpectRejected(c.get(), bytes, "protocol", "truncated", /*half_close=*/true);
}

// --- item errors (StreamValidator inside StreamRuntime::Ingest) ---------------

TEST_F(DataPortCorpusTest, OffsetBeyondTheDiskEndIsOutOfRange) {
  auto c = ConnectWithPrefix();
  auto [h, p] = Batch(11, 1, 4096, 0, kDiskSize);
  ExpectRejected(c.get(), Encode(h, p), "out-of-range", "seq 11");
}

TEST_F(DataPortCorpusTest, WriteCrossingTheDiskEndIsOutOfRange) {
  auto c = ConnectWithPrefix();
  auto [h, p] = Batch(11, 1, 8192, 1, kDiskSize - 4096);
  ExpectRejected(c.get(), Encode(h, p), "out-of-range", "seq 11");
}

TEST_F(DataPortCorpusTest, MisalignedOffsetIsRefused) {
  auto c = ConnectWithPrefix();
  auto [h, p] = Batch(11, 1, 4096, 0, 100);
  ExpectRejected(c.get(), Encode(h, p), "misaligned", "seq 11");
}

TEST_F(DataPortCorpusTest, UnknownDiskIsNotFound) {
  auto c = ConnectWithPrefix();
  auto [h, p] = Batch(11, 1, 4096, 7);
  ExpectRejected(c.get(), Encode(h, p), "not-found", "disk 7");
}

TEST_F(DataPortCorpusTest, WrongWriteCrcIsCorruption) {
  auto c = ConnectWithPrefix();
  auto [h, p] = Batch(11, 3);
  h.mutable_write_batch()->mutable_writes(1)->set_crc32c(0x12345678);
  ExpectRejected(c.get(), Encode(h, p), "corruption", "seq 12");
}

TEST_F(DataPortCorpusTest, SequenceGapIsAProtocolError) {
  auto c = ConnectWithPrefix();
  auto [h, p] = Batch(15, 2);
  ExpectRejected(c.get(), Encode(h, p), "protocol", "15");
}

TEST_F(DataPortCorpusTest, PartlyReplayedSequenceIsAProtocolError) {
  auto c = ConnectWithPrefix();
  auto [h, p] = Batch(9, 4);  // 9, 10 are durable, 11, 12 are new
  ExpectRejected(c.get(), Encode(h, p), "protocol", "9");
}

TEST_F(DataPortCorpusTest, SecondHelloAfterTheWelcomeIsAProtocolError) {
  auto c = ConnectWithPrefix();
  FrameHeader h;
  h.mutable_hello()->set_min_version(1);
  h.mutable_hello()->set_max_version(1);
  h.mutable_hello()->set_stream_name(kStream);
  ExpectRejected(c.get(), Encode(h), "protocol", "unexpected hello frame");
}

TEST_F(DataPortCorpusTest, GoodFramesAfterABadOneAreNotStored) {
  auto c = ConnectWithPrefix();
  auto [bad_h, bad_p] = Batch(11, 1, 4096, 0, 100);
  auto [good_h, good_p] = Batch(11, 4);
  std::vector<uint8_t> bytes = Encode(bad_h, bad_p);
  const std::vector<uint8_t> good = Encode(good_h, good_p);
  bytes.insert(bytes.end(), good.begin(), good.end());
  ExpectRejected(c.get(), bytes, "misaligned", "seq 11");
}

TEST_F(DataPortTest, ResyncHashRequestWithoutAHashSourceIsUnavailable) {
  RawTlsClient c;
  ASSERT_TRUE(c.Connect(port()));
  ASSERT_TRUE(c.Authenticate(kStream, key_));
  FrameHeader h;
  auto* r = h.mutable_resync_hash_request();
  r->set_request_id(1);
  r->set_disk(0);
  r->set_offset(0);
  r->set_length(1 << 20);
  r->set_block_size(64 << 10);
  ASSERT_TRUE(c.Write(Encode(h)));
  auto frames = c.ReadUntilClosed();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].header.error().code(), "unavailable");
}

// --- read timeouts -----------------------------------------------------------
// Every read of the receiver has a deadline: the TLS handshake plus hello and
// auth within handshake_timeout, then each read within idle_timeout. One
// watchdog timer per session enforces it (re-armed lazily, not per read).

class DataPortTimeoutTest : public DataPortTest {
 protected:
  DataPortTimeoutTest() {
    handshake_timeout_ = std::chrono::milliseconds(600);
    idle_timeout_ = std::chrono::milliseconds(800);
  }
  static double SecondsSince(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }
  // The error frame the receiver sent before closing, if any.
  static std::optional<stream::Frame> ErrorFrame(RawTlsClient* c) {
    for (auto& f : c->ReadUntilClosed()) {
      if (f.type() == FrameHeader::kError) return std::move(f);
    }
    return std::nullopt;
  }
};

TEST_F(DataPortTimeoutTest, TcpPeerThatNeverStartsTlsIsClosedAtTheHandshakeTimeout) {
  RawTlsClient c;
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.ConnectTcp(port()));
  char b;
  EXPECT_EQ(::recv(c.fd(), &b, 1, 0), 0) << "closed by the receiver (not our 5 s socket timeout)";
  EXPECT_GE(SecondsSince(t0), 0.55);
  EXPECT_LT(SecondsSince(t0), 4.0);
  Settle();
}

TEST_F(DataPortTimeoutTest, TlsPeerThatNeverSaysHelloIsClosedAtTheHandshakeTimeout) {
  RawTlsClient c;
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.Connect(port()));
  auto e = ErrorFrame(&c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->header.error().message(), "handshake (hello, auth) not finished within 600 ms");
  EXPECT_GE(SecondsSince(t0), 0.55);
  Settle();
}

TEST_F(DataPortTimeoutTest, SilentSenderIsClosedAtTheIdleTimeout) {
  RawTlsClient c;
  ASSERT_TRUE(c.Connect(port()));
  ASSERT_TRUE(c.Authenticate(kStream, key_));
  const auto t0 = std::chrono::steady_clock::now();
  auto e = ErrorFrame(&c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->header.error().message(), "nothing received for 800 ms");
  EXPECT_GE(SecondsSince(t0), 0.75);
  EXPECT_LT(SecondsSince(t0), 4.0);
  Settle();
}

TEST_F(DataPortTimeoutTest, ASenderThatKeepsTalkingOutlivesManyIdleTimeouts) {
  RawTlsClient c;
  ASSERT_TRUE(c.Connect(port()));
  ASSERT_TRUE(c.Authenticate(kStream, key_));
  // 3 s of pings every 150 ms: well past the handshake deadline and several
  // idle timeouts, each read within its own deadline.
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t id = 0;
  while (SecondsSince(t0) < 3.0) {
    FrameHeader h;
    h.mutable_ping()->set_id(++id);
    ASSERT_TRUE(c.Write(Encode(h)));
    auto f = c.ReadFrame();
    ASSERT_TRUE(f) << "closed after " << SecondsSince(t0) << " s";
    ASSERT_EQ(f->type(), FrameHeader::kPong) << f->header.ShortDebugString();
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  // Then silence: the deadline of the last read still holds.
  const auto t1 = std::chrono::steady_clock::now();
  auto e = ErrorFrame(&c);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->header.error().message(), "nothing received for 800 ms");
  EXPECT_GE(SecondsSince(t1), 0.6);
  Settle();
}

}  // namespace
}  // namespace mt::daemon::test
