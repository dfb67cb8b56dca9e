#include "retention/catalog.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "retention/catalog_internal.h"

namespace mt::retention {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kHour = 3600LL * 1'000'000'000;
constexpr int64_t kMinute = 60LL * 1'000'000'000;

// Runs SQL on the catalog file through a separate, raw SQLite connection: how
// the tests tamper with a file or look at what the catalog wrote.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  void Exec(const std::string& sql) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << sql << ": " << (err ? err : "");
    sqlite3_free(err);
  }
  // Every row's columns, joined by '|', one string per row.
  std::vector<std::string> Query(const std::string& sql) {
    std::vector<std::string> rows;
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr), SQLITE_OK)
        << sql << ": " << sqlite3_errmsg(db_);
    while (st != nullptr && sqlite3_step(st) == SQLITE_ROW) {
      std::string row;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        if (i > 0) row += "|";
        const unsigned char* t = sqlite3_column_text(st, i);
        row += t ? reinterpret_cast<const char*>(t) : "NULL";
      }
      rows.push_back(row);
    }
    sqlite3_finalize(st);
    return rows;
  }

 private:
  sqlite3* db_ = nullptr;
};

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/mt-catalog-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/catalog.db";
  }
  void TearDown() override {
    catalog_.reset();
    std::filesystem::remove_all(dir_);
  }

  Catalog& Open() {
    catalog_.reset();
    auto c = Catalog::Open(path_);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    catalog_ = std::move(c).value();
    return *catalog_;
  }

  uint64_t AddStream(const std::string& name, const std::string& group = "") {
    StreamRow s;
    s.name = name;
    s.group = group;
    s.created_ns = 1000;
    auto id = catalog_->AddStream(s);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? id.value() : 0;
  }

  static DiskRow Disk(uint64_t stream, uint32_t disk, const std::string& target) {
    DiskRow d;
    d.stream = stream;
    d.disk = disk;
    d.target_id = target;
    d.target_device = "/dev/sdb";
    d.source_disk_id = "scsi0:" + std::to_string(disk);
    d.size_bytes = 10ull << 30;
    return d;
  }

  static PointRow Point(uint64_t stream, uint64_t seq, int64_t time_ns, TagKind kind,
                        const std::string& name, const std::string& group_tag = "") {
    PointRow p;
    p.stream = stream;
    p.seq = seq;
    p.time_ns = time_ns;
    p.kind = kind;
    p.name = name;
    p.group_tag_id = group_tag;
    return p;
  }

  static SegmentRow Segment(uint64_t stream, SegmentKind kind, uint64_t number, uint64_t first_seq,
                            uint64_t last_seq) {
    SegmentRow g;
    g.stream = stream;
    g.kind = kind;
    g.number = number;
    g.file = std::string(SegmentKindName(kind)) + "/" + std::to_string(number) + ".seg";
    g.first_seq = first_seq;
    g.last_seq = last_seq;
    g.first_time_ns = static_cast<int64_t>(first_seq) * 10;
    g.last_time_ns = static_cast<int64_t>(last_seq) * 10;
    g.records = last_seq - first_seq + 1;
    g.bytes = 4096 + g.records * 4160;
    g.logical_bytes = g.records * 4096;
    return g;
  }

  static std::vector<std::string> Names(const std::vector<PointRow>& points) {
    std::vector<std::string> n;
    for (const PointRow& p : points) n.push_back(p.name);
    return n;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<Catalog> catalog_;
};

TEST_F(CatalogTest, OpenCreatesTheCurrentSchemaVersionInWalMode) {
  Open();
  RawDb raw(path_);
  EXPECT_EQ(raw.Query("PRAGMA user_version"), std::vector<std::string>{"2"});
  EXPECT_EQ(raw.Query("PRAGMA journal_mode"), std::vector<std::string>{"wal"});
  EXPECT_EQ(raw.Query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                      "'sqlite_%' ORDER BY name"),
            (std::vector<std::string>{"checkpoints", "disks", "points", "policies", "segments",
                                      "streams"}));
}

TEST_F(CatalogTest, OpenInitializesAnEmptyFile) {
  std::ofstream(path_, std::ios::binary).close();
  Open();
  EXPECT_EQ(RawDb(path_).Query("PRAGMA user_version"), std::vector<std::string>{"2"});
  EXPECT_TRUE(catalog_->ListStreams().value().empty());
}

TEST_F(CatalogTest, ConcurrentOpensOfANewFileCreateTheSchemaOnce) {
  constexpr int kOpeners = 4;
  std::vector<std::unique_ptr<Catalog>> opened(kOpeners);
  std::vector<Status> errors(kOpeners);
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      auto c = Catalog::Open(path_);
      if (c.ok()) {
        opened[i] = std::move(c).value();
      } else {
        errors[i] = c.status();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kOpeners; ++i) {
    EXPECT_TRUE(errors[i].ok()) << errors[i].ToString();
    EXPECT_NE(opened[i], nullptr);
  }
  StreamRow s;
  s.name = "vm1";
  ASSERT_TRUE(opened[0]->AddStream(s).ok());
  EXPECT_EQ(opened[kOpeners - 1]->ListStreams().value().size(), 1u);
}

TEST_F(CatalogTest, OpenInAMissingDirectoryIsNotFound) {
  auto c = Catalog::Open(dir_ + "/no/such/dir/catalog.db");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Errc::kNotFound) << c.status().ToString();
  EXPECT_THAT(c.status().message(), HasSubstr(dir_ + "/no/such/dir/catalog.db"));
}

TEST_F(CatalogTest, AddStreamAssignsIdsAndFindsByNameAndId) {
  Open();
  StreamRow s;
  s.name = "vm1";
  s.group = "payroll";
  s.created_ns = 123456789;
  auto id1 = catalog_->AddStream(s);
  ASSERT_TRUE(id1.ok()) << id1.status().ToString();
  const uint64_t id2 = AddStream("vm2");
  EXPECT_NE(id1.value(), id2);

  auto found = catalog_->FindStream("vm1");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found.value().has_value());
  EXPECT_EQ(found.value()->id, id1.value());
  EXPECT_EQ(found.value()->group, "payroll");
  EXPECT_EQ(found.value()->created_ns, 123456789);
  EXPECT_EQ(found.value()->state, StreamState::kProtected);
  EXPECT_EQ(found.value()->error, "");

  auto by_id = catalog_->GetStream(id2);
  ASSERT_TRUE(by_id.ok());
  ASSERT_TRUE(by_id.value().has_value());
  EXPECT_EQ(by_id.value()->name, "vm2");

  EXPECT_FALSE(catalog_->FindStream("vm3").value().has_value());
  EXPECT_FALSE(catalog_->GetStream(999).value().has_value());
  EXPECT_FALSE(catalog_->GetStream(UINT64_MAX).value().has_value());
}

TEST_F(CatalogTest, DuplicateStreamNameIsAlreadyExists) {
  Open();
  AddStream("vm1");
  StreamRow s;
  s.name = "vm1";
  auto again = catalog_->AddStream(s);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Errc::kAlreadyExists);
  EXPECT_EQ(again.status().message(), "stream 'vm1' already exists");
}

TEST_F(CatalogTest, AddStreamRefusesEmptyNameAndUnknownState) {
  Open();
  StreamRow s;
  EXPECT_EQ(catalog_->AddStream(s).status().code(), Errc::kInvalidArgument);
  s.name = "vm1";
  s.state = static_cast<StreamState>(42);  // no such state: never stored
  EXPECT_EQ(catalog_->AddStream(s).status().code(), Errc::kInvalidArgument);
}

TEST_F(CatalogTest, ListStreamsInIdOrder) {
  Open();
  const uint64_t a = AddStream("b-vm");
  const uint64_t b = AddStream("a-vm");
  auto all = catalog_->ListStreams();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all.value().size(), 2u);
  EXPECT_EQ(all.value()[0].id, a);
  EXPECT_EQ(all.value()[1].id, b);
}

TEST_F(CatalogTest, StreamIdsAreNeverReused) {
  Open();
  AddStream("vm1");
  const uint64_t second = AddStream("vm2");
  ASSERT_TRUE(catalog_->RemoveStream(second).ok());
  EXPECT_GT(AddStream("vm3"), second);
}

