// The disk inventory on this host's real kernel: sysfs shape of a loop
// device (compared with the captured trees), libudev vs sysfs enumeration,
// libdevmapper without device-mapper, kernel uevents without udevd, and
// retention eligibility of real file systems on loop devices.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <set>

#include "inventory/inventory.h"
#include "inventory/retention_eligibility.h"
#include "loop_device.h"
#include "mt/shim/devmapper.h"
#include "mt/shim/disk_system.h"
#include "mt/shim/event_wait.h"
#include "mt/shim/sysfs_block.h"
#include "mt/shim/sysroot.h"
#include "mt/shim/uevent.h"

namespace mt {
namespace {

using test::Capture;
using test::LoopDevice;

std::string Basename(const std::string& p) {
  return p.substr(p.rfind('/') + 1);
}

bool udev_running() {
  return access("/run/udev/control", F_OK) == 0;
}

// A file system mounted on a scratch directory for the test's lifetime.
class ScratchMount {
 public:
  explicit ScratchMount(const std::string& dev) {
    char tmpl[256];
    std::snprintf(tmpl, sizeof tmpl, "%s/mt-mnt-XXXXXX", test::ScratchDir().c_str());
    if (mkdtemp(tmpl) == nullptr) return;
    dir_ = tmpl;
    if (test::Run("mount " + dev + " " + dir_) != 0) {
      rmdir(dir_.c_str());
      dir_.clear();
    }
  }
  ~ScratchMount() {
    if (!dir_.empty()) {
      test::Run("umount " + dir_);
      rmdir(dir_.c_str());
    }
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

std::unique_ptr<shim::DiskSystem> HostSystem(bool use_udev = true) {
  shim::HostDiskSystemOptions o;
  o.use_udev = use_udev;
  auto s = shim::OpenHostDiskSystem(o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

TEST(HostSysfs, LoopDeviceHasTheShapeOfTheCapturedTrees) {
  MT_REQUIRE_ROOT();
  LoopDevice loop(32ull << 20);
  ASSERT_FALSE(loop.path().empty()) << loop.error();
  const std::string name = Basename(loop.path());
  const shim::SysRoot root;
  // /sys/block/<name> and /sys/class/block/<name>: relative links into /sys/devices.
  EXPECT_EQ(root.ReadLink("/sys/block/" + name).value(), "../devices/virtual/block/" + name);
  EXPECT_EQ(root.ReadLink("/sys/class/block/" + name).value(),
            "../../devices/virtual/block/" + name);
  const std::string dir = "/sys/devices/virtual/block/" + name;
  struct stat st;
  ASSERT_EQ(stat(loop.path().c_str(), &st), 0);
  EXPECT_EQ(root.ReadAttr(dir + "/dev").value(),
            std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev)));
  EXPECT_EQ(root.ReadUint(dir + "/size").value(), (32ull << 20) / 512);  // 512-byte sectors
  EXPECT_EQ(root.ReadAttr(dir + "/queue/logical_block_size").value(),
            Capture("blockdev --getss " + loop.path()));
  EXPECT_TRUE(root.Exists(dir + "/queue/rotational"));
  EXPECT_EQ(root.ReadAttr(dir + "/loop/backing_file").value(), loop.backing_file());
  EXPECT_TRUE(root.IsDir(dir + "/holders"));
  EXPECT_TRUE(root.IsDir(dir + "/slaves"));
  EXPECT_FALSE(root.Exists(dir + "/partition"));
  const std::string uevent = root.ReadFile(dir + "/uevent").value();
  EXPECT_NE(uevent.find("DEVNAME=" + name + "\n"), std::string::npos) << uevent;
  EXPECT_NE(uevent.find("DEVTYPE=disk\n"), std::string::npos) << uevent;

  auto f = shim::ReadBlockDevice(root, name);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->kind, shim::BlockKind::kLoop);
  EXPECT_EQ(f->devnode, loop.path());
  EXPECT_EQ(f->size_bytes, 32ull << 20);
  EXPECT_EQ(f->loop_backing_file, loop.backing_file());
  EXPECT_EQ(f->syspath, dir);
}

TEST(HostSysfs, LibudevAndSysfsListTheSameDevices) {
  auto names = [](shim::DiskSystem& s) {
    std::set<std::string> n;
    auto f = s.ScanBlockDevices();
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    if (f.ok())
      for (const auto& d : *f) n.insert(d.name);
    return n;
  };
  auto udev = HostSystem(true);
  auto sysfs = HostSystem(false);
  ASSERT_TRUE(udev && sysfs);
  std::set<std::string> a = names(*udev), b = names(*sysfs);
  if (a != b) a = names(*udev), b = names(*sysfs);  // a loop device appeared meanwhile
  EXPECT_EQ(a, b);
  EXPECT_FALSE(a.empty());
}

TEST(HostDeviceMapper, NoDeviceMapperMeansNoMaps) {
  if (access("/dev/mapper/control", F_OK) == 0)
    GTEST_SKIP() << "this host has device-mapper; the no-device-mapper path is not exercised";
  auto maps = shim::ListDmMaps(shim::SysRoot());
  ASSERT_TRUE(maps.ok()) << maps.status().ToString();
  EXPECT_TRUE(maps->empty());
}

TEST(HostUevents, KernelMonitorSeesALoopAttachWithoutUdevd) {
  MT_REQUIRE_ROOT();
  auto events = shim::OpenKernelBlockUevents();
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  const auto t0 = std::chrono::steady_clock::now();
  LoopDevice loop(16ull << 20);
  ASSERT_FALSE(loop.path().empty()) << loop.error();
  const auto attached = std::chrono::steady_clock::now();
  const std::string name = Basename(loop.path());
  const auto deadline = t0 + std::chrono::seconds(5);
  bool seen = false;
  while (!seen && std::chrono::steady_clock::now() < deadline) {
    auto ready = shim::WaitReadable({(*events)->fd()}, 500);
    ASSERT_TRUE(ready.ok());
    for (;;) {
      auto ev = (*events)->Next();
      ASSERT_TRUE(ev.ok()) << ev.status().ToString();
      if (!*ev) break;
      if ((*ev)->name == name && (*ev)->subsystem == "block") seen = true;
    }
  }
  const auto ms = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - attached)
                      .count() /
                  1000.0;
  EXPECT_TRUE(seen) << "no uevent for " << name << " within 5 s";
  RecordProperty("uevent_latency_ms", std::to_string(ms));
  std::cout << "uevent for " << name << " (" << (udev_running() ? "udevd running" : "no udevd")
            << ") arrived " << ms << " ms after losetup returned\n";
}

// Retention eligibility of real file systems.
class HostRetention : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::IsRoot()) GTEST_SKIP() << "needs root (loop devices, mounts)";
    loop_ = std::make_unique<LoopDevice>(64ull << 20);
    ASSERT_FALSE(loop_->path().empty()) << loop_->error();
    sys_ = HostSystem();
    ASSERT_TRUE(sys_);
  }

  inventory::RetentionVerdict Check(const inventory::RetentionRequirements& req = {}) {
    inventory::InventoryConfig c;
    auto inv = inventory::Inventory::Scan(*sys_, c);
    EXPECT_TRUE(inv.ok()) << inv.status().ToString();
    const inventory::Disk* d = inv->Find(loop_->path());
    EXPECT_NE(d, nullptr) << loop_->path();
    if (d == nullptr) return {};
    auto v = inventory::CheckRetentionVolume(*inv, *d, req, sys_.get());
    std::cout << loop_->path() << ": " << (v.eligible ? "eligible" : v.ToStatus(*d).message())
              << "\n";
    return v;
  }

  static bool Has(const inventory::RetentionVerdict& v, const std::string& text) {
    for (const std::string& p : v.problems)
      if (p.find(text) != std::string::npos) return true;
    return false;
  }

  std::unique_ptr<LoopDevice> loop_;
  std::unique_ptr<shim::DiskSystem> sys_;
};

