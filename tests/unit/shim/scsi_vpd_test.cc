// VPD page 0x83 / 0x80 decoding, on binary pages built by
// tests/data/sysfs/make-trees (tests/data/vpd/*.bin) and in code.
#include "mt/shim/scsi_vpd.h"

#include <gtest/gtest.h>

#include "test_data.h"

namespace mt::shim {
namespace {

VpdPage83 Parse(const std::string& file) {
  const std::string page = test::ReadDataFile("vpd/" + file);
  EXPECT_FALSE(page.empty()) << file;
  auto r = ParseVpdPage83(page);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : VpdPage83{};
}

std::string Preferred(const VpdPage83& p) {
  const ScsiDesignator* d = PreferredLunDesignator(p);
  return d == nullptr ? "" : d->Name();
}

TEST(ScsiVpd, VmwareNaaRegisteredExtendedAndTargetPortDesignators) {
  const VpdPage83 p = Parse("naa16-vmware.bin");
  ASSERT_EQ(p.designators.size(), 3u);
  EXPECT_FALSE(p.truncated);
  const ScsiDesignator& lu = p.designators[0];
  EXPECT_EQ(lu.type, 3);
  EXPECT_EQ(lu.association, 0);
  EXPECT_EQ(lu.code_set, 1);
  EXPECT_FALSE(lu.piv);
  EXPECT_EQ(lu.Name(), "naa.6000c2951a0b2c3d4e5f60718293a400");
  // Target port NAA: SAS protocol, PIV set, association 1 -- not the LU's id.
  const ScsiDesignator& port = p.designators[1];
  EXPECT_EQ(port.protocol_id, 6);
  EXPECT_TRUE(port.piv);
  EXPECT_EQ(port.association, 1);
  EXPECT_EQ(port.type, 3);
  EXPECT_EQ(p.designators[2].type, 4);  // relative target port
  EXPECT_EQ(p.designators[2].Name(), "");
  EXPECT_EQ(Preferred(p), "naa.6000c2951a0b2c3d4e5f60718293a400");
}

TEST(ScsiVpd, QemuWwnGivesTheKernelsNaaForm) {
  // -device scsi-hd,wwn=0x6000c29a1b2c3d4e: the guest's device/wwid reads this.
  const VpdPage83 p = Parse("naa8-qemu.bin");
  ASSERT_EQ(p.designators.size(), 2u);
  EXPECT_EQ(p.designators[0].type, 0);  // vendor specific: QEMU's drive id
  EXPECT_EQ(p.designators[0].identifier, "d1");
  EXPECT_EQ(p.designators[0].Name(), "");
  EXPECT_EQ(Preferred(p), "naa.6000c29a1b2c3d4e");
}

TEST(ScsiVpd, NoLogicalUnitDesignatorMeansNoWwid) {
  // QEMU without wwn=, VMware without disk.EnableUUID=TRUE.
  const VpdPage83 p = Parse("no-lu-id.bin");
  EXPECT_EQ(p.designators.size(), 2u);
  EXPECT_EQ(PreferredLunDesignator(p), nullptr);
}

TEST(ScsiVpd, Eui64InItsThreeLengths) {
  EXPECT_EQ(Preferred(Parse("eui64-8.bin")), "eui.0025385b71b2c3d4");
  EXPECT_EQ(Preferred(Parse("eui64-12.bin")), "eui.0025385b71b2c3d4e5f60718");
  EXPECT_EQ(Preferred(Parse("eui64-16.bin")), "eui.0025385b71b2c3d4e5f6071829304152");
  EXPECT_EQ(Parse("eui64-12.bin").designators[0].type, 2);
}

TEST(ScsiVpd, T10VendorIdIsAsciiAsTheKernelPrintsIt) {
  const VpdPage83 p = Parse("t10.bin");
  ASSERT_EQ(p.designators.size(), 1u);
  EXPECT_EQ(p.designators[0].code_set, 2);
  EXPECT_EQ(p.designators[0].type, 1);
  EXPECT_EQ(Preferred(p), "t10.LIO-ORG block1          ");
}

TEST(ScsiVpd, ScsiNameStringWithoutItsNulPadding) {
  const VpdPage83 p = Parse("scsi-name.bin");
  ASSERT_EQ(p.designators.size(), 1u);
  EXPECT_EQ(p.designators[0].type, 8);
  EXPECT_EQ(p.designators[0].code_set, 3);
  EXPECT_EQ(p.designators[0].identifier.size() % 4, 0u);
  EXPECT_EQ(Preferred(p), "iqn.2003-01.org.linux-iscsi.mt:sn.4d2c1b0a");
}

TEST(ScsiVpd, KernelPreferenceOrderAcrossDesignatorTypes) {
  // T10 < EUI-64 8 < NAA registered extended < SCSI name string.
  const VpdPage83 p = Parse("all.bin");
  ASSERT_EQ(p.designators.size(), 4u);
  EXPECT_EQ(Preferred(p), "naa.6001405ABCDEF0123456789ABCDEF012");
  VpdPage83 no_name = p;
  no_name.designators.pop_back();
  EXPECT_EQ(Preferred(no_name), "naa.6001405abcdef0123456789abcdef012");
  no_name.designators.pop_back();
  EXPECT_EQ(Preferred(no_name), "eui.0025385b71b2c3d4");
  no_name.designators.pop_back();
  EXPECT_EQ(Preferred(no_name), "t10.LIO-ORG block1");
}

TEST(ScsiVpd, NaaRegisteredBeatsEui64EightAndLocallyAssignedLosesToIt) {
  auto naa = [](std::string id) {
    ScsiDesignator d;
    d.type = 3;
    d.code_set = 1;
    d.identifier = std::move(id);
    return d;
  };
  ScsiDesignator eui;
  eui.type = 2;
  eui.identifier = std::string("\x00\x25\x38\x5b\x71\xb2\xc3\xd4", 8);
  VpdPage83 p;
  p.designators = {eui, naa(std::string("\x50\x01\x40\x5a\xbc\xde\xf0\x12", 8))};
  EXPECT_EQ(Preferred(p), "naa.5001405abcdef012");
  p.designators = {naa(std::string("\x30\x01\x40\x5a\xbc\xde\xf0\x12", 8)), eui};
  EXPECT_EQ(Preferred(p), "eui.0025385b71b2c3d4");
  // An NAA of a length the kernel does not name is not an identity.
  p.designators = {naa(std::string("\x60\x01\x40", 3))};
  EXPECT_EQ(PreferredLunDesignator(p), nullptr);
}

TEST(ScsiVpd, TruncatedPageKeepsTheDesignatorsThatFit) {
  const VpdPage83 p = Parse("truncated.bin");
  EXPECT_TRUE(p.truncated);
  ASSERT_EQ(p.designators.size(), 1u);
  EXPECT_EQ(Preferred(p), "naa.6000c29a1b2c3d4e");
}

TEST(ScsiVpd, RejectsAShortHeaderOrAnotherPage) {
  EXPECT_EQ(ParseVpdPage83(std::string("\x00\x83", 2)).status().code(), Errc::kCorruption);
  EXPECT_EQ(ParseVpdPage83(std::string("\x00\x80\x00\x00", 4)).status().code(), Errc::kCorruption);
  auto empty = ParseVpdPage83(std::string("\x00\x83\x00\x00", 4));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->designators.empty());
}

TEST(ScsiVpd, Page80SerialWithoutPadding) {
  auto s = ParseVpdPage80(test::ReadDataFile("vpd/serial.bin"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(*s, "6000c2951a0b2c3d4e5f60718293a400");
  EXPECT_FALSE(ParseVpdPage80(std::string("\x00\x83\x00\x00", 4)).ok());
}

TEST(ScsiVpd, NamesOfFields) {
  EXPECT_STREQ(DesignatorTypeName(3), "naa");
  EXPECT_STREQ(DesignatorTypeName(8), "scsi-name-string");
  EXPECT_STREQ(AssociationName(1), "target-port");
  EXPECT_STREQ(CodeSetName(2), "ascii");
}

}  // namespace
}  // namespace mt::shim
