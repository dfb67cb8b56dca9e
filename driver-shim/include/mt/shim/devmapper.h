// Device-mapper maps through libdevmapper: listing and validation only. The
// inventory takes the same facts from sysfs (dm/name, dm/uuid, slaves/), which
// also works on captured trees and without /dev/mapper/control.
#pragma once

#include <string>
#include <vector>

#include "mt/shim/mounts.h"
#include "mt/shim/status.h"
#include "mt/shim/sysroot.h"

namespace mt::shim {

struct DmMap {
  std::string name;             // "mpatha", "36000c29...", "rl-root"
  std::string uuid;             // "mpath-36000c29...", "LVM-...", "" when none
  DevNumber dev;                // the dm-N device
  std::string target_type;      // type of the first table target: "multipath", "linear", ...
  std::vector<DevNumber> deps;  // devices the map sits on (its paths, for multipath)
};

// true for a dm-multipath map's uuid ("mpath-<wwid>").
bool IsMultipathUuid(const std::string& uuid);

// Whether this kernel has device-mapper (dm-mod loaded: /proc/misc lists it).
bool DeviceMapperAvailable();

// Lists the device-mapper maps of the running kernel. Where device-mapper is
// not available (no "device-mapper" in /proc/misc or no /dev/mapper/control;
// any SysRoot other than the running system) the list is empty and a
// debug-level note says why: callers treat that as "no maps".
Result<std::vector<DmMap>> ListDmMaps(const SysRoot& root);

}  // namespace mt::shim
