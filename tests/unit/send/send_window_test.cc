// SendWindow (send_window.h): the send window shared by mtsend's workload and
// replay runners, without a connection: resume, resend batching, acks,
// throttle and the room to send.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "send/send_window.h"

namespace mt::send {
namespace {

struct TestItem {
  uint64_t seq = 0;
  bool tag = false;
  uint64_t length = 0;

  bool is_tag() const { return tag; }
  uint64_t charge() const { return tag ? 0 : length; }
  uint64_t write_bytes() const { return length; }
};

using Window = SendWindow<TestItem>;

TestItem Write(uint64_t seq, uint64_t length = 100) { return TestItem{seq, false, length}; }
TestItem Tag(uint64_t seq) { return TestItem{seq, true, 0}; }

stream::Frame Ack(uint64_t durable) {
  stream::Frame f;
  f.header.mutable_ack()->set_durable_seq(durable);
  return f;
}
stream::Frame Throttle(bool on) {
  stream::Frame f;
  f.header.mutable_throttle()->set_on(on);
  return f;
}

// Resumes, writing what is resent as "B1,2" (a write batch) and "T3" (a
// tag); empty batches send nothing and are not written down.
struct Resent {
  std::vector<std::string> calls;

  Status ResumeAt(Window& w, uint64_t r, size_t batch_writes, RunResult* res) {
    return w.Resume(
        r, batch_writes, res,
        [this](const std::vector<const TestItem*>& b) {
          if (b.empty()) return Status::Ok();
          std::string s = "B";
          for (const TestItem* it : b) s += (s.size() > 1 ? "," : "") + std::to_string(it->seq);
          calls.push_back(s);
          return Status::Ok();
        },
        [this](const TestItem& t) {
          calls.push_back("T" + std::to_string(t.seq));
          return Status::Ok();
        });
  }
};

TEST(SendWindow, PushChargesTheWindowAndSinceListsTheNewBatch) {
  Window w("run", 1000);
  w.Push(Write(1, 100));
  const size_t first = w.size();
  EXPECT_EQ(w.Push(Tag(2)).seq, 2u);
  w.Push(Write(3, 50));
  EXPECT_EQ(w.bytes(), 150u);  // a tag charges nothing
  const std::vector<const TestItem*> since = w.Since(first);
  ASSERT_EQ(since.size(), 2u);
  EXPECT_EQ(since[0]->seq, 2u);
  EXPECT_EQ(since[1]->seq, 3u);
}

TEST(SendWindow, ResumePopsTheDurableItemsCountsThemAndResendsTheRest) {
  Window w("run", 1 << 20);
  for (uint64_t s = 11; s <= 15; ++s) w.Push(s == 13 ? Tag(s) : Write(s, 100));
  RunResult res;
  Resent sent;
  ASSERT_TRUE(sent.ResumeAt(w, 13, 64, &res).ok());
  EXPECT_EQ(res.last_seq, 13u);
  EXPECT_EQ(res.writes, 2u);
  EXPECT_EQ(res.tags, 1u);
  EXPECT_EQ(res.bytes, 200u);
  EXPECT_EQ(w.size(), 2u);
  EXPECT_EQ(w.bytes(), 200u);
  EXPECT_EQ(sent.calls, (std::vector<std::string>{"B14,15"}));
}

TEST(SendWindow, ResumeRejectsAGapWithTheRunsName) {
  for (const std::string what : {"run", "replay"}) {
    Window w(what, 1 << 20);
    w.Push(Write(7));
    w.Push(Write(8));
    RunResult res;
    Resent sent;
    const Status s = sent.ResumeAt(w, 5, 64, &res);
    EXPECT_EQ(s.code(), Errc::kProtocol);
    EXPECT_EQ(s.message(), "the receiver resumes after seq 5 but this " + what +
                               "'s unacknowledged items start at 7");
    EXPECT_TRUE(sent.calls.empty());
    EXPECT_EQ(w.size(), 2u);
    EXPECT_EQ(res.writes, 0u);
  }
}

TEST(SendWindow, ResumeOfAnEmptyWindowSendsNothing) {
  Window w("run", 1 << 20);
  RunResult res;
  Resent sent;
  ASSERT_TRUE(sent.ResumeAt(w, 42, 64, &res).ok());
  EXPECT_TRUE(sent.calls.empty());
  EXPECT_EQ(res.last_seq, 0u);
}

TEST(SendWindow, ResendKeepsTheOrderBatchesWritesAndSendsATagAlone) {
  Window w("run", 1 << 20);
  for (uint64_t s = 1; s <= 9; ++s) w.Push(s == 4 || s == 5 ? Tag(s) : Write(s));
  RunResult res;
  Resent sent;
  ASSERT_TRUE(sent.ResumeAt(w, 0, 2, &res).ok());
  EXPECT_EQ(sent.calls, (std::vector<std::string>{"B1,2", "B3", "T4", "T5", "B6,7", "B8,9"}));
  EXPECT_EQ(w.size(), 9u);  // resent, not durable
}

TEST(SendWindow, ResendStopsAtTheFirstFailure) {
  Window w("run", 1 << 20);
  w.Push(Write(1));
  w.Push(Tag(2));
  w.Push(Write(3));
  RunResult res;
  int batches = 0;
  const Status s = w.Resume(
      0, 64, &res,
      [&](const std::vector<const TestItem*>& b) {
        if (!b.empty()) ++batches;
        return Status::Ok();
      },
      [](const TestItem&) { return Status(Errc::kAborted, "gone"); });
  EXPECT_EQ(s.code(), Errc::kAborted);
  EXPECT_EQ(batches, 1);
}

TEST(SendWindow, AnAckPopsWhatItMakesDurableAndCountsIt) {
  Window w("replay", 1 << 20);
  w.Push(Write(1, 100));
  w.Push(Tag(2));
  w.Push(Write(3, 300));
  w.Push(Write(4, 400));
  RunResult res;
  Result<bool> pump = w.OnFrame(Ack(3), &res);
  ASSERT_TRUE(pump.ok());
  EXPECT_TRUE(*pump);
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(w.bytes(), 400u);
  EXPECT_EQ(res.last_seq, 3u);
  EXPECT_EQ(res.writes, 2u);
  EXPECT_EQ(res.tags, 1u);
  EXPECT_EQ(res.bytes, 400u);
  // An older ack changes nothing; a later one empties the window.
  ASSERT_TRUE(w.OnFrame(Ack(2), &res).ok());
  EXPECT_EQ(w.size(), 1u);
  ASSERT_TRUE(w.OnFrame(Ack(9), &res).ok());
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.bytes(), 0u);
  EXPECT_EQ(res.last_seq, 4u);
  EXPECT_EQ(res.writes, 3u);
  EXPECT_EQ(res.bytes, 800u);
}

TEST(SendWindow, AThrottleStopsSendingAndItsEndRestartsThePump) {
  Window w("run", 1 << 20);
  RunResult res;
  EXPECT_TRUE(w.HasRoom(0));
  Result<bool> pump = w.OnFrame(Throttle(true), &res);
  ASSERT_TRUE(pump.ok());
  EXPECT_FALSE(*pump);
  EXPECT_TRUE(w.throttled());
  EXPECT_FALSE(w.HasRoom(0));
  pump = w.OnFrame(Throttle(false), &res);
  ASSERT_TRUE(pump.ok());
  EXPECT_TRUE(*pump);
  EXPECT_TRUE(w.HasRoom(0));
  // A welcome ends a throttle too.
  ASSERT_TRUE(w.OnFrame(Throttle(true), &res).ok());
  Resent sent;
  ASSERT_TRUE(sent.ResumeAt(w, 0, 64, &res).ok());
  EXPECT_FALSE(w.throttled());
  EXPECT_TRUE(w.HasRoom(0));
}

TEST(SendWindow, RoomEndsAtTheWindowLimitAndAtAFullConnectionQueue) {
  Window w("run", 250);
  EXPECT_TRUE(w.HasRoom(Window::kMaxQueuedBytes - 1));
  EXPECT_FALSE(w.HasRoom(Window::kMaxQueuedBytes));
  EXPECT_EQ(Window::kMaxQueuedBytes, 4u << 20);
  w.Push(Write(1, 200));
  EXPECT_TRUE(w.HasRoom(0));  // under the limit: the next batch may overshoot it
  w.Push(Write(2, 100));
  EXPECT_FALSE(w.HasRoom(0));
  RunResult res;
  ASSERT_TRUE(w.OnFrame(Ack(1), &res).ok());
  EXPECT_TRUE(w.HasRoom(0));
}

TEST(SendWindow, AnyOtherFrameIsAProtocolError) {
  Window w("run", 1 << 20);
  RunResult res;
  stream::Frame f;
  f.header.mutable_tag()->set_seq(1);
  Result<bool> r = w.OnFrame(f, &res);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::kProtocol);
  EXPECT_EQ(r.status().message(), "unexpected tag frame from the receiver");
}

}  // namespace
}  // namespace mt::send
