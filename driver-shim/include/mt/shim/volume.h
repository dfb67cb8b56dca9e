// Retention volume operations that change the system: format, mount, fstab.
// Callers decide whether they are allowed (agent/inventory's eligibility
// rules and the operator's --force); these functions only do them, each with
// one clear error naming the device or file.
#pragma once

#include <string>

#include "mt/shim/status.h"

namespace mt::shim {

// mkfs.ext4 -F -L <label> <device> (quiet). Destroys what is on the device.
Status FormatExt4(const std::string& device, const std::string& label);

// mount(2) of `device` (ext4) at `dir`, creating `dir` if missing. kBusy if
// something else is mounted there.
Status MountExt4(const std::string& device, const std::string& dir);

// Makes `fstab_path` hold exactly one entry for `dir`:
//   UUID=<uuid> <dir> ext4 defaults,nofail 0 2
// Adds it if missing; ok and unchanged if that exact entry is there; kBusy
// naming the line if `dir` has an entry for another device. The file is
// replaced atomically (write, fsync, rename, fsync directory).
// Returns whether the file changed through `changed`.
Status EnsureFstabEntry(const std::string& fstab_path, const std::string& uuid,
                        const std::string& dir, bool* changed);

}  // namespace mt::shim
