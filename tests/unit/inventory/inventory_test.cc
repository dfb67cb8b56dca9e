// Roles, reasons and identities on captured sysfs trees (tests/data/sysfs).
#include "inventory/inventory.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "fake_disks.h"

namespace mt::inventory {
namespace {

using test::Fs;
using test::TreeDiskSystem;

const std::string kWwidPrefix = "naa.6000c2951a0b2c3d4e5f60718293a4";
std::string Wwid(int i) {
  char b[8];
  std::snprintf(b, sizeof b, "%02x", i);
  return kWwidPrefix + b;
}

bool HasReason(const Disk& d, const std::string& text) {
  return std::any_of(d.findings.begin(), d.findings.end(),
                     [&](const Finding& f) { return f.reason == text; });
}

// The vmware-mt tree with what libblkid and O_EXCL would say on that machine.
class VmwareMt : public ::testing::Test {
 protected:
  VmwareMt() : sys_("vmware-mt") {
    sys_.content["/dev/sdb"] = Fs("ext4", "0b9e8f6a-1c2d-4e3f-8a9b-0c1d2e3f4a5b");
    sys_.content["/dev/sdf1"] = Fs("ext4");
    sys_.content["/dev/sdg"] = Fs("linux_raid_member", "", "raid");
    sys_.content["/dev/sdi"] = Fs("LVM2_member", "", "raid");
    sys_.content["/dev/sdj1"] = Fs("swap", "", "other");
    sys_.content["/dev/sdl"] = Fs("vfat");
    sys_.held.insert("/dev/sdk");
    config_.target_identities = {Wwid(2)};
    config_.retention_identity = Wwid(1);
  }

  Inventory Scan() {
    auto inv = Inventory::Scan(sys_, config_);
    EXPECT_TRUE(inv.ok()) << inv.status().ToString();
    return inv.ok() ? std::move(inv).value() : Inventory();
  }

  static const Disk& Get(const Inventory& inv, const std::string& dev) {
    const Disk* d = inv.Find(dev);
    EXPECT_NE(d, nullptr) << dev;
    static const Disk kNone;
    return d != nullptr ? *d : kNone;
  }

