// Test fixture for the data port over real TLS on 127.0.0.1: a retention
// store in a scratch directory (real files), a StreamRuntime whose targets
// are MemBlockDevices, a credential, a TLS identity and a Receiver on an
// ephemeral port. Plus RawTlsClient, a blocking OpenSSL client that sends
// whatever bytes a test crafts and reads frames back.
#pragma once

#include <arpa/inet.h>
#include <signal.h>
#include <google/protobuf/io/coded_stream.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "stream/auth.h"
#include "config/credential_store.h"
#include "stream/frame_codec.h"
#include "stream/messages.h"
#include "mt/shim/clock.h"
#include "mt/shim/crc32c.h"
#include "mt/shim/file_system.h"
#include "mt/shim/mem_block_device.h"
#include "daemon/receiver.h"
#include "retention/retention_store.h"
#include "daemon/stream_port.h"
#include "daemon/stream_runtime.h"
#include "temp_tree.h"
#include "config/tls_identity.h"

namespace mt::daemon::test {

inline bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

inline std::vector<uint8_t> Encode(const stream::FrameHeader& h,
                                   const std::vector<uint8_t>& payload = {}) {
  std::vector<uint8_t> out;
  Status s = stream::FrameEncoder().Encode(h, payload.data(), payload.size(), &out);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

// The bytes of a frame's length varint and header alone, as the header says
// (payload_length and payload_crc32c as set, nothing checked): for peers that
// claim more than they send.
inline std::vector<uint8_t> HeaderOnly(const stream::FrameHeader& h) {
  const std::string header = h.SerializeAsString();
  std::vector<uint8_t> out(stream::kMaxVarintBytes);
  const uint8_t* end = google::protobuf::io::CodedOutputStream::WriteVarint64ToArray(
      header.size(), out.data());
  out.resize(static_cast<size_t>(end - out.data()));
  out.insert(out.end(), header.begin(), header.end());
  return out;
}

// One write batch: `count` writes of `len` bytes on `disk` from `offset`,
// seqs first.., data a pattern of the seq.
inline std::pair<stream::FrameHeader, std::vector<uint8_t>> Batch(uint64_t first, int count,
                                                                  uint64_t len = 4096,
                                                                  uint32_t disk = 0,
                                                                  uint64_t offset = 0) {
  stream::FrameHeader h;
  std::vector<uint8_t> payload;
  auto* b = h.mutable_write_batch();
  b->set_first_seq(first);
  for (int i = 0; i < count; ++i) {
    std::vector<uint8_t> data(len, static_cast<uint8_t>(first + i));
    for (size_t k = 0; k < len; k += 7) data[k] = static_cast<uint8_t>(k ^ (first + i));
    auto* w = b->add_writes();
    w->set_seq(first + i);
    w->set_disk(disk);
    w->set_offset(offset + i * len);
    w->set_length(len);
    w->set_source_time_ns(1'700'000'000'000'000'000 + static_cast<int64_t>(first + i));
    w->set_crc32c(crc32c::Value(data.data(), data.size()));
    payload.insert(payload.end(), data.begin(), data.end());
  }
  return {h, payload};
}

class RawTlsClient {
 public:
  RawTlsClient() {
    ::signal(SIGPIPE, SIG_IGN);  // OpenSSL writes to the fd with write(2)
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
  }
  ~RawTlsClient() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    SSL_CTX_free(ctx_);
  }

  bool ConnectTcp(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  bool Connect(uint16_t port) {
    if (!ConnectTcp(port)) return false;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    return SSL_connect(ssl_) == 1;
  }
  std::string PeerFingerprint() {
    X509* cert = SSL_get_peer_cert_chain(ssl_) != nullptr
                     ? sk_X509_value(SSL_get_peer_cert_chain(ssl_), 0)
                     : nullptr;
    if (cert == nullptr) return "";
    unsigned char* der = nullptr;
    const int len = i2d_X509(cert, &der);
    std::string fp = DerFingerprint(der, static_cast<size_t>(len));
    OPENSSL_free(der);
    return fp;
  }
  bool Write(const std::vector<uint8_t>& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      const int n = SSL_write(ssl_, bytes.data() + off, static_cast<int>(bytes.size() - off));
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  bool WriteRaw(const std::vector<uint8_t>& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  void ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }

  // The next frame, or nullopt at EOF / error / timeout (5 s).
  std::optional<stream::Frame> ReadFrame() {
    for (;;) {
      stream::Frame f;
      Result<bool> r = dec_.Next(&f);
      if (!r.ok()) {
        ADD_FAILURE() << "client decoder: " << r.status().ToString();
        return std::nullopt;
      }
      if (*r) return f;
      uint8_t buf[65536];
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) {
        closed_ = true;
        return std::nullopt;
      }
      dec_.Put(buf, static_cast<size_t>(n));
    }
  }
  // Frames until the receiver closes; skips acks/pings unless keep_all.
  std::vector<stream::Frame> ReadUntilClosed(bool keep_all = false) {
    std::vector<stream::Frame> v;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < end) {
      auto f = ReadFrame();
      if (!f) break;
      if (keep_all || (f->type() != stream::FrameHeader::kAck &&
                       f->type() != stream::FrameHeader::kPing)) {
        v.push_back(std::move(*f));
      }
    }
    return v;
  }
  // hello -> challenge -> response -> welcome (or the error frame).
  std::optional<stream::Frame> Authenticate(const std::string& stream, const std::string& key) {
    stream::FrameHeader h;
    h.mutable_hello()->set_min_version(1);
    h.mutable_hello()->set_max_version(1);
    h.mutable_hello()->set_stream_name(stream);
    h.mutable_hello()->set_sender_id("test");
    if (!Write(Encode(h))) return std::nullopt;
    auto c = ReadFrame();
    if (!c || c->type() != stream::FrameHeader::kAuthChallenge) return c;
    auto r = stream::AnswerChallenge(key, c->header.auth_challenge(), stream);
    EXPECT_TRUE(r.ok());
    stream::FrameHeader resp;
    *resp.mutable_auth_response() = *r;
    if (!Write(Encode(resp))) return std::nullopt;
    return ReadFrame();
  }
  // Reads until an ack >= seq (true) or anything else ends it.
  bool WaitAck(uint64_t seq) {
    for (;;) {
      auto f = ReadFrame();
      if (!f) return false;
      if (f->type() == stream::FrameHeader::kAck && f->header.ack().durable_seq() >= seq) return true;
      if (f->type() == stream::FrameHeader::kError) {
        ADD_FAILURE() << "error frame: " << f->header.error().code() << ": "
                      << f->header.error().message();
        return false;
      }
    }
  }
  int fd() const { return fd_; }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool closed_ = false;
  stream::FrameDecoder dec_;
};

class DataPortTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kDisks = 2;
  static constexpr uint64_t kDiskSize = 8u << 20;
  const std::string kStream = "vm1";

  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    ret_ = dir_.path() + "/ret";
    std::filesystem::create_directories(ret_);
    retention::StoreOptions so;
    so.root = ret_;
    so.direct = false;
    so.preallocate = false;
    so.segment_bytes = 4u << 20;
    so.max_batch_bytes = 1u << 20;
    auto store = retention::RetentionStore::Open(shim::PosixFileSystem(), shim::SystemClock(), so);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    retention::StreamRow row;
    row.name = kStream;
    stream_id_ = store_->catalog().AddStream(row).value();
    std::map<uint32_t, shim::BlockDevice*> m;
    for (uint32_t d = 0; d < kDisks; ++d) {
      disks_.push_back(std::make_unique<shim::MemBlockDevice>("t" + std::to_string(d), DiskSize()));
      m[d] = disks_.back().get();
      retention::DiskRow dr;
      dr.stream = stream_id_;
      dr.disk = d;
      dr.target_id = "mem:t" + std::to_string(d);
      dr.size_bytes = DiskSize();
      dr.block_size = 512;
      dr.resync_state = ResyncStateOf(d);
      ASSERT_TRUE(store_->catalog().AddDisk(dr).ok());
    }
    auto rt = StreamRuntime::Start(*store_, shim::SystemClock(), stream_id_, m, runtime_options_);
    ASSERT_TRUE(rt.ok()) << rt.status().ToString();
    runtime_ = std::move(rt).value();

