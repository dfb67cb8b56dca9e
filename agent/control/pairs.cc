#include "control/pairs.h"

#include <algorithm>
#include <map>
#include <set>

#include "inventory/wwid.h"
#include "mt/shim/block_device.h"

namespace mt::control {

namespace {

constexpr int64_t kSecondNs = 1'000'000'000;

std::string DiskLabel(const proto::PairDiskSpec& s) {
  return "disk " + std::to_string(s.disk()) + " (" + s.target() + ")";
}

}  // namespace

Result<Geometry> ReadDeviceGeometry(const std::string& devnode) {
  shim::BlockDeviceOptions o;
  o.writable = false;
  o.exclusive = false;
  o.direct = false;
  MT_ASSIGN_OR_RETURN(auto dev, shim::OpenBlockDevice(devnode, o));
  return Geometry{dev->size(), dev->logical_block_size()};
}

Status CheckStreamName(const std::string& name) {
  if (name.empty() || name.size() > 255)
    return Status(Errc::kInvalidArgument, "stream name must be 1..255 characters");
  for (char c : name)
    if (c < 0x21 || c > 0x7e || c == '/')
      return Status(Errc::kInvalidArgument, "stream name '" + name +
                                                "' must be printable ASCII without spaces or '/'");
  if (name[0] == '.')
    return Status(Errc::kInvalidArgument, "stream name '" + name + "' must not start with '.'");
  return Status::Ok();
}

Result<std::vector<std::string>> CatalogTargets(retention::Catalog& catalog) {
  std::vector<std::string> out;
  MT_ASSIGN_OR_RETURN(auto streams, catalog.ListStreams());
  for (const auto& s : streams) {
    MT_ASSIGN_OR_RETURN(auto disks, catalog.ListDisks(s.id));
    for (const auto& d : disks) out.push_back(d.target_id);
  }
  return out;
}

proto::Policy PolicyToProto(const retention::PolicyRow& p) {
  proto::Policy out;
  out.set_window_ns(p.window_ns);
  out.set_rpo_threshold_ns(p.rpo_threshold_ns);
  out.set_app_frequency_ns(p.app_frequency_ns);
  out.set_full_action(retention::FullActionName(p.full_action));
  return out;
}

Result<retention::PolicyRow> PolicyFromProto(const proto::Policy& p,
                                             const retention::PolicyRow& defaults) {
  retention::PolicyRow out = defaults;
  if (p.window_ns() < 0 || p.rpo_threshold_ns() < 0 || p.app_frequency_ns() < 0)
    return Status(Errc::kInvalidArgument, "policy durations must be positive");
  if (p.window_ns() > 0) out.window_ns = p.window_ns();
  if (p.rpo_threshold_ns() > 0) out.rpo_threshold_ns = p.rpo_threshold_ns();
  if (p.app_frequency_ns() > 0) out.app_frequency_ns = p.app_frequency_ns();
  if (!p.full_action().empty()) {
    auto a = retention::ParseFullAction(p.full_action());
    if (!a.ok())
      return Status(Errc::kInvalidArgument,
                    "full action must be prune or stop, not '" + p.full_action() + "'");
    out.full_action = *a;
  }
  return out;
}

Result<proto::PairAddResult> AddPair(const proto::PairAdd& request, PairEnvironment& env) {
  retention::Catalog& catalog = *env.catalog;
  const std::string& name = request.stream();
  MT_RETURN_IF_ERROR(CheckStreamName(name));
  if (request.disks().empty())
    return Status(Errc::kInvalidArgument, "stream '" + name + "' needs at least one disk");
  MT_ASSIGN_OR_RETURN(retention::PolicyRow policy,
                      PolicyFromProto(request.policy(), env.default_policy));
  std::set<uint32_t> indexes;
  for (const auto& s : request.disks()) {
    if (s.target().empty())
      return Status(Errc::kInvalidArgument, "disk " + std::to_string(s.disk()) + " has no target");
    if (!indexes.insert(s.disk()).second)
      return Status(Errc::kInvalidArgument, "disk index " + std::to_string(s.disk()) +
                                                " is given twice");
  }
  MT_ASSIGN_OR_RETURN(auto existing, catalog.FindStream(name));
  if (existing) return Status(Errc::kAlreadyExists, "stream '" + name + "' already exists");

  // Resolve every target to a disk of this machine and its identity.
  MT_ASSIGN_OR_RETURN(std::vector<std::string> targets, CatalogTargets(catalog));
  inventory::InventoryConfig cfg = env.inventory;
  cfg.target_identities = targets;
  MT_ASSIGN_OR_RETURN(inventory::Inventory before, inventory::Inventory::Scan(*env.disks, cfg));
  std::map<uint32_t, std::string> identity;  // disk index -> target identity
  std::map<std::string, uint32_t> seen;
  for (const auto& s : request.disks()) {
    const inventory::Disk* d = before.Find(s.target());
    if (d == nullptr) {
      std::string hint;
      if (s.target()[0] != '/' && !inventory::NormalizeIdentity(s.target()).ok())
        hint = ": not a WWID or device path";
      else
        hint = ": no such disk on this machine (see mtctl disks)";
      return Status(Errc::kNotFound, DiskLabel(s) + hint);
    }
    // The strongest reason first: a disk that holds the OS or the retention
    // volume (or is used) is refused for that, never for its transport —
    // naming allow_non_scsi would point at a setting that cannot help.
    if (d->role < inventory::Role::kTarget)
      return inventory::IsSafeTarget(*d).WithContext(DiskLabel(s));
    if (d->identity.empty() || !d->target_capable)
      return Status(Errc::kUnsafeTarget,
                    DiskLabel(s) + ": " + d->Describe() + " cannot be a target: " +
                        (d->not_capable_reason.empty() ? "it has no identity"
                                                       : d->not_capable_reason));
    if (auto [it, fresh] = seen.emplace(d->identity, s.disk()); !fresh)
      return Status(Errc::kInvalidArgument, DiskLabel(s) + " is the same disk as disk " +
                                                std::to_string(it->second));
    MT_ASSIGN_OR_RETURN(auto owner, catalog.FindDiskByTarget(d->identity));
    if (owner) {
      MT_ASSIGN_OR_RETURN(auto other, catalog.GetStream(owner->stream));
      return Status(Errc::kAlreadyExists,
                    DiskLabel(s) + ": " + d->identity + " is already disk " +
                        std::to_string(owner->disk) + " of stream '" +
                        (other ? other->name : std::to_string(owner->stream)) + "'");
    }
    identity[s.disk()] = d->identity;
    cfg.target_identities.push_back(d->identity);
  }

  // The safety check proper, with the new targets named as targets.
  MT_ASSIGN_OR_RETURN(inventory::Inventory after, inventory::Inventory::Scan(*env.disks, cfg));
  std::vector<const inventory::Disk*> checked;
  for (const auto& s : request.disks()) {
    const inventory::Disk* d = after.Find(identity[s.disk()]);
    if (d == nullptr)
      return Status(Errc::kNotFound, DiskLabel(s) + ": " + identity[s.disk()] +
                                         " disappeared while it was checked");
    Status safe = inventory::IsSafeTarget(*d);
    if (!safe.ok()) return safe.WithContext(DiskLabel(s));
    checked.push_back(d);
  }
  // Only now, every target safe, is any device opened (read-only, for its size).
  std::vector<retention::DiskRow> rows;
  for (int i = 0; i < request.disks_size(); ++i) {
    const proto::PairDiskSpec& s = request.disks(i);
    const inventory::Disk* d = checked[i];
    auto g = env.geometry(d->devnode);
    if (!g.ok()) return g.status().WithContext(DiskLabel(s));
    if (g->size_bytes == 0 || g->logical_block_size == 0)
      return Status(Errc::kInvalidArgument, DiskLabel(s) + ": " + d->devnode + " has size 0");
    retention::DiskRow r;
    r.disk = s.disk();
    r.target_id = d->identity;
    r.target_device = d->devnode;
    r.source_disk_id = s.source_disk_id();
    r.size_bytes = g->size_bytes;
    r.block_size = g->logical_block_size;
    r.target_blank = s.blank();
    rows.push_back(r);
  }

  retention::StreamRow row;
  row.name = name;
  row.group = request.group();
  row.created_ns = env.clock->NowNs();
  row.state = retention::StreamState::kProtected;
  MT_ASSIGN_OR_RETURN(uint64_t id, catalog.AddStream(row));
  auto undo = [&](const Status& s) {
    (void)catalog.RemoveStream(id);
    return s;
  };
  for (auto& r : rows) {
    r.stream = id;
    Status s = catalog.AddDisk(r);
    if (!s.ok()) return undo(s);
  }
  policy.stream = id;
  if (Status s = catalog.SetPolicy(policy); !s.ok()) return undo(s);
  auto key = env.credentials->Create(name);
  if (!key.ok()) {
    if (key.status().code() == Errc::kAlreadyExists)
      return undo(Status(Errc::kAlreadyExists,
                         "a credential for stream '" + name + "' already exists at " +
                             env.credentials->PathOf(name) +
                             " (left from an earlier pair of that name?); remove it first"));
    return undo(key.status().WithContext("credential of stream '" + name + "'"));
  }
  proto::PairAddResult result;
  row.id = id;
  auto pair = PairFromCatalog(catalog, row, env.clock->NowNs());
  if (!pair.ok()) return pair.status();
  *result.mutable_pair() = *pair;
  result.set_credential_hex(daemon::ToHex(*key));
  result.set_credential_file(env.credentials->PathOf(name));
  return result;
}

Result<proto::Pair> PairFromCatalog(retention::Catalog& catalog, const retention::StreamRow& row,
                                    int64_t now_ns) {
  proto::Pair p;
  p.set_stream_id(row.id);
  p.set_name(row.name);
  p.set_group(row.group);
  p.set_state(retention::StreamStateName(row.state));
  p.set_error(row.error);
  p.set_created_ns(row.created_ns);
  MT_ASSIGN_OR_RETURN(auto policy, catalog.GetPolicy(row.id));
  *p.mutable_policy() = PolicyToProto(policy);
  MT_ASSIGN_OR_RETURN(auto disks, catalog.ListDisks(row.id));
  for (const auto& d : disks) {
    auto* pd = p.add_disks();
    pd->set_disk(d.disk);
    pd->set_target_id(d.target_id);
    pd->set_target_device(d.target_device);
    pd->set_source_disk_id(d.source_disk_id);
    pd->set_size_bytes(d.size_bytes);
    pd->set_block_size(d.block_size);
    pd->set_resync_state(retention::ResyncStateName(d.resync_state));
    pd->set_resync_complete_seq(d.resync_complete_seq);
    pd->set_target_blank(d.target_blank);
    MT_ASSIGN_OR_RETURN(auto cp, catalog.GetCheckpoint(row.id, d.disk));
    pd->set_applied_seq(cp ? cp->applied_seq : 0);
  }
  MT_ASSIGN_OR_RETURN(auto checkpoint, catalog.StreamCheckpoint(row.id));
  const uint64_t applied = checkpoint ? checkpoint->applied_seq : 0;
  const int64_t applied_time = checkpoint ? checkpoint->applied_time_ns : 0;
  p.set_applied_seq(applied);
  p.set_durable_seq(applied);  // at least; the daemon knows the WAL's part
  p.set_rpo_ns(applied_time == 0 ? -1 : std::max<int64_t>(0, now_ns - applied_time));
  MT_ASSIGN_OR_RETURN(auto app, catalog.LatestPoint(row.id, retention::TagKind::kApp));
  p.set_last_app_point_ns(app ? app->time_ns : 0);
  return p;
}

Result<proto::PairList> ListPairsFromCatalog(retention::Catalog& catalog, int64_t now_ns) {
  proto::PairList list;
  list.set_source("catalog");
  MT_ASSIGN_OR_RETURN(auto streams, catalog.ListStreams());
  for (const auto& s : streams) {
    MT_ASSIGN_OR_RETURN(proto::Pair p, PairFromCatalog(catalog, s, now_ns));
    *list.add_pairs() = std::move(p);
  }
  return list;
}

Result<inventory::InventoryConfig> AgentInventoryConfig(
    retention::Catalog& catalog, shim::DiskSystem& disks, const std::string& retention_dir,
    const std::vector<std::string>& allow_non_scsi) {
  inventory::InventoryConfig cfg;
  MT_ASSIGN_OR_RETURN(cfg.target_identities, CatalogTargets(catalog));
  MT_ASSIGN_OR_RETURN(auto mounts, disks.ReadMounts());
  cfg.retention_identity = DeviceOfDirectory(mounts, retention_dir);
  cfg.allow_non_scsi = allow_non_scsi;
  return cfg;
}

std::string DeviceOfDirectory(const std::vector<shim::MountEntry>& mounts, const std::string& dir) {
  const shim::MountEntry* best = nullptr;
  for (const auto& m : mounts) {
    const std::string& mp = m.mount_point;
    const bool under = dir == mp || mp == "/" ||
                       (dir.compare(0, mp.size(), mp) == 0 && dir.size() > mp.size() &&
                        dir[mp.size()] == '/');
    // The longest mount point wins; among equal ones the later (it is on top).
    if (under && (best == nullptr || mp.size() >= best->mount_point.size())) best = &m;
  }
  if (best == nullptr || best->source.rfind("/dev/", 0) != 0) return "";
  return best->source;
}

std::string HumanDuration(int64_t ns) {
  int64_t s = std::max<int64_t>(0, ns / kSecondNs);
  std::string out;
  if (s >= 86400 * 2) {
    out += std::to_string(s / 86400) + "d";
    s %= 86400;
  }
  if (s >= 3600) {
    out += std::to_string(s / 3600) + "h";
    s %= 3600;
  }
  if (s >= 60) {
    out += std::to_string(s / 60) + "m";
    s %= 60;
  }
  if (s > 0 || out.empty()) out += std::to_string(s) + "s";
  return out;
}

std::vector<proto::Alert> ComputeAlerts(const std::vector<proto::Pair>& pairs, int64_t now_ns,
                                        const RetentionSpace& space) {
  std::vector<proto::Alert> out;
  auto add = [&](const char* kind, const std::string& stream, const std::string& message) {
    proto::Alert a;
    a.set_kind(kind);
    a.set_stream(stream);
    a.set_message(message);
    out.push_back(std::move(a));
  };
  for (const auto& p : pairs) {
    const std::string who = "stream '" + p.name() + "'";
    if (!p.retention_damage().empty())
      add("retention-damaged", p.name(), who + ": " + p.retention_damage());
    if (p.state() == retention::StreamStateName(retention::StreamState::kFailed)) {
      add("stream-failed", p.name(),
          who + " failed: " + (p.error().empty() ? "no reason recorded" : p.error()));
      continue;
    }
    if (p.state() != retention::StreamStateName(retention::StreamState::kProtected)) continue;
    if (!p.retention_alert().empty()) add("retention-full", p.name(), who + ": " + p.retention_alert());
    const auto& pol = p.policy();
    if (p.rpo_ns() >= 0 && pol.rpo_threshold_ns() > 0 && p.rpo_ns() > pol.rpo_threshold_ns())
      add("rpo", p.name(),
          who + ": RPO " + HumanDuration(p.rpo_ns()) + " is above its threshold " +
              HumanDuration(pol.rpo_threshold_ns()));
    if (pol.app_frequency_ns() > 0) {
      const int64_t since = p.last_app_point_ns() > 0 ? p.last_app_point_ns() : p.created_ns();
      if (since > 0 && now_ns - since > 2 * pol.app_frequency_ns())
        add("app-point", p.name(),
            who + ": no app-consistent point for " + HumanDuration(now_ns - since) +
                (p.last_app_point_ns() > 0 ? "" : " (none since the pair was created)") +
                "; expected every " + HumanDuration(pol.app_frequency_ns()));
    }
  }
  if (space.low_space)
    add("retention-space", "",
        "retention volume " + space.dir + " is low on space: " +
            std::to_string(space.available_bytes >> 20) + " MiB free, below " +
            std::to_string(space.threshold_bytes >> 20) + " MiB");
  return out;
}

}  // namespace mt::control
