// Virtual snapshots (architecture §5, `mtctl vsnap`): a target disk as it was
// at a recovery point, as a block device, while replication goes on.
//
// How: the target's map "mt-<wwid>" (target_map.h) becomes "snapshot-origin"
// and a "snapshot" map "mt-<wwid>-vs-<name>" is created over the same disk,
// its persistent copy-on-write store a sparse file on the retention volume
// (<retention>/vsnap/<name>.cow) seen through a loop device. The snapshot
// starts as the disk at the stream's applied point S; the before-images of the
// disk recorded after the requested point P (undo records P < seq <= S) are
// written into the snapshot newest first, so it shows the disk at P. Later
// writes reach the disk through the origin, whose copy-on-write keeps the
// snapshot as it is.
//
// Contract: Create requires that nothing writes the target while it runs
// (the stream paused in the daemon, as for export). A crash during Create
// leaves the vsnap listed as "interrupted": remove it and create it again.
// Metadata: <retention>/vsnap/<name>.vsnap, a serialized proto::VsnapInfo
// replaced atomically (docs/formats/vsnap.md).
#pragma once

#include <string>
#include <vector>

#include "inventory/disk.h"
#include "retention/journal.h"
#include "mt/recovery.pb.h"
#include "mt/shim/file_system.h"
#include "recovery/recovery.h"

namespace mt::vsnap {

// 1..40 characters of [A-Za-z0-9._-], not starting with '.' or '-'.
Status CheckName(const std::string& name);

struct CreateSpec {
  std::string retention_dir;
  std::string name;
  const inventory::Disk* disk = nullptr;  // the target (IsSafeTarget checked by the caller)
  std::string stream;
  uint32_t disk_index = 0;
  recovery::ResolvedPoint point;
  uint64_t base_seq = 0;                                   // the stream's applied seq
  const std::vector<retention::SegmentInfo>* undo = nullptr;  // the stream's undo segments
  int64_t now_ns = 0;
};

// Creates the vsnap in two steps; Create() runs both.
//
// Begin: the snapshot map over an empty COW store, the origin turned into
// snapshot-origin (state "filling", device set). It must run while nothing
// writes the disk and the disk holds exactly spec.base_seq: from then on
// every write through the origin keeps the base_seq content of what it
// overwrites in the snapshot.
// Fill: writes the before-images of the records in (point, base_seq] of
// spec.undo into the snapshot (state "ready"). The stream may apply again
// meanwhile: its writes go through the origin, which preserves the
// snapshot's content, and the fill reads only the undo segments captured in
// spec.undo (each up to its size then).
// kUnavailable without device-mapper or for a disk without a WWID, with
// nothing changed; on any later failure what was made is taken down again.
Result<proto::VsnapInfo> Begin(shim::FileSystem& fs, const CreateSpec& spec);
Result<proto::VsnapInfo> Fill(shim::FileSystem& fs, const CreateSpec& spec,
                              proto::VsnapInfo info, const recovery::ProgressFn& on_progress = {});
Result<proto::VsnapInfo> Create(shim::FileSystem& fs, const CreateSpec& spec,
                                const recovery::ProgressFn& on_progress = {});

// Every vsnap of the retention volume, by name, with the kernel's view.
Result<std::vector<proto::VsnapInfo>> List(shim::FileSystem& fs, const std::string& retention_dir);

// After a reboot: the ready vsnaps of `disk` (by its identity) whose maps are
// gone are attached again — the origin map "mt-<wwid>" created as
// snapshot-origin (REQUIRES: it does not exist, so nothing has written the
// disk through a map without them), then one snapshot map per vsnap over a
// loop device on its COW file, whose persistent store still holds every
// chunk the snapshot had. Returns how many; 0 (and nothing made) when the
// disk has none. Called by TargetWritePath before the disk is opened.
Result<int> Reattach(shim::FileSystem& fs, const std::string& retention_dir,
                     const inventory::Disk& disk);

// Removes the vsnap: its snapshot map (kBusy while it is open or mounted),
// the origin back to linear when it was the disk's last one, the COW file
// and the metadata. Works on partial leftovers of an interrupted Create.
Status Remove(shim::FileSystem& fs, const std::string& retention_dir, const std::string& name);

}  // namespace mt::vsnap
