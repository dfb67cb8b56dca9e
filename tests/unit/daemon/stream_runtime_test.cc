// StreamRuntime in-process: frames in, acknowledgements out, targets and every
// point checked against the reference model; restart resumes exactly.
#include "daemon/stream_runtime.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "../apply/apply_model.h"
#include "stream/frame_codec.h"
#include "stream/block_hash.h"
#include "stream/journal_mapping.h"
#include "mt/shim/crc32c.h"
#include "mt/shim/fault_injection.h"
#include "mt/shim/mem_file_system.h"

namespace mt::daemon {
namespace {

using apply::test::Model;
using apply::test::Op;

// Builds one stream frame from a workload op (a one-write batch or a tag).
std::shared_ptr<stream::Frame> FrameOf(const std::vector<Op>& ops, size_t from, size_t to) {
  auto f = std::make_shared<stream::Frame>();
  if (ops[from].h.type == retention::RecordType::kTag) {
    *f->header.mutable_tag() =
        stream::TagFromRecord(ops[from].h, [&] {
          retention::TagPayload t;
          EXPECT_TRUE(retention::DecodeTag(ops[from].data.data(), ops[from].data.size(), &t).ok());
          return t;
        }());
    return f;
  }
  auto* b = f->header.mutable_write_batch();
  b->set_first_seq(ops[from].h.seq);
  for (size_t i = from; i < to; ++i) {
    proto::Write w = stream::WriteFromRecord(ops[i].h);
    if (!ops[i].data.empty())
      w.set_crc32c(crc32c::Value(ops[i].data.data(), ops[i].data.size()));
    *b->add_writes() = w;
    f->payload.insert(f->payload.end(), ops[i].data.begin(), ops[i].data.end());
  }
  f->header.set_payload_length(f->payload.size());
  f->header.set_payload_crc32c(crc32c::Value(f->payload.data(), f->payload.size()));
  return f;
}

class StreamRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = ::testing::TempDir() + "mt-rt-XXXXXX";
    ASSERT_NE(mkdtemp(t.data()), nullptr);
    tmp_ = t;
    spec_.disks = 2;
    spec_.disk_size = 128 << 10;
    spec_.ops = 150;
    for (size_t d = 0; d < spec_.disks; ++d)
      disks_.push_back(std::make_unique<shim::MemBlockDevice>("t" + std::to_string(d), spec_.disk_size));
    OpenStore();
    retention::StreamRow row;
    row.name = "vm1";
    stream_ = store_->catalog().AddStream(row).value();
    for (uint32_t d = 0; d < spec_.disks; ++d) {
      retention::DiskRow dr;
      dr.stream = stream_;
      dr.disk = d;
      dr.target_id = "mem:t" + std::to_string(d);
      dr.size_bytes = spec_.disk_size;
      dr.block_size = 512;
      dr.resync_state = retention::ResyncState::kComplete;
      ASSERT_TRUE(store_->catalog().AddDisk(dr).ok());
    }
  }
  void TearDown() override {
    rt_.reset();
    store_.reset();
    std::system(("rm -rf " + tmp_).c_str());
  }
  // The store on fs_, or on `fs` (a wrapper of it) when given.
  void OpenStore(shim::FileSystem* fs = nullptr) {
    retention::StoreOptions so;
    so.root = "/ret";
    so.catalog_path = tmp_ + "/catalog.db";
    so.segment_bytes = 64 << 10;
    so.max_batch_bytes = 64 << 10;
    so.preallocate = false;
    so.space = space_;
    store_ = std::move(retention::RetentionStore::Open(fs ? *fs : fs_, clock_, so)).value();
  }
  void StartRuntime() {
    std::map<uint32_t, shim::BlockDevice*> m;
    for (uint32_t d = 0; d < disks_.size(); ++d) m[d] = disks_[d].get();
    auto rt = StreamRuntime::Start(*store_, clock_, stream_, m, runtime_options_);
    ASSERT_TRUE(rt.ok()) << rt.status().ToString();
    rt_ = std::move(rt).value();
  }
  // Sends ops[from..to) as frames of up to 5 writes; returns the last acked seq.
  uint64_t Send(const std::vector<Op>& ops, size_t from, size_t to) {
    std::atomic<uint64_t> acked{0};
    std::atomic<int> outstanding{0};
    std::promise<void> all;
    size_t i = from;
    while (i < to) {
      size_t j = i + 1;
      if (ops[i].h.type != retention::RecordType::kTag)
        while (j < to && j < i + 5 && ops[j].h.type != retention::RecordType::kTag) ++j;
      ++outstanding;
      Status s = rt_->Ingest(FrameOf(ops, i, j), [&](const Status& st, uint64_t seq) {
        EXPECT_TRUE(st.ok()) << st.ToString();
        acked = std::max<uint64_t>(acked, seq);
        --outstanding;
      });
      EXPECT_TRUE(s.ok()) << "ops " << i << ".." << j << ": " << s.ToString();
      i = j;
    }
    for (int waited = 0; outstanding > 0 && waited < 10000; ++waited) usleep(1000);
    EXPECT_EQ(outstanding, 0) << "acknowledgements missing";
    EXPECT_TRUE(rt_->WaitApplied().ok());
    return acked;
  }
  std::vector<shim::MemBlockDevice*> Mem() {
    std::vector<shim::MemBlockDevice*> v;
    for (auto& d : disks_) v.push_back(d.get());
    return v;
  }

