// Block device facts read from captured sysfs trees (tests/data/sysfs).
#include "mt/shim/sysfs_block.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "mt/shim/sysroot.h"
#include "temp_tree.h"
#include "test_data.h"

namespace mt::shim {
namespace {

std::vector<std::string> Names(const std::vector<BlockDeviceFacts>& facts) {
  std::vector<std::string> n;
  for (const auto& f : facts) n.push_back(f.name);
  return n;
}

const BlockDeviceFacts* Get(const std::vector<BlockDeviceFacts>& facts, const std::string& name) {
  for (const auto& f : facts)
    if (f.name == name) return &f;
  return nullptr;
}

TEST(SysfsBlock, ReadsAScsiDiskAsTheKernelShowsIt) {
  const SysRoot root(test::SysfsTree("vmware-mt"));
  auto f = ReadBlockDevice(root, "sda");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->kind, BlockKind::kScsi);
  EXPECT_EQ(f->dev, (DevNumber{8, 0}));
  EXPECT_EQ(f->devnode, "/dev/sda");
  EXPECT_EQ(f->size_bytes, 33554432ull * 512);
  EXPECT_EQ(f->logical_block_size, 512u);
  EXPECT_TRUE(f->rotational);
  EXPECT_EQ(f->scsi_type, 0);
  EXPECT_EQ(f->scsi_address, "2:0:0:0");
  EXPECT_EQ(f->vendor, "VMware");  // "VMware  " in sysfs: padding removed
  EXPECT_EQ(f->model, "Virtual disk");
  EXPECT_EQ(f->revision, "2.0");
  EXPECT_EQ(f->wwid, "naa.6000c2951a0b2c3d4e5f60718293a400");
  EXPECT_TRUE(f->has_vpd_pg83);
  EXPECT_EQ(f->vpd_pg83.designators.size(), 3u);
  EXPECT_EQ(f->serial, "6000c2951a0b2c3d4e5f60718293a400");
  EXPECT_EQ(
      f->syspath,
      "/sys/devices/pci0000:00/0000:00:15.0/0000:03:00.0/host2/target2:0:0/2:0:0:0/block/sda");
  ASSERT_EQ(f->partitions.size(), 2u);
  EXPECT_EQ(f->partitions[0].name, "sda1");
  EXPECT_EQ(f->partitions[0].number, 1u);
  EXPECT_EQ(f->partitions[0].dev, (DevNumber{8, 1}));
  EXPECT_EQ(f->partitions[0].start_bytes, 2048ull * 512);
  EXPECT_EQ(f->partitions[1].holders, (std::vector<std::string>{"dm-0", "dm-1"}));
  EXPECT_TRUE(f->holders.empty());
}

TEST(SysfsBlock, ClassifiesEveryKindOfDevice) {
  const SysRoot root(test::SysfsTree("vmware-mt"));
  auto all = ScanBlockDevicesSysfs(root);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  const auto& f = *all;
  ASSERT_NE(Get(f, "loop0"), nullptr);
  EXPECT_EQ(Get(f, "loop0")->kind, BlockKind::kLoop);
  EXPECT_EQ(Get(f, "loop0")->loop_backing_file, "/var/lib/mt-demo/disk0.img");
  EXPECT_EQ(Get(f, "loop1")->size_bytes, 0u);
  EXPECT_EQ(Get(f, "dm-0")->kind, BlockKind::kDm);
  EXPECT_EQ(Get(f, "dm-0")->dm_name, "rl-root");
  EXPECT_EQ(Get(f, "dm-0")->slaves, (std::vector<std::string>{"sda2"}));
  EXPECT_EQ(Get(f, "md127")->kind, BlockKind::kMd);
  EXPECT_EQ(Get(f, "sdg")->holders, (std::vector<std::string>{"md127"}));
  EXPECT_EQ(Get(f, "sr0")->kind, BlockKind::kScsi);
  EXPECT_EQ(Get(f, "sr0")->scsi_type, 5);
  EXPECT_EQ(Get(f, "sde")->wwid, "");  // no wwid attribute: no LU designator
  EXPECT_EQ(Get(f, "sdh")->wwid, "");  // no wwid attribute, but VPD page 0x83
  EXPECT_TRUE(Get(f, "sdh")->has_vpd_pg83);
  // Partitions are nested, not listed as devices.
  EXPECT_EQ(Get(f, "sda1"), nullptr);

  const SysRoot guest(test::SysfsTree("qemu-guest"));
  auto g = ScanBlockDevicesSysfs(guest);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(Names(*g), (std::vector<std::string>{"sda", "sdb", "vda"}));
  EXPECT_EQ(Get(*g, "vda")->kind, BlockKind::kVirtio);
  EXPECT_EQ(Get(*g, "sda")->wwid, "naa.6000c29a1b2c3d4e");
}

TEST(SysfsBlock, DeviceUnpluggedBetweenListingAndReadingIsLeftOut) {
  // sdz's /sys/class/block link dangles: it went away mid-scan.
  const SysRoot root(test::SysfsTree("vmware-mt"));
  auto all = ScanBlockDevicesSysfs(root);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(Get(*all, "sdz"), nullptr);
  EXPECT_EQ(ReadBlockDevice(root, "sdz").status().code(), Errc::kNotFound);
  EXPECT_EQ(ReadBlockDevice(root, "nosuch").status().code(), Errc::kNotFound);
}

TEST(SysfsBlock, DeviceWhoseAttributesVanishIsLeftOutWithoutError) {
  test::TempDir t;
  t.CopyFrom(test::SysfsTree("vmware-mt"));
  const std::string sdd =
      "sys/devices/pci0000:00/0000:00:15.0/0000:03:00.0/host2/target2:0:3/2:0:3:0/block/sdd";
  t.Remove(sdd + "/size");
  t.Remove(sdd + "/queue");
  const SysRoot root(t.path());
  auto all = ScanBlockDevicesSysfs(root);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(Get(*all, "sdd"), nullptr);
  EXPECT_NE(Get(*all, "sdc"), nullptr);
  // The whole device directory gone, links left behind.
  t.Remove(sdd);
  all = ScanBlockDevicesSysfs(root);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Get(*all, "sdd"), nullptr);
}

