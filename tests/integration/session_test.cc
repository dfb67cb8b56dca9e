// Session behaviour that needs control over the stream side, with a fake
// StreamPort behind the real TLS receiver: flow control (no reading while
// throttled, throttle on/off frames), ack coalescing, resync hash replies.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "stream/block_hash.h"
#include "data_port_fixture.h"

namespace mt::daemon::test {
namespace {

using stream::Frame;
using stream::FrameHeader;

class FakePort final : public StreamPort {
 public:
  Status Attach(const std::string&) override { return Status::Ok(); }
  void Detach(const std::string&) override {}
  proto::Welcome Welcome(uint32_t v) override {
    proto::Welcome w;
    w.set_protocol_version(v);
    auto* d = w.add_disks();
    d->set_disk(0);
    d->set_size_bytes(1u << 20);
    d->set_logical_block_size(512);
    d->set_resync_state(proto::RESYNC_STATE_PENDING);
    return w;
  }
  Status Ingest(std::shared_ptr<const Frame> f, DurableFn on_durable) override {
    const auto& b = f->header.write_batch();
    const uint64_t seq = b.first_seq() + static_cast<uint64_t>(b.writes_size()) - 1;
    ++ingested;
    std::lock_guard<std::mutex> l(mu);
    if (defer) {
      deferred.emplace_back(std::move(on_durable), seq);
    } else {
      on_durable(Status::Ok(), seq);
    }
    return Status::Ok();
  }
  bool Throttled() const override { return throttled; }
  void WatchThrottle(std::function<void()> wake) override {
    {
      std::lock_guard<std::mutex> l(mu);
      waiter = std::move(wake);
    }
    if (!throttled) Unthrottle();
  }
  // Clears the throttle and wakes the session, as the runtime does.
  void Unthrottle() {
    throttled = false;
    std::function<void()> w;
    {
      std::lock_guard<std::mutex> l(mu);
      w.swap(waiter);
    }
    if (w) w();
  }
  Status HashBlocks(const proto::ResyncHashRequest& r, std::vector<uint8_t>* out) override {
    std::vector<uint8_t> zeros(r.length(), 0);  // the fake disk is all zeroes
    return stream::HashBlocks(zeros.data(), zeros.size(), r.block_size(), out);
  }
  void FireDeferred() {
    std::lock_guard<std::mutex> l(mu);
    for (auto& [fn, seq] : deferred) fn(Status::Ok(), seq);
    deferred.clear();
  }

