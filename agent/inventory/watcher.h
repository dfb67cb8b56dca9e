// DiskWatcher: keeps an Inventory current from kernel uevents (hot-add /
// hot-remove of VMDKs at reprotect and failover) without a restart.
//
// Event driven: the owner polls events.fd() (with whatever else it waits on)
// and calls HandlePending() when it is readable. HandlePending drains every
// pending uevent, rescans once, and reports what changed between the two
// inventories. Rescanning (rather than patching the model per event) keeps
// the model exactly what a fresh Scan would say, also after lost events.
//
// Thread safety: one thread at a time.
#pragma once

#include <vector>

#include "inventory/disk.h"
#include "inventory/inventory.h"
#include "mt/shim/disk_system.h"
#include "mt/shim/uevent.h"

namespace mt::inventory {

enum class DiskEventKind { kAdd, kRemove, kChange };
// "add", "remove", "change".
const char* DiskEventKindName(DiskEventKind kind);

struct DiskEvent {
  DiskEventKind kind;
  Disk disk;  // the disk as it is now (as it was, for kRemove)
};

class DiskWatcher {
 public:
  // `sys` and `events` must outlive the watcher.
  DiskWatcher(shim::DiskSystem& sys, shim::UeventSource& events, InventoryConfig config);

  // The first scan.
  Status Start();

  // Drains pending uevents; when any concerned a block device, rescans and
  // returns the differences: disks that appeared, disappeared, or changed
  // role, reason, size or device. Empty when nothing changed.
  Result<std::vector<DiskEvent>> HandlePending();

  // Rescans now (after an explicit SCSI rescan, say) and returns the differences.
  Result<std::vector<DiskEvent>> Rescan();

  const Inventory& inventory() const { return inventory_; }
  // Uevents seen so far (for diagnostics and tests).
  uint64_t uevents_seen() const { return uevents_seen_; }

 private:
  shim::DiskSystem& sys_;
  shim::UeventSource& events_;
  InventoryConfig config_;
  Inventory inventory_;
  uint64_t uevents_seen_ = 0;
};

// What changed from `before` to `after`. Disks are matched by identity (by
// kernel name when they have none).
std::vector<DiskEvent> DiffInventories(const Inventory& before, const Inventory& after);

}  // namespace mt::inventory