TEST_F(CatalogTest, SetStreamStateUpdatesStateAndError) {
  Open();
  const uint64_t id = AddStream("vm1");
  ASSERT_TRUE(catalog_->SetStreamState(id, StreamState::kFailed, "target naa.1 vanished").ok());
  auto s = catalog_->GetStream(id).value();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->state, StreamState::kFailed);
  EXPECT_EQ(s->error, "target naa.1 vanished");

  EXPECT_EQ(catalog_->SetStreamState(id, static_cast<StreamState>(42), "").code(),
            Errc::kInvalidArgument);
  Status missing = catalog_->SetStreamState(id + 100, StreamState::kPaused, "");
  EXPECT_EQ(missing.code(), Errc::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("stream " + std::to_string(id + 100)));
}

TEST_F(CatalogTest, AddDiskListDisksAndFindDiskByTarget) {
  Open();
  const uint64_t s = AddStream("vm1");
  DiskRow d1 = Disk(s, 1, "naa.600a0b800026");
  d1.block_size = 4096;
  d1.resync_state = ResyncState::kRunning;
  d1.target_blank = true;
  ASSERT_TRUE(catalog_->AddDisk(Disk(s, 0, "naa.600a0b800025")).ok());
  ASSERT_TRUE(catalog_->AddDisk(d1).ok());

  auto disks = catalog_->ListDisks(s);
  ASSERT_TRUE(disks.ok());
  ASSERT_EQ(disks.value().size(), 2u);
  EXPECT_EQ(disks.value()[0].disk, 0u);
  EXPECT_EQ(disks.value()[1].disk, 1u);
  EXPECT_EQ(disks.value()[1].target_id, "naa.600a0b800026");
  EXPECT_EQ(disks.value()[1].block_size, 4096u);
  EXPECT_EQ(disks.value()[1].resync_state, ResyncState::kRunning);
  EXPECT_EQ(disks.value()[1].size_bytes, 10ull << 30);
  EXPECT_EQ(disks.value()[1].source_disk_id, "scsi0:1");
  EXPECT_TRUE(disks.value()[1].target_blank);
  EXPECT_FALSE(disks.value()[0].target_blank);

  auto owner = catalog_->FindDiskByTarget("naa.600a0b800026");
  ASSERT_TRUE(owner.ok());
  ASSERT_TRUE(owner.value().has_value());
  EXPECT_EQ(owner.value()->stream, s);
  EXPECT_EQ(owner.value()->disk, 1u);
  EXPECT_FALSE(catalog_->FindDiskByTarget("naa.none").value().has_value());
  EXPECT_TRUE(catalog_->ListDisks(s + 1).value().empty());
}

TEST_F(CatalogTest, TargetOfAnotherDiskIsAlreadyExistsNamingTheOwner) {
  Open();
  const uint64_t s1 = AddStream("vm1");
  const uint64_t s2 = AddStream("vm2");
  ASSERT_TRUE(catalog_->AddDisk(Disk(s2, 0, "naa.6000c29")).ok());
  Status st = catalog_->AddDisk(Disk(s1, 0, "naa.6000c29"));
  EXPECT_EQ(st.code(), Errc::kAlreadyExists);
  EXPECT_EQ(st.message(),
            "target naa.6000c29 already belongs to stream " + std::to_string(s2) + " disk 0");
}

TEST_F(CatalogTest, DuplicateDiskIndexIsAlreadyExists) {
  Open();
  const uint64_t s = AddStream("vm1");
  ASSERT_TRUE(catalog_->AddDisk(Disk(s, 0, "naa.1")).ok());
  Status st = catalog_->AddDisk(Disk(s, 0, "naa.2"));
  EXPECT_EQ(st.code(), Errc::kAlreadyExists);
  EXPECT_EQ(st.message(), "stream " + std::to_string(s) + " already has a disk 0");
}

TEST_F(CatalogTest, AddDiskRefusesMissingStreamAndBadFields) {
  Open();
  Status st = catalog_->AddDisk(Disk(42, 0, "naa.1"));
  EXPECT_EQ(st.code(), Errc::kNotFound);
  EXPECT_THAT(st.message(), HasSubstr("stream 42 does not exist"));

  const uint64_t s = AddStream("vm1");
  DiskRow d = Disk(s, 0, "");
  EXPECT_EQ(catalog_->AddDisk(d).code(), Errc::kInvalidArgument);
  d = Disk(s, 0, "naa.1");
  d.block_size = 1000;
  EXPECT_EQ(catalog_->AddDisk(d).code(), Errc::kInvalidArgument);
  d = Disk(s, 0, "naa.1");
  d.resync_state = static_cast<ResyncState>(42);  // no such state
  EXPECT_EQ(catalog_->AddDisk(d).code(), Errc::kInvalidArgument);
  d = Disk(s, 0, "naa.1");
  d.size_bytes = UINT64_MAX;
  EXPECT_EQ(catalog_->AddDisk(d).code(), Errc::kInvalidArgument);
}

TEST_F(CatalogTest, UpdateDiskRewritesTheRow) {
  Open();
  const uint64_t s = AddStream("vm1");
  ASSERT_TRUE(catalog_->AddDisk(Disk(s, 0, "naa.1")).ok());
  ASSERT_TRUE(catalog_->AddDisk(Disk(s, 1, "naa.2")).ok());
  DiskRow d = Disk(s, 0, "naa.1");
  d.target_device = "/dev/sdc";
  d.resync_state = ResyncState::kComplete;
  d.resync_complete_seq = 77;
  ASSERT_TRUE(catalog_->UpdateDisk(d).ok());
  auto got = catalog_->FindDiskByTarget("naa.1").value();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->target_device, "/dev/sdc");
  EXPECT_EQ(got->resync_state, ResyncState::kComplete);
  EXPECT_EQ(got->resync_complete_seq, 77u);
  EXPECT_FALSE(got->target_blank);
  d.target_blank = true;
  ASSERT_TRUE(catalog_->UpdateDisk(d).ok());
  EXPECT_TRUE(catalog_->FindDiskByTarget("naa.1").value()->target_blank);

  d.target_id = "naa.2";  // taken by disk 1
  Status taken = catalog_->UpdateDisk(d);
  EXPECT_EQ(taken.code(), Errc::kAlreadyExists);
  EXPECT_EQ(taken.message(),
            "target naa.2 already belongs to stream " + std::to_string(s) + " disk 1");

  Status missing = catalog_->UpdateDisk(Disk(s, 5, "naa.5"));
  EXPECT_EQ(missing.code(), Errc::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("disk 5"));
}

TEST_F(CatalogTest, UpsertSegmentInsertsThenUpdates) {
  Open();
  const uint64_t s = AddStream("vm1");
  SegmentRow g = Segment(s, SegmentKind::kWal, 1, 0, 0);
  g.first_seq = g.last_seq = 0;
  g.records = 0;
  ASSERT_TRUE(catalog_->UpsertSegment(g).ok());
  g = Segment(s, SegmentKind::kWal, 1, 1, 100);
  g.sealed = true;
  ASSERT_TRUE(catalog_->UpsertSegment(g).ok());

  auto list = catalog_->ListSegments(s, SegmentKind::kWal);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list.value().size(), 1u);
  const SegmentRow& got = list.value()[0];
  EXPECT_EQ(got.stream, s);
  EXPECT_EQ(got.kind, SegmentKind::kWal);
  EXPECT_EQ(got.number, 1u);
  EXPECT_EQ(got.file, "wal/1.seg");
  EXPECT_EQ(got.first_seq, 1u);
  EXPECT_EQ(got.last_seq, 100u);
  EXPECT_EQ(got.first_time_ns, 10);
  EXPECT_EQ(got.last_time_ns, 1000);
  EXPECT_EQ(got.records, 100u);
  EXPECT_EQ(got.bytes, g.bytes);
  EXPECT_EQ(got.logical_bytes, 100u * 4096);
  EXPECT_TRUE(got.sealed);

  EXPECT_EQ(catalog_->UpsertSegment(Segment(s + 9, SegmentKind::kWal, 1, 1, 2)).code(),
            Errc::kNotFound);
  g.last_seq = 1ull << 63;
  EXPECT_EQ(catalog_->UpsertSegment(g).code(), Errc::kInvalidArgument);
}