TEST_F(HostRetention, VfatLoopIsNotEligible) {
  ASSERT_EQ(test::Run("mkfs.vfat " + loop_->path() + " >/dev/null 2>&1"), 0);
  const auto v = Check();
  EXPECT_FALSE(v.eligible);
  EXPECT_TRUE(Has(v, "file system vfat"));
  EXPECT_TRUE(Has(v, "FAT cannot hold the retention journal"));
}

TEST_F(HostRetention, BlankLoopIsEligibleAndNeedsFormat) {
  const auto v = Check();
  EXPECT_TRUE(v.eligible);
  EXPECT_TRUE(v.needs_format);
}

TEST_F(HostRetention, Ext4LoopMountedElsewhereIsNotButAtTheMountPointIs) {
  ASSERT_EQ(test::Run("mkfs.ext4 -q -F " + loop_->path() + " >/dev/null 2>&1"), 0);
  auto unmounted = Check();
  EXPECT_TRUE(unmounted.eligible);
  EXPECT_FALSE(unmounted.needs_format);
  ScratchMount m(loop_->path());
  ASSERT_FALSE(m.dir().empty());
  auto v = Check();
  EXPECT_FALSE(v.eligible);
  EXPECT_TRUE(Has(v, "mounted at " + m.dir()));
  inventory::RetentionRequirements req;
  req.mount_point = m.dir();
  auto at = Check(req);
  EXPECT_TRUE(at.eligible);
  EXPECT_TRUE(at.mounted_at_mount_point);
  // ... but not if the agent's cache lives on it.
  req.agent_dirs = {m.dir() + "/cache"};
  EXPECT_TRUE(Has(Check(req), "install/cache directory"));
}

TEST_F(HostRetention, LoopHeldExclusivelyIsNotEligible) {
  const int fd = open(loop_->path().c_str(), O_RDONLY | O_EXCL | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const auto v = Check();
  close(fd);
  EXPECT_TRUE(Has(v, "held open exclusively by another process"));
  EXPECT_TRUE(Check().eligible);
}

}  // namespace
}  // namespace mt
