// Retention volume eligibility (architecture §3) on the vmware-mt tree.
#include "inventory/retention_eligibility.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "fake_disks.h"

namespace mt::inventory {
namespace {

using test::Fs;

class RetentionEligibility : public ::testing::Test {
 protected:
  RetentionEligibility() : sys_("vmware-mt") {
    sys_.content["/dev/sdb"] = Fs("ext4");
    sys_.content["/dev/sdf1"] = Fs("ext4");
    sys_.content["/dev/sdg"] = Fs("linux_raid_member", "", "raid");
    sys_.content["/dev/sdi"] = Fs("LVM2_member", "", "raid");
    sys_.content["/dev/sdj1"] = Fs("swap", "", "other");
    sys_.content["/dev/sdl"] = Fs("vfat");
    sys_.content["/dev/sdh"] = Fs("xfs");
    sys_.held.insert("/dev/sdk");
    config_.target_identities = {"naa.6000c2951a0b2c3d4e5f60718293a402"};  // sdc
    req_.agent_dirs = {"/var/lib/mt-agent", "/var/cache/mt-agent"};
  }

  RetentionVerdict Check(const std::string& dev, bool with_sys = true) {
    auto inv = Inventory::Scan(sys_, config_);
    EXPECT_TRUE(inv.ok()) << inv.status().ToString();
    const Disk* d = inv->Find(dev);
    EXPECT_NE(d, nullptr) << dev;
    if (d == nullptr) return {};
    RetentionVerdict v = CheckRetentionVolume(*inv, *d, req_, with_sys ? &sys_ : nullptr);
    status_ = v.ToStatus(*d);
    return v;
  }

  static bool Has(const RetentionVerdict& v, const std::string& problem) {
    return std::find(v.problems.begin(), v.problems.end(), problem) != v.problems.end();
  }

  test::TreeDiskSystem sys_;
  InventoryConfig config_;
  RetentionRequirements req_;
  Status status_;
};

TEST_F(RetentionEligibility, Ext4MountedAtTheRetentionMountPointIsEligible) {
  const RetentionVerdict v = Check("/dev/sdb");
  EXPECT_TRUE(v.eligible) << status_.ToString();
  EXPECT_TRUE(v.mounted_at_mount_point);
  EXPECT_FALSE(v.needs_format);
  EXPECT_TRUE(status_.ok());
}

TEST_F(RetentionEligibility, UnformattedDiskIsEligibleAndNeedsFormat) {
  const RetentionVerdict v = Check("/dev/sdd");
  EXPECT_TRUE(v.eligible);
  EXPECT_TRUE(v.needs_format);
  EXPECT_EQ(v.notes.front(), "no file system: `retention prepare --force` will format it");
}

TEST_F(RetentionEligibility, UnmountedXfsIsEligibleAsIs) {
  const RetentionVerdict v = Check("/dev/sdh");
  EXPECT_TRUE(v.eligible);
  EXPECT_FALSE(v.needs_format);
}

TEST_F(RetentionEligibility, MountedElsewhereIsNot) {
  const RetentionVerdict v = Check("/dev/sdf");
  EXPECT_FALSE(v.eligible);
  EXPECT_TRUE(Has(v, "mounted at /data files")) << status_.ToString();
  // ... unless that is the retention mount point (ext4 on its partition).
  req_.mount_point = "/data files";
  EXPECT_TRUE(Check("/dev/sdf").eligible) << status_.ToString();
}

TEST_F(RetentionEligibility, TheOsDiskIsNot) {
  const RetentionVerdict v = Check("/dev/sda");
  EXPECT_FALSE(v.eligible);
  EXPECT_TRUE(Has(v, "it is the OS disk: holds / (dm-0 rl-root)")) << status_.ToString();
  EXPECT_TRUE(Has(v, "it holds the agent's install/cache directory /var/lib/mt-agent"));
}

TEST_F(RetentionEligibility, AProtectionTargetIsNot) {
  const RetentionVerdict v = Check("/dev/sdc");
  EXPECT_FALSE(v.eligible);
  EXPECT_TRUE(Has(v, "it is a protection target"));
}

TEST_F(RetentionEligibility, SwapLvmAndMdAreNot) {
  EXPECT_TRUE(Has(Check("/dev/sdj"), "active swap on sdj1")) << status_.ToString();
  EXPECT_TRUE(Has(Check("/dev/sdj"), "swap space (sdj1)"));
  EXPECT_TRUE(Has(Check("/dev/sdi"), "LVM physical volume (sdi)")) << status_.ToString();
  EXPECT_TRUE(Has(Check("/dev/sdg"), "member of md RAID md127")) << status_.ToString();
}

TEST_F(RetentionEligibility, HeldExclusivelyIsNot) {
  EXPECT_TRUE(Has(Check("/dev/sdk"), "held open exclusively by another process"));
  // A disk the scan does not open O_EXCL (a loop device that cannot be a
  // target) is checked by the eligibility check itself.
  sys_.held.insert("/dev/loop0");
  EXPECT_TRUE(Check("/dev/loop0", /*with_sys=*/false).eligible);
  EXPECT_TRUE(Has(Check("/dev/loop0"), "held open exclusively by another process"));
}

TEST_F(RetentionEligibility, FatIsNot) {
  const RetentionVerdict v = Check("/dev/sdl");
  EXPECT_FALSE(v.eligible);
  EXPECT_TRUE(Has(v, "file system vfat on sdl: FAT cannot hold the retention journal"))
      << status_.ToString();
  sys_.content["/dev/sdl"] = Fs("msdos");
  EXPECT_FALSE(Check("/dev/sdl").eligible);
}

TEST_F(RetentionEligibility, TheInstallOrCacheVolumeIsNot) {
  req_.agent_dirs = {"/mnt/retention/cache"};
  const RetentionVerdict v = Check("/dev/sdb");
  EXPECT_FALSE(v.eligible);
  EXPECT_TRUE(Has(v, "it holds the agent's install/cache directory /mnt/retention/cache"));
  // A sibling directory that only shares a prefix is not on it.
  req_.agent_dirs = {"/mnt/retention-cache"};
  EXPECT_TRUE(Check("/dev/sdb").eligible);
}

TEST_F(RetentionEligibility, ZeroCapacityIsNot) {
  sys_.edit_facts = [](std::vector<shim::BlockDeviceFacts>* facts) {
    for (auto& f : *facts)
      if (f.name == "sdd") f.size_bytes = 0;
  };
  const RetentionVerdict v = Check("/dev/sdd");
  EXPECT_FALSE(v.eligible);
  EXPECT_TRUE(Has(v, "capacity is zero"));
}

TEST_F(RetentionEligibility, StatusNamesTheDiskAndEveryProblem) {
  Check("/dev/sdl");
  EXPECT_EQ(status_.code(), Errc::kInvalidArgument);
  EXPECT_EQ(status_.message(),
            "/dev/sdl (naa.6000c2951a0b2c3d4e5f60718293a40b) cannot be the retention volume: "
            "file system vfat on sdl: FAT cannot hold the retention journal");
}

}  // namespace
}  // namespace mt::inventory
