#include "inventory/watcher.h"

#include <map>

namespace mt::inventory {

const char* DiskEventKindName(DiskEventKind kind) {
  switch (kind) {
    case DiskEventKind::kAdd:
      return "add";
    case DiskEventKind::kRemove:
      return "remove";
    case DiskEventKind::kChange:
      return "change";
  }
  return "change";
}

namespace {

std::string Key(const Disk& d) {
  return d.identity.empty() ? "name:" + d.name : d.identity;
}

bool Changed(const Disk& a, const Disk& b) {
  return a.role != b.role || a.reason != b.reason || a.size_bytes != b.size_bytes ||
         a.devnode != b.devnode || a.paths != b.paths || a.target_capable != b.target_capable;
}

}  // namespace

std::vector<DiskEvent> DiffInventories(const Inventory& before, const Inventory& after) {
  std::map<std::string, const Disk*> old_by_key;
  for (const Disk& d : before.disks()) old_by_key[Key(d)] = &d;
  std::vector<DiskEvent> events;
  for (const Disk& d : after.disks()) {
    auto it = old_by_key.find(Key(d));
    if (it == old_by_key.end()) {
      events.push_back({DiskEventKind::kAdd, d});
      continue;
    }
    if (Changed(*it->second, d)) events.push_back({DiskEventKind::kChange, d});
    old_by_key.erase(it);
  }
  // Removals in the old inventory's order.
  for (const Disk& d : before.disks())
    if (old_by_key.count(Key(d)) != 0) events.push_back({DiskEventKind::kRemove, d});
  return events;
}

DiskWatcher::DiskWatcher(shim::DiskSystem& sys, shim::UeventSource& events, InventoryConfig config)
    : sys_(sys), events_(events), config_(std::move(config)) {}

Status DiskWatcher::Start() {
  MT_ASSIGN_OR_RETURN(inventory_, Inventory::Scan(sys_, config_));
  return Status::Ok();
}

Result<std::vector<DiskEvent>> DiskWatcher::HandlePending() {
  bool relevant = false;
  for (;;) {
    MT_ASSIGN_OR_RETURN(std::optional<shim::Uevent> ev, events_.Next());
    if (!ev) break;
    ++uevents_seen_;
    if (ev->action == "overflow" || ev->subsystem == "block") relevant = true;
  }
  if (!relevant) return std::vector<DiskEvent>{};
  return Rescan();
}

Result<std::vector<DiskEvent>> DiskWatcher::Rescan() {
  MT_ASSIGN_OR_RETURN(Inventory now, Inventory::Scan(sys_, config_));
  std::vector<DiskEvent> events = DiffInventories(inventory_, now);
  inventory_ = std::move(now);
  return events;
}

}  // namespace mt::inventory
