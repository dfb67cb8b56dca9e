// The retention directory must be a mounted volume of its own before
// mt-agent starts (retention_mount.h): mount tables as the kernel shows them.
#include "daemon/retention_mount.h"

#include <gtest/gtest.h>

namespace mt::daemon {
namespace {

// mountinfo(5) lines: id parent maj:min root mount-point options - type source super.
std::vector<shim::MountEntry> Mounts(const std::string& extra) {
  return shim::ParseMountInfo(
      "22 1 8:2 / / rw,relatime shared:1 - xfs /dev/sda2 rw\n"
      "23 22 0:21 / /proc rw shared:5 - proc proc rw\n"
      "24 22 0:5 / /tmp rw shared:6 - tmpfs tmpfs rw\n" +
      extra);
}

TEST(RetentionMount, AVolumeOfItsOwnMountedThereIsAccepted) {
  auto m = Mounts("40 22 8:16 / /mnt/retention rw,relatime shared:9 - ext4 /dev/sdb rw\n");
  EXPECT_TRUE(CheckRetentionMount(m, "/mnt/retention").ok());
  EXPECT_TRUE(CheckRetentionMount(m, "/mnt/retention/").ok()) << "a trailing slash is the same";
}

TEST(RetentionMount, APlainDirectoryOnTheRootFileSystemIsRefusedWithTheFix) {
  auto s = CheckRetentionMount(Mounts(""), "/mnt/retention");
  EXPECT_EQ(s.code(), Errc::kUnavailable);
  EXPECT_EQ(s.message(),
            "retention directory /mnt/retention is not a mount point: mount the retention volume "
            "there (mt-prepare --retention DEVICE, or mtctl retention prepare DEVICE), then start "
            "mt-agent");
}

TEST(RetentionMount, ATmpfsOrABindMountOfTheRootFileSystemIsRefused) {
  auto tmpfs = CheckRetentionMount(
      Mounts("41 22 0:40 / /mnt/retention rw - tmpfs tmpfs rw\n"), "/mnt/retention");
  EXPECT_EQ(tmpfs.code(), Errc::kUnavailable);
  EXPECT_NE(tmpfs.message().find("a tmpfs mount of tmpfs, not a block device"), std::string::npos)
      << tmpfs.message();
  auto bind = CheckRetentionMount(
      Mounts("42 22 8:2 /srv/ret /mnt/retention rw - xfs /dev/sda2 rw\n"), "/mnt/retention");
  EXPECT_EQ(bind.code(), Errc::kUnavailable);
  EXPECT_NE(bind.message().find("is on the root file system (/dev/sda2)"), std::string::npos)
      << bind.message();
}

}  // namespace
}  // namespace mt::daemon
