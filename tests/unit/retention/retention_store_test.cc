// RetentionStore on MemFileSystem (segments) + a real SQLite catalog in a
// temporary directory.
#include "retention/retention_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "retention/journal_reader.h"
#include "mt/shim/fault_injection.h"
#include "mt/shim/mem_file_system.h"

namespace mt::retention {
namespace {

constexpr int64_t kHour = 3600LL * 1'000'000'000;

class RetentionStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = ::testing::TempDir() + "mt-store-XXXXXX";
    ASSERT_NE(mkdtemp(t.data()), nullptr);
    tmp_ = t;
    opts_.root = "/ret";
    opts_.catalog_path = tmp_ + "/catalog.db";
    opts_.segment_bytes = 64 << 10;
    opts_.max_batch_bytes = 32 << 10;
    opts_.preallocate = false;
    opts_.space.low_space_min_bytes = 0;
    opts_.space.low_space_percent = 0;
    clock_.Set(100 * kHour);
  }
  void TearDown() override { std::system(("rm -rf " + tmp_).c_str()); }

  std::unique_ptr<RetentionStore> OpenStore(shim::FileSystem& fs) {
    auto s = RetentionStore::Open(fs, clock_, opts_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  uint64_t AddStream(RetentionStore& store, const std::string& name) {
    StreamRow row;
    row.name = name;
    auto id = store.catalog().AddStream(row);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    DiskRow d;
    d.stream = id.value();
    d.disk = 0;
    d.target_id = "naa.6000c29" + name;
    d.size_bytes = 1 << 30;
    EXPECT_TRUE(store.catalog().AddDisk(d).ok());
    return id.value();
  }

  // Undo records seq 1..n, 4 KiB each, the k-th written at hour k; a tag every 10.
  void FillUndo(RetentionStore& store, uint64_t stream, uint64_t n) {
    auto j = store.OpenStream(stream);
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    std::vector<uint8_t> p(4096, 0x5a);
    for (uint64_t seq = 1; seq <= n; ++seq) {
      RecordHeader h;
      h.seq = seq;
      h.source_time_ns = static_cast<int64_t>(seq) * kHour;
      h.length = 4096;
      p[0] = static_cast<uint8_t>(seq);
      ASSERT_TRUE(j->undo->Append(h, p.data(), p.size()).ok());
      if (seq % 10 == 0) {
        PointRow pt;
        pt.stream = stream;
        pt.seq = seq;
        pt.time_ns = h.source_time_ns;
        pt.name = "tag-" + std::to_string(seq);
        ASSERT_TRUE(store.catalog().AddPoint(pt).ok());
      }
    }
    ASSERT_TRUE(j->undo->Sync().ok());
    ASSERT_TRUE(store.ReconcileCatalog(stream).ok());
  }

  void Checkpoint(RetentionStore& store, uint64_t stream, uint64_t seq) {
    CheckpointRow c;
    c.stream = stream;
    c.disk = 0;
    c.applied_seq = seq;
    ASSERT_TRUE(store.catalog().SetCheckpoint(c).ok());
  }

  std::string tmp_;
  StoreOptions opts_;
  shim::FakeClock clock_;
};

TEST_F(RetentionStoreTest, OpenStreamMirrorsJournalSegmentsIntoTheCatalog) {
  shim::MemFileSystem fs;
  auto store = OpenStore(fs);
  const uint64_t s = AddStream(*store, "vm1");
  FillUndo(*store, s, 60);
  auto rows = store->catalog().ListSegments(s, SegmentKind::kUndo);
  ASSERT_TRUE(rows.ok());
  auto segs = store->OpenStream(s)->undo->Segments();
  ASSERT_EQ(rows->size(), segs.size());
  ASSERT_GT(segs.size(), 2u);
  for (size_t i = 0; i < segs.size(); ++i) {
    EXPECT_EQ((*rows)[i].first_seq, segs[i].first_seq);
    EXPECT_EQ((*rows)[i].last_seq, segs[i].last_seq);
    EXPECT_EQ((*rows)[i].bytes, segs[i].bytes);
    EXPECT_EQ((*rows)[i].file, "streams/" + std::to_string(s) + "/undo/" +
                                   SegmentFileName(SegmentKind::kUndo, segs[i].number));
  }
  EXPECT_TRUE(fs.Exists("/ret/streams/" + std::to_string(s) + "/wal"));
}

TEST_F(RetentionStoreTest, PruneRemovesExpiredSegmentsAndTheirPointsOnly) {
  shim::MemFileSystem fs;
  auto store = OpenStore(fs);
  const uint64_t s = AddStream(*store, "vm1");
  FillUndo(*store, s, 60);
  Checkpoint(*store, s, 60);
  clock_.Set(24 * kHour + 30 * kHour + 1);  // window starts just after hour 30
  auto plan = store->Prune(s, {});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_FALSE(plan->undo_segments.empty());
  auto segs = store->OpenStream(s)->undo->Segments();
  // Every remaining segment serves a point inside the window or the first one does.
  EXPECT_GE(segs.front().last_time_ns, 30 * kHour);
  const uint64_t oldest = OldestReachablePoint(segs);
  EXPECT_EQ(oldest, plan->oldest_point_seq);
  auto points = store->catalog().ListPoints(s);
  ASSERT_TRUE(points.ok());
  for (const auto& p : *points) EXPECT_GE(p.seq, oldest);
  auto rows = store->catalog().ListSegments(s, SegmentKind::kUndo);
  EXPECT_EQ(rows->size(), segs.size());
  // The records left are exactly seqs oldest+1..60.
  uint64_t next = oldest + 1;
  ASSERT_TRUE(ForEachRecord(fs, segs, Direction::kForward,
                            [&](const RecordHeader& h, const std::vector<uint8_t>&, bool*) {
                              EXPECT_EQ(h.seq, next++);
                              return Status::Ok();
                            })
                  .ok());
  EXPECT_EQ(next, 61u);
}

TEST_F(RetentionStoreTest, PruneKeepsWhatTheCheckpointOrAPinnedPointNeeds) {
  shim::MemFileSystem fs;
  auto store = OpenStore(fs);
  const uint64_t s = AddStream(*store, "vm1");
  FillUndo(*store, s, 60);
  clock_.Set(1000 * kHour);  // everything expired
  Checkpoint(*store, s, 5);  // but only seqs <= 5 are applied
  auto plan = store->Prune(s, {});
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->undo_segments.empty());
  Checkpoint(*store, s, 60);
  plan = store->Prune(s, {25});  // a vsnap at seq 25
  ASSERT_TRUE(plan.ok());
  auto segs = store->OpenStream(s)->undo->Segments();
  EXPECT_LE(segs.front().first_seq, 26u);
}

TEST_F(RetentionStoreTest, PruneInterruptedByACrashIsFinishedOnReopen) {
  shim::MemFileSystem mem;
  shim::FaultController fc;
  shim::FaultInjectingFileSystem fs(mem, fc);
  uint64_t s;
  size_t before;
  {
    auto store = OpenStore(fs);
    s = AddStream(*store, "vm1");
    FillUndo(*store, s, 60);
    Checkpoint(*store, s, 60);
    before = store->OpenStream(s)->undo->Segments().size();
    clock_.Set(1000 * kHour);
    // The second segment deletion fails: "power lost" (each deletion removes
    // the segment's index file, then the segment file: operations 3 and 4).
    fc.CrashAtNth(4);
    auto plan = store->Prune(s, {});
    EXPECT_FALSE(plan.ok());
  }
  mem.PowerCut();
  fc.Reset();
  auto store = OpenStore(fs);
  auto j = store->OpenStream(s);  // recovers journals, reconciles the catalog
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  auto segs = j->undo->Segments();
  EXPECT_EQ(segs.size(), before - 1);
  auto rows = store->catalog().ListSegments(s, SegmentKind::kUndo);
  ASSERT_EQ(rows->size(), segs.size());
  EXPECT_EQ(rows->front().number, segs.front().number);
  for (const auto& p : *store->catalog().ListPoints(s))
    EXPECT_GE(p.seq, OldestReachablePoint(segs));
  // And the prune resumes.
  auto plan = store->Prune(s, {});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(store->OpenStream(s)->undo->Segments().size(), 1u);
}

TEST_F(RetentionStoreTest, UsageReportsPerStreamFigures) {
  shim::MemFileSystem fs(64 << 20);
  auto store = OpenStore(fs);
  const uint64_t a = AddStream(*store, "vm1");
  const uint64_t b = AddStream(*store, "vm2");
  FillUndo(*store, a, 30);
  auto u = store->Usage();
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->volume.capacity, 64u << 20);
  ASSERT_EQ(u->streams.size(), 2u);
  const StreamUsage& ua = u->streams[0].stream == a ? u->streams[0] : u->streams[1];
  const StreamUsage& ub = u->streams[0].stream == b ? u->streams[0] : u->streams[1];
  EXPECT_EQ(ua.undo_logical_bytes, 30u * 4096);
  EXPECT_GT(ua.undo_bytes, ua.undo_logical_bytes);  // headers; payload not compressed here
  EXPECT_EQ(ua.window_start_ns, 1 * kHour);
  EXPECT_EQ(ua.window_end_ns, 30 * kHour);
  EXPECT_EQ(ua.points, 3u);
  EXPECT_EQ(ub.undo_bytes, 0u);
  EXPECT_EQ(ub.points, 0u);
}

