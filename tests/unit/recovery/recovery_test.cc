// Recovery operations against the reference model: every selector, rollback
// and export exact; crashes in the middle of either end exact after restart.
#include "recovery/recovery.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "../apply/apply_model.h"
#include "mt/shim/aligned_buffer.h"
#include "mt/shim/fault_injection.h"
#include "mt/shim/mem_file_system.h"

namespace mt::recovery {
namespace {

using apply::test::Op;
using retention::RecordType;

std::vector<std::vector<uint8_t>> ImagesAt(const std::vector<Op>& ops, uint64_t p,
                                           const apply::test::WorkloadSpec& spec) {
  apply::test::Model m(spec.disks, spec.disk_size);
  for (const auto& op : ops)
    if (op.h.seq <= p) m.Apply(op);
  return m.images();
}

class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = ::testing::TempDir() + "mt-rec-XXXXXX";
    ASSERT_NE(mkdtemp(t.data()), nullptr);
    tmp_ = t;
    catalog_ = std::move(retention::Catalog::Open(tmp_ + "/catalog.db")).value();
    spec_.disks = 2;
    spec_.disk_size = 96 << 10;
    spec_.ops = 120;
    apply::ApplierOptions ao;
    Tune(spec_, ao);
    ops_ = apply::test::MakeWorkload(42, spec_);
    ASSERT_TRUE(fs_.CreateDir("/r").ok());
    retention::StreamRow row;
    row.name = "vm1";
    row.group = "g";
    stream_ = catalog_->AddStream(row).value();
    for (uint32_t d = 0; d < spec_.disks; ++d) {
      retention::DiskRow dr;
      dr.stream = stream_;
      dr.disk = d;
      dr.target_id = "mem:" + std::to_string(d);
      dr.size_bytes = spec_.disk_size;
      dr.resync_state = retention::ResyncState::kComplete;
      ASSERT_TRUE(catalog_->AddDisk(dr).ok());
      targets_.push_back(std::make_shared<shim::MemBlockDevice>("t" + std::to_string(d), spec_.disk_size));
    }
    retention::JournalOptions jo;
    jo.kind = retention::SegmentKind::kUndo;
    jo.stream = stream_;
    jo.dir = "/r/undo";
    jo.segment_bytes = 32 << 10;
    jo.max_batch_bytes = 64 << 10;
    jo.preallocate = false;
    undo_ = std::move(retention::Journal::Open(fs_, shim::SystemClock(), jo, nullptr)).value();
    apply::test::FileCheckpoint cp(fs_, "/r/cp");
    std::map<uint32_t, shim::BlockDevice*> m;
    for (uint32_t d = 0; d < spec_.disks; ++d) m[d] = targets_[d].get();
    apply::Applier a(undo_.get(), m, &cp, 0, ao);
    for (size_t i = 0; i < ops_.size(); i += 7) {
      std::vector<apply::WalRecord> b;
      for (size_t k = i; k < std::min(ops_.size(), i + 7); ++k)
        b.push_back({ops_[k].h, ops_[k].data.empty() ? nullptr : ops_[k].data.data()});
      ASSERT_TRUE(a.Apply(b).ok());
    }
    for (const auto& op : ops_) {
      if (op.h.type != RecordType::kTag) continue;
      retention::TagPayload t;
      ASSERT_TRUE(retention::DecodeTag(op.data.data(), op.data.size(), &t).ok());
      retention::PointRow p;
      p.stream = stream_;
      p.seq = op.h.seq;
      p.time_ns = op.h.source_time_ns;
      p.kind = op.h.seq % 20 == 0 ? retention::TagKind::kApp : retention::TagKind::kUser;
      p.name = t.name;
      p.group_tag_id = "gt-" + std::to_string(op.h.seq);
      ASSERT_TRUE(catalog_->AddPoint(p).ok());
    }
    view_.stream = stream_;
    view_.applied_seq = ops_.back().h.seq;
    view_.undo = undo_->Segments();
  }
  // Lets a derived fixture change the workload and the applier.
  virtual void Tune(apply::test::WorkloadSpec&, apply::ApplierOptions&) {}
  void TearDown() override {
    catalog_.reset();
    std::system(("rm -rf " + tmp_).c_str());
  }
  // Fresh copies of the targets as they are now.
  std::vector<std::shared_ptr<shim::MemBlockDevice>> CopyTargets() {
    std::vector<std::shared_ptr<shim::MemBlockDevice>> v;
    for (size_t d = 0; d < targets_.size(); ++d) {
      auto c = std::make_shared<shim::MemBlockDevice>("c" + std::to_string(d), spec_.disk_size);
      auto img = targets_[d]->Contents();
      AlignedBuffer buf(img.size());
      std::memcpy(buf.data(), img.data(), img.size());
      EXPECT_TRUE(c->WriteAt(0, buf.data(), img.size()).ok());
      EXPECT_TRUE(c->Flush().ok());
      v.push_back(c);
    }
    return v;
  }
  uint64_t Resolve(const std::string& text) {
    auto sel = ParsePointSelector(text);
    EXPECT_TRUE(sel.ok()) << sel.status().ToString();
    auto p = ResolvePoint(*catalog_, fs_, view_, *sel);
    EXPECT_TRUE(p.ok()) << text << ": " << p.status().ToString();
    return p.ok() ? p->seq : UINT64_MAX;
  }

