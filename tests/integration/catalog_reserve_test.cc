// The catalog's space reserve on a real, full ext4 volume (issue 19: "the
// catalog never the thing that fails when space is short"). A catalog without
// the reserve fails with kNoSpace on a full volume; the store's catalog gives
// the reserve back and its writes go on; the journals' ingest then counts the
// missing reserve as needed space, and the reserve is taken back once the
// volume has room again.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "loop_device.h"
#include "mt/shim/clock.h"
#include "mt/shim/file_system.h"
#include "retention/catalog.h"
#include "retention/retention_janitor.h"
#include "retention/retention_store.h"

namespace mt {
namespace {

using retention::Catalog;
using retention::PointRow;
using retention::RetentionStore;

// Adds points named `prefix`0, 1, ... (each its own transaction, growing
// the catalog's WAL) until one fails or `count` are added; returns the
// first failure, or Ok.
Status AddPoints(Catalog& catalog, uint64_t stream, const std::string& prefix, int count) {
  for (int i = 0; i < count; ++i) {
    PointRow p;
    p.stream = stream;
    p.seq = static_cast<uint64_t>(i + 1);
    p.time_ns = i;
    p.kind = retention::TagKind::kApp;
    p.name = prefix + std::to_string(i) + std::string(200, 'x');  // rows of ~250 bytes
    Status s = catalog.AddPoint(p);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

TEST(CatalogReserve, AFullVolumeFailsNoCatalogWriteAndTheReserveComesBackWithSpace) {
  MT_REQUIRE_ROOT();
  test::LoopDevice loop(64ull << 20);
  ASSERT_FALSE(loop.path().empty()) << loop.error();
  // -m 0: no blocks reserved for root, so what the test fills is all there is.
  ASSERT_EQ(test::Run("mkfs.ext4 -q -F -m 0 " + loop.path()), 0);
  std::string dir = test::ScratchDir() + "/mt-reserve-XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  ASSERT_EQ(test::Run("mount " + loop.path() + " " + dir), 0);
  struct Unmount {
    std::string dir;
    ~Unmount() {
      test::Run("umount " + dir);
      rmdir(dir.c_str());
    }
  } unmount{dir};

  shim::FileSystem& fs = shim::PosixFileSystem();
  retention::StoreOptions o;
  o.root = dir;
  o.segment_bytes = 4u << 20;
  o.direct = false;
  auto store = RetentionStore::Open(fs, shim::SystemClock(), o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE(fs.Exists(dir + "/catalog.reserve"));
  EXPECT_EQ((*store)->CatalogReserveShortfall(), 0u);
  retention::StreamRow row;
  row.name = "s1";
  auto stream = (*store)->catalog().AddStream(row);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();

  // Fill the volume: 1 MiB writes, then 4 KiB ones for what is left.
  test::Run("dd if=/dev/zero of=" + dir + "/filler bs=1M status=none 2>/dev/null");
  test::Run("dd if=/dev/zero of=" + dir + "/filler2 bs=4k status=none 2>/dev/null");
  test::Run("sync");

  // Without the reserve the catalog is what fails.
  {
    auto plain = Catalog::Open(dir + "/catalog.db");
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    Status s = AddPoints(**plain, *stream, "plain-", 20000);
    ASSERT_FALSE(s.ok()) << "20000 points fitted on a full volume";
    EXPECT_EQ(s.code(), Errc::kNoSpace) << s.ToString();
  }
  // The store's catalog gives its reserve back and goes on.
  Status s = AddPoints((*store)->catalog(), *stream, "kept-", 2000);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE(fs.Exists(dir + "/catalog.reserve"));
  EXPECT_EQ((*store)->CatalogReserveShortfall(), RetentionStore::kCatalogReserveBytes);

  // Room again: ingest still counts the reserve as needed until it is back.
  ASSERT_EQ(unlink((dir + "/filler").c_str()), 0);
  test::Run("sync");
  retention::RetentionJanitor janitor(**store, shim::SystemClock(), *stream);
  auto space = fs.Space(dir);
  ASSERT_TRUE(space.ok());
  const uint64_t room = janitor.RoomFor(0);
  ASSERT_GT(space->available, room + RetentionStore::kCatalogReserveBytes);
  // A frame that fits beside a segment's room, but not beside the reserve too.
  const uint64_t frame = space->available - room - RetentionStore::kCatalogReserveBytes / 2;
  EXPECT_EQ(janitor.RefuseIngest(0, frame, "s1").code(), Errc::kNoSpace);
  // The apply side's check takes the reserve back once the volume has it.
  EXPECT_EQ(janitor.HoldFor(0), "");
  EXPECT_TRUE(fs.Exists(dir + "/catalog.reserve"));
  EXPECT_EQ((*store)->CatalogReserveShortfall(), 0u);
  // ... and the same frame fits beside the segment's room alone, the
  // reserve being held again (less by the reserve now taken).
  EXPECT_TRUE(janitor.RefuseIngest(0, frame - RetentionStore::kCatalogReserveBytes, "s1").ok());
}

}  // namespace
}  // namespace mt
