// Inventory: every disk of the machine with its role, read through
// shim::DiskSystem (sysfs, procfs, libblkid; never the kernel directly), and
// IsSafeTarget, the check every write path consults.
//
// The caller supplies what the inventory cannot know: which identities are
// protection targets and which is the retention volume (configuration and
// catalog), and which non-SCSI devices may be targets (allow_non_scsi).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "inventory/disk.h"
#include "mt/shim/disk_system.h"
#include "mt/shim/mounts.h"
#include "mt/shim/status.h"

namespace mt::inventory {

struct InventoryConfig {
  // Identities of the protection targets (any WWID spelling; normalised here).
  std::vector<std::string> target_identities;
  // The retention volume: its identity, device path or file-system UUID.
  std::string retention_identity;
  // Non-SCSI devices (loop, virtio, nvme, ...) that may become targets, for
  // demos and tests: device paths ("/dev/loop3"), kernel names or identities
  // ("loop:/var/tmp/disk1.img").
  std::vector<std::string> allow_non_scsi;
  // Identities this process itself holds open O_EXCL (targets being applied):
  // their exclusive-open check is skipped.
  std::vector<std::string> held_by_us;
  // Try an O_EXCL open of target-capable disks that nothing visible uses, to
  // find disks held by another process.
  bool check_exclusive = true;
};

class Inventory {
 public:
  // Reads the machine through `sys`. A device that vanishes while it is read
  // is left out; only failures to read the listings themselves are errors.
  static Result<Inventory> Scan(shim::DiskSystem& sys, const InventoryConfig& config);

  const std::vector<Disk>& disks() const { return disks_; }
  const std::vector<shim::MountEntry>& mounts() const { return mounts_; }
  const InventoryConfig& config() const { return config_; }

  // The disk with this identity (any WWID spelling), device path
  // ("/dev/sdb", a path device of a multipath disk), or kernel name.
  const Disk* Find(std::string_view identity_or_device) const;

 private:
  std::vector<Disk> disks_;
  std::vector<shim::MountEntry> mounts_;
  InventoryConfig config_;
};

// The one safety check of every write path: ok only for a disk whose role is
// `target`; otherwise kUnsafeTarget naming the disk, its role and the reason.
Status IsSafeTarget(const Disk& disk);

// The role and reason from findings and configuration (used by Scan; public
// for tests). REQUIRES: findings sorted by role precedence.
void DecideRole(Disk* disk);

}  // namespace mt::inventory
