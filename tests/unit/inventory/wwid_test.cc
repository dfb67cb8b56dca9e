#include "inventory/wwid.h"

#include <gtest/gtest.h>

namespace mt::inventory {
namespace {

std::string N(const std::string& s) {
  auto r = NormalizeWwid(s);
  EXPECT_TRUE(r.ok()) << s << ": " << r.status().ToString();
  return r.ok() ? *r : "";
}

TEST(Wwid, KernelFormsAreLowerCased) {
  EXPECT_EQ(N("naa.6000c29a1b2c3d4e"), "naa.6000c29a1b2c3d4e");
  EXPECT_EQ(N("NAA.6000C29A1B2C3D4E5F60718293A4B5C6"), "naa.6000c29a1b2c3d4e5f60718293a4b5c6");
  EXPECT_EQ(N("  naa.6000c29a1b2c3d4e\n"), "naa.6000c29a1b2c3d4e");
  EXPECT_EQ(N("eui.0025385B71B2C3D4"), "eui.0025385b71b2c3d4");
  EXPECT_EQ(N("eui.0025385b71b2c3d4e5f60718"), "eui.0025385b71b2c3d4e5f60718");
  EXPECT_EQ(N("iqn.2003-01.ORG.linux-iscsi.mt:sn.4d2c"), "iqn.2003-01.org.linux-iscsi.mt:sn.4d2c");
}

TEST(Wwid, UdevAndMultipathFormsBecomeNaa) {
  // udev ID_WWN, by-id link names, scsi_id/multipath with the type digit 3.
  EXPECT_EQ(N("0x6000c29a1b2c3d4e"), "naa.6000c29a1b2c3d4e");
  EXPECT_EQ(N("0X6000C29A1B2C3D4E"), "naa.6000c29a1b2c3d4e");
  EXPECT_EQ(N("wwn-0x6000c29a1b2c3d4e"), "naa.6000c29a1b2c3d4e");
  EXPECT_EQ(N("36000c29a1b2c3d4e"), "naa.6000c29a1b2c3d4e");
  EXPECT_EQ(N("36000c2951a0b2c3d4e5f60718293a4b5"), "naa.6000c2951a0b2c3d4e5f60718293a4b5");
  EXPECT_EQ(N("6000c29a1b2c3d4e"), "naa.6000c29a1b2c3d4e");
  EXPECT_EQ(N("20025385b71b2c3d4"), "eui.0025385b71b2c3d4");
  EXPECT_EQ(N("8naa.6001405ABCDEF012"), "naa.6001405abcdef012");
}

TEST(Wwid, T10KeepsItsTextWithoutTrailingSpaces) {
  EXPECT_EQ(N("t10.LIO-ORG block1          "), "t10.LIO-ORG block1");
  EXPECT_EQ(N("T10.ATA     QEMU HARDDISK"), "t10.ATA     QEMU HARDDISK");
  EXPECT_EQ(N("1ATA     QEMU HARDDISK   QM00001  "), "t10.ATA     QEMU HARDDISK   QM00001");
}

TEST(Wwid, RejectsWhatIsNotAWwid) {
  for (const char* bad :
       {"", "   ", "naa.", "naa.6000c29", "naa.6000c29a1b2c3d4g", "eui.0025", "0x1234",
        "QEMU_HARDDISK_QM00001", "t10.", "9000c29a1b2c3d4e", "/dev/sdb"}) {
    auto r = NormalizeWwid(bad);
    EXPECT_FALSE(r.ok()) << "'" << bad << "' -> " << (r.ok() ? *r : "");
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Errc::kInvalidArgument);
    }
  }
}

TEST(Wwid, NonScsiIdentitiesAreKeptAsGiven) {
  EXPECT_EQ(*NormalizeIdentity("loop:/var/tmp/disk1.img"), "loop:/var/tmp/disk1.img");
  EXPECT_EQ(*NormalizeIdentity("virtio:overlayblk"), "virtio:overlayblk");
  EXPECT_EQ(*NormalizeIdentity("36000c29a1b2c3d4e"), "naa.6000c29a1b2c3d4e");
  EXPECT_FALSE(NormalizeIdentity("loop:").ok());
}

}  // namespace
}  // namespace mt::inventory