  void CheckRollbacks() {
    for (const std::string sel : {"latest", "latest-app", "t30", "seq:17", "@77.2", "seq:0"}) {
      const uint64_t p = Resolve(sel);
      auto copies = CopyTargets();
      std::map<uint32_t, shim::BlockDevice*> m;
      for (uint32_t d = 0; d < copies.size(); ++d) m[d] = copies[d].get();
      FileProgressStore progress(fs_, "/r/rollback");
      ASSERT_TRUE(Rollback(fs_, view_.undo, m, p, progress, {}, 4096).ok()) << sel;
      auto want = ImagesAt(ops_, p, spec_);
      for (size_t d = 0; d < copies.size(); ++d)
        EXPECT_EQ(copies[d]->Contents(), want[d]) << sel << " disk " << d;
      EXPECT_FALSE(fs_.Exists("/r/rollback"));
    }
  }
  void CheckInterruptedRollback(uint64_t p) {
    const auto want = ImagesAt(ops_, p, spec_);
    int crashes = 0;
    for (uint64_t n = 1;; n += 3) {
      auto copies = CopyTargets();
      shim::FaultController fc;
      shim::FaultInjectingFileSystem ffs(fs_, fc);
      std::vector<std::unique_ptr<shim::BlockDevice>> wrapped;
      std::map<uint32_t, shim::BlockDevice*> m;
      for (uint32_t d = 0; d < copies.size(); ++d) {
        wrapped.push_back(std::make_unique<shim::FaultInjectingBlockDevice>(copies[d], fc));
        m[d] = wrapped.back().get();
      }
      FileProgressStore progress(ffs, "/r/rollback-crash");
      fc.CrashAtNth(n);
      Status s = Rollback(ffs, view_.undo, m, p, progress, {}, 8192);
      if (s.ok()) break;
      ++crashes;
      for (auto& c : copies) c->PowerCut();
      fs_.PowerCut();
      fc.Reset();
      ASSERT_TRUE(Rollback(ffs, view_.undo, m, p, progress, {}, 8192).ok()) << "n=" << n;
      for (size_t d = 0; d < copies.size(); ++d)
        ASSERT_EQ(copies[d]->Contents(), want[d]) << "crash at op " << n << ", disk " << d;
      ASSERT_LT(n, 20000u);
    }
    EXPECT_GT(crashes, 20);
  }
  // Discards longer than 8 KiB (kept in pieces with ApplierOptions of the
  // long-discard fixture).
  size_t LongDiscards() const {
    size_t n = 0;
    for (const auto& op : ops_)
      if ((op.h.flags & retention::kFlagDiscard) != 0 && op.h.length > (8u << 10)) ++n;
    return n;
  }
  // The last discard of a whole disk (12 pieces).
  uint64_t LastWholeDiskDiscard() const {
    uint64_t seq = 0;
    for (const auto& op : ops_)
      if ((op.h.flags & retention::kFlagDiscard) != 0 && op.h.length == spec_.disk_size)
        seq = op.h.seq;
    return seq;
  }

