// Which disk may hold the retention journal (architecture §3); used by
// `mtctl retention check` and `prepare`.
//
// Eligible only if: not a protection target, not the OS disk, not swap / LVM /
// md, not held (stacked devices, O_EXCL by someone else), not the volume of
// the agent's install/cache directories, no FAT file system, capacity
// non-zero, not read-only. A mounted disk is eligible only when it is mounted
// exactly at the retention mount point with ext4 or xfs. An unformatted disk is
// eligible: prepare formats it, and only with --force.
#pragma once

#include <string>
#include <vector>

#include "inventory/disk.h"
#include "inventory/inventory.h"
#include "mt/shim/disk_system.h"
#include "mt/shim/status.h"

namespace mt::inventory {

struct RetentionRequirements {
  std::string mount_point = "/mnt/retention";
  // The agent's install and cache (WAL) directories: their volume cannot be
  // the retention volume.
  std::vector<std::string> agent_dirs;
};

struct RetentionVerdict {
  bool eligible = false;
  // No ext4/xfs file system on it: prepare must format it (--force).
  bool needs_format = false;
  // Already mounted at the retention mount point (ext4/xfs).
  bool mounted_at_mount_point = false;
  std::vector<std::string> problems;  // why it is not eligible, one line each
  std::vector<std::string> notes;     // what prepare would do, what was not checked

  // Ok when eligible; otherwise kInvalidArgument "<disk> cannot be the
  // retention volume: <problem>; <problem>".
  Status ToStatus(const Disk& disk) const;
};

// `sys` (may be null) runs the O_EXCL check for an unmounted disk the
// inventory scan did not check (disks that cannot be targets).
RetentionVerdict CheckRetentionVolume(const Inventory& inventory, const Disk& disk,
                                      const RetentionRequirements& requirements,
                                      shim::DiskSystem* sys = nullptr);

}  // namespace mt::inventory