TEST_F(CatalogTest, ListSegmentsIsPerKindAndOrderedByNumber) {
  Open();
  const uint64_t s = AddStream("vm1");
  const uint64_t other = AddStream("vm2");
  ASSERT_TRUE(catalog_->UpsertSegment(Segment(s, SegmentKind::kUndo, 3, 201, 300)).ok());
  ASSERT_TRUE(catalog_->UpsertSegment(Segment(s, SegmentKind::kUndo, 1, 1, 100)).ok());
  ASSERT_TRUE(catalog_->UpsertSegment(Segment(s, SegmentKind::kUndo, 2, 101, 200)).ok());
  ASSERT_TRUE(catalog_->UpsertSegment(Segment(s, SegmentKind::kWal, 7, 301, 310)).ok());
  ASSERT_TRUE(catalog_->UpsertSegment(Segment(other, SegmentKind::kUndo, 9, 1, 5)).ok());

  auto undo = catalog_->ListSegments(s, SegmentKind::kUndo).value();
  ASSERT_EQ(undo.size(), 3u);
  EXPECT_EQ(undo[0].number, 1u);
  EXPECT_EQ(undo[1].number, 2u);
  EXPECT_EQ(undo[2].number, 3u);
  for (const SegmentRow& g : undo) EXPECT_EQ(g.kind, SegmentKind::kUndo);
  auto wal = catalog_->ListSegments(s, SegmentKind::kWal).value();
  ASSERT_EQ(wal.size(), 1u);
  EXPECT_EQ(wal[0].number, 7u);
}

TEST_F(CatalogTest, RemoveSegmentDropsOneAndToleratesAbsence) {
  Open();
  const uint64_t s = AddStream("vm1");
  ASSERT_TRUE(catalog_->UpsertSegment(Segment(s, SegmentKind::kUndo, 1, 1, 100)).ok());
  ASSERT_TRUE(catalog_->UpsertSegment(Segment(s, SegmentKind::kUndo, 2, 101, 200)).ok());
  ASSERT_TRUE(catalog_->UpsertSegment(Segment(s, SegmentKind::kWal, 1, 201, 210)).ok());
  ASSERT_TRUE(catalog_->RemoveSegment(s, SegmentKind::kUndo, 1).ok());
  ASSERT_TRUE(catalog_->RemoveSegment(s, SegmentKind::kUndo, 1).ok());  // resumed prune
  auto undo = catalog_->ListSegments(s, SegmentKind::kUndo).value();
  ASSERT_EQ(undo.size(), 1u);
  EXPECT_EQ(undo[0].number, 2u);
  EXPECT_EQ(catalog_->ListSegments(s, SegmentKind::kWal).value().size(), 1u);
}

TEST_F(CatalogTest, AddPointAndFindPoint) {
  Open();
  const uint64_t s = AddStream("vm1");
  ASSERT_TRUE(catalog_->AddPoint(Point(s, 42, 4200, TagKind::kApp, "hourly-1", "g-1")).ok());
  auto p = catalog_->FindPoint(s, "hourly-1");
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(p.value().has_value());
  EXPECT_EQ(p.value()->stream, s);
  EXPECT_EQ(p.value()->seq, 42u);
  EXPECT_EQ(p.value()->time_ns, 4200);
  EXPECT_EQ(p.value()->kind, TagKind::kApp);
  EXPECT_EQ(p.value()->group_tag_id, "g-1");
  EXPECT_FALSE(catalog_->FindPoint(s, "hourly-2").value().has_value());
  EXPECT_FALSE(catalog_->FindPoint(s + 1, "hourly-1").value().has_value());
}

TEST_F(CatalogTest, DuplicatePointNameIsAlreadyExistsOnlyInsideAStream) {
  Open();
  const uint64_t s1 = AddStream("vm1");
  const uint64_t s2 = AddStream("vm2");
  ASSERT_TRUE(catalog_->AddPoint(Point(s1, 1, 10, TagKind::kUser, "x")).ok());
  Status dup = catalog_->AddPoint(Point(s1, 2, 20, TagKind::kApp, "x"));
  EXPECT_EQ(dup.code(), Errc::kAlreadyExists);
  EXPECT_EQ(dup.message(),
            "a recovery point named 'x' already exists in stream " + std::to_string(s1));
  EXPECT_TRUE(catalog_->AddPoint(Point(s2, 1, 10, TagKind::kUser, "x")).ok());
}

