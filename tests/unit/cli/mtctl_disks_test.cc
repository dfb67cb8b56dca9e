// `mtctl disks` as a process on captured sysfs trees (no root, no devices).
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "cli/commands.h"
#include "mt/inventory.pb.h"
#include "subprocess.h"
#include "test_data.h"

namespace mt::cli {
namespace {

using test::RunProcess;

test::ProcessResult Mtctl(std::vector<std::string> args) {
  args.insert(args.begin(), MT_MTCTL_PATH);
  return RunProcess(args);
}

size_t Lines(const std::string& s) {
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

const proto::Disk* Find(const proto::Inventory& inv, const std::string& device) {
  for (const auto& d : inv.disks())
    if (d.device() == device) return &d;
  return nullptr;
}

TEST(MtctlDisks, TableOnACapturedTree) {
  const auto r = Mtctl({"--sysroot", test::SysfsTree("vmware-mt"), "disks", "--target",
                        "naa.6000c2951a0b2c3d4e5f60718293a402"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out.rfind("IDENTITY", 0), 0u) << r.out;
  for (const char* want :
       {"naa.6000c2951a0b2c3d4e5f60718293a400  /dev/sda", "VMware Virtual disk",
        "holds / (dm-0 rl-root)", "protection target named by the configuration",
        "disk.EnableUUID is not TRUE for this VM (no SCSI WWID)",
        "loop device: not a SCSI disk; allow it with allow_non_scsi in the configuration for "
        "demos/tests",
        "16 GiB"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  EXPECT_EQ(Lines(r.out), 14u);  // header + 13 disks
}

TEST(MtctlDisks, JsonIsTheInventoryMessageWithProtoFieldNames) {
  const auto r = Mtctl({"disks", "--json", "--sysroot", test::SysfsTree("qemu-guest")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"safe_target\""), std::string::npos);
  EXPECT_NE(r.out.find("\"logical_block_size\""), std::string::npos);
  proto::Inventory inv;
  const auto st = google::protobuf::util::JsonStringToMessage(r.out, &inv);
  ASSERT_TRUE(st.ok()) << st.ToString() << "\n" << r.out;
  ASSERT_EQ(inv.disks_size(), 3);
  EXPECT_EQ(inv.sysroot(), test::SysfsTree("qemu-guest"));
  const proto::Disk* sda = Find(inv, "/dev/sda");
  ASSERT_NE(sda, nullptr);
  EXPECT_EQ(sda->identity(), "naa.6000c29a1b2c3d4e");
  EXPECT_EQ(sda->role(), "free");
  EXPECT_TRUE(sda->can_be_target());
  EXPECT_FALSE(sda->safe_target());
  EXPECT_EQ(sda->vendor(), "VMware");
  ASSERT_EQ(sda->designators_size(), 2);
  EXPECT_EQ(sda->designators(1).type(), "naa");
  EXPECT_EQ(sda->designators(1).name(), "naa.6000c29a1b2c3d4e");
  EXPECT_EQ(Find(inv, "/dev/sdb")->target_blocker(),
            "disk.EnableUUID is not TRUE for this VM (no SCSI WWID)");
}

TEST(MtctlDisks, AllowNonScsiAndTargetMakeALoopASafeTarget) {
  const auto r =
      Mtctl({"--sysroot", test::SysfsTree("vmware-mt"), "disks", "--json", "--allow-non-scsi",
             "/dev/loop0", "--target", "loop:/var/lib/mt-demo/disk0.img"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  proto::Inventory inv;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &inv).ok());
  const proto::Disk* l = Find(inv, "/dev/loop0");
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->role(), "target");
  EXPECT_TRUE(l->safe_target());
  EXPECT_EQ(l->identity(), "loop:/var/lib/mt-demo/disk0.img");
}

TEST(MtctlDisks, MultipathDiskShowsItsMapAndPaths) {
  const auto r = Mtctl({"--sysroot", test::SysfsTree("multipath"), "disks", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  proto::Inventory inv;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &inv).ok());
  const proto::Disk* m = Find(inv, "/dev/mapper/mpatha");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->multipath_map(), "mpatha");
  ASSERT_EQ(m->paths_size(), 2);
  EXPECT_EQ(m->role(), "mounted");
}

TEST(MtctlDisks, FailureIsOneLineOnStderrAndNonZero) {
  const auto r = Mtctl({"--sysroot", "/nonexistent/mt-tree", "disks"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "mtctl: sysroot /nonexistent/mt-tree is not a directory\n");
  // A directory that is not a system root.
  const auto r2 = Mtctl({"--sysroot", test::DataDir() + "/vpd", "disks"});
  EXPECT_EQ(r2.exit_code, 1);
  EXPECT_EQ(Lines(r2.err), 1u) << r2.err;
  EXPECT_EQ(r2.err.rfind("mtctl: ", 0), 0u);
}

TEST(MtctlDisks, UsageErrorsAreOneLineWithStatusTwo) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{}, {"disks", "--bogus"}, {"nosuchcommand"}}) {
    const auto r = Mtctl(args);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(Lines(r.err), 1u) << r.err;
    EXPECT_EQ(r.err.rfind("mtctl: ", 0), 0u) << r.err;
  }
  const auto help = Mtctl({"disks", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--watch"), std::string::npos);
}

TEST(MtctlDisks, InProcessRunSharesTheLibrary) {
  std::ostringstream out, err;
  const std::string root = test::SysfsTree("qemu-guest");
  const char* argv[] = {"mtctl", "disks", "--sysroot", root.c_str()};
  EXPECT_EQ(RunMtctl(4, argv, out, err), 0) << err.str();
  EXPECT_NE(out.str().find("naa.6000c29a1b2c3d4e"), std::string::npos);
}

}  // namespace
}  // namespace mt::cli
