// The applier against the reference model: every point exact, with and
// without crashes (invariants 1-5 of architecture §4).
#include "apply/applier.h"

#include <gtest/gtest.h>

#include <atomic>

#include "apply_model.h"
#include "mt/shim/fault_injection.h"
#include "mt/shim/mem_file_system.h"

namespace mt::apply {
namespace {

using retention::Journal;
using retention::JournalOptions;
using retention::SegmentKind;
using test::Model;
using test::Op;

JournalOptions Jopts(SegmentKind kind) {
  JournalOptions o;
  o.kind = kind;
  o.stream = 1;
  o.dir = kind == SegmentKind::kWal ? "/r/1/wal" : "/r/1/undo";
  o.segment_bytes = 96 << 10;
  o.max_batch_bytes = 64 << 10;
  o.preallocate = false;
  return o;
}

// One simulated master target: WAL + undo journals on a (fault-injecting)
// MemFileSystem, targets on (fault-injecting) MemBlockDevices.
struct Rig {
  explicit Rig(const test::WorkloadSpec& spec) : fs(mem, faults), spec(spec) {
    for (size_t d = 0; d < spec.disks; ++d) {
      mem_disks.push_back(
          std::make_shared<shim::MemBlockDevice>("disk" + std::to_string(d), spec.disk_size));
      disks.push_back(std::make_unique<shim::FaultInjectingBlockDevice>(mem_disks.back(), faults));
    }
  }
  // (Re)starts the agent: opens journals, loads the checkpoint, recovers.
  Status Start(ApplierOptions ao = {}) {
    applier.reset();
    wal.reset();
    undo.reset();
    MT_ASSIGN_OR_RETURN(wal, Journal::Open(fs, shim::SystemClock(), Jopts(SegmentKind::kWal), nullptr));
    MT_ASSIGN_OR_RETURN(undo, Journal::Open(fs, shim::SystemClock(), Jopts(SegmentKind::kUndo), nullptr));
    std::map<uint32_t, shim::BlockDevice*> m;
    for (size_t d = 0; d < disks.size(); ++d) m[static_cast<uint32_t>(d)] = disks[d].get();
    applier = std::make_unique<Applier>(undo.get(), m, &checkpoint, checkpoint.Load(), ao);
    return applier->Recover(fs, wal->Segments());
  }
  // Ingests ops[from..to) into the WAL and acknowledges (Sync); then applies
  // them in batches of `batch` records.
  Status IngestAndApply(const std::vector<Op>& ops, size_t from, size_t to, size_t batch) {
    for (size_t i = from; i < to; ++i)
      MT_RETURN_IF_ERROR(wal->Append(ops[i].h, ops[i].data.data(), ops[i].data.size()));
    MT_RETURN_IF_ERROR(wal->Sync());
    acked = std::max<uint64_t>(acked, to == 0 ? 0 : ops[to - 1].h.seq);
    for (size_t i = from; i < to; i += batch) {
      std::vector<WalRecord> b;
      for (size_t k = i; k < std::min(to, i + batch); ++k)
        b.push_back({ops[k].h, ops[k].data.empty() ? nullptr : ops[k].data.data()});
      MT_RETURN_IF_ERROR(applier->Apply(b));
    }
    return Status::Ok();
  }
  std::vector<shim::MemBlockDevice*> Mem() {
    std::vector<shim::MemBlockDevice*> v;
    for (auto& d : mem_disks) v.push_back(d.get());
    return v;
  }
  void PowerCut(uint64_t seed) {
    shim::PowerCutOptions o;
    o.seed = seed;
    o.tear_last = seed % 2 == 0;
    o.keep_probability = (seed % 3 == 0) ? 0.5 : 0.0;
    mem.PowerCut(o);
    for (auto& d : mem_disks) d->PowerCut(o);
    faults.Reset();
  }