  TreeDiskSystem sys_;
  InventoryConfig config_;
};

TEST_F(VmwareMt, EveryRoleWithItsReason) {
  const Inventory inv = Scan();
  struct Want {
    const char* dev;
    Role role;
    const char* reason;
  };
  const Want wants[] = {
      {"/dev/sda", Role::kOs, "holds / (dm-0 rl-root)"},
      {"/dev/sdb", Role::kRetention, "retention volume of this agent"},
      {"/dev/sdc", Role::kTarget, "protection target named by the configuration"},
      {"/dev/sdd", Role::kFree, "unused; can become a protection target"},
      {"/dev/sde", Role::kFree, "disk.EnableUUID is not TRUE for this VM (no SCSI WWID)"},
      {"/dev/sdf", Role::kMounted, "mounted at /data files (sdf1)"},
      {"/dev/sdg", Role::kInUse, "member of md RAID md127"},
      {"/dev/sdh", Role::kFree, "unused; can become a protection target"},
      {"/dev/sdi", Role::kInUse, "LVM physical volume (sdi)"},
      {"/dev/sdj", Role::kInUse, "active swap on sdj1"},
      {"/dev/sdk", Role::kInUse, "held open exclusively by another process"},
      {"/dev/sdl", Role::kFree, "unused; can become a protection target"},
      {"/dev/loop0", Role::kFree,
       "loop device: not a SCSI disk; allow it with allow_non_scsi in the configuration for "
       "demos/tests"},
  };
  for (const Want& w : wants) {
    const Disk& d = Get(inv, w.dev);
    EXPECT_EQ(RoleName(d.role), std::string(RoleName(w.role))) << w.dev;
    EXPECT_EQ(d.reason, w.reason) << w.dev;
  }
  EXPECT_EQ(inv.disks().size(), std::size(wants));
}

TEST_F(VmwareMt, NotDisksAreNotListed) {
  // sr0 (CD-ROM), loop1 (not attached), dm-0/dm-1 (LVM on sda2), md127 (on
  // sdg), sdz (vanished mid-scan), partitions.
  const Inventory inv = Scan();
  for (const char* n : {"sr0", "loop1", "dm-0", "dm-1", "md127", "sdz", "sda1"})
    EXPECT_EQ(inv.Find(n), nullptr) << n;
}

TEST_F(VmwareMt, OsDiskIsFoundThroughPartitionsAndDeviceMapper) {
  const Inventory inv = Scan();
  const Disk& sda = Get(inv, "/dev/sda");
  EXPECT_EQ(sda.role, Role::kOs);
  EXPECT_TRUE(HasReason(sda, "holds / (dm-0 rl-root)"));
  EXPECT_TRUE(HasReason(sda, "holds /boot (sda1)"));
  EXPECT_TRUE(HasReason(sda, "in use by dm-0 (rl-root)"));
  EXPECT_TRUE(HasReason(sda, "active swap on dm-1 rl-swap"));
  ASSERT_EQ(sda.holders.size(), 2u);
  EXPECT_EQ(sda.holders[0].dm_name, "rl-root");
  ASSERT_EQ(sda.partitions.size(), 2u);
  EXPECT_EQ(sda.partitions[0].mount_points, (std::vector<std::string>{"/boot"}));
  EXPECT_EQ(sda.mounts.size(), 2u);
  EXPECT_FALSE(sda.CanBeTarget());
  EXPECT_EQ(sda.TargetBlocker(), "os: holds / (dm-0 rl-root)");
}

TEST_F(VmwareMt, IdentitiesAndTheirSources) {
  const Inventory inv = Scan();
  const Disk& sda = Get(inv, "/dev/sda");
  EXPECT_EQ(sda.identity, Wwid(0));
  EXPECT_EQ(sda.wwid, Wwid(0));
  EXPECT_EQ(sda.identity_source, "sysfs wwid");
  EXPECT_EQ(sda.vendor, "VMware");
  EXPECT_EQ(sda.model, "Virtual disk");
  EXPECT_EQ(sda.serial, "6000c2951a0b2c3d4e5f60718293a400");
  EXPECT_EQ(sda.designators.size(), 3u);
  // No device/wwid (an older kernel): VPD page 0x83 gives the same identity.
  const Disk& sdh = Get(inv, "/dev/sdh");
  EXPECT_EQ(sdh.identity, Wwid(7));
  EXPECT_EQ(sdh.identity_source, "vpd page 0x83");
  // disk.EnableUUID not TRUE: no identity, never guessed.
  const Disk& sde = Get(inv, "/dev/sde");
  EXPECT_EQ(sde.identity, "");
  EXPECT_FALSE(sde.target_capable);
  EXPECT_EQ(sde.not_capable_reason, "disk.EnableUUID is not TRUE for this VM (no SCSI WWID)");
  const Disk& loop = Get(inv, "/dev/loop0");
  EXPECT_EQ(loop.identity, "loop:/var/lib/mt-demo/disk0.img");
  EXPECT_FALSE(loop.target_capable);
  // Find() takes any spelling of a WWID.
  EXPECT_EQ(inv.Find("36000c2951a0b2c3d4e5f60718293a403"), inv.Find("/dev/sdd"));
  EXPECT_EQ(inv.Find("NAA.6000C2951A0B2C3D4E5F60718293A403"), inv.Find("sdd"));
}

TEST_F(VmwareMt, IsSafeTargetOnlyForTheTargetRole) {
  const Inventory inv = Scan();
  EXPECT_TRUE(IsSafeTarget(Get(inv, "/dev/sdc")).ok());
  for (const char* dev : {"/dev/sda", "/dev/sdb", "/dev/sdd", "/dev/sde", "/dev/sdf", "/dev/sdg",
                          "/dev/sdk", "/dev/loop0"}) {
    const Status s = IsSafeTarget(Get(inv, dev));
    EXPECT_EQ(s.code(), Errc::kUnsafeTarget) << dev;
    EXPECT_NE(s.message().find(dev), std::string::npos) << s.message();
  }
  EXPECT_EQ(IsSafeTarget(Get(inv, "/dev/sdf")).message(),
            "/dev/sdf (" + Wwid(5) +
                ") is not a safe target: role mounted: mounted at /data files (sdf1)");
  EXPECT_EQ(IsSafeTarget(Get(inv, "/dev/sdd")).message(),
            "/dev/sdd (" + Wwid(3) +
                ") is not a safe target: role free: not named as a protection target");
}

TEST_F(VmwareMt, NamingATargetNeverOverridesAStrongerRole) {
  // The configuration names every disk a target: only unused ones become one.
  for (int i = 0; i < 12; ++i) config_.target_identities.push_back(Wwid(i));
  config_.retention_identity.clear();
  const Inventory inv = Scan();
  EXPECT_EQ(Get(inv, "/dev/sda").role, Role::kOs);
  EXPECT_EQ(Get(inv, "/dev/sdb").role, Role::kMounted);
  EXPECT_EQ(Get(inv, "/dev/sdf").role, Role::kMounted);
  EXPECT_EQ(Get(inv, "/dev/sdg").role, Role::kInUse);
  EXPECT_EQ(Get(inv, "/dev/sdk").role, Role::kInUse);
  EXPECT_EQ(Get(inv, "/dev/sdd").role, Role::kTarget);
  EXPECT_EQ(Get(inv, "/dev/sdh").role, Role::kTarget);
  EXPECT_EQ(Get(inv, "/dev/sde").role, Role::kFree);  // no WWID, cannot be named
}

TEST_F(VmwareMt, OsBeatsRetentionBeatsTarget) {
  config_.retention_identity = Wwid(0);
  config_.target_identities = {Wwid(0), Wwid(3)};
  const Inventory inv = Scan();
  EXPECT_EQ(Get(inv, "/dev/sda").role, Role::kOs);
  config_.retention_identity = Wwid(3);
  const Inventory inv2 = Scan();
  EXPECT_EQ(Get(inv2, "/dev/sdd").role, Role::kRetention);
  EXPECT_FALSE(IsSafeTarget(Get(inv2, "/dev/sdd")).ok());
}

TEST_F(VmwareMt, RetentionByDeviceOrFileSystemUuid) {
  config_.retention_identity = "0b9e8f6a-1c2d-4e3f-8a9b-0c1d2e3f4a5b";
  EXPECT_EQ(Get(Scan(), "/dev/sdb").role, Role::kRetention);
  config_.retention_identity = "/dev/sdb";
  EXPECT_EQ(Get(Scan(), "/dev/sdb").role, Role::kRetention);
}

TEST_F(VmwareMt, NonScsiDevicesNeedTheAllowList) {
  config_.target_identities.push_back("loop:/var/lib/mt-demo/disk0.img");
  const Inventory before = Scan();
  const Disk& l = Get(before, "/dev/loop0");
  EXPECT_EQ(l.role, Role::kFree);
  EXPECT_EQ(l.reason,
            "named as a target, but loop device: not a SCSI disk; allow it with allow_non_scsi "
            "in the configuration for demos/tests");
  EXPECT_FALSE(IsSafeTarget(l).ok());
  for (const char* allow : {"/dev/loop0", "loop0", "loop:/var/lib/mt-demo/disk0.img"}) {
    config_.allow_non_scsi = {allow};
    const Inventory inv = Scan();
    const Disk& d = Get(inv, "/dev/loop0");
    EXPECT_EQ(d.role, Role::kTarget) << allow;
    EXPECT_TRUE(IsSafeTarget(d).ok()) << allow;
    EXPECT_EQ(d.identity_source, "loop backing file (allowed by allow_non_scsi)");
  }
}

TEST_F(VmwareMt, AllowedNonScsiDeviceStillObeysEverySafetyRule) {
  config_.allow_non_scsi = {"/dev/loop0"};
  config_.target_identities = {"loop:/var/lib/mt-demo/disk0.img"};
  sys_.held.insert("/dev/loop0");
  const Inventory inv = Scan();
  const Disk& d = Get(inv, "/dev/loop0");
  EXPECT_EQ(d.role, Role::kInUse);
  EXPECT_FALSE(IsSafeTarget(d).ok());
}

TEST_F(VmwareMt, ExclusiveOpenOnlyWhereItDecidesARole) {
  // The O_EXCL probe can make another program's O_EXCL open fail at that
  // instant, so it runs only on disks that could become targets.
  sys_.held = {"/dev/sdd", "/dev/sde", "/dev/loop0"};
  const Inventory inv = Scan();
  EXPECT_EQ(Get(inv, "/dev/sdd").role, Role::kInUse);
  EXPECT_TRUE(Get(inv, "/dev/sdd").exclusive_checked);
  EXPECT_EQ(Get(inv, "/dev/sde").role, Role::kFree);  // no WWID: never a target
  EXPECT_FALSE(Get(inv, "/dev/sde").exclusive_checked);
  EXPECT_EQ(Get(inv, "/dev/loop0").role, Role::kFree);
  EXPECT_FALSE(Get(inv, "/dev/sdf").exclusive_checked);  // mounted: known busy
}

TEST_F(VmwareMt, OurOwnExclusiveOpenIsNotSomeoneElses) {
  config_.target_identities = {Wwid(10)};  // sdk, held O_EXCL ...
  EXPECT_EQ(Get(Scan(), "/dev/sdk").role, Role::kInUse);
  config_.held_by_us = {Wwid(10)};  // ... by this agent
  EXPECT_EQ(Get(Scan(), "/dev/sdk").role, Role::kTarget);
}

TEST_F(VmwareMt, DiskVanishingWhileProbedIsSimplyNotListed) {
  sys_.vanish_on_probe = {"/dev/sdd", "/dev/sdc"};
  const Inventory inv = Scan();
  EXPECT_EQ(inv.Find("/dev/sdd"), nullptr);
  EXPECT_EQ(inv.Find("/dev/sdc"), nullptr);
  EXPECT_NE(inv.Find("/dev/sdh"), nullptr);
  EXPECT_EQ(inv.disks().size(), 11u);
}

TEST_F(VmwareMt, ProbeFailureIsANoteNotAnError) {
  sys_.probe_error["/dev/sdd"] =
      Status(Errc::kPermissionDenied, "open /dev/sdd: Permission denied");
  const Inventory inv = Scan();
  const Disk& d = Get(inv, "/dev/sdd");
  EXPECT_EQ(d.role, Role::kFree);
  ASSERT_FALSE(d.notes.empty());
  EXPECT_EQ(d.notes[0], "content of sdd not probed: open /dev/sdd: Permission denied");
}

TEST_F(VmwareMt, UdevPropertiesAreOnlyASecondSource) {
  sys_.edit_facts = [](std::vector<shim::BlockDeviceFacts>* facts) {
    for (auto& f : *facts) {
      if (f.name == "sdd") {  // sysfs has nothing; udev knows the WWN
        f.wwid.clear();
        f.has_vpd_pg83 = false;
        f.udev_properties["ID_SERIAL"] = "36000c2951a0b2c3d4e5f60718293a403";
      }
      if (f.name == "sdc")  // sysfs wins over a (stale) udev property
        f.udev_properties["ID_WWN"] = "0x6000c29ffffffff0";
    }
  };
  const Inventory inv = Scan();
  EXPECT_EQ(Get(inv, "/dev/sdd").identity, Wwid(3));
  EXPECT_EQ(Get(inv, "/dev/sdd").identity_source, "udev ID_SERIAL");
  EXPECT_EQ(Get(inv, "/dev/sdc").identity, Wwid(2));
  EXPECT_EQ(Get(inv, "/dev/sdc").identity_source, "sysfs wwid");
}

TEST_F(VmwareMt, LibdevmapperIsASecondOpinionOnMultipath) {
  shim::DmMap m;
  m.name = "mpathb";
  m.uuid = "mpath-3" + Wwid(3).substr(4);
  m.target_type = "multipath";
  m.deps = {shim::DevNumber{8, 48}};  // sdd
  sys_.dm_maps = {m};
  const Inventory inv = Scan();
  const Disk& d = Get(inv, "/dev/sdd");
  ASSERT_FALSE(d.notes.empty());
  EXPECT_EQ(d.notes.back(),
            "libdevmapper: sdd is a path of multipath map mpathb, which sysfs does not show");
  EXPECT_TRUE(Get(inv, "/dev/sdc").notes.empty() ||
              Get(inv, "/dev/sdc").notes.back().find("libdevmapper") == std::string::npos);
}

TEST(RolePrecedence, OsRetentionInUseMountedTargetFree) {
  struct Case {
    std::vector<Role> findings;
    bool named;
    Role want;
  };
  const Case cases[] = {
      {{Role::kMounted, Role::kInUse, Role::kOs, Role::kRetention}, true, Role::kOs},
      {{Role::kMounted, Role::kInUse, Role::kRetention}, true, Role::kRetention},
      {{Role::kMounted, Role::kInUse}, true, Role::kInUse},
      {{Role::kMounted}, true, Role::kMounted},
      {{}, true, Role::kTarget},
      {{}, false, Role::kFree},
  };
  for (const Case& c : cases) {
    Disk d;
    d.target_capable = true;
    d.named_target = c.named;
    for (Role r : c.findings) d.findings.push_back({r, RoleName(r)});
    DecideRole(&d);
    EXPECT_EQ(d.role, c.want) << RoleName(c.want);
    if (!c.findings.empty()) {
      EXPECT_EQ(d.reason, RoleName(c.want));
    }
  }
}

TEST(MultipathTree, AMapAndItsPathsAreOneDisk) {
  TreeDiskSystem sys("multipath");
  auto inv = Inventory::Scan(sys, InventoryConfig{});
  ASSERT_TRUE(inv.ok()) << inv.status().ToString();
  ASSERT_EQ(inv->disks().size(), 3u);
  const Disk* m = inv->Find("naa.6000c2970f1e2d3c4b5a69788796a5b4");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->devnode, "/dev/mapper/mpatha");
  EXPECT_EQ(m->multipath_map, "mpatha");
  EXPECT_EQ(m->identity_source, "multipath uuid");
  EXPECT_EQ(m->paths, (std::vector<std::string>{"/dev/sdb", "/dev/sdc"}));
  EXPECT_EQ(m->transport, shim::BlockKind::kScsi);
  // Its kpartx partition is mounted: the multipath disk is mounted.
  EXPECT_EQ(m->role, Role::kMounted);
  EXPECT_EQ(m->reason, "mounted at /srv (dm-1 mpatha1)");
  ASSERT_EQ(m->partitions.size(), 1u);
  EXPECT_EQ(m->partitions[0].devnode, "/dev/mapper/mpatha1");
  EXPECT_TRUE(m->holders.empty());  // the map and kpartx maps are the disk itself
  EXPECT_EQ(inv->Find("/dev/sdb"), m);
  // Two paths to one LUN and no map: one disk, with a note.
  const Disk* dup = inv->Find("/dev/sde");
  ASSERT_NE(dup, nullptr);
  EXPECT_EQ(dup->devnode, "/dev/sdd");
  EXPECT_EQ(dup->paths, (std::vector<std::string>{"/dev/sdd", "/dev/sde"}));
  EXPECT_EQ(dup->notes.front(), "2 paths to this LUN and no multipath map (configure multipath)");
  EXPECT_EQ(inv->Find("/dev/sda")->role, Role::kOs);
}

TEST(QemuGuestTree, TheVmHarnessShape) {
  TreeDiskSystem sys("qemu-guest");
  auto inv = Inventory::Scan(sys, InventoryConfig{});
  ASSERT_TRUE(inv.ok()) << inv.status().ToString();
  ASSERT_EQ(inv->disks().size(), 3u);
  const Disk* sda = inv->Find("/dev/sda");
  EXPECT_EQ(sda->identity, "naa.6000c29a1b2c3d4e");
  EXPECT_EQ(sda->role, Role::kFree);  // root is the initramfs: no OS disk
  EXPECT_TRUE(sda->CanBeTarget());
  EXPECT_EQ(inv->Find("/dev/sdb")->reason,
            "disk.EnableUUID is not TRUE for this VM (no SCSI WWID)");
  const Disk* vda = inv->Find("/dev/vda");
  EXPECT_EQ(vda->identity, "virtio:/dev/vda");  // no serial: the path
  EXPECT_EQ(vda->reason,
            "virtio disk: not a SCSI disk; allow it with allow_non_scsi in the configuration for "
            "demos/tests");
}

}  // namespace
}  // namespace mt::inventory