  std::string tmp_;
  shim::MemFileSystem fs_;
  std::unique_ptr<retention::Catalog> catalog_;
  apply::test::WorkloadSpec spec_;
  std::vector<Op> ops_;
  uint64_t stream_ = 0;
  std::vector<std::shared_ptr<shim::MemBlockDevice>> targets_;
  std::unique_ptr<retention::Journal> undo_;
  StreamView view_;
};

TEST(ParsePointSelector, EveryForm) {
  EXPECT_EQ(ParsePointSelector("latest")->kind, PointSelector::Kind::kLatest);
  EXPECT_EQ(ParsePointSelector("latest-app")->kind, PointSelector::Kind::kLatestApp);
  EXPECT_EQ(ParsePointSelector("seq:17")->seq, 17u);
  EXPECT_EQ(ParsePointSelector("@1700000000")->time_ns, 1'700'000'000'000'000'000);
  EXPECT_EQ(ParsePointSelector("2023-11-14T22:13:20Z")->time_ns, 1'700'000'000'000'000'000);
  EXPECT_EQ(ParsePointSelector("2023-11-14T22:13:20.5Z")->time_ns, 1'700'000'000'500'000'000);
  EXPECT_EQ(ParsePointSelector("before-upgrade")->tag, "before-upgrade");
  EXPECT_EQ(ParsePointSelector("seq:x").status().code(), Errc::kInvalidArgument);
  EXPECT_EQ(ParsePointSelector("2023-11-14T22:13:20+01:00").status().code(), Errc::kInvalidArgument);
}

TEST_F(RecoveryTest, SelectorsResolveToTheRightSeq) {
  EXPECT_EQ(Resolve("latest"), ops_.back().h.seq);
  EXPECT_EQ(Resolve("latest-app"), 120u);
  EXPECT_EQ(Resolve("t50"), 50u);
  EXPECT_EQ(Resolve("seq:33"), 33u);
  // Workload times are seq seconds: 45.5 s is after write 45, before 46.
  EXPECT_EQ(Resolve("@45.5"), 45u);
  auto far = ParsePointSelector("seq:100000");
  EXPECT_EQ(ResolvePoint(*catalog_, fs_, view_, *far).status().code(), Errc::kOutOfRange);
  auto missing = ParsePointSelector("no-such-tag");
  EXPECT_EQ(ResolvePoint(*catalog_, fs_, view_, *missing).status().code(), Errc::kNotFound);
}

