// Device-mapper map control through libdevmapper: create, reload, suspend,
// resume and remove a map; read its info, table and status. The agent uses it
// for its own maps only ("mt-<wwid>" over a target, "mt-<wwid>-vs-<name>"
// snapshots; agent/vsnap). Listing every map is devmapper.h.
//
// Contract:
//  - Every call returns kUnavailable naming the reason when this kernel has no
//    device-mapper (DeviceMapperAvailable() false), and changes nothing.
//  - No udev cookies are used: libdevmapper creates and removes the
//    /dev/mapper/<name> node itself, so the calls work the same with and
//    without a running udevd (the VM tier has none). DmDevicePath falls back
//    to the kernel's /dev/dm-N node.
//  - A failed ioctl returns kBusy when the kernel said EBUSY (a map or device
//    in use), kNotFound for ENXIO/ENODEV (no such map), kUnavailable
//    otherwise; the message names the map and repeats libdevmapper's error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mt/shim/mounts.h"
#include "mt/shim/status.h"

namespace mt::shim {

// One line of a map's table: start and length in 512-byte sectors, target
// type ("linear", "snapshot-origin", "snapshot") and its parameters.
struct DmTableLine {
  uint64_t start = 0;
  uint64_t sectors = 0;
  std::string type;
  std::string params;
};

struct DmMapState {
  DevNumber dev;
  std::string uuid;
  bool suspended = false;
  bool live_table = false;
  bool inactive_table = false;
  int32_t open_count = 0;
};

// Creates map `name` (uuid may be empty) with `table` and activates it.
// On failure nothing is left behind (a half-created map is removed).
Status DmCreate(const std::string& name, const std::string& uuid,
                const std::vector<DmTableLine>& table);
// Loads `table` as the inactive table of `name`; it goes live at DmResume.
Status DmReload(const std::string& name, const std::vector<DmTableLine>& table);
// Suspends `name`: in-flight I/O completes and is flushed, new I/O waits.
Status DmSuspend(const std::string& name);
// Resumes `name`, switching to its inactive table if one is loaded.
Status DmResume(const std::string& name);
// Removes `name`; kBusy while it is open (mounted, held by another map).
Status DmRemove(const std::string& name);

// The state of `name`; nullopt when no such map exists.
Result<std::optional<DmMapState>> DmInfo(const std::string& name);
// The live table of `name` (kNotFound when there is no such map).
Result<std::vector<DmTableLine>> DmTable(const std::string& name);
// The status lines of `name` (params = the target's status text, e.g.
// "128/2097152 16" or "Invalid" for a snapshot).
Result<std::vector<DmTableLine>> DmStatus(const std::string& name);
// Names of every map whose name starts with `prefix`.
Result<std::vector<std::string>> DmNamesWithPrefix(const std::string& prefix);

// The node to open map `name` with: /dev/mapper/<name> when it is a block
// device with the map's number, else /dev/dm-<minor> (devtmpfs).
std::string DmDevicePath(const std::string& name, const DevNumber& dev);

}  // namespace mt::shim
