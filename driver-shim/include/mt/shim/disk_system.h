// DiskSystem: everything the disk inventory asks of the machine, behind one
// small interface. The real one reads sysfs / procfs through a SysRoot,
// enumerates with libudev, probes with libblkid and lists maps with
// libdevmapper; tests use it on captured trees (--sysroot) and override single
// calls with DiskSystemWrapper (LevelDB's EnvWrapper idea).
//
// Every call may see devices vanish: a device that is gone is kNotFound (or is
// simply left out of a listing), never another error.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mt/shim/blkid_probe.h"
#include "mt/shim/devmapper.h"
#include "mt/shim/mounts.h"
#include "mt/shim/status.h"
#include "mt/shim/sysfs_block.h"
#include "mt/shim/sysroot.h"

namespace mt::shim {

class DiskSystem {
 public:
  virtual ~DiskSystem() = default;

  // Whole block devices with their partitions.
  virtual Result<std::vector<BlockDeviceFacts>> ScanBlockDevices() = 0;
  // Whether a block device (kernel name) exists now: tells "vanished" from
  // "cannot be probed".
  virtual bool BlockDeviceExists(const std::string& name) = 0;
  virtual Result<std::vector<MountEntry>> ReadMounts() = 0;
  virtual Result<std::vector<SwapEntry>> ReadSwaps() = 0;
  // `devnode` is a path on the described system ("/dev/sdb").
  virtual Result<ContentProbe> ProbeContent(const std::string& devnode) = 0;
  virtual Result<bool> IsHeldExclusively(const std::string& devnode) = 0;
  virtual Result<std::vector<DmMap>> ListDmMaps() = 0;
  // SCSI host rescan; number of hosts scanned.
  virtual Result<int> RescanScsiHosts() = 0;
};

struct HostDiskSystemOptions {
  // Root prefix for /sys, /proc and /dev lookups; "" = the running system.
  std::string sysroot;
  // Enumerate with libudev on the running system (falls back to sysfs when it
  // lists nothing); never used with a sysroot.
  bool use_udev = true;
};

// The real DiskSystem. kNotFound when the sysroot does not exist.
Result<std::unique_ptr<DiskSystem>> OpenHostDiskSystem(const HostDiskSystemOptions& options);

// Forwards every call to `target` (not owned); tests derive from it and
// override the call they want to fake.
class DiskSystemWrapper : public DiskSystem {
 public:
  explicit DiskSystemWrapper(DiskSystem* target) : target_(target) {}
  Result<std::vector<BlockDeviceFacts>> ScanBlockDevices() override {
    return target_->ScanBlockDevices();
  }
  bool BlockDeviceExists(const std::string& name) override {
    return target_->BlockDeviceExists(name);
  }
  Result<std::vector<MountEntry>> ReadMounts() override { return target_->ReadMounts(); }
  Result<std::vector<SwapEntry>> ReadSwaps() override { return target_->ReadSwaps(); }
  Result<ContentProbe> ProbeContent(const std::string& devnode) override {
    return target_->ProbeContent(devnode);
  }
  Result<bool> IsHeldExclusively(const std::string& devnode) override {
    return target_->IsHeldExclusively(devnode);
  }
  Result<std::vector<DmMap>> ListDmMaps() override { return target_->ListDmMaps(); }
  Result<int> RescanScsiHosts() override { return target_->RescanScsiHosts(); }

 protected:
  DiskSystem* target() const { return target_; }

 private:
  DiskSystem* target_;
};

}  // namespace mt::shim