// A point whose rollback would read an undo segment the scrub found damaged
// is refused when it is resolved — before any target is written — naming the
// segment, the reason and the points that are still fine.
TEST_F(RecoveryTest, APointThatReadsADamagedUndoSegmentIsRefusedWithTheReason) {
  ASSERT_GE(view_.undo.size(), 3u);
  const retention::SegmentInfo& bad = view_.undo[1];
  {
    shim::FileOptions o;
    o.writable = true;
    auto f = std::move(fs_.OpenFile(bad.path, o)).value();
    const uint64_t off = retention::kSegmentHeaderSize + retention::kRecordHeaderSize + 1;
    uint8_t b = 0;
    ASSERT_EQ(f->ReadAt(off, &b, 1).value(), 1u);
    b ^= 1;
    ASSERT_TRUE(f->WriteAt(off, &b, 1).ok());
  }
  retention::Scrubber scrub(fs_, shim::SystemClock(), {}, [&] {
    return std::vector<retention::Scrubber::StreamJournals>{{stream_, "/r", {}, view_.undo}};
  });
  EXPECT_EQ(scrub.RunOnce(), view_.undo.size() - 1);
  auto recorded = retention::ReadDamage(fs_, "/r");
  ASSERT_TRUE(recorded.ok());
  view_.damaged = retention::DamageOf(*recorded, view_.undo);
  ASSERT_EQ(view_.damaged.size(), 1u);

  auto before = ParsePointSelector("seq:" + std::to_string(bad.last_seq - 1));
  auto p = ResolvePoint(*catalog_, fs_, view_, *before);
  ASSERT_EQ(p.status().code(), Errc::kCorruption);
  EXPECT_NE(p.status().message().find("undo segment " + std::to_string(bad.number)),
            std::string::npos)
      << p.status().message();
  EXPECT_NE(p.status().message().find("at or after seq " + std::to_string(bad.last_seq)),
            std::string::npos)
      << p.status().message();
  EXPECT_EQ(Resolve("seq:" + std::to_string(bad.last_seq)), bad.last_seq) << "reads only newer ones";
  EXPECT_EQ(Resolve("latest"), ops_.back().h.seq);
}

TEST_F(RecoveryTest, RollbackToEveryKindOfSelectorEqualsTheModel) {
  CheckRollbacks();
}

TEST_F(RecoveryTest, RollbackInterruptedAtAnyOperationResumesToTheExactImage) {
  CheckInterruptedRollback(25);
}

// Whole-disk discards among the writes, their before-images kept in pieces
// of 8 KiB that straddle undo segments: rollback (also interrupted at any
// operation, so between two pieces of one seq) and export stay exact.
class RecoveryLongDiscardTest : public RecoveryTest {
 protected:
  void Tune(apply::test::WorkloadSpec& spec, apply::ApplierOptions& ao) override {
    spec.discard = 0.1;
    spec.whole_disk_discard = 0.5;
    ao.discard_piece_bytes = 8 << 10;
  }
};

TEST_F(RecoveryLongDiscardTest, RollbackAcrossLargeDiscardsIsByteExact) {
  ASSERT_GE(LongDiscards(), 3u);
  CheckRollbacks();
}

TEST_F(RecoveryLongDiscardTest, RollbackInterruptedBetweenPiecesResumesToTheExactImage) {
  ASSERT_GT(LastWholeDiskDiscard(), 1u);
  CheckInterruptedRollback(LastWholeDiskDiscard() - 1);
}

TEST_F(RecoveryLongDiscardTest, ExportAcrossLargeDiscardsIsByteExact) {
  for (uint64_t p :
       std::vector<uint64_t>{0, LastWholeDiskDiscard() - 1, LastWholeDiskDiscard(), 119}) {
    auto out = std::make_shared<shim::MemBlockDevice>("out", spec_.disk_size);
    ASSERT_TRUE(Export(fs_, view_.undo, *targets_[0], 0, p, *out, {}).ok());
    EXPECT_EQ(out->Contents(), ImagesAt(ops_, p, spec_)[0]) << "point " << p;
  }
}

TEST_F(RecoveryTest, ExportIsExactAndChangesNeitherTargetNorRetention) {
  const auto target_before = targets_[1]->Contents();
  std::vector<std::vector<uint8_t>> retention_before;
  for (const auto& seg : view_.undo) retention_before.push_back(fs_.Contents(seg.path));
  for (uint64_t p : {0ull, 10ull, 64ull, 119ull}) {
    // A 4096-byte-sector output (an image file) under 512-byte records.
    shim::MemBlockDevice out("out.img", spec_.disk_size, 4096, 4096);
    ASSERT_TRUE(Export(fs_, view_.undo, *targets_[1], 1, p, out).ok());
    EXPECT_EQ(out.Contents(), ImagesAt(ops_, p, spec_)[1]) << "point " << p;
  }
  EXPECT_EQ(targets_[1]->Contents(), target_before);
  for (size_t i = 0; i < view_.undo.size(); ++i)
    EXPECT_EQ(fs_.Contents(view_.undo[i].path), retention_before[i]) << view_.undo[i].path;
}

