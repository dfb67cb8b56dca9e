// Inventory::Scan: from the facts driver-shim reads (sysfs, mountinfo, swaps,
// libblkid, O_EXCL) to one Disk per disk with its role.
//
// Steps (each a function below):
//   1. index every block device, partition, and dm name
//   2. decide which whole devices are disks: multipath maps stand for their
//      paths; SCSI paths sharing a WWID without a map are grouped; dm/md
//      devices, empty devices (unattached loops) and non-disk SCSI devices
//      (CD-ROMs) are not disks
//   3. per disk: members (partitions, paths, kpartx maps, the agent's own maps)
//      and stacked holders (dm, md), found through holders/ recursively
//   4. findings: mounts (os for / and /boot), swap, holders, LVM/md
//      signatures, exclusive opens, the retention volume
//   5. identity and target capability, then the role (DecideRole)
#include "inventory/inventory.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>

#include "inventory/wwid.h"

namespace mt::inventory {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kOs:
      return "os";
    case Role::kRetention:
      return "retention";
    case Role::kInUse:
      return "in-use";
    case Role::kMounted:
      return "mounted";
    case Role::kTarget:
      return "target";
    case Role::kFree:
      return "free";
  }
  return "free";
}

bool Disk::CanBeTarget() const {
  if (!target_capable) return false;
  for (const Finding& f : findings)
    if (f.role < Role::kTarget) return false;
  return true;
}

std::string Disk::TargetBlocker() const {
  for (const Finding& f : findings)
    if (f.role < Role::kTarget) return std::string(RoleName(f.role)) + ": " + f.reason;
  if (!target_capable) return not_capable_reason;
  return {};
}

std::string Disk::Describe() const {
  return identity.empty() ? devnode : devnode + " (" + identity + ")";
}

void DecideRole(Disk* d) {
  std::stable_sort(d->findings.begin(), d->findings.end(),
                   [](const Finding& a, const Finding& b) { return a.role < b.role; });
  if (!d->findings.empty() && d->findings.front().role < Role::kTarget) {
    d->role = d->findings.front().role;
    d->reason = d->findings.front().reason;
    return;
  }
  if (d->named_target && d->target_capable) {
    d->role = Role::kTarget;
    d->reason = "protection target named by the configuration";
    return;
  }
  d->role = Role::kFree;
  if (d->named_target)
    d->reason = "named as a target, but " + d->not_capable_reason;
  else if (!d->target_capable)
    d->reason = d->not_capable_reason;
  else
    d->reason = "unused; can become a protection target";
}

Status IsSafeTarget(const Disk& disk) {
  if (disk.role == Role::kTarget) return Status::Ok();
  std::string why = disk.reason;
  if (disk.role == Role::kFree && disk.CanBeTarget()) why = "not named as a protection target";
  return Status(Errc::kUnsafeTarget, disk.Describe() + " is not a safe target: role " +
                                         RoleName(disk.role) + ": " + why);
}