TEST(SysfsBlock, APartitionIsNotAWholeDevice) {
  const SysRoot root(test::SysfsTree("vmware-mt"));
  EXPECT_EQ(ReadBlockDevice(root, "sda1").status().code(), Errc::kInvalidArgument);
  EXPECT_EQ(ReadBlockDevice(root, "../sda").status().code(), Errc::kInvalidArgument);
  auto names = ListWholeBlockDevices(root);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(std::count(names->begin(), names->end(), "sda1"), 0);
  EXPECT_EQ(std::count(names->begin(), names->end(), "sda"), 1);
}

TEST(SysfsBlock, RealPathStaysInsideTheRoot) {
  const SysRoot root(test::SysfsTree("vmware-mt"));
  auto p = root.RealPath("/sys/block/loop0");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(*p, "/sys/devices/virtual/block/loop0");
  EXPECT_EQ(root.Path("/proc/swaps"), test::SysfsTree("vmware-mt") + "/proc/swaps");
  EXPECT_EQ(SysRoot("/").prefix(), "");
  EXPECT_TRUE(SysRoot("").is_host());
}

TEST(SysfsBlock, ScsiRescanWritesToEveryHost) {
  test::TempDir t;
  t.Write("sys/class/scsi_host/host0/scan", "");
  t.Write("sys/class/scsi_host/host2/scan", "");
  auto n = RescanScsiHosts(SysRoot(t.path()));
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 2);
  const SysRoot root(t.path());
  EXPECT_EQ(root.ReadFile("/sys/class/scsi_host/host0/scan").value(), "- - -");
  EXPECT_EQ(root.ReadFile("/sys/class/scsi_host/host2/scan").value(), "- - -");
}

TEST(SysfsBlock, NoScsiHostsIsNotAnError) {
  auto n = RescanScsiHosts(SysRoot(test::SysfsTree("vmware-mt")));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0);
}

}  // namespace
}  // namespace mt::shim
