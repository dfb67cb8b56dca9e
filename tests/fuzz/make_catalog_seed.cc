// Writes a small valid catalog, the seed of fuzz_catalog_load:
//   make_catalog_seed tests/fuzz/corpus-seeds/catalog/small.db
// Every table has rows, with the names fuzz_catalog_load looks up. The file is
// then compacted (rollback journal, 512-byte pages, VACUUM) to keep the seed,
// and with it libFuzzer's default max_len, small.
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "retention/catalog.h"

using namespace mt;
using namespace mt::retention;

namespace {

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUT.db\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  for (const char* suffix : {"", "-wal", "-shm"}) unlink((path + suffix).c_str());
  {
    auto opened = Catalog::Open(path);
    Check(opened.status(), "open");
    Catalog& c = *opened.value();
    for (int i = 1; i <= 2; ++i) {
      StreamRow s;
      s.name = "vm" + std::to_string(i);
      s.group = "erp";
      s.created_ns = 1'700'000'000'000'000'000 + i;
      auto id = c.AddStream(s);
      Check(id.status(), "add stream");
      DiskRow d;
      d.stream = id.value();
      d.disk = 0;
      d.target_id = "naa.6000c2900000000000000000000000a" + std::to_string(i);
      d.target_device = "/dev/sdb";
      d.source_disk_id = "scsi0:0";
      d.size_bytes = 10ull << 30;
      d.resync_state = retention::ResyncState::kComplete;
      d.resync_complete_seq = 1;
      Check(c.AddDisk(d), "add disk");
      for (uint64_t n = 1; n <= 2; ++n) {
        SegmentRow g;
        g.stream = id.value();
        g.kind = n == 1 ? SegmentKind::kUndo : SegmentKind::kWal;
        g.number = n;
        const std::string kind = SegmentKindName(g.kind);
        g.file = "streams/" + std::to_string(id.value()) + "/" + kind + "/" + kind + "-" +
                 std::to_string(n) + ".seg";
        g.first_seq = n * 10;
        g.last_seq = n * 10 + 9;
        g.first_time_ns = 1000 * n;
        g.last_time_ns = 1000 * n + 900;
        g.records = 10;
        g.bytes = 4096 + 10 * 4160;
        g.logical_bytes = 10 * 4096;
        g.sealed = n == 1;
        Check(c.UpsertSegment(g), "add segment");
      }
      const TagKind kinds[] = {TagKind::kApp, TagKind::kCrash, TagKind::kUser};
      for (int k = 0; k < 3; ++k) {
        PointRow p;
        p.stream = id.value();
        p.seq = 10 + 5 * k;
        p.time_ns = 1000 + 500 * k;
        p.kind = kinds[k];
        p.name = k == 0 ? "hourly-1" : "p" + std::to_string(k);
        p.group_tag_id = k == 0 ? "g-1" : "";
        Check(c.AddPoint(p), "add point");
      }
      Check(c.SetCheckpoint(CheckpointRow{id.value(), 0, 19, 1900, 2000}), "set checkpoint");
      PolicyRow pol;
      pol.stream = id.value();
      pol.full_action = i == 1 ? FullAction::kPrune : FullAction::kStop;
      Check(c.SetPolicy(pol), "set policy");
    }
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK ||
      sqlite3_exec(db, "PRAGMA journal_mode = DELETE; PRAGMA page_size = 512; VACUUM;", nullptr,
                   nullptr, nullptr) != SQLITE_OK) {
    fprintf(stderr, "compact %s: %s\n", path.c_str(), sqlite3_errmsg(db));
    return 1;
  }
  sqlite3_close(db);
  return 0;
}