  shim::MemFileSystem mem;
  shim::FaultController faults;
  shim::FaultInjectingFileSystem fs;
  test::WorkloadSpec spec;
  std::vector<std::shared_ptr<shim::MemBlockDevice>> mem_disks;
  std::vector<std::unique_ptr<shim::BlockDevice>> disks;
  test::FileCheckpoint checkpoint{fs, "/r/1/checkpoint"};
  std::unique_ptr<Journal> wal, undo;
  std::unique_ptr<Applier> applier;
  uint64_t acked = 0;
};

Model ModelOf(const std::vector<Op>& ops, const test::WorkloadSpec& spec) {
  Model m(spec.disks, spec.disk_size);
  for (const auto& op : ops) m.Apply(op);
  return m;
}

TEST(Applier, OverlappingWritesInOneBatchGetTheRightBeforeImage) {
  test::WorkloadSpec spec;
  spec.disks = 1;
  Rig rig(spec);
  ASSERT_TRUE(rig.mem.CreateDir("/r/1").ok());
  ASSERT_TRUE(rig.Start().ok());
  std::vector<Op> ops(2);
  ops[0].h.seq = 1;
  ops[0].h.offset = 0;
  ops[0].h.length = 4096;
  ops[0].data.assign(4096, 'A');
  ops[1].h.seq = 2;
  ops[1].h.offset = 2048;
  ops[1].h.length = 4096;
  ops[1].data.assign(4096, 'B');
  for (auto& o : ops) o.h.stored_length = o.h.length;
  ASSERT_TRUE(rig.IngestAndApply(ops, 0, 2, /*batch=*/2).ok());
  // The undo record of seq 2 must hold 'A' in its first half (written by seq 1
  // in the same batch) and zeroes after.
  std::vector<uint8_t> before;
  ASSERT_TRUE(retention::ForEachRecord(rig.fs, rig.undo->Segments(), retention::Direction::kForward,
                                       [&](const retention::RecordHeader& h,
                                           const std::vector<uint8_t>& p, bool*) {
                                         if (h.seq != 2) return Status::Ok();
                                         before.resize(h.length);
                                         return retention::ExpandPayload(h, p.data(), p.size(),
                                                                         before.data());
                                       })
                  .ok());
  ASSERT_EQ(before.size(), 4096u);
  EXPECT_EQ(before[0], 'A');
  EXPECT_EQ(before[2047], 'A');
  EXPECT_EQ(before[2048], 0);
  EXPECT_EQ(before[4095], 0);
  EXPECT_EQ(test::CheckEveryPoint(rig.fs, rig.undo->Segments(), rig.Mem(), ModelOf(ops, spec), "trap"),
            3u);
}

// Random workloads of 30 seeds in random batch sizes; afterwards every point
// in the window rebuilt from target + undo equals the model.
void CheckRandomWorkloads(size_t io_depth) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    test::WorkloadSpec spec;
    Rig rig(spec);
    ApplierOptions ao;
    ao.io_depth = io_depth;
    ASSERT_TRUE(rig.mem.CreateDir("/r/1").ok());
    ASSERT_TRUE(rig.Start(ao).ok());
    auto ops = test::MakeWorkload(seed, spec);
    std::mt19937_64 rng(seed);
    size_t i = 0;
    while (i < ops.size()) {
      const size_t n = std::min(ops.size() - i, static_cast<size_t>(1 + rng() % 40));
      ASSERT_TRUE(rig.IngestAndApply(ops, i, i + n, 1 + rng() % 12).ok());
      i += n;
    }
    const size_t points = test::CheckEveryPoint(rig.fs, rig.undo->Segments(), rig.Mem(),
                                                ModelOf(ops, spec), "seed " + std::to_string(seed));
    EXPECT_GT(points, 150u);
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(Applier, EveryPointInTheWindowIsExactForRandomWorkloads) { CheckRandomWorkloads(1); }

// Logs what the applier tells its sink; Record() fails while `cut` is set
// (as if the power went between a batch's effects and its checkpoint).
class LoggingSink : public CheckpointSink {
 public:
  Status BatchApplied(const std::vector<WalRecord>& b) override {
    log.push_back("applied " + std::to_string(b.back().h.seq));
    return Status::Ok();
  }
  Status Record(uint64_t seq, int64_t) override {
    if (cut) return Status(Errc::kIoError, "power cut before the checkpoint");
    log.push_back("checkpoint " + std::to_string(seq));
    applied = seq;
    return Status::Ok();
  }
  std::vector<std::string> log;
  bool cut = false;
  uint64_t applied = 0;
};

// What a batch leaves besides data (the catalog's recovery points, a resync
// completing) is stored before its checkpoint; a crash in between applies
// the batch again, so it is stored again and never lost.
TEST(Applier, BatchEffectsComeBeforeTheCheckpointAndAgainAfterACrashBetween) {
  test::WorkloadSpec spec;
  spec.disks = 1;
  spec.ops = 6;
  spec.tag_every = 3;  // seqs 3 and 6 are tags
  Rig rig(spec);
  ASSERT_TRUE(rig.mem.CreateDir("/r/1").ok());
  ASSERT_TRUE(rig.Start().ok());  // journals; the rig's own applier is not used
  const std::vector<Op> ops = test::MakeWorkload(7, spec);
  for (const Op& op : ops) ASSERT_TRUE(rig.wal->Append(op.h, op.data.data(), op.data.size()).ok());
  ASSERT_TRUE(rig.wal->Sync().ok());
  auto batch = [&](size_t from, size_t to) {
    std::vector<WalRecord> b;
    for (size_t k = from; k < to; ++k)
      b.push_back({ops[k].h, ops[k].data.empty() ? nullptr : ops[k].data.data()});
    return b;
  };
  LoggingSink sink;
  std::map<uint32_t, shim::BlockDevice*> m{{0, rig.disks[0].get()}};
  auto applier = std::make_unique<Applier>(rig.undo.get(), m, &sink, 0);
  ASSERT_TRUE(applier->Apply(batch(0, 3)).ok());
  sink.cut = true;
  EXPECT_FALSE(applier->Apply(batch(3, 6)).ok());
  // Restart from the checkpoint: seqs 4..6 are applied again.
  sink.cut = false;
  applier = std::make_unique<Applier>(rig.undo.get(), m, &sink, sink.applied);
  ASSERT_TRUE(applier->Recover(rig.fs, rig.wal->Segments()).ok());
  EXPECT_EQ(sink.log, (std::vector<std::string>{"applied 3", "checkpoint 3", "applied 6",
                                                "applied 6", "checkpoint 6"}));
}

// Restart replay batches like the live path: at most so many records and so
// many bytes of data (a batch's before-images are held in memory), a record
// larger than the bound alone.
TEST(ForEachWalBatch, BatchesAreBoundedInBytesAsOnTheLivePath) {
  test::WorkloadSpec spec;
  Rig rig(spec);
  ASSERT_TRUE(rig.Start().ok());
  const auto ops = test::MakeWorkload(17, spec);
  for (const auto& op : ops)
    ASSERT_TRUE(rig.wal->Append(op.h, op.data.data(), op.data.size()).ok());
  ASSERT_TRUE(rig.wal->Sync().ok());
  constexpr uint64_t kBound = 20 << 10;
  size_t records = 0, batches = 0;
  uint64_t next_seq = 1;
  Status s = ForEachWalBatch(rig.fs, rig.wal->Segments(), 1, 256, kBound,
                             [&](const std::vector<WalRecord>& batch) {
                               uint64_t bytes = 0;
                               for (const auto& r : batch) {
                                 EXPECT_EQ(r.h.seq, next_seq++);
                                 bytes += r.h.length;
                               }
                               EXPECT_TRUE(bytes <= kBound || batch.size() == 1) << bytes;
                               records += batch.size();
                               ++batches;
                               return Status::Ok();
                             });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(records, ops.size());
  EXPECT_GT(batches, ops.size() / 64) << "batches were not cut by bytes";
}

TEST(Applier, RetentionOffAppliesWithoutUndo) {
  test::WorkloadSpec spec;
  Rig rig(spec);
  ASSERT_TRUE(rig.mem.CreateDir("/r/1").ok());
  ApplierOptions ao;
  ao.retention = false;
  ASSERT_TRUE(rig.Start(ao).ok());
  auto ops = test::MakeWorkload(7, spec);
  ASSERT_TRUE(rig.IngestAndApply(ops, 0, ops.size(), 16).ok());
  Model m = ModelOf(ops, spec);
  for (size_t d = 0; d < spec.disks; ++d) EXPECT_EQ(rig.mem_disks[d]->Contents(), m.images()[d]);
  EXPECT_TRUE(rig.undo->Segments().empty());
}

TEST(Applier, TargetIoErrorFailsWithTheDeviceNameAndStopsTheStream) {
  test::WorkloadSpec spec;
  Rig rig(spec);
  ASSERT_TRUE(rig.mem.CreateDir("/r/1").ok());
  ASSERT_TRUE(rig.Start().ok());
  auto ops = test::MakeWorkload(3, spec);
  ASSERT_TRUE(rig.IngestAndApply(ops, 0, 20, 5).ok());
  const uint64_t applied = rig.applier->applied_seq();
  rig.faults.FailObject("disk1");
  Status s = rig.IngestAndApply(ops, 20, ops.size(), 50);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Errc::kIoError);
  EXPECT_NE(s.message().find("disk1"), std::string::npos) << s.message();
  EXPECT_EQ(rig.applier->applied_seq(), applied);  // no checkpoint past the failure
  EXPECT_EQ(rig.checkpoint.Load(), applied);
  EXPECT_EQ(rig.wal->durable_seq(), ops.back().h.seq);  // acknowledged data is kept
}

// The crash loop: a power cut at a random operation of ingest + apply, then a
// restart that recovers and streams the rest (the sender resumes after the
// WAL's last durable seq). Checks invariant 1 (nothing acknowledged lost) and
// that every point is exact afterwards (2-5).
// `long_discards`: many discards, some of the whole disk, applied in pieces
// of 4 KiB (so a cut often lands between two pieces of one discard).
void CrashRound(uint64_t seed, size_t io_depth = 1, bool long_discards = false) {
  test::WorkloadSpec spec;
  spec.ops = 60;
  spec.disk_size = 64 << 10;
  if (long_discards) {
    spec.discard = 0.2;
    spec.whole_disk_discard = 0.3;
  }
  auto ops = test::MakeWorkload(seed, spec);
  Rig rig(spec);
  ApplierOptions ao;
  ao.io_depth = io_depth;
  if (long_discards) ao.discard_piece_bytes = 4096;
  ASSERT_TRUE(rig.mem.CreateDir("/r/1").ok());
  ASSERT_TRUE(rig.Start(ao).ok());
  std::mt19937_64 rng(seed * 7 + 1);
  rig.faults.CrashAtNth(1 + rng() % (long_discards ? 1200 : 400));
  size_t i = 0;
  while (i < ops.size()) {
    const size_t n = std::min(ops.size() - i, static_cast<size_t>(1 + rng() % 10));
    if (!rig.IngestAndApply(ops, i, i + n, 1 + rng() % 6).ok()) break;
    i += n;
  }
  const uint64_t acked = rig.acked;
  (void)rig.wal->Close();
  (void)rig.undo->Close();
  rig.PowerCut(seed);
  Status s = rig.Start(ao);
  ASSERT_TRUE(s.ok()) << "seed " << seed << ": restart failed: " << s.ToString();
  const uint64_t durable = rig.wal->durable_seq();
  ASSERT_GE(durable, acked) << "seed " << seed << ": acknowledged writes lost";
  // The sender resumes after the last durable seq.
  const size_t resume = static_cast<size_t>(durable);
  ASSERT_TRUE(rig.IngestAndApply(ops, resume, ops.size(), 4).ok()) << "seed " << seed;
  test::CheckEveryPoint(rig.fs, rig.undo->Segments(), rig.Mem(), ModelOf(ops, spec),
                        "seed " + std::to_string(seed));
}

TEST(ApplierCrash, PowerCutAtRandomPointsThenRestartKeepsEveryPointExact) {
  const int seeds = std::getenv("MT_CRASH_SEEDS") ? std::atoi(std::getenv("MT_CRASH_SEEDS")) : 1000;
  for (int seed = 1; seed <= seeds; ++seed) {
    CrashRound(static_cast<uint64_t>(seed));
    if (HasFailure()) return;
  }
}

// The same with several target reads and writes in flight (the daemon's
// io_depth): a cut may now land between writes that completed out of order.
TEST(ApplierCrash, PowerCutsWithConcurrentTargetIoKeepEveryPointExact) {
  const int seeds = std::getenv("MT_CRASH_SEEDS") ? std::atoi(std::getenv("MT_CRASH_SEEDS")) : 300;
  for (int seed = 1; seed <= seeds; ++seed) {
    CrashRound(static_cast<uint64_t>(seed) + 100000, 4);
    if (HasFailure()) return;
  }
}

TEST(Applier, ConcurrentTargetIoKeepsEveryPointExact) { CheckRandomWorkloads(4); }

// A power cut anywhere in the middle of a long discard (between reading a
// piece's before-image, making it durable and zeroing the piece) restarts
// exactly: every point stays exact, nothing of the before-image is lost or
// kept twice.
TEST(ApplierCrash, PowerCutsInTheMiddleOfLongDiscardsKeepEveryPointExact) {
  const int seeds = std::getenv("MT_CRASH_SEEDS") ? std::atoi(std::getenv("MT_CRASH_SEEDS")) : 400;
  for (int seed = 1; seed <= seeds; ++seed) {
    CrashRound(static_cast<uint64_t>(seed) + 200000, 1, /*long_discards=*/true);
    if (HasFailure()) return;
  }
}

// The undo records of one seq, in journal order.
std::vector<retention::RecordHeader> UndoOf(Rig& rig, uint64_t seq) {
  std::vector<retention::RecordHeader> out;
  EXPECT_TRUE(retention::ForEachRecord(
                  rig.fs, rig.undo->Segments(), retention::Direction::kForward,
                  [&](const retention::RecordHeader& h, const std::vector<uint8_t>&, bool*) {
                    if (h.seq == seq) out.push_back(h);
                    return Status::Ok();
                  })
                  .ok());
  return out;
}

// Random data over the whole disk, then a discard of the whole disk, then a
// few writes: ops for one disk of `size` bytes; the discard is seq 2.
std::vector<Op> FillDiscardWrite(uint64_t size) {
  std::mt19937_64 rng(42);
  std::vector<Op> ops(4);
  for (uint64_t i = 0; i < ops.size(); ++i) {
    Op& o = ops[i];
    o.h.seq = i + 1;
    o.h.source_time_ns = static_cast<int64_t>(i + 1);
    o.h.offset = 0;
    o.h.length = i == 1 ? size : (i == 0 ? std::min<uint64_t>(size, 64u << 20) : 8192);
    if (i == 1) {
      o.h.flags = retention::kFlagDiscard | retention::kFlagZero;
      continue;
    }
    if (i == 3) o.h.offset = size / 2 + 4096;
    o.data.resize(o.h.length);
    for (auto& b : o.data) b = static_cast<uint8_t>(rng());
    o.h.stored_length = static_cast<uint32_t>(o.h.length);
  }
  return ops;
}

// One disk of 256 KiB.
test::WorkloadSpec OneDisk() {
  test::WorkloadSpec spec;
  spec.disks = 1;
  spec.disk_size = 256 << 10;
  return spec;
}

// A started rig whose applier keeps long discards in pieces of `piece` bytes.
std::unique_ptr<Rig> StartRig(const test::WorkloadSpec& spec, uint64_t piece) {
  auto rig = std::make_unique<Rig>(spec);
  EXPECT_TRUE(rig->mem.CreateDir("/r/1").ok());
  ApplierOptions ao;
  ao.discard_piece_bytes = piece;
  EXPECT_TRUE(rig->Start(ao).ok());
  return rig;
}

TEST(Applier, WholeDiskDiscardKeepsItsBeforeImageInBoundedPiecesOfOneSeq) {
  const test::WorkloadSpec spec = OneDisk();
  auto rig_ptr = StartRig(spec, 16 << 10);
  Rig& rig = *rig_ptr;
  const std::vector<Op> ops = FillDiscardWrite(spec.disk_size);
  ASSERT_TRUE(rig.IngestAndApply(ops, 0, ops.size(), /*batch=*/4).ok());
  const auto pieces = UndoOf(rig, 2);
  ASSERT_EQ(pieces.size(), 16u);
  for (size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_EQ(pieces[i].offset, i * (16 << 10));
    EXPECT_EQ(pieces[i].length, 16u << 10);
    EXPECT_EQ((pieces[i].flags & retention::kFlagContinued) != 0, i > 0) << i;
  }
  EXPECT_EQ(rig.applier->applied_seq(), 4u);
  EXPECT_EQ(rig.checkpoint.Load(), 4u);
  // Points 0..4, each byte-exact; the undo walk compares at item boundaries.
  EXPECT_EQ(test::CheckEveryPoint(rig.fs, rig.undo->Segments(), rig.Mem(), ModelOf(ops, spec),
                                  "whole-disk discard"),
            5u);
}

// Zeroes take nothing in the undo journal: a discard of a disk that already
// reads as zero keeps flag-only pieces.
TEST(Applier, DiscardOfZeroesKeepsPiecesThatStoreNothing) {
  const test::WorkloadSpec spec = OneDisk();
  auto rig_ptr = StartRig(spec, 64 << 10);
  Rig& rig = *rig_ptr;
  std::vector<Op> ops(1);
  ops[0].h.seq = 1;
  ops[0].h.length = spec.disk_size;
  ops[0].h.flags = retention::kFlagDiscard | retention::kFlagZero;
  ASSERT_TRUE(rig.IngestAndApply(ops, 0, 1, 1).ok());
  const auto pieces = UndoOf(rig, 1);
  ASSERT_EQ(pieces.size(), 4u);
  for (const auto& h : pieces) {
    EXPECT_NE(h.flags & retention::kFlagZero, 0u);
    EXPECT_EQ(h.stored_length, 0u);
  }
}

// Stops a long discard after `stop_after` pieces (as an error between two
// pieces would), else checkpoints in a file.
class StoppingSink : public test::FileCheckpoint {
 public:
  using FileCheckpoint::FileCheckpoint;
  Status PieceApplied(uint64_t, uint64_t, uint64_t) override {
    ++pieces;
    if (stop_after != 0 && pieces == stop_after) return Status(Errc::kIoError, "stopped");
    return Status::Ok();
  }
  size_t pieces = 0, stop_after = 0;
};

// Applies FillDiscardWrite with pieces of 16 KiB, stopped after `stop_after`
// pieces of the discard; then a restart with pieces of `resume_piece` bytes.
// The restart captures only what is not kept: the discard's undo pieces are
// contiguous, `want_pieces` of them, and every point is exact.
void StopThenResume(size_t stop_after, uint64_t resume_piece, size_t want_pieces) {
  const test::WorkloadSpec spec = OneDisk();
  auto rig_ptr = StartRig(spec, 16 << 10);  // journals only: the appliers are below
  Rig& rig = *rig_ptr;
  const std::vector<Op> ops = FillDiscardWrite(spec.disk_size);
  for (const Op& op : ops) ASSERT_TRUE(rig.wal->Append(op.h, op.data.data(), op.data.size()).ok());
  ASSERT_TRUE(rig.wal->Sync().ok());
  ApplierOptions ao;
  ao.discard_piece_bytes = 16 << 10;
  StoppingSink sink(rig.fs, "/r/1/cp2");
  sink.stop_after = stop_after;
  std::map<uint32_t, shim::BlockDevice*> m{{0, rig.disks[0].get()}};
  auto applier = std::make_unique<Applier>(rig.undo.get(), m, &sink, 0, ao);
  EXPECT_EQ(applier->Recover(rig.fs, rig.wal->Segments()).code(), Errc::kIoError);
  EXPECT_EQ(sink.Load(), 1u);                     // the discard is not checkpointed
  EXPECT_EQ(UndoOf(rig, 2).size(), stop_after);  // so many pieces kept (and zeroed)
  sink.stop_after = 0;
  ao.discard_piece_bytes = resume_piece;
  applier = std::make_unique<Applier>(rig.undo.get(), m, &sink, sink.Load(), ao);
  ASSERT_TRUE(applier->Recover(rig.fs, rig.wal->Segments()).ok());
  EXPECT_EQ(sink.Load(), 4u);
  const auto pieces = UndoOf(rig, 2);
  ASSERT_EQ(pieces.size(), want_pieces);
  for (size_t i = 1; i < pieces.size(); ++i)
    EXPECT_EQ(pieces[i].offset, pieces[i - 1].offset + pieces[i - 1].length);
  EXPECT_EQ(pieces.back().offset + pieces.back().length, spec.disk_size);
  EXPECT_EQ(test::CheckEveryPoint(rig.fs, rig.undo->Segments(), rig.Mem(), ModelOf(ops, spec),
                                  "resumed discard"),
            5u);
}

TEST(Applier, LongDiscardStoppedBetweenPiecesResumesAfterTheLastDurablePiece) {
  // 96 KiB kept, the other 160 KiB in pieces of 32 KiB.
  StopThenResume(6, 32 << 10, 6 + 5);
}

// A discard whose before-image is partly kept resumes piece by piece even
// on an applier whose pieces are larger than the whole discard.
TEST(Applier, PartlyKeptDiscardResumesPiecewiseWhateverThePieceSize) {
  StopThenResume(3, 16u << 20, 3 + 1);
}

}  // namespace
}  // namespace mt::apply
