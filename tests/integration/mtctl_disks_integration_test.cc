// `mtctl disks` against this host's kernel (no SCSI, no device-mapper): loop
// devices with real file systems and mounts, and `--watch` seeing a loop
// device attached after it started.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "loop_device.h"
#include "mt/inventory.pb.h"
#include "subprocess.h"

namespace mt {
namespace {

using test::Capture;
using test::LoopDevice;

test::ProcessResult Mtctl(std::vector<std::string> args) {
  args.insert(args.begin(), MT_MTCTL_PATH);
  return test::RunProcess(args);
}

proto::Inventory Json(const test::ProcessResult& r) {
  proto::Inventory inv;
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto st = google::protobuf::util::JsonStringToMessage(r.out, &inv);
  EXPECT_TRUE(st.ok()) << st.ToString() << "\n" << r.out;
  return inv;
}

const proto::Disk* Find(const proto::Inventory& inv, const std::string& device) {
  for (const auto& d : inv.disks())
    if (d.device() == device) return &d;
  return nullptr;
}

const char kNotScsiLoop[] =
    "loop device: not a SCSI disk; allow it with allow_non_scsi in the configuration for "
    "demos/tests";

TEST(MtctlDisksOnHost, MountedExt4LoopIsMounted) {
  MT_REQUIRE_ROOT();
  LoopDevice loop(64ull << 20);
  ASSERT_FALSE(loop.path().empty()) << loop.error();
  ASSERT_EQ(test::Run("mkfs.ext4 -q -F " + loop.path() + " >/dev/null 2>&1"), 0);
  char tmpl[256];
  std::snprintf(tmpl, sizeof tmpl, "%s/mt-mnt-XXXXXX", test::ScratchDir().c_str());
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ASSERT_EQ(test::Run("mount " + loop.path() + " " + dir), 0);
  const auto r = Mtctl({"disks", "--json", "--allow-non-scsi", loop.path()});
  test::Run("umount " + dir);
  rmdir(dir.c_str());
  const proto::Inventory inv = Json(r);
  const proto::Disk* d = Find(inv, loop.path());
  ASSERT_NE(d, nullptr) << r.out;
  EXPECT_EQ(d->role(), "mounted");
  EXPECT_EQ(d->reason(), "mounted at " + dir + " (" + loop.path().substr(5) + ")");
  EXPECT_EQ(d->fs_type(), "ext4");
  EXPECT_FALSE(d->fs_uuid().empty());
  EXPECT_FALSE(d->safe_target());
  EXPECT_EQ(d->identity(), "loop:" + loop.backing_file());
}

TEST(MtctlDisksOnHost, AllowedUnmountedLoopIsFreeAndASafeTargetWhenNamed) {
  MT_REQUIRE_ROOT();
  LoopDevice loop(64ull << 20);
  ASSERT_FALSE(loop.path().empty()) << loop.error();
  const std::string id = "loop:" + loop.backing_file();
  const proto::Inventory free_inv =
      Json(Mtctl({"disks", "--json", "--allow-non-scsi", loop.path()}));
  const proto::Disk* f = Find(free_inv, loop.path());
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->role(), "free");
  EXPECT_TRUE(f->can_be_target());
  EXPECT_FALSE(f->safe_target());
  EXPECT_EQ(f->identity(), id);

  const proto::Inventory target_inv =
      Json(Mtctl({"disks", "--json", "--allow-non-scsi", loop.path(), "--target", id}));
  const proto::Disk* t = Find(target_inv, loop.path());
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->role(), "target");
  EXPECT_TRUE(t->safe_target());
}

TEST(MtctlDisksOnHost, SaysWhyLoopAndVirtioDisksAreNotScsiTargets) {
  MT_REQUIRE_ROOT();
  LoopDevice loop(16ull << 20);
  ASSERT_FALSE(loop.path().empty()) << loop.error();
  const auto r = Mtctl({"disks"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::cout << r.out;
  bool loop_line = false;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);)
    if (line.find(loop.path() + " ") != std::string::npos)
      loop_line = line.find(kNotScsiLoop) != std::string::npos;
  EXPECT_TRUE(loop_line) << r.out;
  if (access("/sys/block/vda", F_OK) == 0) {
    EXPECT_NE(r.out.find("virtio disk: not a SCSI disk; allow it with allow_non_scsi"),
              std::string::npos)
        << r.out;
  }
  const proto::Inventory inv = Json(Mtctl({"disks", "--json"}));
  const proto::Disk* d = Find(inv, loop.path());
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->reason(), kNotScsiLoop);
  EXPECT_EQ(d->target_blocker(), kNotScsiLoop);
}

TEST(MtctlDisksOnHost, RescanWithoutScsiHostsIsHarmless) {
  MT_REQUIRE_ROOT();
  const auto r = Mtctl({"disks", "--rescan"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
}

TEST(MtctlDisksOnHost, WatchReportsALoopAttachedAfterItStarted) {
  MT_REQUIRE_ROOT();
  // The backing file exists before the watch, so the watch can allow it by identity.
  char tmpl[256];
  std::snprintf(tmpl, sizeof tmpl, "%s/mt-watch-XXXXXX", test::ScratchDir().c_str());
  const int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 32 << 20), 0);
  close(fd);
  const std::string file = tmpl;

  test::Subprocess watch(
      {MT_MTCTL_PATH, "disks", "--watch", "--json", "--allow-non-scsi", "loop:" + file});
  ASSERT_TRUE(watch.started());
  auto ready = watch.ReadErrLine(std::chrono::seconds(10));
  ASSERT_TRUE(ready) << "mtctl disks --watch did not start";
  EXPECT_EQ(*ready, "mtctl: watching block devices (kernel uevents); interrupt to stop");

  const std::string dev = Capture("losetup --find --show " + file + " 2>&1");
  const auto attached = std::chrono::steady_clock::now();
  ASSERT_EQ(dev.rfind("/dev/loop", 0), 0u) << dev;

  // Events of other devices (other tests attach loops too) are skipped.
  auto wait_for = [&](const std::string& kind) -> std::optional<proto::DiskEvent> {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      auto line = watch.ReadOutLine(std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()));
      if (!line) break;
      proto::DiskEvent ev;
      EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(*line, &ev).ok()) << *line;
      if (ev.event() == kind && ev.disk().device() == dev) return ev;
    }
    return std::nullopt;
  };
  auto add = wait_for("add");
  const double ms = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - attached)
                        .count() /
                    1000.0;
  test::Run("losetup -d " + dev);
  ASSERT_TRUE(add) << "no add event for " << dev << " within 5 s";
  EXPECT_EQ(add->disk().identity(), "loop:" + file);
  EXPECT_EQ(add->disk().role(), "free");
  EXPECT_TRUE(add->disk().can_be_target());
  EXPECT_GT(add->time_unix_ms(), 0);
  RecordProperty("watch_add_latency_ms", std::to_string(ms));
  std::cout << "mtctl disks --watch printed the add of " << dev << " " << ms
            << " ms after losetup returned\n";

  auto removed = wait_for("remove");
  EXPECT_TRUE(removed) << "no remove event for " << dev << " within 5 s";

  watch.Signal(SIGINT);
  EXPECT_EQ(watch.Wait(std::chrono::seconds(5)), 0);
  EXPECT_EQ(watch.DrainErr(), "");
  unlink(file.c_str());
}

}  // namespace
}  // namespace mt