TEST_F(CatalogTest, AddPointRefusesBadRows) {
  Open();
  const uint64_t s = AddStream("vm1");
  EXPECT_EQ(catalog_->AddPoint(Point(s + 5, 1, 1, TagKind::kApp, "a")).code(), Errc::kNotFound);
  EXPECT_EQ(catalog_->AddPoint(Point(s, 1, 1, TagKind::kApp, "")).code(), Errc::kInvalidArgument);
  EXPECT_EQ(catalog_->AddPoint(Point(s, 1, 1, TagKind::kApp, std::string(256, 'n'))).code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(catalog_->AddPoint(Point(s, 1ull << 63, 1, TagKind::kApp, "big")).code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(catalog_->AddPoint(Point(s, 1, 1, static_cast<TagKind>(9), "k")).code(),
            Errc::kInvalidArgument);
  EXPECT_TRUE(catalog_->AddPoint(Point(s, INT64_MAX, 1, TagKind::kApp, "max")).ok());
}

TEST_F(CatalogTest, ListPointsHonoursTheSeqRange) {
  Open();
  const uint64_t s = AddStream("vm1");
  const uint64_t other = AddStream("vm2");
  ASSERT_TRUE(catalog_->AddPoint(Point(s, 30, 300, TagKind::kCrash, "c30")).ok());
  ASSERT_TRUE(catalog_->AddPoint(Point(s, 10, 100, TagKind::kApp, "a10")).ok());
  ASSERT_TRUE(catalog_->AddPoint(Point(s, 20, 200, TagKind::kUser, "u20")).ok());
  ASSERT_TRUE(catalog_->AddPoint(Point(s, 20, 200, TagKind::kApp, "a20")).ok());
  ASSERT_TRUE(catalog_->AddPoint(Point(other, 15, 150, TagKind::kApp, "o15")).ok());

  using V = std::vector<std::string>;
  EXPECT_EQ(Names(catalog_->ListPoints(s).value()), (V{"a10", "u20", "a20", "c30"}));
  EXPECT_EQ(Names(catalog_->ListPoints(s, 10).value()), (V{"u20", "a20", "c30"}));
  EXPECT_EQ(Names(catalog_->ListPoints(s, 10, 20).value()), (V{"u20", "a20"}));
  EXPECT_EQ(Names(catalog_->ListPoints(s, 0, 19).value()), (V{"a10"}));
  EXPECT_EQ(Names(catalog_->ListPoints(s, 30).value()), V{});
  EXPECT_EQ(Names(catalog_->ListPoints(s, 20, 10).value()), V{});
  EXPECT_EQ(Names(catalog_->ListPoints(s, UINT64_MAX).value()), V{});
  EXPECT_EQ(Names(catalog_->ListPoints(other).value()), V{"o15"});
}

TEST_F(CatalogTest, LatestPointWithAndWithoutKindAndMaxSeq) {
  Open();
  const uint64_t s = AddStream("vm1");
  EXPECT_FALSE(catalog_->LatestPoint(s, std::nullopt).value().has_value());
  ASSERT_TRUE(catalog_->AddPoint(Point(s, 10, 100, TagKind::kApp, "a10")).ok());
  ASSERT_TRUE(catalog_->AddPoint(Point(s, 20, 200, TagKind::kCrash, "c20")).ok());
  ASSERT_TRUE(catalog_->AddPoint(Point(s, 30, 300, TagKind::kApp, "a30")).ok());
  ASSERT_TRUE(catalog_->AddPoint(Point(s, 40, 400, TagKind::kCrash, "c40")).ok());

  auto name = [&](std::optional<TagKind> kind, uint64_t max_seq) -> std::string {
    auto p = catalog_->LatestPoint(s, kind, max_seq);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() && p.value() ? p.value()->name : "none";
  };
  EXPECT_EQ(name(std::nullopt, UINT64_MAX), "c40");
  EXPECT_EQ(name(TagKind::kApp, UINT64_MAX), "a30");
  EXPECT_EQ(name(TagKind::kCrash, UINT64_MAX), "c40");
  EXPECT_EQ(name(TagKind::kUser, UINT64_MAX), "none");
  EXPECT_EQ(name(std::nullopt, 39), "a30");
  EXPECT_EQ(name(TagKind::kApp, 29), "a10");
  EXPECT_EQ(name(TagKind::kCrash, 20), "c20");
  EXPECT_EQ(name(TagKind::kCrash, 19), "none");
  EXPECT_EQ(name(std::nullopt, 9), "none");
  EXPECT_FALSE(catalog_->LatestPoint(s + 1, std::nullopt).value().has_value());
}

TEST_F(CatalogTest, LatestPointAtTimeFindsTheNewestPointNotAfterT) {
  Open();
  const uint64_t s = AddStream("vm1");
  ASSERT_TRUE(catalog_->AddPoint(Point(s, 10, 100, TagKind::kApp, "a10")).ok());
  ASSERT_TRUE(catalog_->AddPoint(Point(s, 20, 200, TagKind::kCrash, "c20")).ok());
  ASSERT_TRUE(catalog_->AddPoint(Point(s, 21, 200, TagKind::kUser, "u21")).ok());
  auto name = [&](int64_t t, std::optional<TagKind> kind) -> std::string {
    auto p = catalog_->LatestPointAtTime(s, t, kind);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() && p.value() ? p.value()->name : "none";
  };
  EXPECT_EQ(name(99, std::nullopt), "none");
  EXPECT_EQ(name(100, std::nullopt), "a10");
  EXPECT_EQ(name(199, std::nullopt), "a10");
  EXPECT_EQ(name(200, std::nullopt), "u21");  // same time: highest seq
  EXPECT_EQ(name(INT64_MAX, TagKind::kCrash), "c20");
  EXPECT_EQ(name(INT64_MAX, TagKind::kApp), "a10");
  EXPECT_EQ(name(150, TagKind::kCrash), "none");
}

TEST_F(CatalogTest, PointsWithGroupTagSpanStreams) {
  Open();
  const uint64_t s1 = AddStream("db", "erp");
  const uint64_t s2 = AddStream("app", "erp");
  const uint64_t s3 = AddStream("lonely");
  ASSERT_TRUE(catalog_->AddPoint(Point(s2, 7, 70, TagKind::kApp, "erp-1@app", "erp-1")).ok());
  ASSERT_TRUE(catalog_->AddPoint(Point(s1, 9, 70, TagKind::kApp, "erp-1@db", "erp-1")).ok());
  ASSERT_TRUE(catalog_->AddPoint(Point(s1, 19, 80, TagKind::kApp, "erp-2@db", "erp-2")).ok());
  ASSERT_TRUE(catalog_->AddPoint(Point(s3, 5, 70, TagKind::kUser, "mine")).ok());

  auto g = catalog_->PointsWithGroupTag("erp-1");
  ASSERT_TRUE(g.ok());
  ASSERT_EQ(g.value().size(), 2u);
  EXPECT_EQ(g.value()[0].stream, s1);
  EXPECT_EQ(g.value()[0].name, "erp-1@db");
  EXPECT_EQ(g.value()[1].stream, s2);
  EXPECT_EQ(g.value()[1].name, "erp-1@app");
  EXPECT_EQ(catalog_->PointsWithGroupTag("erp-2").value().size(), 1u);
  EXPECT_TRUE(catalog_->PointsWithGroupTag("erp-3").value().empty());
  EXPECT_TRUE(catalog_->PointsWithGroupTag("").value().empty());
}

TEST_F(CatalogTest, RemovePointsBeforeDropsOnlyOlderPointsOfThatStream) {
  Open();
  const uint64_t s = AddStream("vm1");
  const uint64_t other = AddStream("vm2");
  for (uint64_t seq : {10, 20, 30}) {
    ASSERT_TRUE(
        catalog_->AddPoint(Point(s, seq, 0, TagKind::kCrash, "p" + std::to_string(seq))).ok());
  }
  ASSERT_TRUE(catalog_->AddPoint(Point(other, 5, 0, TagKind::kCrash, "o5")).ok());
  ASSERT_TRUE(catalog_->RemovePointsBefore(s, 20).ok());
  EXPECT_EQ(Names(catalog_->ListPoints(s).value()), (std::vector<std::string>{"p20", "p30"}));
  ASSERT_TRUE(catalog_->RemovePointsBefore(s, 0).ok());
  EXPECT_EQ(catalog_->ListPoints(s).value().size(), 2u);
  ASSERT_TRUE(catalog_->RemovePointsBefore(s, UINT64_MAX).ok());
  EXPECT_TRUE(catalog_->ListPoints(s).value().empty());
  EXPECT_EQ(catalog_->ListPoints(other).value().size(), 1u);
}

TEST_F(CatalogTest, SetCheckpointUpserts) {
  Open();
  const uint64_t s = AddStream("vm1");
  EXPECT_FALSE(catalog_->GetCheckpoint(s, 0).value().has_value());
  CheckpointRow c{s, 0, 100, 1000, 5};
  ASSERT_TRUE(catalog_->SetCheckpoint(c).ok());
  c.applied_seq = 250;
  c.applied_time_ns = 2500;
  c.updated_ns = 6;
  ASSERT_TRUE(catalog_->SetCheckpoint(c).ok());
  ASSERT_TRUE(catalog_->SetCheckpoint(CheckpointRow{s, 1, 7, 70, 7}).ok());

  auto got = catalog_->GetCheckpoint(s, 0);
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got.value().has_value());
  EXPECT_EQ(got.value()->applied_seq, 250u);
  EXPECT_EQ(got.value()->applied_time_ns, 2500);
  EXPECT_EQ(got.value()->updated_ns, 6);
  EXPECT_EQ(catalog_->GetCheckpoint(s, 1).value()->applied_seq, 7u);
  EXPECT_FALSE(catalog_->GetCheckpoint(s, 2).value().has_value());
  EXPECT_EQ(catalog_->SetCheckpoint(CheckpointRow{s + 3, 0, 1, 1, 1}).code(), Errc::kNotFound);
}

// A batch record for stream `s`, disks 0 and 1, at applied_seq `seq`.
BatchRecord Batch(uint64_t s, uint64_t seq) {
  BatchRecord b;
  b.stream = s;
  b.disks = {0, 1};
  b.applied_seq = seq;
  b.applied_time_ns = static_cast<int64_t>(seq) * 10;
  b.updated_ns = 1;
  return b;
}

TEST_F(CatalogTest, RecordBatchStoresPointsResyncAndCheckpointTogether) {
  Open();
  const uint64_t s = AddStream("vm1");
  DiskRow d0 = Disk(s, 0, "naa.1");
  d0.resync_state = ResyncState::kRunning;
  ASSERT_TRUE(catalog_->AddDisk(d0).ok());
  ASSERT_TRUE(catalog_->AddDisk(Disk(s, 1, "naa.2")).ok());

  BatchRecord b = Batch(s, 40);
  b.points.push_back(Point(s, 38, 380, TagKind::kApp, "hourly"));
  b.points.push_back(Point(s, 40, 400, TagKind::kCrash, "crash-40"));
  b.resync_completed.emplace_back(0, 39);
  ASSERT_TRUE(catalog_->RecordBatch(b).ok());

  EXPECT_THAT(Names(catalog_->ListPoints(s, 0, UINT64_MAX).value()),
              ::testing::ElementsAre("hourly", "crash-40"));
  auto disks = catalog_->ListDisks(s).value();
  EXPECT_EQ(disks[0].resync_state, ResyncState::kComplete);
  EXPECT_EQ(disks[0].resync_complete_seq, 39u);
  EXPECT_EQ(catalog_->GetCheckpoint(s, 0).value()->applied_seq, 40u);
  EXPECT_EQ(catalog_->GetCheckpoint(s, 1).value()->applied_seq, 40u);
  EXPECT_EQ(catalog_->GetCheckpoint(s, 1).value()->applied_time_ns, 400);
}

// A restart applies the last batch again: the same record must succeed and
// change nothing but the checkpoint's time stamps.
TEST_F(CatalogTest, RecordBatchAgainIsIdempotent) {
  Open();
  const uint64_t s = AddStream("vm1");
  DiskRow d0 = Disk(s, 0, "naa.1");
  d0.resync_state = ResyncState::kRunning;
  ASSERT_TRUE(catalog_->AddDisk(d0).ok());
  BatchRecord b = Batch(s, 40);
  b.points.push_back(Point(s, 40, 400, TagKind::kApp, "p40"));
  b.resync_completed.emplace_back(0, 39);
  ASSERT_TRUE(catalog_->RecordBatch(b).ok());

  b.resync_completed = {{0, 40}};  // a later completion must not move the first
  b.updated_ns = 2;
  Status again = catalog_->RecordBatch(b);
  ASSERT_TRUE(again.ok()) << again.ToString();
  EXPECT_EQ(catalog_->ListPoints(s, 0, UINT64_MAX).value().size(), 1u);
  EXPECT_EQ(catalog_->ListDisks(s).value()[0].resync_complete_seq, 39u);
  EXPECT_EQ(catalog_->GetCheckpoint(s, 0).value()->updated_ns, 2);
}

// Resync on demand: the disks become pending again, all or none, and their
// first completion seq survives the repeated resync's completion (the points
// after it stay reachable: the repeated resync keeps before-images).
TEST_F(CatalogTest, RequireResyncMarksDisksPendingAndKeepsTheirFirstCompletion) {
  Open();
  const uint64_t s = AddStream("vm1");
  for (uint32_t i : {0u, 1u}) {
    DiskRow d = Disk(s, i, "naa." + std::to_string(i + 1));
    d.resync_state = ResyncState::kRunning;
    ASSERT_TRUE(catalog_->AddDisk(d).ok());
  }
  BatchRecord b = Batch(s, 40);
  b.resync_completed = {{0, 39}, {1, 40}};
  ASSERT_TRUE(catalog_->RecordBatch(b).ok());

  EXPECT_EQ(catalog_->RequireResync(s, {0, 7}).code(), Errc::kNotFound);  // no disk 7: nothing changes
  EXPECT_EQ(catalog_->ListDisks(s).value()[0].resync_state, ResyncState::kComplete);

  ASSERT_TRUE(catalog_->RequireResync(s, {0}).ok());
  auto disks = catalog_->ListDisks(s).value();
  EXPECT_EQ(disks[0].resync_state, ResyncState::kPending);
  EXPECT_EQ(disks[0].resync_complete_seq, 39u);
  EXPECT_EQ(disks[1].resync_state, ResyncState::kComplete);

  BatchRecord again = Batch(s, 90);
  again.resync_completed = {{0, 90}};
  ASSERT_TRUE(catalog_->RecordBatch(again).ok());
  disks = catalog_->ListDisks(s).value();
  EXPECT_EQ(disks[0].resync_state, ResyncState::kComplete);
  EXPECT_EQ(disks[0].resync_complete_seq, 39u);
}

// All or nothing: a row that cannot be stored leaves the catalog as it was
// before the batch, checkpoint included (invariant 3: a checkpoint never
// passes a point that is not stored).
TEST_F(CatalogTest, RecordBatchWithABadRowStoresNothing) {
  Open();
  const uint64_t s = AddStream("vm1");
  ASSERT_TRUE(catalog_->AddDisk(Disk(s, 0, "naa.1")).ok());
  ASSERT_TRUE(catalog_->RecordBatch(Batch(s, 10)).ok());

  BatchRecord b = Batch(s, 20);
  b.points.push_back(Point(s, 15, 150, TagKind::kApp, "good"));
  b.points.push_back(Point(s, 20, 200, TagKind::kApp, ""));  // no name: refused
  Status bad = catalog_->RecordBatch(b);
  EXPECT_EQ(bad.code(), Errc::kInvalidArgument) << bad.ToString();
  EXPECT_TRUE(catalog_->ListPoints(s, 0, UINT64_MAX).value().empty());
  EXPECT_EQ(catalog_->GetCheckpoint(s, 0).value()->applied_seq, 10u);
  EXPECT_EQ(catalog_->GetCheckpoint(s, 1).value()->applied_seq, 10u);

  // The connection is usable afterwards (the transaction was rolled back).
  b.points.pop_back();
  ASSERT_TRUE(catalog_->RecordBatch(b).ok());
  EXPECT_EQ(catalog_->GetCheckpoint(s, 1).value()->applied_seq, 20u);
  EXPECT_EQ(catalog_->RecordBatch(Batch(s + 7, 1)).code(), Errc::kNotFound);
}

TEST_F(CatalogTest, PolicyDefaultsUntilSet) {
  Open();
  const uint64_t s = AddStream("vm1");
  auto p = catalog_->GetPolicy(s);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p.value().stream, s);
  EXPECT_EQ(p.value().window_ns, 24 * kHour);
  EXPECT_EQ(p.value().rpo_threshold_ns, 15 * kMinute);
  EXPECT_EQ(p.value().app_frequency_ns, 60 * kMinute);
  EXPECT_EQ(p.value().full_action, FullAction::kPrune);

  PolicyRow set;
  set.stream = s;
  set.window_ns = 48 * kHour;
  set.rpo_threshold_ns = 5 * kMinute;
  set.app_frequency_ns = 30 * kMinute;
  set.full_action = FullAction::kStop;
  ASSERT_TRUE(catalog_->SetPolicy(set).ok());
  set.window_ns = 72 * kHour;  // upsert
  ASSERT_TRUE(catalog_->SetPolicy(set).ok());
  p = catalog_->GetPolicy(s);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.value().window_ns, 72 * kHour);
  EXPECT_EQ(p.value().rpo_threshold_ns, 5 * kMinute);
  EXPECT_EQ(p.value().app_frequency_ns, 30 * kMinute);
  EXPECT_EQ(p.value().full_action, FullAction::kStop);
}