  std::string tmp_;
  shim::MemFileSystem fs_;
  shim::FakeClock clock_;
  apply::test::WorkloadSpec spec_;
  std::vector<std::unique_ptr<shim::MemBlockDevice>> disks_;
  std::unique_ptr<retention::RetentionStore> store_;
  std::unique_ptr<StreamRuntime> rt_;
  uint64_t stream_ = 0;
  retention::SpacePolicy space_;
  RuntimeOptions runtime_options_;
};

TEST_F(StreamRuntimeTest, AcknowledgedFramesReachTheTargetsAndEveryPointIsExact) {
  StartRuntime();
  ASSERT_TRUE(rt_->Attach("test").ok());
  EXPECT_EQ(rt_->Welcome(1).resume_seq(), 0u);
  EXPECT_EQ(rt_->Welcome(1).disks_size(), 2);
  auto ops = apply::test::MakeWorkload(11, spec_);
  EXPECT_EQ(Send(ops, 0, ops.size()), ops.back().h.seq);
  Model model(spec_.disks, spec_.disk_size);
  for (const auto& op : ops) model.Apply(op);
  for (size_t d = 0; d < spec_.disks; ++d) EXPECT_EQ(disks_[d]->Contents(), model.images()[d]);
  auto j = store_->OpenStream(stream_);
  ASSERT_TRUE(j.ok());
  EXPECT_GT(apply::test::CheckEveryPoint(fs_, j->undo->Segments(), Mem(), model, "runtime"), 100u);
  // Tags became recovery points; the checkpoint is the last seq.
  auto points = store_->catalog().ListPoints(stream_);
  ASSERT_TRUE(points.ok());
  EXPECT_EQ(points->size(), ops.size() / 10);
  EXPECT_EQ(store_->catalog().GetCheckpoint(stream_, 0).value()->applied_seq, ops.back().h.seq);
  StreamHealth h = rt_->Health();
  EXPECT_EQ(h.applied_seq, ops.back().h.seq);
  EXPECT_EQ(h.backlog_records, 0u);
  EXPECT_TRUE(h.attached);
}

// Issue 19: one memory budget for every stream's durable, unapplied data.
// With a budget smaller than the workload most frames find it full: they go
// to the applier without their data, which it reads back from the WAL. The
// targets and every recovery point are still exact, and the budget is all
// given back once everything is applied.
TEST_F(StreamRuntimeTest, DataLeftInTheWalPastTheMemoryBudgetIsReadBackAndAppliedExactly) {
  apply::MemoryBudget budget(16 << 10);
  runtime_options_.memory_budget = &budget;
  StartRuntime();
  ASSERT_TRUE(rt_->Attach("test").ok());
  auto ops = apply::test::MakeWorkload(12, spec_);
  EXPECT_EQ(Send(ops, 0, ops.size()), ops.back().h.seq);
  Model model(spec_.disks, spec_.disk_size);
  for (const auto& op : ops) model.Apply(op);
  for (size_t d = 0; d < spec_.disks; ++d) EXPECT_EQ(disks_[d]->Contents(), model.images()[d]);
  EXPECT_GT(budget.left_in_wal_bytes(), 64u << 10) << "the budget never filled: nothing was read back";
  EXPECT_EQ(budget.held(), 0u);
  auto j = store_->OpenStream(stream_);
  ASSERT_TRUE(j.ok());
  EXPECT_GT(apply::test::CheckEveryPoint(fs_, j->undo->Segments(), Mem(), model, "left in WAL"), 100u);
  auto points = store_->catalog().ListPoints(stream_);
  ASSERT_TRUE(points.ok());
  EXPECT_EQ(points->size(), ops.size() / 10) << "tags read back from the WAL became points too";
}

// Issue 19: an idle stream holds no apply buffers. A second after its last
// batch the applier gives back the before-image and bounce buffers it keeps
// between batches and says so (on_drained: the agent then returns free
// memory to the system), once per burst.
TEST_F(StreamRuntimeTest, AnIdleApplierGivesItsBuffersBackOncePerBurst) {
  std::atomic<int> drained{0};
  runtime_options_.on_drained = [&] { drained.fetch_add(1); };
  StartRuntime();
  ASSERT_TRUE(rt_->Attach("test").ok());
  auto ops = apply::test::MakeWorkload(13, spec_);
  Send(ops, 0, ops.size() / 2);
  for (int i = 0; i < 500 && drained.load() == 0; ++i) usleep(10000);
  EXPECT_EQ(drained.load(), 1) << "no release a second after the burst";
  usleep(1500 * 1000);
  EXPECT_EQ(drained.load(), 1) << "an idle applier released again without a new burst";
  Send(ops, ops.size() / 2, ops.size());
  for (int i = 0; i < 500 && drained.load() == 1; ++i) usleep(10000);
  EXPECT_EQ(drained.load(), 2);
  Model model(spec_.disks, spec_.disk_size);
  for (const auto& op : ops) model.Apply(op);
  for (size_t d = 0; d < spec_.disks; ++d) EXPECT_EQ(disks_[d]->Contents(), model.images()[d]);
}

