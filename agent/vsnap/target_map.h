// The agent-owned device-mapper map a SCSI target is written through
// (architecture §5): "mt-<wwid>", a "linear" map over the whole disk, turned
// into "snapshot-origin" while virtual snapshots of the disk exist (vsnap.h).
// Every writer of a target (the daemon's applier, rollback) opens the path
// TargetWritePath returns, so that once a snapshot exists no write can bypass
// its copy-on-write.
//
// Invariants:
//  - The map is created only over a disk that passed inventory::IsSafeTarget
//    (the callers check it first) and only with this exact name, which the
//    inventory recognises as the agent's own (not "in use").
//  - An existing map of that name is used only if its table is one linear or
//    snapshot-origin line over this very disk; anything else is kUnsafeTarget.
#pragma once

#include <string>
#include <vector>

#include "inventory/disk.h"
#include "mt/shim/dm_control.h"
#include "mt/shim/status.h"

namespace mt::vsnap {

std::string TargetMapName(const std::string& wwid);                          // "mt-<wwid>"
std::string VsnapMapName(const std::string& wwid, const std::string& name);  // "mt-<wwid>-vs-<name>"

// Whether writes to `disk` go through the map: device-mapper wanted
// (configuration) and present in the kernel, and the disk has a WWID.
bool UsesTargetMap(const inventory::Disk& disk, bool device_mapper_wanted);

// The device writes to `disk` must use: the map (created now when absent)
// when UsesTargetMap, else disk.devnode. When the map is absent (after a
// reboot: maps and loop devices are not persistent) and `retention_dir`
// holds ready vsnaps of the disk, the map is made snapshot-origin and those
// vsnaps are attached again from their persistent COW stores (vsnap.h
// Reattach) before anything can write the disk; if that fails, the error is
// returned and the disk is not opened.
Result<std::string> TargetWritePath(const inventory::Disk& disk, bool device_mapper_wanted,
                                    const std::string& retention_dir = "");

// The map of `disk` as it is: its single table line (checked as above) and
// the underlying device ("8:16"). kNotFound when the map does not exist.
struct TargetMap {
  std::string name;
  shim::DmMapState state;
  shim::DmTableLine line;
  std::string device;  // major:minor of the disk under it
};
Result<TargetMap> GetTargetMap(const inventory::Disk& disk);

// Names of the vsnap maps of `disk` ("mt-<wwid>-vs-*").
Result<std::vector<std::string>> VsnapMapsOf(const std::string& wwid);

// Drops the map of `disk` (mtctl release: the VMDK can then be detached).
// kBusy, naming them, while vsnaps of the disk exist; ok when there is no map.
Status DropTargetMap(const inventory::Disk& disk);

}  // namespace mt::vsnap
