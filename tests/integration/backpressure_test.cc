// Back-pressure is a per-stream state, not a blocked network thread: streams
// whose WAL cannot keep up (its syncs held here) are throttled — their
// sessions stop reading — while another stream on the same receiver keeps
// flowing. Real TLS receiver (two network threads), real StreamRuntimes.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "data_port_fixture.h"
#include "mt/shim/fault_injection.h"

namespace mt::daemon::test {
namespace {

using stream::FrameHeader;

// One retention store in its own directory with the given streams (one
// 8 MiB memory target each), their runtimes and directory entries.
struct Stores {
  std::unique_ptr<retention::RetentionStore> store;
  std::vector<std::unique_ptr<shim::MemBlockDevice>> disks;
  std::vector<std::unique_ptr<StreamRuntime>> runtimes;
};

class BackpressureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    creds_ = std::make_unique<CredentialStore>(shim::PosixFileSystem(), dir_.path() + "/creds");
    auto id = LoadOrCreateTlsIdentity(shim::PosixFileSystem(), dir_.path() + "/tls");
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    identity_ = *id;
  }
  void TearDown() override {
    faults_.HoldSyncs(false);
    stop_ = true;
    for (auto& t : pushers_) t.join();
    receiver_.reset();
    for (auto* s : {&slow_, &fast_}) {
      s->runtimes.clear();
      s->store.reset();
    }
  }
  void OpenStore(Stores& s, shim::FileSystem& fs, const std::string& name,
                 const std::vector<std::string>& streams) {
    const std::string root = dir_.path() + "/" + name;
    std::filesystem::create_directories(root);
    retention::StoreOptions so;
    so.root = root;
    so.direct = false;
    so.preallocate = false;
    so.segment_bytes = 4u << 20;
    so.max_batch_bytes = 256u << 10;
    auto store = retention::RetentionStore::Open(fs, shim::SystemClock(), so);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    s.store = std::move(store).value();
    for (const auto& stream : streams) {
      retention::StreamRow row;
      row.name = stream;
      const uint64_t id = s.store->catalog().AddStream(row).value();
      s.disks.push_back(std::make_unique<shim::MemBlockDevice>(stream + "-t0", 8u << 20));
      retention::DiskRow dr;
      dr.stream = id;
      dr.disk = 0;
      dr.target_id = "mem:" + stream;
      dr.size_bytes = 8u << 20;
      dr.block_size = 512;
      dr.resync_state = retention::ResyncState::kComplete;
      ASSERT_TRUE(s.store->catalog().AddDisk(dr).ok());
      RuntimeOptions ro;
      ro.wal_unwritten_limit = 1u << 20;  // a sender's 4 MiB overruns it
      auto rt = StreamRuntime::Start(*s.store, shim::SystemClock(), id,
                                     {{0, s.disks.back().get()}}, ro);
      ASSERT_TRUE(rt.ok()) << rt.status().ToString();
      s.runtimes.push_back(std::move(rt).value());
      auto key = creds_->Create(stream);
      ASSERT_TRUE(key.ok()) << key.status().ToString();
      keys_[stream] = *key;
      directory_.Set(stream, StreamEntry{std::make_shared<RuntimePort<StreamRuntime>>(
                                             *s.runtimes.back()),
                                         *key});
    }
  }
  void StartReceiver() {
    ReceiverOptions ro;
    ro.address = "127.0.0.1";
    ro.port = 0;
    ro.threads = 2;
    auto r = Receiver::Start(identity_, directory_, ro);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    receiver_ = std::move(r).value();
  }

  mt::test::TempDir dir_;
  shim::FaultController faults_;
  shim::FileSystem& posix_ = shim::PosixFileSystem();
  shim::FaultInjectingFileSystem held_{posix_, faults_};
  std::unique_ptr<CredentialStore> creds_;
  std::map<std::string, std::string> keys_;
  TlsIdentity identity_;
  MapStreamDirectory directory_;
  Stores slow_, fast_;
  std::unique_ptr<Receiver> receiver_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> pushers_;
};

// The write batch `frame` (1, 2, ...) of a sender: 16 writes of 4 KiB.
std::pair<stream::FrameHeader, std::vector<uint8_t>> Frame16(uint64_t frame) {
  return Batch(1 + (frame - 1) * 16, 16, 4096, 0, ((frame - 1) % 8) * (1u << 20));
}

TEST_F(BackpressureTest, StreamsWhoseWalCannotKeepUpDoNotSlowAnotherStream) {
  OpenStore(slow_, held_, "slow", {"a1", "a2"});
  OpenStore(fast_, posix_, "fast", {"b"});
  StartReceiver();
  // Every WAL sync of a1 and a2 waits from now on: their group commits hang.
  faults_.HoldSyncs(true);

  // Two senders on the slow streams, as many as the receiver has network
  // threads, each pushing 64 KiB frames for as long as their socket takes them.
  std::vector<std::unique_ptr<RawTlsClient>> slow_clients;
  for (const std::string name : {"a1", "a2"}) {
    slow_clients.push_back(std::make_unique<RawTlsClient>());
    RawTlsClient& c = *slow_clients.back();
    ASSERT_TRUE(c.Connect(receiver_->port()));
    auto w = c.Authenticate(name, keys_[name]);
    ASSERT_TRUE(w && w->type() == FrameHeader::kWelcome);
    pushers_.emplace_back([&c, this] {
      for (uint64_t frame = 1; frame <= 64 && !stop_; ++frame) {
        auto [h, p] = Frame16(frame);
        if (!c.Write(Encode(h, p))) return;  // the socket is full: throttled
      }
    });
  }
  // Both slow streams end up throttled: their WAL is behind.
  ASSERT_TRUE(WaitFor([&] { return slow_.runtimes[0]->Throttled() && slow_.runtimes[1]->Throttled(); },
                      std::chrono::seconds(10)))
      << "the slow streams were never throttled";

  // Meanwhile the fast stream is served at once, frame after frame.
  RawTlsClient b;
  ASSERT_TRUE(b.Connect(receiver_->port()));
  auto w = b.Authenticate("b", keys_["b"]);
  ASSERT_TRUE(w && w->type() == FrameHeader::kWelcome) << "the fast stream could not even connect";
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t frame = 1; frame <= 40; ++frame) {
    auto [h, p] = Frame16(frame);
    ASSERT_TRUE(b.Write(Encode(h, p)));
    ASSERT_TRUE(b.WaitAck(frame * 16)) << "the fast stream stalled at frame " << frame;
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(5)) << "40 frames took "
      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
  EXPECT_FALSE(fast_.runtimes[0]->Throttled());

  // The slow streams flow again once their WAL does: woken, not lost.
  faults_.HoldSyncs(false);
  for (size_t i = 0; i < slow_.runtimes.size(); ++i) {
    StreamRuntime& rt = *slow_.runtimes[i];
    // Every frame its sender pushed (64 of 16 writes) is read and durable:
    // the session was woken when the throttle cleared.
    EXPECT_TRUE(WaitFor([&] { return !rt.Throttled() && rt.Health().durable_seq == 64 * 16; },
                        std::chrono::seconds(10)))
        << rt.name() << " stayed throttled after its WAL caught up: durable seq "
        << rt.Health().durable_seq;
  }
}

}  // namespace
}  // namespace mt::daemon::test