namespace {

constexpr const char* kNoWwidReason = "disk.EnableUUID is not TRUE for this VM (no SCSI WWID)";

bool StartsWith(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

// kpartx partition maps of a multipath disk ("part1-mpath-3600...").
bool IsKpartxMap(const shim::BlockDeviceFacts& f) {
  return f.kind == shim::BlockKind::kDm && StartsWith(f.dm_uuid, "part");
}
// The agent's own maps of this disk do not make it busy: the map it is
// written through ("mt-<wwid>", architecture §5) and its virtual snapshots
// ("mt-<wwid>-vs-<name>", agent/vsnap). Only those names: any other map, even
// one named "mt-…", is a holder like every other (found by the VM inventory
// scenario).
bool IsAgentMapOf(const shim::BlockDeviceFacts& f, const Disk& d) {
  if (f.kind != shim::BlockKind::kDm || d.wwid.empty()) return false;
  const std::string own = "mt-" + d.wwid;
  return f.dm_name == own || StartsWith(f.dm_name, own + "-vs-");
}

// Natural order of kernel names: sdz < sdaa, loop2 < loop10.
bool NaturalLess(const std::string& a, const std::string& b) {
  auto split = [](const std::string& s) {
    size_t i = 0;
    while (i < s.size() && !std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    return std::make_pair(s.substr(0, i), s.substr(i));
  };
  const auto [la, ra] = split(a);
  const auto [lb, rb] = split(b);
  if (la != lb) {
    if (la.size() != lb.size() && la.compare(0, 2, lb, 0, 2) == 0) return la.size() < lb.size();
    return la < lb;
  }
  if (ra.size() != rb.size()) return ra.size() < rb.size();
  return ra < rb;
}

int KindRank(shim::BlockKind k) {
  switch (k) {
    case shim::BlockKind::kScsi:
      return 0;
    case shim::BlockKind::kNvme:
      return 1;
    case shim::BlockKind::kVirtio:
      return 2;
    case shim::BlockKind::kLoop:
      return 3;
    default:
      return 4;
  }
}

struct Index {
  std::map<std::string, const shim::BlockDeviceFacts*> whole;
  std::map<std::string, std::pair<const shim::BlockDeviceFacts*, const shim::PartitionFacts*>>
      parts;
  std::map<shim::DevNumber, std::string> by_dev;
  std::map<std::string, std::string> dm_by_name;  // dm name -> kernel name

  explicit Index(const std::vector<shim::BlockDeviceFacts>& facts) {
    for (const auto& f : facts) {
      whole[f.name] = &f;
      by_dev[f.dev] = f.name;
      if (!f.dm_name.empty()) dm_by_name[f.dm_name] = f.name;
      for (const auto& p : f.partitions) {
        parts[p.name] = {&f, &p};
        by_dev[p.dev] = p.name;
      }
    }
  }

  const std::vector<std::string>* HoldersOf(const std::string& name) const {
    if (auto it = whole.find(name); it != whole.end()) return &it->second->holders;
    if (auto it = parts.find(name); it != parts.end()) return &it->second.second->holders;
    return nullptr;
  }

  std::optional<shim::DevNumber> DevOf(const std::string& name) const {
    if (auto it = whole.find(name); it != whole.end()) return it->second->dev;
    if (auto it = parts.find(name); it != parts.end()) return it->second.second->dev;
    return std::nullopt;
  }

  // "/dev/sda2" -> "sda2", "/dev/mapper/rl-swap" -> "dm-1"; "" when unknown.
  std::string NameOfPath(const std::string& path) const {
    if (StartsWith(path, "/dev/mapper/")) {
      auto it = dm_by_name.find(path.substr(12));
      return it == dm_by_name.end() ? std::string() : it->second;
    }
    if (!StartsWith(path, "/dev/")) return {};
    const std::string base = path.substr(5);
    if (whole.count(base) != 0 || parts.count(base) != 0) return base;
    return {};
  }

  // "dm-0 rl-root" / "sda2" for messages.
  std::string Label(const std::string& name) const {
    auto it = whole.find(name);
    if (it != whole.end() && !it->second->dm_name.empty()) return name + " " + it->second->dm_name;
    return name;
  }
};

// One disk to build: a whole device, or a multipath map with its paths, or a
// group of SCSI paths that share a WWID.
struct DiskUnit {
  const shim::BlockDeviceFacts* primary = nullptr;
  std::vector<const shim::BlockDeviceFacts*> paths;
  bool multipath_map = false;
};

// The WWID of a SCSI device: device/wwid, else VPD page 0x83, else udev.
std::string ScsiWwid(const shim::BlockDeviceFacts& f, std::string* source,
                     std::vector<std::string>* notes) {
  std::string wwid;
  if (!f.wwid.empty()) {
    auto n = NormalizeWwid(f.wwid);
    if (n.ok()) {
      wwid = *n;
      *source = "sysfs wwid";
    } else {
      notes->push_back("device/wwid of " + f.name + ": " + n.status().message());
    }
  }
  std::string vpd;
  if (f.has_vpd_pg83) {
    if (const shim::ScsiDesignator* d = shim::PreferredLunDesignator(f.vpd_pg83)) {
      auto n = NormalizeWwid(d->Name());
      if (n.ok()) vpd = *n;
    }
  }
  if (wwid.empty() && !vpd.empty()) {
    wwid = vpd;
    *source = "vpd page 0x83";
  } else if (!wwid.empty() && !vpd.empty() && vpd != wwid) {
    notes->push_back("VPD page 0x83 of " + f.name + " names " + vpd + ", device/wwid " + wwid);
  }
  if (wwid.empty()) {
    for (const char* key : {"ID_WWN_WITH_EXTENSION", "ID_WWN", "ID_SERIAL"}) {
      auto it = f.udev_properties.find(key);
      if (it == f.udev_properties.end()) continue;
      auto n = NormalizeWwid(it->second);
      if (!n.ok()) continue;
      wwid = *n;
      *source = std::string("udev ") + key;
      break;
    }
  }
  return wwid;
}

std::string NonScsiLabel(const shim::BlockDeviceFacts& f) {
  switch (f.kind) {
    case shim::BlockKind::kLoop:
      return "loop device";
    case shim::BlockKind::kVirtio:
      return "virtio disk";
    case shim::BlockKind::kNvme:
      return "NVMe disk";
    case shim::BlockKind::kRam:
      return "RAM disk";
    default:
      return f.name + " (" + shim::BlockKindName(f.kind) + ")";
  }
}

void NonScsiIdentity(const shim::BlockDeviceFacts& f, Disk* d) {
  switch (f.kind) {
    case shim::BlockKind::kLoop:
      if (!f.loop_backing_file.empty()) {
        d->identity = "loop:" + f.loop_backing_file;
        d->identity_source = "loop backing file";
      }
      break;
    case shim::BlockKind::kVirtio:
      if (!f.serial.empty()) {
        d->identity = "virtio:" + f.serial;
        d->identity_source = "virtio serial";
      }
      break;
    case shim::BlockKind::kNvme:
      if (!f.wwid.empty()) {
        d->identity = "nvme:" + f.wwid;
        d->identity_source = "nvme wwid";
      } else if (!f.serial.empty()) {
        d->identity = "nvme:" + f.serial;
        d->identity_source = "nvme serial";
      }
      break;
    default:
      break;
  }
  if (d->identity.empty()) {
    const std::string prefix = f.kind == shim::BlockKind::kVirtio ? "virtio:" : "dev:";
    d->identity = prefix + f.devnode;
    d->identity_source = "device path";
  }
}

class Scanner {
 public:
  Scanner(shim::DiskSystem& sys, const InventoryConfig& config) : sys_(sys), config_(config) {
    for (const std::string& t : config.target_identities) {
      auto n = NormalizeIdentity(t);
      if (n.ok()) targets_.insert(*n);
    }
    for (const std::string& t : config.held_by_us) {
      auto n = NormalizeIdentity(t);
      if (n.ok()) held_by_us_.insert(*n);
    }
  }

  Status Run(std::vector<Disk>* disks, std::vector<shim::MountEntry>* mounts) {
    MT_ASSIGN_OR_RETURN(facts_, sys_.ScanBlockDevices());
    MT_ASSIGN_OR_RETURN(*mounts, sys_.ReadMounts());
    MT_ASSIGN_OR_RETURN(swaps_, sys_.ReadSwaps());
    mounts_ = mounts;
    Index index(facts_);
    index_ = &index;
    for (const DiskUnit& unit : Units()) {
      std::optional<Disk> d = Build(unit);
      if (d) disks->push_back(std::move(*d));
    }
    ValidateWithDeviceMapper(disks);
    std::sort(disks->begin(), disks->end(), [](const Disk& a, const Disk& b) {
      const std::string& ka = a.paths.empty() ? a.name : a.paths.front().substr(5);
      const std::string& kb = b.paths.empty() ? b.name : b.paths.front().substr(5);
      if (KindRank(a.transport) != KindRank(b.transport))
        return KindRank(a.transport) < KindRank(b.transport);
      return NaturalLess(ka, kb);
    });
    index_ = nullptr;
    return Status::Ok();
  }

 private:
  std::vector<DiskUnit> Units() {
    std::vector<DiskUnit> units;
    std::set<std::string> is_path;
    // Multipath maps stand for their paths (slaves).
    for (const auto& f : facts_) {
      if (f.kind != shim::BlockKind::kDm || !shim::IsMultipathUuid(f.dm_uuid)) continue;
      DiskUnit u;
      u.primary = &f;
      u.multipath_map = true;
      for (const std::string& s : f.slaves) {
        auto it = index_->whole.find(s);
        if (it == index_->whole.end()) continue;
        u.paths.push_back(it->second);
        is_path.insert(s);
      }
      units.push_back(std::move(u));
    }
    // SCSI paths to the same LUN without a map: one disk.
    std::map<std::string, size_t> unit_of_wwid;
    for (const auto& f : facts_) {
      if (is_path.count(f.name) != 0) continue;
      if (f.kind == shim::BlockKind::kDm || f.kind == shim::BlockKind::kMd) continue;
      if (f.kind == shim::BlockKind::kScsi) {
        if (f.scsi_type >= 0 && f.scsi_type != 0 && f.scsi_type != 0x0e) continue;  // CD-ROM, tape
      } else if (f.size_bytes == 0) {
        continue;  // unattached loop device, empty RAM disk
      }
      if (f.kind == shim::BlockKind::kScsi) {
        std::string source;
        std::vector<std::string> ignored;
        const std::string wwid = ScsiWwid(f, &source, &ignored);
        if (!wwid.empty()) {
          auto [it, inserted] = unit_of_wwid.emplace(wwid, units.size());
          if (!inserted) {
            DiskUnit& u = units[it->second];
            if (u.paths.empty()) u.paths.push_back(u.primary);
            u.paths.push_back(&f);
            continue;
          }
        }
      }
      DiskUnit u;
      u.primary = &f;
      units.push_back(std::move(u));
    }
    return units;
  }

  // libdevmapper is a second opinion on multipath (sysfs decides): a path of
  // a multipath map that sysfs showed as a disk of its own gets a note. No
  // device-mapper (this host, captured trees): no maps, nothing to check.
  void ValidateWithDeviceMapper(std::vector<Disk>* disks) {
    auto maps = sys_.ListDmMaps();
    if (!maps.ok()) return;
    for (const shim::DmMap& m : *maps) {
      if (m.target_type != "multipath") continue;
      for (Disk& d : *disks) {
        if (!d.multipath_map.empty()) continue;
        for (const shim::DevNumber& dep : m.deps) {
          if (std::find(d.member_devs.begin(), d.member_devs.end(), dep) == d.member_devs.end())
            continue;
          d.notes.push_back("libdevmapper: " + d.name + " is a path of multipath map " + m.name +
                            ", which sysfs does not show");
          break;
        }
      }
    }
  }

  // Builds one disk; nullopt when it vanished while being examined.
  std::optional<Disk> Build(const DiskUnit& unit) {
    const shim::BlockDeviceFacts& f = *unit.primary;
    const shim::BlockDeviceFacts& first_path = unit.paths.empty() ? f : *unit.paths.front();
    Disk d;
    d.name = f.name;
    d.devnode = unit.multipath_map ? "/dev/mapper/" + f.dm_name : f.devnode;
    d.transport = unit.multipath_map ? first_path.kind : f.kind;
    d.size_bytes = f.size_bytes;
    d.logical_block_size = f.logical_block_size;
    d.physical_block_size = f.physical_block_size;
    d.rotational = unit.multipath_map ? first_path.rotational : f.rotational;
    d.read_only = f.read_only;
    d.vendor = first_path.vendor;
    d.model = first_path.model;
    d.serial = first_path.serial;
    d.scsi_address = first_path.scsi_address;
    d.designators = first_path.vpd_pg83.designators;
    if (unit.multipath_map) d.multipath_map = f.dm_name;
    for (const auto* p : unit.paths) d.paths.push_back(p->devnode);
    if (!unit.multipath_map && unit.paths.size() > 1)
      d.notes.push_back(std::to_string(unit.paths.size()) +
                        " paths to this LUN and no multipath map (configure multipath)");

    Identify(unit, &d);
    CollectMembers(unit, &d);
    CollectMounts(&d);
    CollectSwaps(&d);
    if (!ProbeContents(unit, &d)) return std::nullopt;
    if (!CheckExclusive(unit, &d)) return std::nullopt;
    CheckRetention(&d);
    d.named_target = !d.identity.empty() && targets_.count(d.identity) != 0;
    DecideRole(&d);
    return d;
  }

  void Identify(const DiskUnit& unit, Disk* d) {
    const shim::BlockDeviceFacts& f = *unit.primary;
    if (unit.multipath_map || f.kind == shim::BlockKind::kScsi) {
      std::string source;
      std::string wwid;
      if (unit.multipath_map) {
        auto n = NormalizeWwid(f.dm_uuid.substr(6));  // "mpath-" + multipath's WWID
        if (n.ok()) {
          wwid = *n;
          source = "multipath uuid";
        }
        for (const auto* p : unit.paths) {
          std::string ps;
          const std::string pw = ScsiWwid(*p, &ps, &d->notes);
          if (wwid.empty()) {
            wwid = pw;
            source = ps;
          } else if (!pw.empty() && pw != wwid) {
            d->notes.push_back("path " + p->name + " has WWID " + pw + ", map " + wwid);
          }
        }
      } else {
        wwid = ScsiWwid(f, &source, &d->notes);
      }
      if (!wwid.empty()) {
        d->wwid = d->identity = wwid;
        d->identity_source = source;
        d->target_capable = true;
      } else {
        d->not_capable_reason = kNoWwidReason;
      }
      return;
    }
    NonScsiIdentity(f, d);
    const bool allowed = std::any_of(
        config_.allow_non_scsi.begin(), config_.allow_non_scsi.end(), [&](const std::string& a) {
          return a == f.devnode || a == f.name || a == "/dev/" + f.name || a == d->identity;
        });
    if (allowed) {
      d->target_capable = true;
      d->identity_source += " (allowed by allow_non_scsi)";
    } else {
      d->not_capable_reason = NonScsiLabel(f) +
                              ": not a SCSI disk; allow it with allow_non_scsi in the "
                              "configuration for demos/tests";
    }
  }

  void AddMember(const std::string& name, Disk* d) {
    d->member_names.push_back(name);
    if (auto dev = index_->DevOf(name)) d->member_devs.push_back(*dev);
  }

  // Members: the device, its partitions, its paths and their partitions,
  // kpartx partition maps and the agent's maps. Holders: everything else
  // stacked on any of them, recursively.
  void CollectMembers(const DiskUnit& unit, Disk* d) {
    std::vector<const shim::BlockDeviceFacts*> devs = {unit.primary};
    for (const auto* p : unit.paths)
      if (p != unit.primary) devs.push_back(p);
    std::set<std::string> seen;
    std::vector<std::string> queue;
    for (const auto* f : devs) {
      AddMember(f->name, d);
      seen.insert(f->name);
      queue.push_back(f->name);
      for (const auto& p : f->partitions) {
        AddMember(p.name, d);
        seen.insert(p.name);
        queue.push_back(p.name);
      }
    }
    for (const auto& p : unit.primary->partitions) {
      Partition part;
      part.name = p.name;
      part.devnode = p.devnode;
      part.number = p.number;
      part.size_bytes = p.size_bytes;
      part.holders = p.holders;
      d->partitions.push_back(std::move(part));
    }
    while (!queue.empty()) {
      const std::string name = queue.back();
      queue.pop_back();
      const std::vector<std::string>* holders = index_->HoldersOf(name);
      if (holders == nullptr) continue;
      for (const std::string& h : *holders) {
        if (!seen.insert(h).second) continue;
        queue.push_back(h);
        auto it = index_->whole.find(h);
        if (it != index_->whole.end() && (IsKpartxMap(*it->second) || IsAgentMapOf(*it->second, *d))) {
          AddMember(h, d);
          if (IsAgentMapOf(*it->second, *d)) d->agent_maps.push_back(it->second->dm_name);
          if (IsKpartxMap(*it->second)) {
            Partition part;
            part.name = h;
            part.devnode = "/dev/mapper/" + it->second->dm_name;
            part.size_bytes = it->second->size_bytes;
            part.holders = it->second->holders;
            d->partitions.push_back(std::move(part));
          }
          continue;
        }
        AddMember(h, d);
        Holder holder;
        holder.name = h;
        if (it != index_->whole.end()) {
          holder.kind = it->second->kind == shim::BlockKind::kDm   ? "dm"
                        : it->second->kind == shim::BlockKind::kMd ? "md"
                                                                   : "other";
          holder.dm_name = it->second->dm_name;
          holder.dm_uuid = it->second->dm_uuid;
        } else {
          holder.kind = StartsWith(h, "dm-") ? "dm" : StartsWith(h, "md") ? "md" : "other";
        }
        d->findings.push_back(
            {Role::kInUse,
             holder.kind == "md"
                 ? "member of md RAID " + h
                 : "in use by " + h + (holder.dm_name.empty() ? "" : " (" + holder.dm_name + ")")});
        d->holders.push_back(std::move(holder));
      }
    }
  }

  bool IsMember(const Disk& d, const std::string& name) const {
    return std::find(d.member_names.begin(), d.member_names.end(), name) != d.member_names.end();
  }

  void CollectMounts(Disk* d) {
    for (const shim::MountEntry& m : *mounts_) {
      std::string name;
      if (auto it = index_->by_dev.find(m.dev); it != index_->by_dev.end())
        name = it->second;
      else if (m.dev.major == 0)  // anonymous device number (btrfs): use the source path
        name = index_->NameOfPath(m.source);
      if (name.empty() || !IsMember(*d, name)) continue;
      d->mounts.push_back({m.mount_point, name, m.fs_type});
      for (Partition& p : d->partitions)
        if (p.name == name) p.mount_points.push_back(m.mount_point);
      const std::string where = m.mount_point + " (" + index_->Label(name) + ")";
      if (m.mount_point == "/" || m.mount_point == "/boot" || m.mount_point == "/boot/efi")
        d->findings.push_back({Role::kOs, "holds " + where});
      else
        d->findings.push_back({Role::kMounted, "mounted at " + where});
    }
  }

  void CollectSwaps(Disk* d) {
    for (const shim::SwapEntry& s : swaps_) {
      const std::string name = index_->NameOfPath(s.path);
      if (name.empty() || !IsMember(*d, name)) continue;
      d->findings.push_back({Role::kInUse, "active swap on " + index_->Label(name)});
    }
  }

  // Probes a device; false when it vanished (the whole disk is then dropped).
  bool Probe(const std::string& name, const std::string& devnode, shim::ContentProbe* out,
             Disk* d) {
    auto r = sys_.ProbeContent(devnode);
    if (r.ok()) {
      *out = std::move(r).value();
      if (out->ambiguous) d->notes.push_back(name + ": ambiguous signatures (blkid)");
      return true;
    }
    if (r.status().code() == Errc::kNotFound && !sys_.BlockDeviceExists(name)) return false;
    d->notes.push_back("content of " + name + " not probed: " + r.status().message());
    return true;
  }

  void ContentFindings(const std::string& name, const shim::ContentProbe& c, Disk* d) {
    if (c.type == "LVM2_member")
      d->findings.push_back({Role::kInUse, "LVM physical volume (" + name + ")"});
    else if (c.usage == "raid")
      d->findings.push_back({Role::kInUse, "RAID member (" + c.type + " on " + name + ")"});
  }

  bool ProbeContents(const DiskUnit& unit, Disk* d) {
    if (!Probe(unit.primary->name, unit.primary->devnode, &d->content, d)) return false;
    ContentFindings(unit.primary->name, d->content, d);
    for (Partition& p : d->partitions) {
      // A partition (or kpartx map) that vanished alone is just not probed.
      if (!Probe(p.name, StartsWith(p.name, "dm-") ? "/dev/" + p.name : p.devnode, &p.content, d))
        continue;
      ContentFindings(p.name, p.content, d);
    }
    return true;
  }

  // O_EXCL open of a disk nothing visible uses: another program may hold it.
  // Only for disks that could become targets: the open is not free (another
  // program's O_EXCL open or mount at that instant would fail with EBUSY), so
  // it is done only where the answer decides a role. Retention eligibility
  // checks other disks itself (CheckRetentionVolume).
  bool CheckExclusive(const DiskUnit& unit, Disk* d) {
    if (!config_.check_exclusive || !d->target_capable) return true;
    for (const Finding& f : d->findings)
      if (f.role < Role::kTarget) return true;  // already known to be used
    if (!d->identity.empty() && held_by_us_.count(d->identity) != 0) return true;
    // Device-mapper holds a disk under a map exclusively; the agent's own
    // maps are the agent's use of it, not another program's.
    if (!d->agent_maps.empty()) return true;
    auto r = sys_.IsHeldExclusively(unit.primary->devnode);
    d->exclusive_checked = r.ok();
    if (r.ok()) {
      if (*r) d->findings.push_back({Role::kInUse, "held open exclusively by another process"});
      return true;
    }
    if (r.status().code() == Errc::kNotFound && !sys_.BlockDeviceExists(unit.primary->name))
      return false;
    d->notes.push_back("exclusive-open check of " + unit.primary->name +
                       " not possible: " + r.status().message());
    return true;
  }

  void CheckRetention(Disk* d) {
    const std::string& r = config_.retention_identity;
    if (r.empty()) return;
    bool match = r == d->devnode || r == d->name || r == "/dev/" + d->name ||
                 (!d->content.uuid.empty() && r == d->content.uuid);
    if (!match && !d->identity.empty()) {
      auto n = NormalizeIdentity(r);
      match = n.ok() && *n == d->identity;
    }
    if (match) d->findings.push_back({Role::kRetention, "retention volume of this agent"});
  }

  shim::DiskSystem& sys_;
  const InventoryConfig& config_;
  std::set<std::string> targets_;
  std::set<std::string> held_by_us_;
  std::vector<shim::BlockDeviceFacts> facts_;
  std::vector<shim::SwapEntry> swaps_;
  const std::vector<shim::MountEntry>* mounts_ = nullptr;
  const Index* index_ = nullptr;
};

}  // namespace

Result<Inventory> Inventory::Scan(shim::DiskSystem& sys, const InventoryConfig& config) {
  Inventory inv;
  inv.config_ = config;
  Scanner scanner(sys, inv.config_);
  MT_RETURN_IF_ERROR(scanner.Run(&inv.disks_, &inv.mounts_));
  return inv;
}

const Disk* Inventory::Find(std::string_view key) const {
  if (key.empty()) return nullptr;
  const std::string k(key);
  std::string id;
  if (auto n = NormalizeIdentity(k); n.ok()) id = *n;
  for (const Disk& d : disks_) {
    if ((!id.empty() && d.identity == id) || d.devnode == k || d.name == k || "/dev/" + d.name == k)
      return &d;
    for (const std::string& p : d.paths)
      if (p == k) return &d;
  }
  return nullptr;
}

}  // namespace mt::inventory
