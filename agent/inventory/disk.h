// The disk model of the inventory: one Disk per disk the master target can
// see (a multipath map and its paths are one Disk), with its identity, what
// is on it, what uses it, and its role. See docs/inventory.md.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mt/shim/blkid_probe.h"
#include "mt/shim/scsi_vpd.h"
#include "mt/shim/sysfs_block.h"

namespace mt::inventory {

// Roles in precedence order: when several apply, the first one wins
// (os > retention > in-use > mounted > target > free). The agent writes only
// disks whose role is kTarget.
enum class Role { kOs = 0, kRetention, kInUse, kMounted, kTarget, kFree };

// "os", "retention", "in-use", "mounted", "target", "free".
const char* RoleName(Role role);

// Something found about a disk that gives it a role, with a human-readable
// reason ("holds / (dm-0 rl-root)", "mounted at /data (sdf1)").
struct Finding {
  Role role;
  std::string reason;
};

struct MountUse {
  std::string mount_point;
  std::string device;  // kernel name of the mounted device ("sdf1", "dm-2")
  std::string fs_type;
};

// A device-mapper or md device stacked on the disk (or on one of its partitions).
struct Holder {
  std::string name;  // "dm-1", "md127"
  std::string kind;  // "dm", "md", "other"
  std::string dm_name, dm_uuid;
};

struct Partition {
  std::string name;  // "sdb1"
  std::string devnode;
  uint32_t number = 0;
  uint64_t size_bytes = 0;
  shim::ContentProbe content;
  std::vector<std::string> mount_points;
  std::vector<std::string> holders;
};

struct Disk {
  // Identity. `identity` is what the agent records and the configuration
  // names: the normalised WWID for SCSI disks, "loop:<file>" / "virtio:<serial>"
  // / "nvme:<id>" / "dev:<path>" otherwise; "" when there is none.
  std::string identity;
  std::string identity_source;
  std::string wwid;  // normalised SCSI WWID, "" when none

  std::string name;     // kernel name ("sdb"; "dm-3" for a multipath map)
  std::string devnode;  // "/dev/sdb"; "/dev/mapper/<name>" for a multipath map
  shim::BlockKind transport = shim::BlockKind::kOther;  // of the disk (its paths for multipath)
  std::string scsi_address;
  uint64_t size_bytes = 0;
  uint32_t logical_block_size = 512;
  uint32_t physical_block_size = 512;
  bool rotational = false;
  bool read_only = false;
  std::string vendor, model, serial;
  std::vector<shim::ScsiDesignator> designators;

  shim::ContentProbe content;  // the whole device
  std::vector<Partition> partitions;
  std::vector<MountUse> mounts;    // on the disk, its partitions, or devices stacked on them
  std::vector<Holder> holders;     // stacked devices that keep it in use
  std::string multipath_map;       // dm name when the disk is a multipath map
  std::vector<std::string> paths;  // its SCSI path devices ("/dev/sdb", "/dev/sdc")
  // Kernel names and numbers of every device that belongs to the disk: itself,
  // its partitions and paths, and the devices stacked on them.
  std::vector<std::string> member_names;
  std::vector<shim::DevNumber> member_devs;
  // The agent's own device-mapper maps over the disk ("mt-<wwid>" and its
  // vsnaps "mt-<wwid>-vs-<name>"): members, never a reason to call it in use.
  std::vector<std::string> agent_maps;

  // The identity may be used as a target identity: a SCSI disk with a WWID,
  // or a non-SCSI device allowed by the configuration (allow_non_scsi).
  bool target_capable = false;
  std::string not_capable_reason;  // why not, when !target_capable
  bool named_target = false;       // the caller's target set names this identity

  // The O_EXCL check ran (target-capable disks nothing else uses); a busy
  // answer is a kInUse finding.
  bool exclusive_checked = false;

  std::vector<Finding> findings;   // sorted by role precedence
  std::vector<std::string> notes;  // what could not be checked, and why

  Role role = Role::kFree;
  std::string reason;  // why it has `role`

  // Would be a safe target if it were named one: target-capable and no
  // finding of a stronger role than target.
  bool CanBeTarget() const;
  // Why it cannot be a target ("" when CanBeTarget()).
  std::string TargetBlocker() const;
  // "/dev/sdb (naa.6000c29...)" for messages.
  std::string Describe() const;
};

}  // namespace mt::inventory