TEST_F(RetentionStoreTest, DropStreamDeletesItsFilesAndRows) {
  shim::MemFileSystem fs;
  auto store = OpenStore(fs);
  const uint64_t s = AddStream(*store, "vm1");
  FillUndo(*store, s, 30);
  ASSERT_TRUE(store->DropStream(s).ok());
  EXPECT_FALSE(fs.Exists(store->StreamDir(s)));
  EXPECT_FALSE(store->catalog().GetStream(s)->has_value());
  EXPECT_TRUE(store->catalog().ListSegments(s, SegmentKind::kUndo)->empty());
}

// A stream directory may hold files besides its journals that keep the
// daemon from resuming the stream (a rollback's "rolled-back" marker and its
// progress record). Dropping the stream (mtctl commit) must take them last,
// after the catalog rows: a drop that fails at any file operation leaves a
// stream the catalog still lists with its marker, and running it again
// finishes the job.
TEST_F(RetentionStoreTest, ADropThatFailsAnywhereLeavesAListedStreamWithItsMarker) {
  for (uint64_t n = 1;; ++n) {
    ASSERT_LT(n, 200u) << "the drop never succeeded";
    shim::MemFileSystem fs;
    shim::FaultController fc;
    shim::FaultInjectingFileSystem ffs(fs, fc);
    opts_.catalog_path = tmp_ + "/catalog-" + std::to_string(n) + ".db";
    auto store = OpenStore(ffs);
    ASSERT_NE(store, nullptr);
    const uint64_t s = AddStream(*store, "vm1");
    FillUndo(*store, s, 30);
    const std::string marker = store->StreamDir(s) + "/rolled-back";
    ASSERT_TRUE(shim::WriteFileAtomically(fs, marker, "rolled back to seq:10\n").ok());
    fc.Reset();
    fc.FailNth(n);
    const Status dropped = store->DropStream(s);
    if (dropped.ok()) {
      EXPECT_GT(n, 1u);
      EXPECT_FALSE(fs.Exists(store->StreamDir(s)));
      EXPECT_FALSE(store->catalog().GetStream(s)->has_value());
      break;
    }
    if (store->catalog().GetStream(s)->has_value()) {
      EXPECT_TRUE(fs.Exists(marker)) << "failed at operation " << n << " (" << dropped.ToString()
                                     << "): the stream is listed and resumable";
    }
    fc.Reset();
    ASSERT_TRUE(store->DropStream(s).ok()) << "rerun after a failure at operation " << n;
    EXPECT_FALSE(fs.Exists(store->StreamDir(s)));
    EXPECT_FALSE(store->catalog().GetStream(s)->has_value());
  }
}

// When the oldest undo segment starts with a continued piece, the first
// pieces of that seq were pruned: the state before it is gone, the state
// after it (all later records present) is the oldest point.
TEST(OldestReachablePointTest, ASegmentStartingWithAContinuedPieceReachesOnlyItsSeq) {
  SegmentInfo s;
  s.records = 3;
  s.first_seq = 40;
  s.last_seq = 41;
  EXPECT_EQ(OldestReachablePoint({s}), 39u);
  s.first_continues = true;
  EXPECT_EQ(OldestReachablePoint({s}), 40u);
  EXPECT_EQ(OldestReachablePoint({}), 0u);
}

}  // namespace
}  // namespace mt::retention
