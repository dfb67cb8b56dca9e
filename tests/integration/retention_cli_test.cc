// mtctl retention check|prepare|status as a process, on real loop devices.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "loop_device.h"
#include "mt/shim/clock.h"
#include "mt/shim/file_system.h"
#include "retention/policy.h"
#include "retention/retention_store.h"

namespace mt {
namespace {

using test::Capture;
using test::LoopDevice;


struct Out {
  int code;
  std::string text;  // stdout + stderr
};

Out Mtctl(const std::string& args) {
  const std::string file = test::ScratchDir() + "/mt-mtctl-out." + std::to_string(getpid());
  const int code = test::Run(std::string(MT_MTCTL_PATH) + " " + args + " > " + file + " 2>&1");
  std::ifstream in(file);
  std::ostringstream s;
  s << in.rdbuf();
  unlink(file.c_str());
  return {code, s.str()};
}

std::string TempDir() {
  std::string t = "/tmp/mt-ret-XXXXXX";
  if (mkdtemp(t.data()) == nullptr) return "";
  return t;
}

TEST(RetentionCli, CheckRejectsAVfatDeviceWithItsReason) {
  MT_REQUIRE_ROOT();
  LoopDevice loop(64ull << 20);
  ASSERT_FALSE(loop.path().empty()) << loop.error();
  ASSERT_EQ(test::Run("mkfs.vfat " + loop.path() + " >/dev/null"), 0);
  Out o = Mtctl("retention check " + loop.path());
  EXPECT_EQ(o.code, 1) << o.text;
  EXPECT_NE(o.text.find("NOT eligible"), std::string::npos) << o.text;
  EXPECT_NE(o.text.find("FAT"), std::string::npos) << o.text;
}

TEST(RetentionCli, CheckRejectsAMountedDeviceAndAcceptsAFreeExt4One) {
  MT_REQUIRE_ROOT();
  LoopDevice loop(64ull << 20);
  ASSERT_FALSE(loop.path().empty()) << loop.error();
  ASSERT_EQ(test::Run("mkfs.ext4 -q -F " + loop.path()), 0);
  Out free_ext4 = Mtctl("retention check " + loop.path() + " --json");
  EXPECT_EQ(free_ext4.code, 0) << free_ext4.text;
  EXPECT_NE(free_ext4.text.find("\"eligible\": true"), std::string::npos) << free_ext4.text;
  const std::string dir = TempDir();
  ASSERT_EQ(test::Run("mount " + loop.path() + " " + dir), 0);
  Out mounted = Mtctl("retention check " + loop.path());
  EXPECT_EQ(mounted.code, 1) << mounted.text;
  EXPECT_NE(mounted.text.find("mounted at " + dir), std::string::npos) << mounted.text;
  // A directory on it names the same device.
  Out by_dir = Mtctl("retention check " + dir);
  EXPECT_NE(by_dir.text.find(loop.path()), std::string::npos) << by_dir.text;
  test::Run("umount " + dir);
  rmdir(dir.c_str());
}

TEST(RetentionCli, PrepareFormatsMountsWritesFstabAndIsIdempotent) {
  MT_REQUIRE_ROOT();
  LoopDevice loop(64ull << 20);
  ASSERT_FALSE(loop.path().empty()) << loop.error();
  const std::string dir = TempDir();
  const std::string mnt = dir + "/retention", fstab = dir + "/fstab";
  { std::ofstream(fstab) << "# fstab of the test\n"; }
  const std::string args =
      "retention prepare " + loop.path() + " --mount " + mnt + " --fstab " + fstab;
  Out no_force = Mtctl(args);
  EXPECT_NE(no_force.code, 0);
  EXPECT_NE(no_force.text.find("--force"), std::string::npos) << no_force.text;
  EXPECT_EQ(Capture("blkid -p -o value -s TYPE " + loop.path()), "");  // nothing written

  Out first = Mtctl(args + " --force");
  ASSERT_EQ(first.code, 0) << first.text;
  const std::string uuid = Capture("blkid -p -o value -s UUID " + loop.path());
  EXPECT_EQ(Capture("blkid -p -o value -s TYPE " + loop.path()), "ext4");
  EXPECT_EQ(test::Run("mountpoint -q " + mnt), 0);
  std::string fstab_once = Capture("cat " + fstab);
  EXPECT_NE(fstab_once.find("UUID=" + uuid + " " + mnt + " ext4"), std::string::npos) << fstab_once;

  Out again = Mtctl(args + " --force");
  EXPECT_EQ(again.code, 0) << again.text;
  EXPECT_NE(again.text.find("nothing to do"), std::string::npos) << again.text;
  EXPECT_EQ(Capture("blkid -p -o value -s UUID " + loop.path()), uuid);  // not reformatted
  EXPECT_EQ(Capture("cat " + fstab), fstab_once);

  test::Run("umount " + mnt);
  test::Run("rm -rf " + dir);
}

TEST(RetentionCli, StatusReportsTheStoreReadOnly) {
  MT_REQUIRE_ROOT();
  const std::string dir = TempDir();
  {
    retention::StoreOptions so;
    so.root = dir;
    so.direct = false;
    so.preallocate = false;
    auto store = retention::RetentionStore::Open(shim::PosixFileSystem(), shim::SystemClock(), so);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    retention::StreamRow row;
    row.name = "web01";
    auto id = (*store)->catalog().AddStream(row);
    ASSERT_TRUE(id.ok());
    auto j = (*store)->OpenStream(*id);
    ASSERT_TRUE(j.ok());
    std::vector<uint8_t> p(4096, 7);
    for (uint64_t seq = 1; seq <= 5; ++seq) {
      retention::RecordHeader h;
      h.seq = seq;
      h.length = 4096;
      h.source_time_ns = 1'790'000'000'000'000'000 + static_cast<int64_t>(seq) * 1'000'000'000;
      ASSERT_TRUE(j->undo->Append(h, p.data(), p.size()).ok());
    }
    ASSERT_TRUE(j->undo->Sync().ok());
    ASSERT_TRUE((*store)->ReconcileCatalog(*id).ok());
  }
  Out o = Mtctl("retention status --dir " + dir + " --json");
  ASSERT_EQ(o.code, 0) << o.text;
  EXPECT_NE(o.text.find("\"name\": \"web01\""), std::string::npos) << o.text;
  EXPECT_NE(o.text.find("\"undo_logical_bytes\": \"20480\""), std::string::npos) << o.text;
  EXPECT_NE(o.text.find("\"window_start\": \"2026-09-21T"), std::string::npos) << o.text;
  Out text = Mtctl("retention status --dir " + dir);
  EXPECT_NE(text.text.find("stream web01"), std::string::npos) << text.text;

  // How many streams the volume holds, at the configuration's settings.
  const std::string config = dir + "/agent.toml";
  std::ofstream(config) << "[retention]\nwal_quota = \"64MiB\"\nsegment_size = \"32MiB\"\n"
                        << "low_space_percent = 10\nlow_space_min = \"1MiB\"\n";
  retention::SpacePolicy space;
  space.low_space_min_bytes = 1 << 20;
  space.wal_quota_bytes = 64 << 20;
  const uint64_t capacity = shim::PosixFileSystem().Space(dir).value().capacity;
  const uint64_t holds = (capacity - retention::LowSpaceThreshold(space, capacity)) / (128 << 20);
  Out sized = Mtctl("--config " + config + " retention status --dir " + dir + " --json");
  ASSERT_EQ(sized.code, 0) << sized.text;
  EXPECT_NE(sized.text.find("\"stream_footprint_bytes\": \"134217728\""), std::string::npos)
      << sized.text;
  EXPECT_NE(sized.text.find("\"streams_the_volume_holds\": \"" + std::to_string(holds) + "\""),
            std::string::npos)
      << "expected " << holds << " in " << sized.text;
  Out sized_text = Mtctl("--config " + config + " retention status --dir " + dir);
  EXPECT_NE(sized_text.text.find("room for " + std::to_string(holds) + " streams (1 now)"),
            std::string::npos)
      << sized_text.text;
  Out missing = Mtctl("retention status --dir " + dir + "/nope");
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.text.find("no retention store"), std::string::npos) << missing.text;
  test::Run("rm -rf " + dir);
}

}  // namespace
}  // namespace mt