// Liveness for the systemd watchdog: an applier waiting for work is idle by
// design (0), a hung one (the test hook stops it in its second batch) shows
// how long it has been busy, and stopping the runtime still works.
TEST_F(StreamRuntimeTest, AWaitingApplierIsIdleAndAHungOneShowsHowLongItHasBeenBusy) {
  runtime_options_.test_stall_after_batches = 1;
  StartRuntime();
  EXPECT_EQ(rt_->ApplyBusyForNs(), 0);
  EXPECT_EQ(rt_->WalCommitBusyForNs(), 0);
  ASSERT_TRUE(rt_->Attach("test").ok());
  auto ops = apply::test::MakeWorkload(11, spec_);
  auto ingest = [&](size_t i) {
    std::promise<Status> acked;
    ASSERT_TRUE(rt_->Ingest(FrameOf(ops, i, i + 1), [&](const Status& s, uint64_t) {
                      acked.set_value(s);
                    }).ok());
    EXPECT_TRUE(acked.get_future().get().ok());
  };
  ingest(0);
  ASSERT_TRUE(rt_->WaitApplied().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(rt_->ApplyBusyForNs(), 0) << "waiting for work is not busy";
  EXPECT_EQ(rt_->WalCommitBusyForNs(), 0);
  ingest(1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (rt_->ApplyBusyForNs() < 200'000'000 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_GE(rt_->ApplyBusyForNs(), 200'000'000) << "the hung applier is not seen as busy";
  EXPECT_FALSE(rt_->WaitApplied(100).ok());
  EXPECT_TRUE(rt_->Stop().ok());
}

// A discard of a whole disk, larger than the WAL quota and than a piece of
// the applier: one small WAL record, acknowledged, applied in pieces; the
// targets and every point are exact, the quota releases once it is applied.
TEST_F(StreamRuntimeTest, DiscardLargerThanTheWalQuotaIsAckedAppliedAndEveryPointIsExact) {
  runtime_options_.wal_quota_bytes = 32 << 10;
  runtime_options_.applier.discard_piece_bytes = 16 << 10;
  StartRuntime();
  ASSERT_TRUE(rt_->Attach("test").ok());
  spec_.ops = 40;
  auto ops = apply::test::MakeWorkload(5, spec_);
  for (uint64_t k : {12u, 27u}) {  // whole-disk discards (seq 13 and 28), on either disk
    Op& d = ops[k];
    ASSERT_EQ(d.h.type, retention::RecordType::kWrite);
    d.h.offset = 0;
    d.h.length = spec_.disk_size;  // 128 KiB: 4 x the quota, 8 pieces
    d.h.flags = retention::kFlagDiscard | retention::kFlagZero;
    d.h.stored_length = 0;
    d.data.clear();
  }
  EXPECT_EQ(Send(ops, 0, ops.size()), ops.back().h.seq);
  EXPECT_FALSE(rt_->Throttled());
  Model model(spec_.disks, spec_.disk_size);
  for (const auto& op : ops) model.Apply(op);
  for (size_t d = 0; d < spec_.disks; ++d) EXPECT_EQ(disks_[d]->Contents(), model.images()[d]);
  auto j = store_->OpenStream(stream_);
  ASSERT_TRUE(j.ok());
  size_t pieces = 0;
  ASSERT_TRUE(retention::ForEachRecord(fs_, j->undo->Segments(), retention::Direction::kForward,
                                       [&](const retention::RecordHeader& h,
                                           const std::vector<uint8_t>&, bool*) {
                                         pieces += h.seq == 13 ? 1 : 0;
                                         return Status::Ok();
                                       })
                  .ok());
  EXPECT_EQ(pieces, 8u);
  EXPECT_GT(apply::test::CheckEveryPoint(fs_, j->undo->Segments(), Mem(), model, "discards"), 30u);
  EXPECT_EQ(rt_->Health().applied_seq, ops.back().h.seq);
}

TEST_F(StreamRuntimeTest, ASecondSenderIsRefusedUntilTheFirstDetaches) {
  StartRuntime();
  ASSERT_TRUE(rt_->Attach("a").ok());
  Status s = rt_->Attach("b");
  EXPECT_EQ(s.code(), Errc::kBusy);
  EXPECT_NE(s.message().find("already connected"), std::string::npos);
  rt_->Detach("a");
  EXPECT_TRUE(rt_->Attach("b").ok());
}

TEST_F(StreamRuntimeTest, BadFrameChangesNothing) {
  StartRuntime();
  ASSERT_TRUE(rt_->Attach("a").ok());
  auto ops = apply::test::MakeWorkload(5, spec_);
  Send(ops, 0, 20);
  const auto before0 = disks_[0]->Contents();
  const auto wal_before = rt_->Health().durable_seq;
  auto bad = FrameOf(ops, 20, 22);
  ASSERT_TRUE(bad->header.has_write_batch());
  bad->header.mutable_write_batch()->mutable_writes(0)->set_crc32c(12345);
  bool called = false;
  Status s = rt_->Ingest(bad, [&](const Status&, uint64_t) { called = true; });
  EXPECT_EQ(s.code(), Errc::kCorruption) << s.ToString();
  EXPECT_FALSE(called);
  EXPECT_EQ(rt_->Health().durable_seq, wal_before);
  EXPECT_EQ(disks_[0]->Contents(), before0);
}

TEST_F(StreamRuntimeTest, RestartResumesAfterTheLastAcknowledgedSeqAndSkipsResends) {
  auto ops = apply::test::MakeWorkload(21, spec_);
  StartRuntime();
  ASSERT_TRUE(rt_->Attach("a").ok());
  const uint64_t acked = Send(ops, 0, 80);
  ASSERT_TRUE(rt_->Stop().ok());
  rt_.reset();
  store_.reset();
  OpenStore();
  StartRuntime();
  ASSERT_TRUE(rt_->Attach("a2").ok());
  EXPECT_EQ(rt_->Welcome(1).resume_seq(), acked);
  // A resend of durable items is acknowledged without being stored again.
  uint64_t resend_ack = 0;
  ASSERT_TRUE(rt_->Ingest(FrameOf(ops, 70, 72), [&](const Status& s, uint64_t seq) {
    EXPECT_TRUE(s.ok());
    resend_ack = seq;
  }).ok());
  EXPECT_EQ(resend_ack, acked);
  Send(ops, static_cast<size_t>(acked), ops.size());
  Model model(spec_.disks, spec_.disk_size);
  for (const auto& op : ops) model.Apply(op);
  for (size_t d = 0; d < spec_.disks; ++d) EXPECT_EQ(disks_[d]->Contents(), model.images()[d]);
  auto j = store_->OpenStream(stream_);
  apply::test::CheckEveryPoint(fs_, j->undo->Segments(), Mem(), model, "restart");
}

TEST_F(StreamRuntimeTest, TargetFailureFailsTheStreamButKeepsAcknowledgedData) {
  shim::FaultController fc;
  auto failing = std::make_unique<shim::FaultInjectingBlockDevice>(
      std::shared_ptr<shim::BlockDevice>(disks_[1].get(), [](shim::BlockDevice*) {}), fc);
  std::map<uint32_t, shim::BlockDevice*> m{{0, disks_[0].get()}, {1, failing.get()}};
  auto rt = StreamRuntime::Start(*store_, clock_, stream_, m, RuntimeOptions{});
  ASSERT_TRUE(rt.ok());
  rt_ = std::move(rt).value();
  ASSERT_TRUE(rt_->Attach("a").ok());
  fc.FailObject("t1");
  auto ops = apply::test::MakeWorkload(3, spec_);
  std::atomic<uint64_t> acked{0};
  for (size_t i = 0; i < 30; ++i) {
    ASSERT_TRUE(rt_->Ingest(FrameOf(ops, i, i + 1), [&](const Status& s, uint64_t seq) {
      if (s.ok()) acked = std::max<uint64_t>(acked, seq);
    }).ok());
  }
  for (int waited = 0; acked < ops[29].h.seq && waited < 10000; ++waited) usleep(1000);
  ASSERT_EQ(acked, ops[29].h.seq);
  Status w = rt_->WaitApplied(5000);
  EXPECT_EQ(w.code(), Errc::kAborted) << w.ToString();
  StreamHealth h = rt_->Health();
  EXPECT_EQ(h.state, "failed");
  EXPECT_NE(h.error.find("t1"), std::string::npos) << h.error;
  EXPECT_EQ(store_->catalog().GetStream(stream_).value()->state, retention::StreamState::kFailed);
  EXPECT_EQ(h.durable_seq, ops[29].h.seq);  // acknowledged data stays in the WAL
  rt_.reset();
}

// A tag name is unique in its stream (docs/formats/stream.md). A tag frame
// reusing the name of a recovery point (or of a tag admitted and not yet
// applied) is refused before anything is stored, with kAlreadyExists naming
// the point it would have shadowed; the first point keeps its name and seq.
TEST_F(StreamRuntimeTest, AReusedTagNameIsRefusedAndTheFirstPointKept) {
  StartRuntime();
  ASSERT_TRUE(rt_->Attach("a").ok());
  auto ops = apply::test::MakeWorkload(13, spec_);
  size_t first_tag = 0;
  while (ops[first_tag].h.type != retention::RecordType::kTag) ++first_tag;
  Send(ops, 0, first_tag + 1);
  retention::TagPayload t;
  ASSERT_TRUE(retention::DecodeTag(ops[first_tag].data.data(), ops[first_tag].data.size(), &t).ok());
  const uint64_t next = ops[first_tag].h.seq + 1;
  // Applied already (Send waits): the catalog has the name.
  auto again = std::make_shared<stream::Frame>();
  proto::Tag* tag = again->header.mutable_tag();
  tag->set_seq(next);
  tag->set_name(t.name);
  tag->set_kind(proto::TAG_KIND_USER);
  tag->set_source_time_ns(ops[first_tag].h.source_time_ns + 1);
  bool called = false;
  Status s = rt_->Ingest(again, [&](const Status&, uint64_t) { called = true; });
  EXPECT_EQ(s.code(), Errc::kAlreadyExists) << s.ToString();
  EXPECT_NE(s.message().find("'" + t.name + "'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("seq " + std::to_string(ops[first_tag].h.seq)), std::string::npos)
      << s.message();
  EXPECT_FALSE(called);
  EXPECT_EQ(rt_->Health().durable_seq, ops[first_tag].h.seq);
  auto p = store_->catalog().FindPoint(stream_, t.name);
  ASSERT_TRUE(p.ok() && p->has_value());
  EXPECT_EQ((*p)->seq, ops[first_tag].h.seq);

  // Two tags of one name back to back: the second is refused whether or not
  // the first was applied yet. (A refusal ends the session: a new one.)
  rt_->Detach("a");
  ASSERT_TRUE(rt_->Attach("b").ok());
  std::atomic<int> acks{0};
  for (uint64_t k = 0; k < 2; ++k) {
    auto f = std::make_shared<stream::Frame>();
    proto::Tag* g = f->header.mutable_tag();
    g->set_seq(next + k);
    g->set_name("twice");
    g->set_kind(proto::TAG_KIND_APP);
    g->set_source_time_ns(ops[first_tag].h.source_time_ns + 2 + static_cast<int64_t>(k));
    Status r = rt_->Ingest(f, [&](const Status&, uint64_t) { ++acks; });
    if (k == 0) {
      EXPECT_TRUE(r.ok()) << r.ToString();
    } else {
      EXPECT_EQ(r.code(), Errc::kAlreadyExists) << r.ToString();
    }
  }
  for (int waited = 0; acks < 1 && waited < 10000; ++waited) usleep(1000);
  EXPECT_EQ(acks, 1);
  ASSERT_TRUE(rt_->WaitApplied().ok());
  auto twice = store_->catalog().FindPoint(stream_, "twice");
  ASSERT_TRUE(twice.ok() && twice->has_value());
  EXPECT_EQ((*twice)->seq, next);
}

}  // namespace
}  // namespace mt::daemon

namespace mt::daemon {
namespace {

// --- retention full (docs/operations.md, "When the retention volume is full") --

class RetentionFullTest : public StreamRuntimeTest {
 protected:
  // A retention volume of `filler` bytes of something else plus what phase 1
  // used plus `room`; low on space below `floor` free bytes.
  void SetUpVolume(retention::FullAction action, uint64_t room, uint64_t floor) {
    rt_.reset();
    store_.reset();
    space_.low_space_percent = 0;
    space_.low_space_min_bytes = floor;
    OpenStore();
    retention::PolicyRow pol;
    pol.stream = stream_;
    pol.full_action = action;
    ASSERT_TRUE(store_->catalog().SetPolicy(pol).ok());
    runtime_options_.space_retry_ms = space_retry_ms_;
    clock_.Set(1'000'000'000LL * 200);  // every point of the workload is inside the window
    auto filler = fs_.OpenFile("/filler", {true, true});
    ASSERT_TRUE(filler.ok());
    std::vector<uint8_t> junk(1 << 20, 0x77);
    for (int i = 0; i < 4; ++i) ASSERT_TRUE((*filler)->Append(junk.data(), junk.size()).ok());
    StartRuntime();
    ASSERT_TRUE(rt_->Attach("a").ok());
    ops_ = apply::test::MakeWorkload(31, spec_);
    Send(ops_, 0, 40);
    auto sp = fs_.Space("/ret");
    ASSERT_TRUE(sp.ok());
    fs_.set_capacity(sp->capacity - sp->available + room);
  }
  // Sends ops[from..) one frame each until one is refused; returns the index
  // of the first one not sent. Every refusal must be "no space". `paced`:
  // each frame is applied (one batch each) before the next is sent, and the
  // sending stops too (held = true) once applying is held for space.
  size_t SendUntilRefused(size_t from, bool paced = false, bool* held = nullptr) {
    std::atomic<int> outstanding{0};
    size_t i = from;
    for (; i < ops_.size(); ++i) {
      ++outstanding;
      Status s = rt_->Ingest(FrameOf(ops_, i, i + 1), [&](const Status& st, uint64_t) {
        EXPECT_TRUE(st.ok()) << st.ToString();
        --outstanding;
      });
      if (!s.ok()) {
        --outstanding;
        EXPECT_EQ(s.code(), Errc::kNoSpace) << s.ToString();
        break;
      }
      if (!paced) continue;
      for (int waited = 0; outstanding > 0 && waited < 10000; ++waited) usleep(1000);
      const Status w = rt_->WaitApplied(5000);
      if (w.code() == Errc::kNoSpace) {
        if (held != nullptr) *held = true;
        return i + 1;
      }
      EXPECT_TRUE(w.ok()) << w.ToString();
    }
    for (int waited = 0; outstanding > 0 && waited < 10000; ++waited) usleep(1000);
    EXPECT_EQ(outstanding, 0);
    return i;
  }
  void ExpectTheModel() {
    Model model(spec_.disks, spec_.disk_size);
    for (const auto& op : ops_) model.Apply(op);
    for (size_t d = 0; d < spec_.disks; ++d) EXPECT_EQ(disks_[d]->Contents(), model.images()[d]);
  }
  // The targets as the sender wrote them, and every point still reachable exact.
  void ExpectEveryPoint(const char* what) {
    ExpectTheModel();
    Model model(spec_.disks, spec_.disk_size);
    for (const auto& op : ops_) model.Apply(op);
    auto j = store_->OpenStream(stream_);
    ASSERT_TRUE(j.ok());
    apply::test::CheckEveryPoint(fs_, j->undo->Segments(), Mem(), model, what);
  }
  std::vector<Op> ops_;
  int64_t space_retry_ms_ = 10;  // RuntimeOptions::space_retry_ms of SetUpVolume
};

// full_action = stop: once the volume is low, nothing more is applied (no
// ENOSPC half-way through a batch, the stream does not fail), what was
// acknowledged stays in the WAL, the alert says why; freeing space lets it
// go on by itself, and the targets end exactly as the sender wrote them.
TEST_F(RetentionFullTest, StopHoldsApplyingCleanlyAndResumesWhenSpaceIsFreed) {
  // A held applier looks again every space_retry_ms; once the WAL it applied
  // is trimmed (its segment sealed by the frames sent below) it may find room
  // and go on, as it should. Looking again only every 300 ms keeps that out
  // of the few milliseconds in which the sender below fills the volume (with
  // 10 ms it raced the sender under ASan).
  space_retry_ms_ = 300;
  SetUpVolume(retention::FullAction::kStop, 384 << 10, 256 << 10);
  bool held = false;
  size_t next = SendUntilRefused(40, /*paced=*/true, &held);
  ASSERT_TRUE(held) << "applying was never held";
  ASSERT_LT(next, ops_.size());
  // The sender goes on (it would be throttled): the WAL takes frames until
  // the volume is full, then refuses them; nothing is applied meanwhile.
  const uint64_t applied_when_held = rt_->Health().applied_seq;
  next = SendUntilRefused(next);
  StreamHealth h = rt_->Health();
  EXPECT_EQ(h.applied_seq, applied_when_held);
  EXPECT_NE(h.space_alert.find("(full action: stop)"), std::string::npos) << h.space_alert;
  EXPECT_NE(h.state, "failed") << h.error;
  EXPECT_LT(h.applied_seq, h.durable_seq);
  EXPECT_TRUE(h.throttled);
  EXPECT_EQ(rt_->WaitApplied(200).code(), Errc::kNoSpace);
  EXPECT_NE(store_->catalog().GetStream(stream_).value()->state, retention::StreamState::kFailed);
  // A restart while the volume is still full: the WAL is replayed up to the
  // held batch, the rest waits in memory; nothing is lost, nothing fails.
  const uint64_t durable = h.durable_seq;
  rt_.reset();
  store_.reset();
  OpenStore();
  StartRuntime();
  h = rt_->Health();
  EXPECT_TRUE(h.space_held) << h.space_alert;
  EXPECT_EQ(h.durable_seq, durable);
  EXPECT_LT(h.applied_seq, durable);
  EXPECT_NE(h.state, "failed") << h.error;
  ASSERT_TRUE(rt_->Attach("a").ok());
  // Space freed: the stream goes on by itself.
  ASSERT_TRUE(fs_.Remove("/filler").ok());
  for (int waited = 0; rt_->Health().space_held && waited < 10000; ++waited) usleep(1000);
  ASSERT_TRUE(rt_->WaitApplied(10'000).ok()) << rt_->Health().space_alert;
  h = rt_->Health();
  EXPECT_EQ(h.applied_seq, h.durable_seq);
  EXPECT_TRUE(h.space_alert.empty()) << h.space_alert;
  EXPECT_FALSE(h.throttled);
  // The sender reconnects and sends the rest.
  rt_->Detach("a");
  ASSERT_TRUE(rt_->Attach("b").ok());
  const uint64_t resume = rt_->Welcome(1).resume_seq();
  EXPECT_GE(resume, ops_[next - 1].h.seq);
  Send(ops_, static_cast<size_t>(resume), ops_.size());
  ExpectEveryPoint("stop");
}

// A long discard is applied in pieces, each captured, written and followed
// by a prune pass: before it is applied it needs room for one piece, not for
// its whole length. A whole-disk discard on a tight volume (room for its
// before-images once the applied WAL is trimmed) is applied, not held. (Here
// the WAL trim frees enough for the old rule too; vm.discard, a 320 MiB
// whole-disk discard on a 512 MiB retention volume, is the case that held
// forever under it.)
TEST_F(RetentionFullTest, AWholeDiskDiscardNeedsRoomForOnePieceNotForItsLength) {
  runtime_options_.applier.discard_piece_bytes = 16 << 10;
  SetUpVolume(retention::FullAction::kStop, 160 << 10, 8 << 10);
  Op discard;
  discard.h.type = retention::RecordType::kWrite;
  discard.h.seq = ops_[39].h.seq + 1;
  discard.h.source_time_ns = ops_[39].h.source_time_ns + 1;
  discard.h.disk = 0;
  discard.h.offset = 0;
  discard.h.length = spec_.disk_size;
  discard.h.flags = retention::kFlagDiscard | retention::kFlagZero;
  const std::vector<Op> one{discard};
  std::promise<Status> acked;
  ASSERT_TRUE(rt_->Ingest(FrameOf(one, 0, 1), [&](const Status& st, uint64_t) {
                    acked.set_value(st);
                  }).ok());
  ASSERT_TRUE(acked.get_future().get().ok());
  const Status applied = rt_->WaitApplied(5000);
  ASSERT_TRUE(applied.ok()) << applied.ToString() << " / " << rt_->Health().space_alert;
  EXPECT_EQ(rt_->Health().applied_seq, discard.h.seq);
  EXPECT_EQ(disks_[0]->Contents(), std::vector<uint8_t>(spec_.disk_size, 0));
}

// full_action = prune: the oldest points are dropped to make room (the alert
// names them) and applying goes on; when even that cannot make room for a
// batch, applying is held rather than failing the stream.
TEST_F(RetentionFullTest, PruneDropsTheOldestPointsToMakeRoomAndKeepsApplying) {
  SetUpVolume(retention::FullAction::kPrune, 384 << 10, 256 << 10);
  auto before = store_->catalog().ListPoints(stream_);
  ASSERT_TRUE(before.ok());
  ASSERT_FALSE(before->empty());
  size_t next = 40;
  for (int session = 0; next < ops_.size(); ++session) {
    ASSERT_LT(session, 50) << "the sender never got through";
    next = SendUntilRefused(next, /*paced=*/true);
    if (next == ops_.size()) break;
    // Refused for space: the apply thread prunes; a new session resumes.
    for (int waited = 0; waited < 2000; ++waited) {
      const StreamHealth h = rt_->Health();
      if (h.applied_seq == h.durable_seq) break;
      usleep(1000);
    }
    rt_->Detach("s" + std::to_string(session));
    rt_->Detach("a");
    ASSERT_TRUE(rt_->Attach("s" + std::to_string(session + 1)).ok());
    next = static_cast<size_t>(rt_->Welcome(1).resume_seq());
  }
  ASSERT_TRUE(rt_->WaitApplied(10'000).ok()) << rt_->Health().space_alert;
  const StreamHealth h = rt_->Health();
  EXPECT_NE(h.state, "failed") << h.error;
  EXPECT_EQ(h.applied_seq, ops_.back().h.seq);
  EXPECT_NE(h.space_alert.find("dropped recovery points older than seq"), std::string::npos)
      << h.space_alert;
  auto points = store_->catalog().ListPoints(stream_);
  ASSERT_TRUE(points.ok());
  ASSERT_FALSE(points->empty());
  EXPECT_GT(points->front().seq, before->front().seq) << "no point was dropped";
  ExpectTheModel();
}

TEST_F(StreamRuntimeTest, HashBlocksReflectEverythingIngestedBeforeTheRequest) {
  StartRuntime();
  ASSERT_TRUE(rt_->Attach("a").ok());
  auto ops = apply::test::MakeWorkload(9, spec_);
  Send(ops, 0, 60);
  proto::ResyncHashRequest req;
  req.set_request_id(1);
  req.set_disk(1);
  req.set_offset(8192);
  req.set_length(64 << 10);
  req.set_block_size(16 << 10);
  std::vector<uint8_t> got;
  ASSERT_TRUE(rt_->HashBlocks(req, &got).ok());
  const auto img = disks_[1]->Contents();
  std::vector<uint8_t> want;
  ASSERT_TRUE(stream::HashBlocks(img.data() + 8192, 64 << 10, 16 << 10, &want).ok());
  EXPECT_EQ(got, want);
  EXPECT_EQ(got.size(), 4u * 32);
  req.set_offset(100);  // not aligned to the disk's 512-byte blocks
  EXPECT_EQ(rt_->HashBlocks(req, &got).code(), Errc::kMisaligned);
}

// The attach race: a sender reconnects while the group commit of its last
// frame is still in flight. The new session must resume after that frame
// (Attach waits for the commit), and a resend of it is acknowledged, not
// admitted again and refused by the WAL.
TEST_F(StreamRuntimeTest, AReconnectWhileTheLastFrameCommitsResumesAfterIt) {
  shim::FaultController fc;
  shim::FaultInjectingFileSystem held(fs_, fc);
  store_.reset();
  OpenStore(&held);
  StartRuntime();
  ASSERT_TRUE(rt_->Attach("a").ok());
  auto ops = apply::test::MakeWorkload(7, spec_);
  size_t n = 0;
  while (n < 3 && ops[n].h.type != retention::RecordType::kTag) ++n;
  ASSERT_GT(n, 0u);
  auto first = FrameOf(ops, 0, n);
  const uint64_t last = ops[n - 1].h.seq;

  fc.HoldSyncs(true);
  std::atomic<uint64_t> acked{0};
  ASSERT_TRUE(rt_->Ingest(first, [&](const Status& st, uint64_t seq) {
    EXPECT_TRUE(st.ok()) << st.ToString();
    acked = seq;
  }).ok());
  for (int i = 0; fc.held_syncs() == 0 && i < 5000; ++i) usleep(1000);
  ASSERT_GT(fc.held_syncs(), 0) << "the WAL commit did not start";
  rt_->Detach("a");  // the connection dropped before the acknowledgement

  Status attached;
  uint64_t resume = 0;
  std::thread reconnect([&] {
    attached = rt_->Attach("b");
    resume = rt_->Welcome(1).resume_seq();  // what the session sends at once
  });
  usleep(50'000);  // the reconnect lands inside the commit
  fc.HoldSyncs(false);
  reconnect.join();
  ASSERT_TRUE(attached.ok()) << attached.ToString();
  EXPECT_EQ(resume, last) << "the new session did not resume after the frame in flight";
  EXPECT_EQ(acked.load(), last);

  // The new sender resends the frame (it never saw the ack): acknowledged as
  // durable, stored once.
  std::atomic<uint64_t> reacked{0};
  Status resend = rt_->Ingest(first, [&](const Status& st, uint64_t seq) {
    EXPECT_TRUE(st.ok()) << st.ToString();
    reacked = seq;
  });
  ASSERT_TRUE(resend.ok()) << resend.ToString();
  EXPECT_EQ(reacked.load(), last);
  EXPECT_EQ(Send(ops, n, ops.size()), ops.back().h.seq);
  Model model(spec_.disks, spec_.disk_size);
  for (const auto& op : ops) model.Apply(op);
  for (size_t d = 0; d < spec_.disks; ++d) EXPECT_EQ(disks_[d]->Contents(), model.images()[d]);
}

// Stopping (pause, vsnap create, shutdown) while the group commit of the last
// frame is in flight: that frame is applied before Stop returns, not left in
// the WAL for the next start (the apply thread used to be told to stop first
// and could exit on an empty queue just before the commit handed it over).
TEST_F(StreamRuntimeTest, StopAppliesAFrameWhoseCommitIsInFlight) {
  shim::FaultController fc;
  shim::FaultInjectingFileSystem held(fs_, fc);
  store_.reset();
  OpenStore(&held);
  StartRuntime();
  ASSERT_TRUE(rt_->Attach("a").ok());
  auto ops = apply::test::MakeWorkload(5, spec_);
  size_t n = 0;
  while (n < 3 && ops[n].h.type != retention::RecordType::kTag) ++n;
  ASSERT_GT(n, 0u);
  fc.HoldSyncs(true);
  ASSERT_TRUE(rt_->Ingest(FrameOf(ops, 0, n), [](const Status&, uint64_t) {}).ok());
  for (int i = 0; fc.held_syncs() == 0 && i < 5000; ++i) usleep(1000);
  ASSERT_GT(fc.held_syncs(), 0) << "the WAL commit did not start";
  rt_->Detach("a");
  const auto start = std::chrono::steady_clock::now();
  std::thread stopper([&] { EXPECT_TRUE(rt_->Stop().ok()); });
  usleep(100'000);  // the stop begins while the commit hangs
  fc.HoldSyncs(false);
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10))
      << "Stop waited for an applier that had already exited";
  Model model(spec_.disks, spec_.disk_size);
  for (size_t i = 0; i < n; ++i) model.Apply(ops[i]);
  for (size_t d = 0; d < spec_.disks; ++d) EXPECT_EQ(disks_[d]->Contents(), model.images()[d]);
}

// Wraps a device and counts a read and a write of overlapping ranges that are
// in flight at the same time (BlockDevice allows concurrent I/O only on
// disjoint ranges). Each I/O lingers a little so that such a pair is seen.
class OverlapWitness : public shim::BlockDevice {
 public:
  explicit OverlapWitness(shim::BlockDevice& inner) : inner_(inner) {}
  const std::string& name() const override { return inner_.name(); }
  uint64_t size() const override { return inner_.size(); }
  uint32_t logical_block_size() const override { return inner_.logical_block_size(); }
  uint32_t physical_block_size() const override { return inner_.physical_block_size(); }
  Status ReadAt(uint64_t off, void* buf, size_t len) override {
    Span span(*this, off, len, false);
    return inner_.ReadAt(off, buf, len);
  }
  Status WriteAt(uint64_t off, const void* buf, size_t len) override {
    Span span(*this, off, len, true);
    return inner_.WriteAt(off, buf, len);
  }
  Status Flush() override { return inner_.Flush(); }
  Status Discard(uint64_t off, uint64_t len) override {
    Span span(*this, off, len, true);
    return inner_.Discard(off, len);
  }
  int overlaps() const { return overlaps_; }
  int reads() const { return reads_; }

 private:
  struct Io { uint64_t begin, end; bool write; };
  struct Span {
    Span(OverlapWitness& w, uint64_t off, uint64_t len, bool write) : w(w) {
      std::lock_guard<std::mutex> l(w.mu_);
      for (const auto& [id, io] : w.in_flight_)
        if ((io.write || write) && io.begin < off + len && off < io.end) ++w.overlaps_;
      if (!write) ++w.reads_;
      id = ++w.next_id_;
      w.in_flight_[id] = {off, off + len, write};
      this->write = write;
    }
    ~Span() {
      usleep(write ? 100 : 2000);  // linger inside the I/O (reads longer: they are few)
      std::lock_guard<std::mutex> l(w.mu_);
      w.in_flight_.erase(id);
    }
    OverlapWitness& w;
    uint64_t id = 0;
    bool write = false;
  };
  shim::BlockDevice& inner_;
  std::mutex mu_;
  std::map<uint64_t, Io> in_flight_;
  uint64_t next_id_ = 0;
  std::atomic<int> overlaps_{0}, reads_{0};
};

TEST_F(StreamRuntimeTest, ResyncHashReadsNeverOverlapATargetWriteInFlight) {
  OverlapWitness witness(*disks_[1]);
  std::map<uint32_t, shim::BlockDevice*> m{{0, disks_[0].get()}, {1, &witness}};
  rt_ = std::move(StreamRuntime::Start(*store_, clock_, stream_, m, runtime_options_)).value();
  ASSERT_TRUE(rt_->Attach("a").ok());
  spec_.ops = 600;
  auto ops = apply::test::MakeWorkload(11, spec_);
  std::atomic<bool> done{false};
  std::atomic<int> hashes{0};
  std::thread hasher([&] {
    proto::ResyncHashRequest req;
    req.set_disk(1);
    req.set_offset(0);
    req.set_length(spec_.disk_size);
    req.set_block_size(4096);
    while (!done) {
      std::vector<uint8_t> got;
      Status s = rt_->HashBlocks(req, &got);
      EXPECT_TRUE(s.ok()) << s.ToString();
      ++hashes;
    }
  });
  // In small rounds, so that hash requests are answered while writes go on.
  for (size_t i = 0; i < ops.size(); i += 10) Send(ops, i, std::min(ops.size(), i + 10));
  done = true;
  hasher.join();
  EXPECT_GT(hashes.load(), 10) << "the hashes did not run alongside the writes";
  EXPECT_EQ(witness.overlaps(), 0)
      << "a resync hash read overlapped a target write in flight";
  Model model(spec_.disks, spec_.disk_size);
  for (const auto& op : ops) model.Apply(op);
  for (size_t d = 0; d < spec_.disks; ++d) EXPECT_EQ(disks_[d]->Contents(), model.images()[d]);
}

}  // namespace
}  // namespace mt::daemon
