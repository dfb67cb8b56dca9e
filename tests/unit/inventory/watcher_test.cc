// Hot-add / hot-remove: the watcher rescans on uevents and reports changes.
#include "inventory/watcher.h"

#include <gtest/gtest.h>

#include "fake_disks.h"
#include "temp_tree.h"

namespace mt::inventory {
namespace {

const std::string kSddDir =
    "sys/devices/pci0000:00/0000:00:15.0/0000:03:00.0/host2/target2:0:3/2:0:3:0/block/sdd";

class Watcher : public ::testing::Test {
 protected:
  Watcher() {
    tree_.CopyFrom(test::SysfsTree("vmware-mt"));
    sys_ = std::make_unique<test::TreeDiskSystem>(tree_.path());
  }

  // Unplug sdd: its class and block links go (the devices dir stays, as a
  // directory nobody points to would).
  void Unplug() {
    tree_.Remove("sys/class/block/sdd");
    tree_.Remove("sys/block/sdd");
  }
  void Plug() {
    tree_.Symlink(std::string("../../") + kSddDir.substr(4), "sys/class/block/sdd");
    tree_.Symlink(std::string("../") + kSddDir.substr(4), "sys/block/sdd");
  }

  test::TempDir tree_;
  std::unique_ptr<test::TreeDiskSystem> sys_;
  test::FakeUevents events_;
};

TEST_F(Watcher, NoUeventsNoRescan) {
  DiskWatcher w(*sys_, events_, InventoryConfig{});
  ASSERT_TRUE(w.Start().ok());
  const int probes = sys_->probes;
  auto evs = w.HandlePending();
  ASSERT_TRUE(evs.ok());
  EXPECT_TRUE(evs->empty());
  EXPECT_EQ(sys_->probes, probes);
}

TEST_F(Watcher, HotRemoveThenHotAdd) {
  DiskWatcher w(*sys_, events_, InventoryConfig{});
  ASSERT_TRUE(w.Start().ok());
  ASSERT_NE(w.inventory().Find("/dev/sdd"), nullptr);

  Unplug();
  events_.Push("remove", "sdd");
  auto evs = w.HandlePending();
  ASSERT_TRUE(evs.ok()) << evs.status().ToString();
  ASSERT_EQ(evs->size(), 1u);
  EXPECT_EQ((*evs)[0].kind, DiskEventKind::kRemove);
  EXPECT_EQ((*evs)[0].disk.devnode, "/dev/sdd");
  EXPECT_EQ(w.inventory().Find("/dev/sdd"), nullptr);

  Plug();
  events_.Push("add", "sdd");
  events_.Push("change", "sdd");  // several events, one rescan
  evs = w.HandlePending();
  ASSERT_TRUE(evs.ok());
  ASSERT_EQ(evs->size(), 1u);
  EXPECT_EQ((*evs)[0].kind, DiskEventKind::kAdd);
  EXPECT_EQ((*evs)[0].disk.identity, "naa.6000c2951a0b2c3d4e5f60718293a403");
  EXPECT_EQ((*evs)[0].disk.role, Role::kFree);
  EXPECT_EQ(w.uevents_seen(), 3u);
}

TEST_F(Watcher, LoopAttachIsAChangeUeventThatAddsADisk) {
  // losetup sends "change" for an existing, empty loop device.
  DiskWatcher w(*sys_, events_, InventoryConfig{});
  ASSERT_TRUE(w.Start().ok());
  EXPECT_EQ(w.inventory().Find("/dev/loop1"), nullptr);
  tree_.Write("sys/devices/virtual/block/loop1/size", "131072\n");
  tree_.Write("sys/devices/virtual/block/loop1/loop/backing_file", "/var/tmp/new.img\n");
  events_.Push("change", "loop1");
  auto evs = w.HandlePending();
  ASSERT_TRUE(evs.ok());
  ASSERT_EQ(evs->size(), 1u);
  EXPECT_EQ((*evs)[0].kind, DiskEventKind::kAdd);
  EXPECT_EQ((*evs)[0].disk.identity, "loop:/var/tmp/new.img");
}

TEST_F(Watcher, RoleChangeIsAChangeEvent) {
  DiskWatcher w(*sys_, events_, InventoryConfig{});
  ASSERT_TRUE(w.Start().ok());
  sys_->held.insert("/dev/sdd");  // someone opened it O_EXCL ...
  events_.Push("change", "sdd");  // ... and something about it changed
  auto evs = w.HandlePending();
  ASSERT_TRUE(evs.ok());
  ASSERT_EQ(evs->size(), 1u);
  EXPECT_EQ((*evs)[0].kind, DiskEventKind::kChange);
  EXPECT_EQ((*evs)[0].disk.role, Role::kInUse);
}

TEST_F(Watcher, LostEventsMeanAFullRescan) {
  DiskWatcher w(*sys_, events_, InventoryConfig{});
  ASSERT_TRUE(w.Start().ok());
  Unplug();
  events_.Push("overflow", "");
  auto evs = w.HandlePending();
  ASSERT_TRUE(evs.ok());
  ASSERT_EQ(evs->size(), 1u);
  EXPECT_EQ((*evs)[0].kind, DiskEventKind::kRemove);
}

TEST(DiffInventories, MatchesByIdentityNotByName) {
  // Same disk, new kernel name after a re-attach: a change, not remove + add.
  test::TreeDiskSystem sys("vmware-mt");
  auto a = Inventory::Scan(sys, InventoryConfig{});
  ASSERT_TRUE(a.ok());
  sys.edit_facts = [](std::vector<shim::BlockDeviceFacts>* facts) {
    for (auto& f : *facts)
      if (f.name == "sdd") f.devnode = "/dev/sdq";
  };
  auto b = Inventory::Scan(sys, InventoryConfig{});
  ASSERT_TRUE(b.ok());
  auto evs = DiffInventories(*a, *b);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].kind, DiskEventKind::kChange);
  EXPECT_EQ(evs[0].disk.devnode, "/dev/sdq");
  EXPECT_TRUE(DiffInventories(*a, *a).empty());
}

}  // namespace
}  // namespace mt::inventory