TEST_F(CatalogTest, PolicyOfAMissingStreamIsNotFound) {
  Open();
  EXPECT_EQ(catalog_->GetPolicy(5).status().code(), Errc::kNotFound);
  PolicyRow p;
  p.stream = 5;
  EXPECT_EQ(catalog_->SetPolicy(p).code(), Errc::kNotFound);
  p.stream = AddStream("vm1");
  p.window_ns = 0;
  EXPECT_EQ(catalog_->SetPolicy(p).code(), Errc::kInvalidArgument);
}

TEST_F(CatalogTest, RemoveStreamCascadesToEveryTable) {
  Open();
  const uint64_t s = AddStream("vm1");
  const uint64_t keep = AddStream("vm2");
  for (uint64_t id : {s, keep}) {
    const std::string n = std::to_string(id);
    ASSERT_TRUE(catalog_->AddDisk(Disk(id, 0, "naa." + n)).ok());
    ASSERT_TRUE(catalog_->UpsertSegment(Segment(id, SegmentKind::kUndo, 1, 1, 9)).ok());
    ASSERT_TRUE(catalog_->AddPoint(Point(id, 5, 50, TagKind::kApp, "p", "g")).ok());
    ASSERT_TRUE(catalog_->SetCheckpoint(CheckpointRow{id, 0, 9, 90, 1}).ok());
    PolicyRow pol;
    pol.stream = id;
    ASSERT_TRUE(catalog_->SetPolicy(pol).ok());
  }
  ASSERT_TRUE(catalog_->RemoveStream(s).ok());

  EXPECT_FALSE(catalog_->GetStream(s).value().has_value());
  EXPECT_TRUE(catalog_->ListDisks(s).value().empty());
  EXPECT_FALSE(catalog_->FindDiskByTarget("naa." + std::to_string(s)).value().has_value());
  EXPECT_TRUE(catalog_->ListSegments(s, SegmentKind::kUndo).value().empty());
  EXPECT_TRUE(catalog_->ListPoints(s).value().empty());
  EXPECT_FALSE(catalog_->GetCheckpoint(s, 0).value().has_value());
  EXPECT_EQ(catalog_->GetPolicy(s).status().code(), Errc::kNotFound);
  RawDb raw(path_);
  for (const char* table : {"disks", "segments", "points", "checkpoints", "policies"}) {
    EXPECT_EQ(raw.Query(std::string("SELECT count(*) FROM ") + table +
                        " WHERE stream = " + std::to_string(s)),
              std::vector<std::string>{"0"})
        << table;
  }
  // The other stream keeps everything.
  EXPECT_EQ(catalog_->ListDisks(keep).value().size(), 1u);
  EXPECT_EQ(catalog_->ListSegments(keep, SegmentKind::kUndo).value().size(), 1u);
  EXPECT_EQ(catalog_->PointsWithGroupTag("g").value().size(), 1u);
  EXPECT_TRUE(catalog_->GetCheckpoint(keep, 0).value().has_value());

  EXPECT_EQ(catalog_->RemoveStream(s).code(), Errc::kNotFound);
}

