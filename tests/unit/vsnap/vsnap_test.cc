// agent/vsnap on this host: names, what a machine without device-mapper
// answers (and that it changes nothing), and how vsnap list reads leftovers.
// The device-mapper flows themselves run in the VM tier (vm.vsnap, vm.e2e).
#include "vsnap/vsnap.h"

#include <gtest/gtest.h>

#include "mt/shim/devmapper.h"
#include "mt/shim/mem_file_system.h"
#include "vsnap/target_map.h"

namespace mt::vsnap {
namespace {

TEST(VsnapName, OnlySafeCharacters) {
  for (const char* ok : {"v1", "app-3", "before_upgrade.2026", "A"}) EXPECT_TRUE(CheckName(ok).ok()) << ok;
  for (const char* bad : {"", "-x", ".x", "a/b", "a b", "x\n", "ü"})
    EXPECT_EQ(CheckName(bad).code(), Errc::kInvalidArgument) << bad;
  EXPECT_EQ(CheckName(std::string(41, 'a')).code(), Errc::kInvalidArgument);
  EXPECT_TRUE(CheckName(std::string(40, 'a')).ok());
}

TEST(VsnapName, MapNamesAreTheOnesTheInventoryCallsOurOwn) {
  EXPECT_EQ(TargetMapName("naa.6000c29a1b2c3d4e"), "mt-naa.6000c29a1b2c3d4e");
  EXPECT_EQ(VsnapMapName("naa.6000c29a1b2c3d4e", "v1"), "mt-naa.6000c29a1b2c3d4e-vs-v1");
}

inventory::Disk ScsiTarget() {
  inventory::Disk d;
  d.identity = d.wwid = "naa.6000c29a1b2c3d4e";
  d.name = "sdb";
  d.devnode = "/dev/sdb";
  d.size_bytes = 64ull << 20;
  return d;
}

TEST(VsnapWithoutDeviceMapper, CreateSaysWhyAndChangesNothing) {
  if (shim::DeviceMapperAvailable()) GTEST_SKIP() << "this kernel has device-mapper (see vm.vsnap)";
  shim::MemFileSystem fs;
  ASSERT_TRUE(fs.CreateDir("/ret").ok());
  const inventory::Disk disk = ScsiTarget();
  std::vector<retention::SegmentInfo> undo;
  CreateSpec spec;
  spec.retention_dir = "/ret";
  spec.name = "v1";
  spec.disk = &disk;
  spec.undo = &undo;
  auto r = Create(fs, spec);
  ASSERT_EQ(r.status().code(), Errc::kUnavailable);
  EXPECT_NE(r.status().message().find("device-mapper"), std::string::npos) << r.status().message();
  EXPECT_EQ(*fs.ListDir("/ret"), std::vector<std::string>{});
}

TEST(VsnapWithoutDeviceMapper, TargetsAreWrittenDirectly) {
  if (shim::DeviceMapperAvailable()) GTEST_SKIP() << "this kernel has device-mapper (see vm.vsnap)";
  const inventory::Disk disk = ScsiTarget();
  EXPECT_FALSE(UsesTargetMap(disk, true));
  EXPECT_EQ(*TargetWritePath(disk, true), "/dev/sdb");
  EXPECT_TRUE(DropTargetMap(disk).ok());
}

TEST(VsnapTargetMap, OnlyScsiDisksWithAWwidAndOnlyWhenWanted) {
  inventory::Disk loop;
  loop.identity = "loop:/var/tmp/d.img";
  loop.devnode = "/dev/loop3";
  EXPECT_FALSE(UsesTargetMap(loop, true));
  EXPECT_EQ(*TargetWritePath(loop, true), "/dev/loop3");
  EXPECT_FALSE(UsesTargetMap(ScsiTarget(), false));
  EXPECT_EQ(*TargetWritePath(ScsiTarget(), false), "/dev/sdb");
}

// Leftovers read back: a vsnap whose creation did not finish is
// "interrupted", a finished one without its map "inactive" (no
// device-mapper here, so no map); both say what to do.
TEST(VsnapList, LeftoversSayWhatToDo) {
  if (shim::DeviceMapperAvailable()) GTEST_SKIP() << "this kernel has device-mapper (see vm.vsnap)";
  shim::MemFileSystem fs;
  ASSERT_TRUE(fs.CreateDir("/ret/vsnap").ok());
  auto put = [&](const std::string& name, const std::string& state) {
    proto::VsnapInfo i;
    i.set_name(name);
    i.set_state(state);
    i.set_dm_name(VsnapMapName("naa.6000c29a1b2c3d4e", name));
    i.set_cow_file("/ret/vsnap/" + name + ".cow");
    std::string bytes;
    i.SerializeToString(&bytes);
    ASSERT_TRUE(shim::WriteFileAtomically(fs, "/ret/vsnap/" + name + ".vsnap", bytes).ok());
    ASSERT_TRUE(shim::WriteFileAtomically(fs, i.cow_file(), "cow").ok());
  };
  put("a", "ready");
  put("b", "filling");
  auto list = List(fs, "/ret");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name(), "a");
  EXPECT_EQ((*list)[0].state(), "inactive");
  EXPECT_NE((*list)[0].detail().find("mtctl vsnap remove a"), std::string::npos);
  EXPECT_EQ((*list)[1].state(), "interrupted");
  EXPECT_NE((*list)[1].detail().find("mtctl vsnap remove b"), std::string::npos);

  // Remove takes the files away; an unknown name is kNotFound.
  ASSERT_TRUE(Remove(fs, "/ret", "b").ok());
  EXPECT_FALSE(fs.Exists("/ret/vsnap/b.vsnap"));
  EXPECT_FALSE(fs.Exists("/ret/vsnap/b.cow"));
  EXPECT_EQ(Remove(fs, "/ret", "b").code(), Errc::kNotFound);
  EXPECT_EQ(Remove(fs, "/ret", "../x").code(), Errc::kInvalidArgument);
  ASSERT_EQ(List(fs, "/ret")->size(), 1u);
}

TEST(VsnapList, NoDirectoryMeansNoVsnaps) {
  shim::MemFileSystem fs;
  auto list = List(fs, "/nowhere");
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

}  // namespace
}  // namespace mt::vsnap
