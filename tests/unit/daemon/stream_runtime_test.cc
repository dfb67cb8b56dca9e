// StreamRuntime in-process: frames in, acknowledgements out, targets and every
// point checked against the reference model; restart resumes exactly.
#include "stream_runtime.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <future>

#include "../apply/apply_model.h"
#include "frame_codec.h"
#include "block_hash.h"
#include "journal_mapping.h"
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
      dr.resync_state = "complete";
      ASSERT_TRUE(store_->catalog().AddDisk(dr).ok());
    }
  }
  void TearDown() override {
    rt_.reset();
    store_.reset();
    std::system(("rm -rf " + tmp_).c_str());
  }
  void OpenStore() {
    retention::StoreOptions so;
    so.root = "/ret";
    so.catalog_path = tmp_ + "/catalog.db";
    so.segment_bytes = 64 << 10;
    so.max_batch_bytes = 64 << 10;
    so.preallocate = false;
    store_ = std::move(retention::RetentionStore::Open(fs_, clock_, so)).value();
  }
  void StartRuntime(const RuntimeOptions& o = RuntimeOptions{}) {
    std::map<uint32_t, shim::BlockDevice*> m;
    for (uint32_t d = 0; d < disks_.size(); ++d) m[d] = disks_[d].get();
    auto rt = StreamRuntime::Start(*store_, clock_, stream_, m, o);
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

// A discard of a whole disk, larger than the WAL quota and than a piece of
// the applier: one small WAL record, acknowledged, applied in pieces; the
// targets and every point are exact, the quota releases once it is applied.
TEST_F(StreamRuntimeTest, DiscardLargerThanTheWalQuotaIsAckedAppliedAndEveryPointIsExact) {
  RuntimeOptions o;
  o.wal_quota_bytes = 32 << 10;
  o.applier.discard_piece_bytes = 16 << 10;
  StartRuntime(o);
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
  EXPECT_EQ(store_->catalog().GetStream(stream_).value()->state, "failed");
  EXPECT_EQ(h.durable_seq, ops[29].h.seq);  // acknowledged data stays in the WAL
  rt_.reset();
}

}  // namespace
}  // namespace mt::daemon

namespace mt::daemon {
namespace {

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

}  // namespace
}  // namespace mt::daemon
