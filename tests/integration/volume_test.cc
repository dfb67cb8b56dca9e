// Retention volume operations on real loop devices: format, mount, fstab.
#include "mt/shim/volume.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "loop_device.h"
#include "mt/shim/process.h"

namespace mt::shim {
namespace {

std::string ReadFile(const std::string& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(RunProcess, CapturesOutputAndExitCode) {
  auto r = RunProcess({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_EQ(RunProcess({"mt-no-such-tool"}).status().code(), Errc::kNotFound);
}

TEST(Volume, FormatMountAndFstabEntryIsIdempotent) {
  MT_REQUIRE_ROOT();
  test::LoopDevice loop(64ull << 20);
  ASSERT_FALSE(loop.path().empty()) << loop.error();
  ASSERT_TRUE(FormatExt4(loop.path(), "mt-retention").ok());
  EXPECT_EQ(test::Capture("blkid -p -o value -s TYPE " + loop.path()), "ext4");
  EXPECT_EQ(test::Capture("blkid -p -o value -s LABEL " + loop.path()), "mt-retention");
  const std::string uuid = test::Capture("blkid -p -o value -s UUID " + loop.path());
  char dir[] = "/tmp/mt-vol-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string mnt = std::string(dir) + "/mnt";
  ASSERT_TRUE(MountExt4(loop.path(), mnt).ok());
  EXPECT_EQ(test::Run("mountpoint -q " + mnt), 0);
  Status again = MountExt4(loop.path(), mnt);
  EXPECT_FALSE(again.ok());
  EXPECT_NE(again.message().find(loop.path()), std::string::npos) << again.message();

  const std::string fstab = std::string(dir) + "/fstab";
  { std::ofstream(fstab) << "# test fstab\nUUID=1111 / ext4 defaults 0 1\n"; }
  bool changed = false;
  ASSERT_TRUE(EnsureFstabEntry(fstab, uuid, mnt, &changed).ok());
  EXPECT_TRUE(changed);
  const std::string once = ReadFile(fstab);
  EXPECT_NE(once.find("UUID=" + uuid + " " + mnt + " ext4 defaults,nofail 0 2\n"),
            std::string::npos) << once;
  EXPECT_EQ(once.find("# test fstab\nUUID=1111 / ext4 defaults 0 1\n"), 0u);
  ASSERT_TRUE(EnsureFstabEntry(fstab, uuid, mnt, &changed).ok());
  EXPECT_FALSE(changed);
  EXPECT_EQ(ReadFile(fstab), once);
  Status other = EnsureFstabEntry(fstab, "2222", mnt, &changed);
  EXPECT_EQ(other.code(), Errc::kBusy);
  EXPECT_EQ(ReadFile(fstab), once);

  test::Run("umount " + mnt);
  test::Run(std::string("rm -rf ") + dir);
}

TEST(Volume, FormatOfAMissingDeviceFailsWithMkfsMessage) {
  MT_REQUIRE_ROOT();
  Status s = FormatExt4("/dev/mt-no-such-disk", "x");
  EXPECT_EQ(s.code(), Errc::kIoError);
  EXPECT_NE(s.message().find("mkfs.ext4 /dev/mt-no-such-disk failed"), std::string::npos)
      << s.message();
}

}  // namespace
}  // namespace mt::shim