TEST_F(CatalogTest, ReopenPreservesEverything) {
  Open();
  StreamRow sr;
  sr.name = "vm1";
  sr.group = "grp";
  sr.created_ns = 77;
  const uint64_t s = catalog_->AddStream(sr).value();
  ASSERT_TRUE(catalog_->SetStreamState(s, StreamState::kPaused, "operator").ok());
  ASSERT_TRUE(catalog_->AddDisk(Disk(s, 0, "naa.1")).ok());
  ASSERT_TRUE(catalog_->UpsertSegment(Segment(s, SegmentKind::kWal, 3, 1, 50)).ok());
  ASSERT_TRUE(catalog_->AddPoint(Point(s, 50, 500, TagKind::kUser, "before-upgrade", "g9")).ok());
  ASSERT_TRUE(catalog_->SetCheckpoint(CheckpointRow{s, 0, 50, 500, 501}).ok());
  PolicyRow pol;
  pol.stream = s;
  pol.full_action = FullAction::kStop;
  pol.window_ns = kHour;
  ASSERT_TRUE(catalog_->SetPolicy(pol).ok());

  Open();  // closes and reopens
  auto st = catalog_->GetStream(s).value();
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->name, "vm1");
  EXPECT_EQ(st->group, "grp");
  EXPECT_EQ(st->created_ns, 77);
  EXPECT_EQ(st->state, StreamState::kPaused);
  EXPECT_EQ(st->error, "operator");
  EXPECT_EQ(catalog_->ListDisks(s).value().at(0).target_id, "naa.1");
  EXPECT_EQ(catalog_->ListSegments(s, SegmentKind::kWal).value().at(0).last_seq, 50u);
  auto p = catalog_->FindPoint(s, "before-upgrade").value();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->group_tag_id, "g9");
  EXPECT_EQ(p->kind, TagKind::kUser);
  EXPECT_EQ(catalog_->GetCheckpoint(s, 0).value()->updated_ns, 501);
  EXPECT_EQ(catalog_->GetPolicy(s).value().full_action, FullAction::kStop);
  EXPECT_EQ(catalog_->GetPolicy(s).value().window_ns, kHour);
  EXPECT_EQ(catalog_->GetPolicy(s).value().rpo_threshold_ns, 15 * kMinute);
}

// A catalog of schema version 1 (as mt-agent wrote it before disks had
// target_blank; its tables below are that version's, frozen) is brought to
// version 2 by a read-write open, keeping every row; its disks were not
// declared blank. A read-only open of it first says to start mt-agent.
TEST_F(CatalogTest, ASchemaVersion1CatalogIsMigratedKeepingItsRows) {
  std::ofstream(path_, std::ios::binary).close();
  {
    RawDb raw(path_);
    raw.Exec(R"sql(
      PRAGMA journal_mode = WAL;
      CREATE TABLE streams (id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE CHECK (length(name) > 0), group_name TEXT NOT NULL DEFAULT '',
        created_ns INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('protected', 'paused', 'failed', 'committed')),
        error TEXT NOT NULL DEFAULT '');
      CREATE TABLE disks (stream INTEGER NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
        disk INTEGER NOT NULL CHECK (disk BETWEEN 0 AND 4294967295),
        target_id TEXT NOT NULL UNIQUE CHECK (length(target_id) > 0),
        target_device TEXT NOT NULL DEFAULT '', source_disk_id TEXT NOT NULL DEFAULT '',
        size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
        block_size INTEGER NOT NULL CHECK (block_size BETWEEN 512 AND 65536
                                           AND (block_size & (block_size - 1)) = 0),
        resync_state TEXT NOT NULL CHECK (resync_state IN ('pending', 'running', 'complete')),
        resync_complete_seq INTEGER NOT NULL DEFAULT 0 CHECK (resync_complete_seq >= 0),
        PRIMARY KEY (stream, disk)) WITHOUT ROWID;
      CREATE TABLE segments (stream INTEGER NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('wal', 'undo')), number INTEGER NOT NULL CHECK (number >= 0),
        file TEXT NOT NULL, first_seq INTEGER NOT NULL CHECK (first_seq >= 0),
        last_seq INTEGER NOT NULL CHECK (last_seq >= 0), first_time_ns INTEGER NOT NULL,
        last_time_ns INTEGER NOT NULL, records INTEGER NOT NULL CHECK (records >= 0),
        bytes INTEGER NOT NULL CHECK (bytes >= 0),
        logical_bytes INTEGER NOT NULL CHECK (logical_bytes >= 0),
        sealed INTEGER NOT NULL CHECK (sealed IN (0, 1)),
        PRIMARY KEY (stream, kind, number)) WITHOUT ROWID;
      CREATE TABLE points (stream INTEGER NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL CHECK (seq >= 0), time_ns INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('crash', 'app', 'user')),
        name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
        group_tag_id TEXT NOT NULL DEFAULT '', UNIQUE (stream, name));
      CREATE INDEX points_by_seq ON points (stream, seq);
      CREATE INDEX points_by_kind_seq ON points (stream, kind, seq);
      CREATE INDEX points_by_time ON points (stream, time_ns, seq);
      CREATE INDEX points_by_group_tag ON points (group_tag_id, stream, seq);
      CREATE TABLE checkpoints (stream INTEGER NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
        disk INTEGER NOT NULL CHECK (disk BETWEEN 0 AND 4294967295),
        applied_seq INTEGER NOT NULL CHECK (applied_seq >= 0), applied_time_ns INTEGER NOT NULL,
        updated_ns INTEGER NOT NULL, PRIMARY KEY (stream, disk)) WITHOUT ROWID;
      CREATE TABLE policies (stream INTEGER PRIMARY KEY REFERENCES streams (id) ON DELETE CASCADE,
        window_ns INTEGER NOT NULL CHECK (window_ns > 0),
        rpo_threshold_ns INTEGER NOT NULL CHECK (rpo_threshold_ns > 0),
        app_frequency_ns INTEGER NOT NULL CHECK (app_frequency_ns >= 0),
        full_action TEXT NOT NULL CHECK (full_action IN ('prune', 'stop')));
      INSERT INTO streams VALUES (1, 'vm1', '', 5, 'protected', '');
      INSERT INTO disks VALUES (1, 0, 'naa.6000c2901', '/dev/sdb', 'scsi0:0', 1048576, 512,
                                'complete', 42);
      PRAGMA user_version = 1;
    )sql");
  }
  auto ro = Catalog::OpenReadOnly(path_);
  ASSERT_FALSE(ro.ok());
  EXPECT_EQ(ro.status().code(), Errc::kUnavailable);
  EXPECT_THAT(ro.status().message(), HasSubstr("start mt-agentd"));

  Open();
  EXPECT_EQ(RawDb(path_).Query("PRAGMA user_version"), std::vector<std::string>{"2"});
  auto disks = catalog_->ListDisks(1);
  ASSERT_TRUE(disks.ok()) << disks.status().ToString();
  ASSERT_EQ(disks->size(), 1u);
  EXPECT_EQ((*disks)[0].target_id, "naa.6000c2901");
  EXPECT_EQ((*disks)[0].resync_complete_seq, 42u);
  EXPECT_FALSE((*disks)[0].target_blank);
  // The new column takes new rows.
  DiskRow d = Disk(1, 1, "naa.6000c2902");
  d.target_blank = true;
  ASSERT_TRUE(catalog_->AddDisk(d).ok());
  EXPECT_TRUE(catalog_->FindDiskByTarget("naa.6000c2902").value()->target_blank);
}

TEST_F(CatalogTest, NewerSchemaVersionIsRefused) {
  Open();
  catalog_.reset();
  RawDb(path_).Exec("PRAGMA user_version = 3");
  const std::string want = "catalog " + path_ +
                           " has schema version 3, newer than this mt-agent understands (2): "
                           "upgrade mt-agent";
  auto rw = Catalog::Open(path_);
  ASSERT_FALSE(rw.ok());
  EXPECT_EQ(rw.status().code(), Errc::kUnavailable);
  EXPECT_EQ(rw.status().message(), want);
  auto ro = Catalog::OpenReadOnly(path_);
  ASSERT_FALSE(ro.ok());
  EXPECT_EQ(ro.status().code(), Errc::kUnavailable);
  EXPECT_EQ(ro.status().message(), want);
  // Nothing was changed by the refused open.
  EXPECT_EQ(RawDb(path_).Query("PRAGMA user_version"), std::vector<std::string>{"3"});
}