  std::atomic<bool> throttled{false};
  std::atomic<int> ingested{0};
  std::mutex mu;
  bool defer = false;
  std::vector<std::pair<DurableFn, uint64_t>> deferred;
  std::function<void()> waiter;
};

class SessionTest : public DataPortTest {
 protected:
  void SetUp() override {
    DataPortTest::SetUp();
    port_ = std::make_shared<FakePort>();
    directory_.Set("fake", StreamEntry{port_, key_});
    ASSERT_TRUE(client_.Connect(port()));
    auto w = client_.Authenticate("fake", key_);
    ASSERT_TRUE(w && w->type() == FrameHeader::kWelcome);
  }
  std::shared_ptr<FakePort> port_;
  RawTlsClient client_;
};

TEST_F(SessionTest, ThrottledStreamIsNotReadUntilTheThrottleClears) {
  port_->throttled = true;
  auto [h1, p1] = Batch(1, 1, 4096);
  ASSERT_TRUE(client_.Write(Encode(h1, p1)));
  // The session notices the throttle before or after that frame (the welcome's
  // read may still be pending): either way it says so and stops reading.
  auto t = client_.ReadFrame();
  while (t && t->type() == FrameHeader::kAck) t = client_.ReadFrame();
  ASSERT_TRUE(t);
  ASSERT_EQ(t->type(), FrameHeader::kThrottle);
  EXPECT_TRUE(t->header.throttle().on());
  EXPECT_EQ(t->header.throttle().reason(), "wal-quota");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const int before = port_->ingested;
  EXPECT_LE(before, 1);
  for (uint64_t s = 2; s <= 6; ++s) {
    auto [h, p] = Batch(s, 1, 4096);
    ASSERT_TRUE(client_.Write(Encode(h, p)));  // sits in socket buffers
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(port_->ingested, before) << "read while throttled";

  port_->Unthrottle();
  bool off = false;
  uint64_t acked = 0;
  while (!off || acked < 6) {
    auto f = client_.ReadFrame();
    ASSERT_TRUE(f) << "closed before the throttle cleared and everything was acked";
    if (f->type() == FrameHeader::kThrottle) {
      EXPECT_FALSE(f->header.throttle().on());
      off = true;
    } else if (f->type() == FrameHeader::kAck) {
      acked = f->header.ack().durable_seq();
    }
  }
  EXPECT_EQ(port_->ingested, 6);
}

TEST_F(SessionTest, AcksAreCoalescedToTheNewestDurableSeq) {
  port_->defer = true;
  std::vector<uint8_t> bytes;
  for (uint64_t s = 1; s <= 200; ++s) {
    auto [h, p] = Batch(s, 1, 512);
    auto e = Encode(h, p);
    bytes.insert(bytes.end(), e.begin(), e.end());
  }
  ASSERT_TRUE(client_.Write(bytes));
  ASSERT_TRUE(WaitFor([&] { return port_->ingested == 200; }, std::chrono::seconds(10)));
  port_->FireDeferred();  // 200 durability callbacks at once
  int acks = 0;
  uint64_t last = 0;
  while (last < 200) {
    auto f = client_.ReadFrame();
    ASSERT_TRUE(f);
    if (f->type() != FrameHeader::kAck) continue;
    EXPECT_GT(f->header.ack().durable_seq(), last) << "acks go forward only";
    last = f->header.ack().durable_seq();
    ++acks;
  }
  EXPECT_LT(acks, 200) << "acks were not coalesced";
}

TEST_F(SessionTest, HashRequestIsAnsweredWithOneDigestPerBlock) {
  FrameHeader h;
  auto* r = h.mutable_resync_hash_request();
  r->set_request_id(42);
  r->set_disk(0);
  r->set_offset(0);
  r->set_length((1u << 20) - 4096);  // the last block is shorter
  r->set_block_size(64u << 10);
  ASSERT_TRUE(client_.Write(Encode(h)));
  auto f = client_.ReadFrame();
  ASSERT_TRUE(f);
  ASSERT_EQ(f->type(), FrameHeader::kResyncHashReply);
  EXPECT_EQ(f->header.resync_hash_reply().request_id(), 42u);
  EXPECT_TRUE(stream::CheckHashReply(*r, f->header.resync_hash_reply(), f->payload.size()).ok());
  std::vector<uint8_t> zeros(64u << 10, 0), want;
  ASSERT_TRUE(stream::HashBlocks(zeros.data(), zeros.size(), 64u << 10, &want).ok());
  EXPECT_TRUE(std::equal(want.begin(), want.end(), f->payload.begin()));
}

// The receive budget (ReceiverOptions::max_receiving_bytes) bounds the
// payload bytes being received across sessions: a frame that does not fit
// waits — its session stops reading — until another frame is received.
class SessionBudgetTest : public SessionTest {
 protected:
  SessionBudgetTest() {
    max_payload_bytes_ = 64u << 10;
    max_receiving_bytes_ = 64u << 10;
  }
};

TEST_F(SessionBudgetTest, FrameOverTheReceiveBudgetWaitsUntilAnotherFrameIsReceived) {
  auto [h1, p1] = Batch(1, 16, 4096);  // 64 KiB: the whole budget
  std::vector<uint8_t> first = Encode(h1, p1);
  const size_t half = first.size() - p1.size() / 2;
  ASSERT_TRUE(client_.Write(std::vector<uint8_t>(first.begin(), first.begin() + half)));

  RawTlsClient second;
  ASSERT_TRUE(second.Connect(port()));
  auto w = second.Authenticate("fake", key_);
  ASSERT_TRUE(w && w->type() == FrameHeader::kWelcome);
  auto [h2, p2] = Batch(100, 1, 4096);
  ASSERT_TRUE(second.Write(Encode(h2, p2)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(port_->ingested, 0) << "a frame was received past the budget";

  ASSERT_TRUE(client_.Write(std::vector<uint8_t>(first.begin() + half, first.end())));
  ASSERT_TRUE(client_.WaitAck(16));
  ASSERT_TRUE(second.WaitAck(100)) << "the waiting frame never got the budget";
  EXPECT_EQ(port_->ingested, 2);
}

}  // namespace
}  // namespace mt::daemon::test