    creds_ = std::make_unique<CredentialStore>(shim::PosixFileSystem(), dir_.path() + "/creds");
    auto key = creds_->Create(kStream);
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    key_ = *key;
    directory_.Set(kStream, StreamEntry{std::make_shared<RuntimePort<StreamRuntime>>(*runtime_), key_});

    auto id = LoadOrCreateTlsIdentity(shim::PosixFileSystem(), dir_.path() + "/tls");
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    identity_ = *id;
    ReceiverOptions ro;
    ro.address = "127.0.0.1";
    ro.port = 0;
    ro.session.handshake_timeout = handshake_timeout_;
    ro.session.idle_timeout = idle_timeout_;
    ro.session.close_timeout = std::chrono::seconds(2);
    ro.session.max_payload_bytes = max_payload_bytes_;
    ro.max_receiving_bytes = max_receiving_bytes_;
    ro.workers = workers_;
    auto r = Receiver::Start(identity_, directory_, ro);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    receiver_ = std::move(r).value();
  }

  void TearDown() override {
    receiver_.reset();
    runtime_.reset();
    store_.reset();
  }

  uint16_t port() const { return receiver_->port(); }
  // Size of every disk (a fixture may want larger ones).
  virtual uint64_t DiskSize() const { return kDiskSize; }
  // The catalog resync state of each disk at set-up.
  virtual retention::ResyncState ResyncStateOf(uint32_t disk) const {
    return retention::ResyncState::kComplete;
  }

  // WAL and undo files (every file under <root>/streams) and target contents.
  struct Snapshot {
    std::map<std::string, std::string> files;
    std::vector<std::vector<uint8_t>> targets;
    bool operator==(const Snapshot& o) const { return files == o.files && targets == o.targets; }
  };
  Snapshot Take() {
    Snapshot s;
    const std::string root = ret_ + "/streams";
    if (std::filesystem::exists(root)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
        if (!e.is_regular_file()) continue;
        std::ifstream in(e.path(), std::ios::binary);
        s.files[e.path().string()] =
            std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      }
    }
    for (auto& d : disks_) s.targets.push_back(d->Contents());
    return s;
  }
  // Waits until no session holds the stream and everything durable is applied.
  void Settle() {
    EXPECT_TRUE(WaitFor([&] { return receiver_->sessions() == 0; }, std::chrono::seconds(10)))
        << "a session is still open";
    EXPECT_TRUE(runtime_->WaitApplied(10'000).ok());
  }

  mt::test::TempDir dir_;
  std::string ret_;
  RuntimeOptions runtime_options_;
  std::chrono::milliseconds handshake_timeout_{5000}, idle_timeout_{10000};
  uint64_t max_payload_bytes_ = stream::kDefaultMaxPayloadBytes;
  uint64_t max_receiving_bytes_ = ReceiverOptions().max_receiving_bytes;
  int workers_ = ReceiverOptions().workers;  // the receiver's hashing threads
  std::unique_ptr<retention::RetentionStore> store_;
  uint64_t stream_id_ = 0;
  std::vector<std::unique_ptr<shim::MemBlockDevice>> disks_;
  std::unique_ptr<StreamRuntime> runtime_;
  std::unique_ptr<CredentialStore> creds_;
  std::string key_;
  MapStreamDirectory directory_;
  TlsIdentity identity_;
  std::unique_ptr<Receiver> receiver_;
};

}  // namespace mt::daemon::test