TEST_F(CatalogTest, GarbageFileIsCorruption) {
  std::mt19937 rng(1234);
  std::string bytes(16384, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  std::ofstream(path_, std::ios::binary) << bytes;
  for (bool read_only : {false, true}) {
    auto c = read_only ? Catalog::OpenReadOnly(path_) : Catalog::Open(path_);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), Errc::kCorruption) << c.status().ToString();
    EXPECT_THAT(c.status().message(), HasSubstr(path_));
    EXPECT_THAT(c.status().message(), HasSubstr("not a database"));
  }
}

TEST_F(CatalogTest, ForeignDatabaseIsCorruption) {
  // RawDb opens without SQLITE_OPEN_CREATE: make the file first.
  std::ofstream(path_, std::ios::binary).close();
  RawDb(path_).Exec("CREATE TABLE recipes (name TEXT)");
  auto c = Catalog::Open(path_);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Errc::kCorruption);
  EXPECT_THAT(c.status().message(), HasSubstr("catalog " + path_ + " is not an mt-agent catalog"));
  EXPECT_EQ(Catalog::OpenReadOnly(path_).status().code(), Errc::kCorruption);
}

TEST_F(CatalogTest, TablesThatAreNotOursAreCorruption) {
  Open();
  catalog_.reset();
  RawDb(path_).Exec("DROP TABLE checkpoints; CREATE TABLE checkpoints (stream INTEGER)");
  for (bool read_only : {false, true}) {
    auto c = read_only ? Catalog::OpenReadOnly(path_) : Catalog::Open(path_);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), Errc::kCorruption);
    EXPECT_THAT(c.status().message(), HasSubstr("checkpoints"));
  }
}

TEST_F(CatalogTest, ViewsAndTriggersAreRefused) {
  Open();
  catalog_.reset();
  RawDb(path_).Exec("CREATE TRIGGER t AFTER INSERT ON points BEGIN DELETE FROM streams; END");
  auto c = Catalog::Open(path_);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Errc::kCorruption);
  EXPECT_THAT(c.status().message(), HasSubstr("triggers"));
}

TEST_F(CatalogTest, LoadedRowWithUnknownKindIsCorruptionNamingTheTable) {
  Open();
  const uint64_t s = AddStream("vm1");
  ASSERT_TRUE(catalog_->AddPoint(Point(s, 1, 1, TagKind::kApp, "ok")).ok());
  ASSERT_TRUE(catalog_->UpsertSegment(Segment(s, SegmentKind::kWal, 1, 1, 2)).ok());
  {
    RawDb raw(path_);
    raw.Exec("PRAGMA ignore_check_constraints = ON");
    raw.Exec("UPDATE points SET kind = 'weird'");
    raw.Exec("UPDATE segments SET kind = 'wal', sealed = 7");
    raw.Exec("UPDATE streams SET state = 'asleep'");
  }
  auto points = catalog_->ListPoints(s);
  ASSERT_FALSE(points.ok());
  EXPECT_EQ(points.status().code(), Errc::kCorruption);
  EXPECT_THAT(points.status().message(), HasSubstr("table points"));
  EXPECT_THAT(points.status().message(), HasSubstr("kind"));
  EXPECT_THAT(points.status().message(), HasSubstr("'weird'"));
  EXPECT_EQ(catalog_->FindPoint(s, "ok").status().code(), Errc::kCorruption);
  auto segments = catalog_->ListSegments(s, SegmentKind::kWal);
  EXPECT_EQ(segments.status().code(), Errc::kCorruption);
  EXPECT_THAT(segments.status().message(), HasSubstr("table segments: column sealed"));
  auto streams = catalog_->ListStreams();
  EXPECT_EQ(streams.status().code(), Errc::kCorruption);
  EXPECT_THAT(streams.status().message(), HasSubstr("table streams"));
}

TEST_F(CatalogTest, LoadedRowWithWrongTypeOrNegativeSeqIsCorruption) {
  Open();
  const uint64_t s = AddStream("vm1");
  ASSERT_TRUE(catalog_->AddPoint(Point(s, 1, 1, TagKind::kApp, "a")).ok());
  ASSERT_TRUE(catalog_->SetCheckpoint(CheckpointRow{s, 0, 1, 1, 1}).ok());
  {
    RawDb raw(path_);
    raw.Exec("PRAGMA ignore_check_constraints = ON");
    raw.Exec("UPDATE points SET time_ns = 'yesterday'");
    raw.Exec("UPDATE checkpoints SET applied_seq = -5");
  }
  auto p = catalog_->ListPoints(s);
  EXPECT_EQ(p.status().code(), Errc::kCorruption);
  EXPECT_THAT(p.status().message(), HasSubstr("column time_ns is not an integer"));
  auto c = catalog_->GetCheckpoint(s, 0);
  EXPECT_EQ(c.status().code(), Errc::kCorruption);
  EXPECT_THAT(c.status().message(), HasSubstr("column applied_seq is negative"));
}

TEST_F(CatalogTest, OpenReadOnlyOfAMissingFileIsNotFoundAndCreatesNothing) {
  auto c = Catalog::OpenReadOnly(path_);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Errc::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr(path_));
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(CatalogTest, OpenReadOnlyOfAnEmptyFileIsNotFound) {
  std::ofstream(path_, std::ios::binary).close();
  auto c = Catalog::OpenReadOnly(path_);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Errc::kNotFound) << c.status().ToString();
  EXPECT_EQ(std::filesystem::file_size(path_), 0u);  // not initialized by a reader
}

TEST_F(CatalogTest, ReadOnlyCannotWrite) {
  Open();
  const uint64_t s = AddStream("vm1");
  catalog_.reset();
  auto ro = Catalog::OpenReadOnly(path_);
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  Catalog& c = *ro.value();
  EXPECT_EQ(c.ListStreams().value().size(), 1u);
  StreamRow row;
  row.name = "vm2";
  auto add = c.AddStream(row);
  ASSERT_FALSE(add.ok());
  EXPECT_EQ(add.status().code(), Errc::kPermissionDenied) << add.status().ToString();
  EXPECT_EQ(c.SetCheckpoint(CheckpointRow{s, 0, 1, 1, 1}).code(), Errc::kPermissionDenied);
  EXPECT_EQ(c.RemoveStream(s).code(), Errc::kPermissionDenied);
  EXPECT_EQ(c.ListStreams().value().size(), 1u);
}

TEST_F(CatalogTest, ReaderSeesWhatAnOpenWriterCommitted) {
  Open();
  const uint64_t s = AddStream("vm1");
  auto ro = Catalog::OpenReadOnly(path_);
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  ASSERT_TRUE(catalog_->AddPoint(Point(s, 3, 30, TagKind::kApp, "p3")).ok());
  auto latest = ro.value()->LatestPoint(s, TagKind::kApp);
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  ASSERT_TRUE(latest.value().has_value());
  EXPECT_EQ(latest.value()->name, "p3");
  ASSERT_TRUE(catalog_->SetCheckpoint(CheckpointRow{s, 0, 3, 30, 31}).ok());
  EXPECT_EQ(ro.value()->GetCheckpoint(s, 0).value()->applied_seq, 3u);
}

