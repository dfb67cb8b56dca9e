// Fuzzes the catalog loader: any bytes as a catalog file, opened read-only, then
// every lookup and listing on streams 1..3 (and on the names the listings
// return) must give rows or a clean error — never a crash, a leak or a hang.
//
// Seed: tests/fuzz/corpus-seeds/catalog/ (a small valid catalog, written by
// make_catalog_seed).
#include <sqlite3.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "retention/catalog.h"

using namespace mt;
using namespace mt::retention;

namespace {

std::string g_dir;
std::string g_path;

// Bounds the work SQLite may do for one input: a hostile file could describe a
// huge or looping structure. The catalog's own limits (value length, defensive
// mode, schema check) come first; this is the backstop.
unsigned g_progress_calls = 0;
constexpr unsigned kMaxProgressCalls = 20000;  // x 1000 VM steps per input

int Progress(void*) {
  return ++g_progress_calls > kMaxProgressCalls ? 1 : 0;
}

// Runs for every connection the catalog opens.
int InstallLimits(sqlite3* db, const char**, const struct sqlite3_api_routines*) {
  sqlite3_progress_handler(db, 1000, &Progress, nullptr);
  return SQLITE_OK;
}

void RemoveFiles() {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) unlink((g_path + suffix).c_str());
}

void Cleanup() {
  RemoveFiles();
  rmdir(g_dir.c_str());
}

void Exercise(Catalog& c) {
  (void)c.ListStreams();
  (void)c.FindStream("vm1");
  (void)c.FindDiskByTarget("naa.6000c2900000000000000000000000a1");
  (void)c.PointsWithGroupTag("g-1");
  for (uint64_t s = 1; s <= 3; ++s) {
    (void)c.GetStream(s);
    (void)c.ListDisks(s);
    (void)c.ListSegments(s, SegmentKind::kWal);
    (void)c.ListSegments(s, SegmentKind::kUndo);
    (void)c.ListPoints(s);
    (void)c.ListPoints(s, 5, 50);
    (void)c.FindPoint(s, "hourly-1");
    (void)c.LatestPoint(s, std::nullopt);
    (void)c.LatestPoint(s, TagKind::kApp);
    (void)c.LatestPoint(s, TagKind::kCrash, 20);
    (void)c.LatestPointAtTime(s, 1'000'000);
    (void)c.LatestPointAtTime(s, INT64_MAX, TagKind::kUser);
    (void)c.GetCheckpoint(s, 0);
    (void)c.GetCheckpoint(s, 1);
    (void)c.GetPolicy(s);
  }
  // Follow what the file says exists.
  auto streams = c.ListStreams();
  if (streams.ok()) {
    for (const StreamRow& s : streams.value()) (void)c.FindStream(s.name);
  }
  auto disks = c.ListDisks(1);
  if (disks.ok()) {
    for (const DiskRow& d : disks.value()) (void)c.FindDiskByTarget(d.target_id);
  }
  auto points = c.ListPoints(1);
  if (points.ok()) {
    for (const PointRow& p : points.value()) {
      (void)c.FindPoint(p.stream, p.name);
      (void)c.PointsWithGroupTag(p.group_tag_id);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string tmpl = std::filesystem::temp_directory_path().string() + "/mt-fuzz-catalog-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    perror("mkdtemp");
    abort();
  }
  g_dir = tmpl;
  g_path = g_dir + "/catalog.db";
  atexit(&Cleanup);
#if SQLITE_VERSION_NUMBER >= 3031000
  sqlite3_hard_heap_limit64(256 << 20);
#endif
  sqlite3_auto_extension(reinterpret_cast<void (*)(void)>(&InstallLimits));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  RemoveFiles();  // no -wal/-shm/-journal of a previous input may leak into this one
  FILE* f = fopen(g_path.c_str(), "wbe");
  if (f == nullptr || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
  g_progress_calls = 0;
  auto catalog = Catalog::OpenReadOnly(g_path);
  if (catalog.ok()) Exercise(*catalog.value());
  return 0;
}
