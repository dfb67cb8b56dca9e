// TlsChannel over real TCP on 127.0.0.1 with real TLS (a self-signed
// identity made by config/tls_identity): bulk transfers arrive intact in far
// fewer system calls than TLS records, writes complete in order, an idle
// channel holds no send blocks, a pin mismatch fails the handshake, and a TCP EOF
// is reported as stream_truncated.
#include "net/tls_channel.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "config/tls_identity.h"
#include "mt/shim/file_system.h"
#include "temp_tree.h"

namespace mt::net {
namespace {

namespace asio = boost::asio;
using ErrorCode = boost::system::error_code;
using tcp = asio::ip::tcp;

constexpr size_t kRecord = 16384;

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(gen());
  return v;
}

class TlsChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto id = daemon::LoadOrCreateTlsIdentity(shim::PosixFileSystem(), dir_.path() + "/tls");
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    identity_ = *id;
    ErrorCode ec;
    server_ctx_.use_certificate_chain(asio::buffer(identity_.cert_pem), ec);
    ASSERT_FALSE(ec) << ec.message();
    server_ctx_.use_private_key(asio::buffer(identity_.key_pem), asio::ssl::context::pem, ec);
    ASSERT_FALSE(ec) << ec.message();
  }

  // Connects a client and a server channel and runs both handshakes; the
  // client pins the server's fingerprint unless `pin` says otherwise.
  void Connect(const std::string& pin, ErrorCode* client_ec = nullptr,
               ErrorCode* server_ec = nullptr) {
    tcp::acceptor acceptor(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    server_ = TlsChannel::Create(ioc_, ioc_.get_executor(), server_ctx_);
    client_ = TlsChannel::Create(ioc_, ioc_.get_executor(), client_ctx_);
    if (server_receive_chunk_) server_->SetReceiveChunk(*server_receive_chunk_);
    client_->SetVerify([pin](bool, X509_STORE_CTX* store) {
      const auto fp = daemon::VerifiedLeafFingerprint(store);
      return !fp || *fp == pin;
    });
    bool accepted = false, connected = false;
    acceptor.async_accept(server_->socket(), [&](const ErrorCode& ec) {
      ASSERT_FALSE(ec) << ec.message();
      accepted = true;
    });
    client_->socket().async_connect(acceptor.local_endpoint(), [&](const ErrorCode& ec) {
      ASSERT_FALSE(ec) << ec.message();
      connected = true;
    });
    ASSERT_TRUE(RunUntil([&] { return accepted && connected; }));
    int done = 0;
    ErrorCode cec, sec;
    server_->AsyncHandshake(true, [&](const ErrorCode& ec) {
      sec = ec;
      ++done;
      if (ec) server_->socket().close();  // as the receiver does
    });
    client_->AsyncHandshake(false, [&](const ErrorCode& ec) {
      cec = ec;
      ++done;
      if (ec) client_->socket().close();
    });
    ASSERT_TRUE(RunUntil([&] { return done == 2; }));
    if (client_ec != nullptr) *client_ec = cec;
    if (server_ec != nullptr) *server_ec = sec;
    if (client_ec == nullptr) {
      ASSERT_FALSE(cec) << cec.message();
    }
    if (server_ec == nullptr) {
      ASSERT_FALSE(sec) << sec.message();
    }
  }

  bool RunUntil(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      ioc_.restart();
      ioc_.run_for(std::chrono::milliseconds(10));
    }
    return true;
  }

  // Reads into `got` with record-sized reads, as the receiver does, until
  // `want` bytes arrived or an error; the error (if any) goes to *ec.
  void ReadAll(TlsChannel& ch, size_t want, std::vector<uint8_t>* got, ErrorCode* ec) {
    got->resize(want);
    size_t have = 0;
    bool busy = false;
    std::function<void()> next = [&] {
      busy = true;
      ch.AsyncReadSome(asio::buffer(got->data() + have, std::min(kRecord, want - have)),
                       [&](const ErrorCode& e, size_t n) {
                         busy = false;
                         have += n;
                         if (e) {
                           *ec = e;
                           return;
                         }
                         if (have < want) next();
                       });
    };
    next();
    ASSERT_TRUE(RunUntil([&] { return !busy && (have == want || *ec); }));
    got->resize(have);
  }

  test::TempDir dir_;
  daemon::TlsIdentity identity_;
  asio::io_context ioc_;
  asio::ssl::context server_ctx_{asio::ssl::context::tls_server};
  asio::ssl::context client_ctx_{asio::ssl::context::tls_client};
  std::shared_ptr<TlsChannel> server_, client_;
  std::optional<size_t> server_receive_chunk_;  // set on the server before Connect's handshake
};

TEST_F(TlsChannelTest, BulkWriteArrivesIntactInFewReceivesAndOneSend) {
  Connect(identity_.fingerprint);
  const std::vector<uint8_t> data = RandomBytes(8u << 20, 1);
  const uint64_t receives_before = server_->receive_calls();
  const uint64_t sends_before = client_->sends();
  bool written = false;
  client_->AsyncWrite(asio::buffer(data), [&](const ErrorCode& ec, size_t n) {
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(n, data.size());
    written = true;
  });
  std::vector<uint8_t> got;
  ErrorCode ec;
  ReadAll(*server_, data.size(), &got, &ec);
  EXPECT_FALSE(ec) << ec.message();
  ASSERT_TRUE(RunUntil([&] { return written; }));
  EXPECT_TRUE(got == data);
  // 512 records: asio's ssl::stream made one recv() and one send() of each.
  const uint64_t records = data.size() / kRecord;
  EXPECT_LT(server_->receive_calls() - receives_before, records / 4);
  EXPECT_EQ(client_->sends() - sends_before, 1u);
}