TEST_F(CatalogTest, ConcurrentCallsFromSeveralThreadsAllLand) {
  Open();
  const uint64_t s = AddStream("vm1");
  constexpr int kThreads = 4, kEach = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const uint64_t seq = static_cast<uint64_t>(t * kEach + i + 1);
        if (!catalog_->AddPoint(Point(s, seq, 0, TagKind::kCrash, "p" + std::to_string(seq)))
                 .ok() ||
            !catalog_->SetCheckpoint(CheckpointRow{s, static_cast<uint32_t>(t), seq, 0, 0}).ok() ||
            !catalog_->LatestPoint(s, TagKind::kCrash).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(catalog_->ListPoints(s).value().size(), size_t{kThreads * kEach});
}

// The acceptance check for "lookups by seq, time and tag are indexed, not
// scans": the plan of every lookup statement the catalog runs uses an index.
TEST_F(CatalogTest, LookupsUseAnIndexNotAScan) {
  Open();
  // Some rows so the planner has something to plan for.
  const uint64_t s = AddStream("vm1");
  for (uint64_t i = 1; i <= 20; ++i) {
    ASSERT_TRUE(catalog_
                    ->AddPoint(Point(s, i, static_cast<int64_t>(i), TagKind::kCrash,
                                     "p" + std::to_string(i), "g"))
                    .ok());
  }
  RawDb raw(path_);
  const auto queries = internal::CatalogIndexedQueries();
  ASSERT_GE(queries.size(), 10u);
  for (const internal::CatalogQuery& q : queries) {
    const std::vector<std::string> plan = raw.Query(std::string("EXPLAIN QUERY PLAN ") + q.sql);
    std::string text;
    for (const std::string& row : plan) text += row + "\n";
    EXPECT_THAT(text, ::testing::ContainsRegex("USING (COVERING INDEX|INDEX|PRIMARY KEY|INTEGER "
                                               "PRIMARY KEY)"))
        << q.what << "\n"
        << text;
    EXPECT_THAT(text, Not(HasSubstr("SCAN"))) << q.what << "\n" << text;
  }
  // The ones the issue names explicitly, by the index they must use.
  auto plan_of = [&](const char* what) {
    for (const auto& q : queries) {
      if (std::string(q.what) == what) {
        std::string text;
        for (const auto& row : raw.Query(std::string("EXPLAIN QUERY PLAN ") + q.sql)) text += row;
        return text;
      }
    }
    ADD_FAILURE() << "no query " << what;
    return std::string();
  };
  EXPECT_THAT(plan_of("LatestPoint (by seq)"), HasSubstr("points_by_seq"));
  EXPECT_THAT(plan_of("ListPoints (by seq range)"), HasSubstr("points_by_seq"));
  EXPECT_THAT(plan_of("LatestPoint (by kind and seq)"), HasSubstr("points_by_kind_seq"));
  EXPECT_THAT(plan_of("LatestPointAtTime (by time)"), HasSubstr("points_by_time"));
  EXPECT_THAT(plan_of("PointsWithGroupTag"), HasSubstr("points_by_group_tag"));
  EXPECT_THAT(plan_of("FindPoint (by name)"), HasSubstr("sqlite_autoindex_points"));
  EXPECT_THAT(plan_of("ListSegments"), HasSubstr("PRIMARY KEY"));
}

TEST(CatalogFullAction, NamesRoundTrip) {
  for (FullAction a : {FullAction::kPrune, FullAction::kStop}) {
    auto parsed = ParseFullAction(FullActionName(a));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(parsed.value(), a);
  }
  EXPECT_EQ(ParseFullAction("panic").status().code(), Errc::kInvalidArgument);
}


// Several changes as one transaction: another reader sees none of them until
// the body returns, then all of them.
TEST_F(CatalogTest, TransactCommitsItsChangesTogether) {
  Open();
  const uint64_t s = AddStream("vm1");
  ASSERT_TRUE(catalog_->AddDisk(Disk(s, 0, "naa.1")).ok());
  ASSERT_TRUE(catalog_->UpsertSegment(Segment(s, SegmentKind::kUndo, 1, 1, 10)).ok());
  ASSERT_TRUE(catalog_->UpsertSegment(Segment(s, SegmentKind::kUndo, 2, 11, 20)).ok());
  ASSERT_TRUE(catalog_->AddPoint(Point(s, 15, 150, TagKind::kApp, "p15")).ok());
  ASSERT_TRUE(catalog_->SetCheckpoint(CheckpointRow{s, 0, 20, 200, 1}).ok());
  auto reader = Catalog::OpenReadOnly(path_);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();

  Status st = catalog_->Transact("test", [&](Catalog::Transaction& t) -> Status {
    MT_RETURN_IF_ERROR(t.RemovePointsAfter(s, 10));
    MT_RETURN_IF_ERROR(t.RemoveSegment(s, SegmentKind::kUndo, 2));
    MT_RETURN_IF_ERROR(t.SetCheckpoint(CheckpointRow{s, 0, 10, 100, 2}));
    // Not committed yet: the other connection still sees the old rows.
    EXPECT_EQ((*reader)->ListSegments(s, SegmentKind::kUndo).value().size(), 2u);
    EXPECT_EQ((*reader)->ListPoints(s).value().size(), 1u);
    EXPECT_EQ((*reader)->GetCheckpoint(s, 0).value()->applied_seq, 20u);
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ((*reader)->ListSegments(s, SegmentKind::kUndo).value().size(), 1u);
  EXPECT_TRUE((*reader)->ListPoints(s).value().empty());
  EXPECT_EQ((*reader)->GetCheckpoint(s, 0).value()->applied_seq, 10u);
}

// A body that fails (here after three changes) leaves the catalog as it was,
// and the catalog is usable afterwards.
TEST_F(CatalogTest, TransactThatFailsChangesNothing) {
  Open();
  const uint64_t s = AddStream("vm1");
  ASSERT_TRUE(catalog_->AddDisk(Disk(s, 0, "naa.1")).ok());
  ASSERT_TRUE(catalog_->UpsertSegment(Segment(s, SegmentKind::kWal, 1, 1, 10)).ok());
  ASSERT_TRUE(catalog_->AddPoint(Point(s, 5, 50, TagKind::kApp, "p5")).ok());
  ASSERT_TRUE(catalog_->SetCheckpoint(CheckpointRow{s, 0, 10, 100, 1}).ok());

  Status st = catalog_->Transact("test", [&](Catalog::Transaction& t) -> Status {
    MT_RETURN_IF_ERROR(t.RemoveSegment(s, SegmentKind::kWal, 1));
    MT_RETURN_IF_ERROR(t.RemovePointsBefore(s, 9));
    MT_RETURN_IF_ERROR(t.SetCheckpoint(CheckpointRow{s, 0, 3, 30, 2}));
    return t.UpsertSegment(Segment(s + 9, SegmentKind::kWal, 1, 1, 1));  // no such stream
  });
  EXPECT_EQ(st.code(), Errc::kNotFound) << st.ToString();
  EXPECT_EQ(catalog_->ListSegments(s, SegmentKind::kWal).value().size(), 1u);
  EXPECT_EQ(catalog_->ListPoints(s).value().size(), 1u);
  EXPECT_EQ(catalog_->GetCheckpoint(s, 0).value()->applied_seq, 10u);

  st = catalog_->Transact("test", [&](Catalog::Transaction& t) {
    return t.RemoveSegment(s, SegmentKind::kWal, 1);
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(catalog_->ListSegments(s, SegmentKind::kWal).value().empty());
}

// The stream's checkpoint is its lowest disk row; a disk without a row
// counts as nothing applied.
TEST_F(CatalogTest, StreamCheckpointIsTheLowestOfItsDisks) {
  Open();
  const uint64_t s = AddStream("vm1");
  EXPECT_FALSE(catalog_->StreamCheckpoint(s).value().has_value());       // no disks
  EXPECT_FALSE(catalog_->StreamCheckpoint(s + 5).value().has_value());   // no stream
  for (uint32_t d = 0; d < 3; ++d)
    ASSERT_TRUE(catalog_->AddDisk(Disk(s, d, "naa." + std::to_string(d))).ok());
  ASSERT_TRUE(catalog_->SetCheckpoint(CheckpointRow{s, 0, 50, 500, 1}).ok());
  ASSERT_TRUE(catalog_->SetCheckpoint(CheckpointRow{s, 1, 30, 300, 1}).ok());
  auto cp = catalog_->StreamCheckpoint(s).value();
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->applied_seq, 0u);  // disk 2 has no row
  EXPECT_EQ(cp->disk, 2u);

  ASSERT_TRUE(catalog_->SetCheckpoint(CheckpointRow{s, 2, 40, 400, 1}).ok());
  cp = catalog_->StreamCheckpoint(s).value();
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->applied_seq, 30u);
  EXPECT_EQ(cp->applied_time_ns, 300);
  EXPECT_EQ(cp->disk, 1u);
}

}  // namespace
}  // namespace mt::retention
