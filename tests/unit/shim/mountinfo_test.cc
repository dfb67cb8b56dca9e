#include <gtest/gtest.h>

#include "mt/shim/mounts.h"

namespace mt::shim {
namespace {

TEST(MountInfo, ParsesOptionalFieldsEscapesAndDeviceNumbers) {
  const auto m = ParseMountInfo(
      "22 1 253:0 / / rw,relatime shared:1 - xfs /dev/mapper/rl-root rw,attr2\n"
      "42 22 8:81 /sub /data\\040files rw shared:7 master:2 - ext4 /dev/sdf1 rw\n"
      "43 22 0:40 / /run rw - tmpfs tmpfs rw\n");
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].dev, (DevNumber{253, 0}));
  EXPECT_EQ(m[0].mount_point, "/");
  EXPECT_EQ(m[0].fs_type, "xfs");
  EXPECT_EQ(m[0].source, "/dev/mapper/rl-root");
  EXPECT_EQ(m[1].mount_id, 42u);
  EXPECT_EQ(m[1].root, "/sub");
  EXPECT_EQ(m[1].mount_point, "/data files");
  EXPECT_EQ(m[1].fs_type, "ext4");
  EXPECT_EQ(m[1].dev.ToString(), "8:81");
  EXPECT_EQ(m[2].source, "tmpfs");
}

TEST(MountInfo, SkipsDamagedLines) {
  const auto m = ParseMountInfo(
      "garbage\n"
      "1 2 x:y / / rw - ext4 /dev/sda rw\n"
      "1 2 8:0 / / rw shared:1\n"
      "\n"
      "5 1 8:1 / /boot rw - xfs /dev/sda1 rw");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].mount_point, "/boot");
}

TEST(MountInfo, ParsesSwaps) {
  const auto s = ParseSwaps(
      "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
      "/dev/dm-1                               partition\t2097148\t\t0\t\t-2\n"
      "/swap\\040file                           file\t\t1024\t\t0\t\t-3\n");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].path, "/dev/dm-1");
  EXPECT_EQ(s[0].type, "partition");
  EXPECT_EQ(s[1].path, "/swap file");
  EXPECT_TRUE(ParseSwaps("Filename Type Size Used Priority\n").empty());
}

TEST(MountInfo, DevNumberParsing) {
  DevNumber d;
  EXPECT_TRUE(DevNumber::Parse("8:16", &d));
  EXPECT_EQ(d, (DevNumber{8, 16}));
  EXPECT_FALSE(DevNumber::Parse("8", &d));
  EXPECT_FALSE(DevNumber::Parse(":1", &d));
  EXPECT_FALSE(DevNumber::Parse("8:", &d));
  EXPECT_FALSE(DevNumber::Parse("8:1x", &d));
  EXPECT_FALSE(DevNumber::Parse("99999999999:1", &d));
}

}  // namespace
}  // namespace mt::shim
