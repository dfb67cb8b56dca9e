#include "vsnap/target_map.h"

#include <algorithm>
#include <cstdio>

#include "mt/shim/devmapper.h"
#include "mt/shim/file_system.h"
#include "vsnap/vsnap.h"

namespace mt::vsnap {
namespace {

// "8:16" of a table's first parameter; "" when it is not major:minor.
std::string DeviceToken(const std::string& params) {
  const std::string tok = params.substr(0, params.find(' '));
  unsigned maj = 0, min = 0;
  char extra = 0;
  if (std::sscanf(tok.c_str(), "%u:%u%c", &maj, &min, &extra) != 2) return "";
  return tok;
}

bool IsMemberDev(const inventory::Disk& disk, const std::string& token) {
  return std::any_of(disk.member_devs.begin(), disk.member_devs.end(),
                     [&](const shim::DevNumber& d) { return d.ToString() == token; });
}

}  // namespace

std::string TargetMapName(const std::string& wwid) { return "mt-" + wwid; }
std::string VsnapMapName(const std::string& wwid, const std::string& name) {
  return "mt-" + wwid + "-vs-" + name;
}

bool UsesTargetMap(const inventory::Disk& disk, bool device_mapper_wanted) {
  return device_mapper_wanted && !disk.wwid.empty() && disk.multipath_map.empty() &&
         shim::DeviceMapperAvailable();
}

Result<TargetMap> GetTargetMap(const inventory::Disk& disk) {
  TargetMap m;
  m.name = TargetMapName(disk.wwid);
  MT_ASSIGN_OR_RETURN(auto state, shim::DmInfo(m.name));
  if (!state) return Status(Errc::kNotFound, "no device-mapper map " + m.name);
  m.state = *state;
  MT_ASSIGN_OR_RETURN(auto table, shim::DmTable(m.name));
  const bool shape_ok = table.size() == 1 && table[0].start == 0 &&
                        (table[0].type == "linear" || table[0].type == "snapshot-origin");
  if (shape_ok) m.device = DeviceToken(table[0].params);
  if (!shape_ok || m.device.empty() || !IsMemberDev(disk, m.device) ||
      (table[0].type == "linear" && table[0].params != m.device + " 0"))
    return Status(Errc::kUnsafeTarget,
                  "device-mapper map " + m.name + " exists but is not the agent's map of " +
                      disk.Describe() + " (its table is not one linear or snapshot-origin line over " +
                      "the disk); remove it (dmsetup remove " + m.name + ") if nothing uses it");
  m.line = table[0];
  return m;
}

Result<std::string> TargetWritePath(const inventory::Disk& disk, bool device_mapper_wanted,
                                    const std::string& retention_dir) {
  if (!UsesTargetMap(disk, device_mapper_wanted)) return disk.devnode;
  auto map = GetTargetMap(disk);
  if (map.ok()) {
    // The agent suspends its map only for the instant a vsnap is attached; a
    // map still suspended was left so by a process that died in that instant.
    if (map->state.suspended) MT_RETURN_IF_ERROR(shim::DmResume(map->name));
    return shim::DmDevicePath(map->name, map->state.dev);
  }
  if (map.status().code() != Errc::kNotFound) return map.status();
  const std::string name = TargetMapName(disk.wwid);
  if (disk.size_bytes == 0 || disk.size_bytes % 512 != 0)
    return Status(Errc::kInvalidArgument, disk.Describe() + ": size " +
                                              std::to_string(disk.size_bytes) +
                                              " is not a whole number of sectors");
  if (!retention_dir.empty()) {
    MT_ASSIGN_OR_RETURN(const int reattached, Reattach(shim::PosixFileSystem(), retention_dir, disk));
    if (reattached > 0) {
      MT_ASSIGN_OR_RETURN(auto origin, GetTargetMap(disk));
      return shim::DmDevicePath(origin.name, origin.state.dev);
    }
  }
  MT_RETURN_IF_ERROR(shim::DmCreate(name, "MTAGENT-TARGET-" + disk.wwid,
                                    {{0, disk.size_bytes / 512, "linear", disk.devnode + " 0"}}));
  MT_ASSIGN_OR_RETURN(auto created, GetTargetMap(disk));
  return shim::DmDevicePath(created.name, created.state.dev);
}

Result<std::vector<std::string>> VsnapMapsOf(const std::string& wwid) {
  return shim::DmNamesWithPrefix(TargetMapName(wwid) + "-vs-");
}

Status DropTargetMap(const inventory::Disk& disk) {
  if (disk.wwid.empty() || !shim::DeviceMapperAvailable()) return Status::Ok();
  MT_ASSIGN_OR_RETURN(auto snaps, VsnapMapsOf(disk.wwid));
  if (!snaps.empty()) {
    std::string names;
    for (const auto& s : snaps) names += (names.empty() ? "" : ", ") + s;
    return Status(Errc::kBusy, disk.Describe() + " has virtual snapshots (" + names +
                                   "): remove them first (mtctl vsnap remove NAME)");
  }
  auto map = GetTargetMap(disk);
  if (!map.ok()) return map.status().code() == Errc::kNotFound ? Status::Ok() : map.status();
  return shim::DmRemove(map->name);
}

}  // namespace mt::vsnap
