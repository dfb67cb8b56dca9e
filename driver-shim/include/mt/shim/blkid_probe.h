// What is on a block device (or an image file): file system, RAID/LVM
// member, partition table. libblkid probes regular files too, so tests run it
// on small images made by mkfs.
#pragma once

#include <string>

#include "mt/shim/status.h"

namespace mt::shim {

struct ContentProbe {
  std::string type;        // blkid TYPE: "ext4", "xfs", "vfat", "swap", "LVM2_member",
                           // "linux_raid_member", "crypto_LUKS", ...; "" = nothing recognised
  std::string usage;       // blkid USAGE: "filesystem", "raid", "crypto", "other"
  std::string uuid;        // UUID (file system UUID)
  std::string label;       // LABEL
  std::string version;     // VERSION ("FAT32", "1.0", ...)
  std::string pt_type;     // PTTYPE: "gpt", "dos"; "" = no partition table
  std::string pt_uuid;     // PTUUID
  bool ambiguous = false;  // several signatures that exclude each other
};

// Probes superblocks and the partition table of a block device node or a
// regular file, read-only (O_RDONLY | O_CLOEXEC | O_NONBLOCK, no O_EXCL).
// kNotFound when the device is gone (ENOENT, ENXIO, ENODEV, ENOMEDIUM): that is
// normal for a device that vanished mid-scan. An empty ContentProbe when
// nothing is recognised.
Result<ContentProbe> ProbeContent(const std::string& path);

// Opens the block device O_RDONLY | O_EXCL and closes it again. true when the
// kernel says EBUSY: mounted, or held exclusively by another opener (device-
// mapper, md, a file system, another program that opened it O_EXCL).
// kNotFound when the device is gone.
Result<bool> IsHeldExclusively(const std::string& path);

}  // namespace mt::shim