TEST_F(TlsChannelTest, WritesQueuedTogetherCompleteInOrderAndArriveInOrder) {
  Connect(identity_.fingerprint);
  const std::vector<uint8_t> a = RandomBytes(100, 2), b = RandomBytes(3u << 20, 3),
                             c = RandomBytes(70000, 4);
  std::vector<int> order;
  client_->AsyncWrite(asio::buffer(a), [&](const ErrorCode& ec, size_t) {
    EXPECT_FALSE(ec);
    order.push_back(1);
  });
  // Pieces: written one after the other, as one frame's header and slices.
  const std::vector<asio::const_buffer> pieces{asio::buffer(b.data(), 5),
                                               asio::buffer(b.data() + 5, b.size() - 5)};
  client_->AsyncWrite(pieces, [&](const ErrorCode& ec, size_t n) {
    EXPECT_FALSE(ec);
    EXPECT_EQ(n, b.size());
    order.push_back(2);
  });
  client_->AsyncWrite(asio::buffer(c), [&](const ErrorCode& ec, size_t) {
    EXPECT_FALSE(ec);
    order.push_back(3);
  });
  std::vector<uint8_t> want = a;
  want.insert(want.end(), b.begin(), b.end());
  want.insert(want.end(), c.begin(), c.end());
  std::vector<uint8_t> got;
  ErrorCode ec;
  ReadAll(*server_, want.size(), &got, &ec);
  EXPECT_FALSE(ec) << ec.message();
  ASSERT_TRUE(RunUntil([&] { return order.size() == 3; }));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(got == want);
}

TEST_F(TlsChannelTest, AnIdleChannelHoldsNoBuffersOfItsOwn) {
  Connect(identity_.fingerprint);
  const std::vector<uint8_t> data = RandomBytes(2u << 20, 5);
  bool written = false;
  client_->AsyncWrite(asio::buffer(data),
                      [&](const ErrorCode&, size_t) { written = true; });
  EXPECT_GE(client_->buffer_bytes(), data.size());  // the ciphertext, until sent
  std::vector<uint8_t> got;
  ErrorCode ec;
  ReadAll(*server_, data.size(), &got, &ec);
  ASSERT_TRUE(RunUntil([&] { return written; }));
  // The server waits for more; neither side keeps a buffer meanwhile.
  std::vector<uint8_t> more(kRecord);
  bool read_done = false;
  server_->AsyncReadSome(asio::buffer(more), [&](const ErrorCode&, size_t) { read_done = true; });
  ioc_.restart();
  ioc_.run_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(read_done);
  EXPECT_EQ(server_->buffer_bytes(), 0u);
  EXPECT_EQ(client_->buffer_bytes(), 0u);
  server_->socket().close();
  ASSERT_TRUE(RunUntil([&] { return read_done; }));
}

TEST_F(TlsChannelTest, TheReceiveChunkBoundsEachReceive) {
  // One record's worth, set before the handshake as the receiver does for a
  // peer not yet authenticated. (Set after it, the read buffer the handshake
  // grew is used until it is next empty, and one receive may take many records.)
  server_receive_chunk_ = 0;
  Connect(identity_.fingerprint);
  const std::vector<uint8_t> data = RandomBytes(1u << 20, 6);
  const uint64_t before = server_->receive_calls();
  client_->AsyncWrite(asio::buffer(data), [](const ErrorCode&, size_t) {});
  std::vector<uint8_t> got;
  ErrorCode ec;
  ReadAll(*server_, data.size(), &got, &ec);
  EXPECT_TRUE(got == data);
  // Each receive took at most ~one record of ciphertext.
  EXPECT_GE(server_->receive_calls() - before, data.size() / (kRecord + 64));
}

TEST_F(TlsChannelTest, ReadSomeWithNothingReceivedIsWouldBlock) {
  Connect(identity_.fingerprint);
  std::vector<uint8_t> buf(kRecord);
  ErrorCode ec;
  EXPECT_EQ(server_->ReadSome(asio::buffer(buf), ec), 0u);
  EXPECT_EQ(ec, asio::error::would_block) << ec.message();
}

TEST_F(TlsChannelTest, APinMismatchFailsTheHandshakeAndNothingIsSent) {
  ErrorCode client_ec, server_ec;
  Connect(std::string(64, '0'), &client_ec, &server_ec);
  EXPECT_TRUE(client_ec);
  EXPECT_TRUE(server_ec);
  std::vector<uint8_t> buf(kRecord);
  bool done = false;
  ErrorCode read_ec;
  server_->AsyncReadSome(asio::buffer(buf), [&](const ErrorCode& e, size_t n) {
    read_ec = e;
    EXPECT_EQ(n, 0u);
    done = true;
  });
  ASSERT_TRUE(RunUntil([&] { return done; }));
  EXPECT_TRUE(read_ec);
}

TEST_F(TlsChannelTest, ATcpEofWithoutCloseNotifyIsStreamTruncated) {
  Connect(identity_.fingerprint);
  const std::vector<uint8_t> data = RandomBytes(50000, 7);
  bool written = false;
  client_->AsyncWrite(asio::buffer(data), [&](const ErrorCode&, size_t) { written = true; });
  ASSERT_TRUE(RunUntil([&] { return written; }));
  client_->socket().shutdown(tcp::socket::shutdown_both);
  client_->socket().close();
  std::vector<uint8_t> got;
  ErrorCode ec;
  ReadAll(*server_, data.size() + 1, &got, &ec);  // one byte more than sent
  EXPECT_TRUE(got == data);                       // everything before the EOF
  EXPECT_EQ(ec, asio::ssl::error::stream_truncated) << ec.message();
}

}  // namespace
}  // namespace mt::net
