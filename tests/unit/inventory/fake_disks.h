// Test helpers for the inventory: the real sysfs reader on a captured tree
// (tests/data/sysfs/<tree>), with the calls that need real devices (libblkid,
// O_EXCL) answered from tables, and a hand-fed uevent source.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "mt/shim/disk_system.h"
#include "mt/shim/uevent.h"
#include "test_data.h"

namespace mt::test {

inline std::unique_ptr<shim::DiskSystem> OpenTree(const std::string& tree) {
  shim::HostDiskSystemOptions o;
  o.sysroot = !tree.empty() && tree[0] == '/' ? tree : SysfsTree(tree);
  o.use_udev = false;
  auto s = shim::OpenHostDiskSystem(o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

// Owns the real DiskSystem; a base listed first so it exists before the wrapper.
struct OwnsDiskSystem {
  std::unique_ptr<shim::DiskSystem> real;
};

class TreeDiskSystem : private OwnsDiskSystem, public shim::DiskSystemWrapper {
 public:
  // A captured tree by name ("vmware-mt") or an absolute path.
  explicit TreeDiskSystem(const std::string& tree)
      : OwnsDiskSystem{OpenTree(tree)}, DiskSystemWrapper(OwnsDiskSystem::real.get()) {}

  // What libblkid would find on a device node ("/dev/sdb").
  std::map<std::string, shim::ContentProbe> content;
  // Devices another process holds open O_EXCL.
  std::set<std::string> held;
  // Devices that vanish when probed (and are then gone from sysfs).
  std::set<std::string> vanish_on_probe;
  // Devices whose probe fails with this status (permission, I/O error).
  std::map<std::string, Status> probe_error;
  // Edits applied to the scanned facts (udev properties, sizes).
  std::function<void(std::vector<shim::BlockDeviceFacts>*)> edit_facts;

  Result<std::vector<shim::BlockDeviceFacts>> ScanBlockDevices() override {
    auto f = DiskSystemWrapper::ScanBlockDevices();
    if (f.ok() && edit_facts) edit_facts(&f.value());
    return f;
  }
  bool BlockDeviceExists(const std::string& name) override {
    if (vanish_on_probe.count("/dev/" + name) != 0) return false;
    return DiskSystemWrapper::BlockDeviceExists(name);
  }
  Result<shim::ContentProbe> ProbeContent(const std::string& devnode) override {
    ++probes;
    if (vanish_on_probe.count(devnode) != 0)
      return Status(Errc::kNotFound, "probe " + devnode + ": device is gone");
    if (auto it = probe_error.find(devnode); it != probe_error.end()) return it->second;
    auto it = content.find(devnode);
    return it == content.end() ? shim::ContentProbe{} : it->second;
  }
  // What libdevmapper would list (captured trees have no device-mapper).
  std::vector<shim::DmMap> dm_maps;
  Result<std::vector<shim::DmMap>> ListDmMaps() override { return dm_maps; }

  Result<bool> IsHeldExclusively(const std::string& devnode) override {
    if (vanish_on_probe.count(devnode) != 0)
      return Status(Errc::kNotFound, "open " + devnode + ": device is gone");
    return held.count(devnode) != 0;
  }

  int probes = 0;
};

inline shim::ContentProbe Fs(const std::string& type, const std::string& uuid = "",
                             const std::string& usage = "filesystem") {
  shim::ContentProbe c;
  c.type = type;
  c.uuid = uuid;
  c.usage = usage;
  return c;
}

// Uevents fed by the test.
class FakeUevents : public shim::UeventSource {
 public:
  int fd() const override { return -1; }
  Result<std::optional<shim::Uevent>> Next() override {
    if (queue.empty()) return std::optional<shim::Uevent>();
    shim::Uevent e = queue.front();
    queue.pop_front();
    return std::optional<shim::Uevent>(e);
  }
  void Push(const std::string& action, const std::string& name) {
    shim::Uevent e;
    e.action = action;
    e.subsystem = action == "overflow" ? "" : "block";
    e.name = name;
    e.devtype = "disk";
    queue.push_back(e);
  }
  std::deque<shim::Uevent> queue;
};

}  // namespace mt::test