TEST_F(RecoveryTest, ExportCrashThenRestartEndsWithTheExactImage) {
  const auto want = ImagesAt(ops_, 40, spec_)[0];
  for (uint64_t n = 1; n < 400; n += 7) {
    shim::FaultController fc;
    auto out = std::make_shared<shim::MemBlockDevice>("out", spec_.disk_size);
    shim::FaultInjectingBlockDevice fout(out, fc);
    fc.CrashAtNth(n);
    if (Export(fs_, view_.undo, *targets_[0], 0, 40, fout).ok()) break;
    out->PowerCut();
    fc.Reset();
    ASSERT_TRUE(Export(fs_, view_.undo, *targets_[0], 0, 40, fout).ok());
    ASSERT_EQ(out->Contents(), want) << "crash at op " << n;
  }
}

TEST_F(RecoveryTest, ExportRefusesASmallerOutput) {
  shim::MemBlockDevice out("small", 4096);
  Status s = Export(fs_, view_.undo, *targets_[0], 0, 10, out);
  EXPECT_EQ(s.code(), Errc::kOutOfRange);
  EXPECT_NE(s.message().find("smaller"), std::string::npos);
}

TEST_F(RecoveryTest, CommonPointIsTheNewestGroupTagEveryStreamHas) {
  retention::StreamRow row;
  row.name = "vm2";
  row.group = "g";
  const uint64_t s2 = catalog_->AddStream(row).value();
  for (uint64_t seq : {10, 20, 30, 60}) {  // vm2 has fewer of the group's tags
    retention::PointRow p;
    p.stream = s2;
    p.seq = seq * 3;
    p.time_ns = static_cast<int64_t>(seq) * 1'000'000'000;
    p.kind = seq % 20 == 0 ? retention::TagKind::kApp : retention::TagKind::kUser;
    p.name = "x" + std::to_string(seq);
    p.group_tag_id = "gt-" + std::to_string(seq);
    ASSERT_TRUE(catalog_->AddPoint(p).ok());
  }
  auto any = CommonPoint(*catalog_, "g", false);
  ASSERT_TRUE(any.ok()) << any.status().ToString();
  EXPECT_EQ(any->group_tag_id, "gt-60");
  EXPECT_EQ(any->per_stream.at(stream_).seq, 60u);
  EXPECT_EQ(any->per_stream.at(s2).seq, 180u);
  auto app = CommonPoint(*catalog_, "g", true);
  ASSERT_TRUE(app.ok());
  EXPECT_EQ(app->group_tag_id, "gt-60");
  EXPECT_EQ(CommonPoint(*catalog_, "nope", false).status().code(), Errc::kNotFound);
  // A chosen group tag (rollback --to group-tag:ID): each stream's point of it.
  auto chosen = CommonPoint(*catalog_, "g", false, "gt-20");
  ASSERT_TRUE(chosen.ok()) << chosen.status().ToString();
  EXPECT_EQ(chosen->group_tag_id, "gt-20");
  EXPECT_EQ(chosen->per_stream.at(stream_).seq, 20u);
  EXPECT_EQ(chosen->per_stream.at(s2).seq, 60u);
  auto missing = CommonPoint(*catalog_, "g", false, "gt-999");
  EXPECT_EQ(missing.status().code(), Errc::kNotFound);
  EXPECT_NE(missing.status().message().find("is not a point of every stream"), std::string::npos)
      << missing.status().ToString();
}

}  // namespace
}  // namespace mt::recovery
