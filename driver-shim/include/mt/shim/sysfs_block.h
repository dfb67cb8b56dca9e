// Block device discovery from sysfs: the facts the kernel publishes about
// every block device, read through a SysRoot so tests replay captured trees.
//
// Layout read (as the kernel makes it):
//   /sys/class/block/<name>          -> ../../devices/.../block/<disk>[/<part>]
//   <dev>/dev                        "8:16"
//   <dev>/size                       512-byte sectors, whatever the block size
//   <dev>/queue/logical_block_size, physical_block_size, rotational
//   <dev>/removable, ro, uevent (DEVNAME=)
//   <dev>/<part>/partition           partition number (a partition is a subdirectory)
//   <dev>/holders/, slaves/          stacked devices (dm-N, mdN)
//   <dev>/device/                    SCSI: type, vendor, model, rev (space padded),
//                                    wwid, vpd_pg83, vpd_pg80; subsystem -> bus/scsi
//   <dev>/serial, <dev>/wwid         virtio-blk serial, NVMe namespace wwid
//   <dev>/loop/backing_file          loop devices
//   <dev>/dm/name, dm/uuid           device-mapper maps ("mpath-" uuid: multipath)
//
// A device that disappears while it is being read is not an error: it is
// simply not in the result (kNotFound from ReadBlockDevice).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "mt/shim/mounts.h"
#include "mt/shim/scsi_vpd.h"
#include "mt/shim/status.h"
#include "mt/shim/sysroot.h"

namespace mt::shim {

enum class BlockKind { kScsi, kVirtio, kNvme, kLoop, kDm, kMd, kRam, kOther };
// "scsi", "virtio", "nvme", "loop", "dm", "md", "ram", "other".
const char* BlockKindName(BlockKind kind);

struct PartitionFacts {
  std::string name;  // "sda1"
  std::string devnode;
  DevNumber dev;
  uint32_t number = 0;
  uint64_t start_bytes = 0;
  uint64_t size_bytes = 0;
  std::vector<std::string> holders;
};

struct BlockDeviceFacts {
  std::string name;     // kernel name: "sda", "vda", "loop3", "dm-0"
  std::string devnode;  // "/dev/sda" (a path on the described system, not prefixed)
  std::string syspath;  // "/sys/devices/..." (not prefixed)
  DevNumber dev;
  BlockKind kind = BlockKind::kOther;
  uint64_t size_bytes = 0;
  uint32_t logical_block_size = 512;
  uint32_t physical_block_size = 512;
  bool rotational = false;
  bool removable = false;
  bool read_only = false;
  std::vector<PartitionFacts> partitions;
  std::vector<std::string> holders;  // names in holders/: "dm-0", "md127"
  std::vector<std::string> slaves;   // names in slaves/ (dm and md devices)

  // SCSI (kind == kScsi)
  int scsi_type = -1;                   // device/type: 0 disk, 5 CD-ROM, 0xe RBC; -1 unknown
  std::string scsi_address;             // "2:0:1:0" (host:channel:target:lun)
  std::string vendor, model, revision;  // kernel padding removed
  std::string wwid;                     // device/wwid (SCSI) or wwid (NVMe), raw
  bool has_vpd_pg83 = false;
  VpdPage83 vpd_pg83;  // parsed device/vpd_pg83, when present and well formed
  std::string serial;  // SCSI: VPD page 0x80; virtio: serial; NVMe: device/serial

  std::string loop_backing_file;  // loop devices; "" when not attached
  std::string dm_name, dm_uuid;   // device-mapper maps

  // Properties from the udev database (ID_WWN, ID_SERIAL, ID_SERIAL_SHORT), a
  // second source only: empty where no udevd runs.
  std::map<std::string, std::string> udev_properties;
};

// Reads one whole block device (and its partitions) by kernel name.
// kNotFound when it does not exist or vanished while being read;
// kInvalidArgument when `name` is a partition.
Result<BlockDeviceFacts> ReadBlockDevice(const SysRoot& root, const std::string& name);

// Kernel names of the whole block devices (no partitions) in
// /sys/class/block (or /sys/block on kernels without it), sorted.
Result<std::vector<std::string>> ListWholeBlockDevices(const SysRoot& root);

// Every whole block device with its partitions. Devices that vanish during the
// scan are left out.
Result<std::vector<BlockDeviceFacts>> ScanBlockDevicesSysfs(const SysRoot& root);

// A block device as libudev enumerates it on the running system.
struct UdevBlockDevice {
  std::string sysname;                            // "sda"
  std::string devtype;                            // "disk" or "partition"
  std::map<std::string, std::string> properties;  // ID_WWN, ID_SERIAL, ID_SERIAL_SHORT
};
// libudev enumeration of subsystem "block" (the running system only; libudev
// scans /sys itself, and has udev database properties only where udevd runs).
Result<std::vector<UdevBlockDevice>> UdevEnumerateBlock();

// Writes "- - -" to every /sys/class/scsi_host/host*/scan: the kernel scans
// those hosts for new LUNs (and sends uevents for what it finds). Returns the
// number of hosts scanned; 0 on a machine without SCSI hosts.
Result<int> RescanScsiHosts(const SysRoot& root);

}  // namespace mt::shim
