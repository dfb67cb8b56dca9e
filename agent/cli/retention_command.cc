// mtctl retention: the retention volume (architecture §3) and store.
//
//   mtctl retention check DEVICE|DIR [--mount DIR] [--json]
//       Whether the device (or the disk under a directory) may be the retention
//       volume, each failure with its reason. Exit 0 when eligible, 1 if not.
//   mtctl retention prepare DEVICE --force [--mount DIR] [--fstab PATH] [--label L]
//       Formats it ext4 (only with --force, and only when it has no ext4 yet),
//       mounts it at DIR (default /mnt/retention) and adds the fstab entry by
//       file-system UUID. Idempotent: a device already prepared changes nothing.
//   mtctl retention status [--dir DIR] [--json]
//       Window start/end, points, bytes used/free, per-stream usage, ratio;
//       reads the catalog read-only, so it works while the daemon runs.
#include <ctime>
#include <iomanip>
#include <sstream>

#include "cli/agent_link.h"
#include "cli/commands.h"
#include "inventory/inventory.h"
#include "inventory/retention_eligibility.h"
#include "mt/retention.pb.h"
#include "mt/shim/disk_system.h"
#include "mt/shim/file_system.h"
#include "mt/shim/volume.h"
#include "retention/policy.h"
#include "retention/retention_store.h"

namespace mt::cli {
namespace {

constexpr const char* kDefaultMount = "/mnt/retention";
constexpr const char* kLabel = "mt-retention";

struct RetentionOptions {
  std::string target;  // DEVICE or DIR
  std::string mount = kDefaultMount;
  std::string fstab = "/etc/fstab";
  std::string label = kLabel;
  std::string dir = kDefaultMount;
  bool force = false;
  bool json = false;
};

std::string Bytes(uint64_t b) {
  std::ostringstream s;
  if (b >= (1ull << 30))
    s << std::fixed << std::setprecision(1) << static_cast<double>(b) / (1ull << 30) << " GiB";
  else if (b >= (1ull << 20))
    s << std::fixed << std::setprecision(1) << static_cast<double>(b) / (1ull << 20) << " MiB";
  else
    s << b << " B";
  return s.str();
}

// The device a path names: itself for /dev/..., else the source of the mount
// holding the directory.
Result<std::string> DeviceOf(const inventory::Inventory& inv, const std::string& target) {
  if (target.rfind("/dev/", 0) == 0) return target;
  const shim::MountEntry* best = nullptr;
  for (const auto& m : inv.mounts()) {
    const std::string& mp = m.mount_point;
    const bool under = target == mp || (target.compare(0, mp.size(), mp) == 0 &&
                                        (mp == "/" || target[mp.size()] == '/'));
    if (under && (best == nullptr || mp.size() > best->mount_point.size())) best = &m;
  }
  if (best == nullptr || best->source.rfind("/dev/", 0) != 0)
    return Status(Errc::kNotFound, target + " is not on a block device (file system: " +
                                       (best ? best->fs_type : "unknown") + ")");
  return best->source;
}

struct Checked {
  proto::RetentionCheck report;
  const inventory::Disk* disk = nullptr;
};

Result<Checked> Check(Context& ctx, const inventory::Inventory& inv, shim::DiskSystem& sys,
                      const RetentionOptions& o) {
  MT_ASSIGN_OR_RETURN(std::string device, DeviceOf(inv, o.target));
  const inventory::Disk* disk = inv.Find(device);
  if (disk == nullptr)
    return Status(Errc::kNotFound, device + " is not a disk this machine has (see mtctl disks)");
  inventory::RetentionRequirements req;
  req.mount_point = o.mount;
  inventory::RetentionVerdict v = inventory::CheckRetentionVolume(inv, *disk, req, &sys);
  Checked c;
  c.disk = disk;
  c.report.set_device(device);
  c.report.set_identity(disk->identity);
  c.report.set_eligible(v.eligible);
  c.report.set_needs_format(v.needs_format);
  c.report.set_mounted_at_mount_point(v.mounted_at_mount_point);
  c.report.set_mount_point(o.mount);
  c.report.set_fs_type(disk->content.type);
  c.report.set_size_bytes(disk->size_bytes);
  for (const auto& p : v.problems) c.report.add_problems(p);
  for (const auto& n : v.notes) c.report.add_notes(n);
  return c;
}

Result<std::unique_ptr<shim::DiskSystem>> OpenSystem(Context& ctx) {
  shim::HostDiskSystemOptions ho;
  ho.sysroot = ctx.global.sysroot;
  return shim::OpenHostDiskSystem(ho);
}

int RunCheck(Context& ctx, const RetentionOptions& o) {
  auto sys = OpenSystem(ctx);
  if (!sys.ok()) return ctx.Fail(sys.status());
  inventory::InventoryConfig cfg;
  cfg.allow_non_scsi = ctx.global.allow_non_scsi;
  auto inv = inventory::Inventory::Scan(**sys, cfg);
  if (!inv.ok()) return ctx.Fail(inv.status());
  auto c = Check(ctx, *inv, **sys, o);
  if (!c.ok()) return ctx.Fail(c.status());
  const auto& r = c->report;
  if (o.json) {
    auto j = ToJson(r, true);
    if (!j.ok()) return ctx.Fail(j.status());
    ctx.out << *j;
  } else {
    ctx.out << r.device() << " (" << r.identity() << ", " << Bytes(r.size_bytes())
            << (r.fs_type().empty() ? ", no file system" : ", " + r.fs_type())
            << "): " << (r.eligible() ? "eligible as the retention volume" : "NOT eligible")
            << "\n";
    for (const auto& p : r.problems()) ctx.out << "  - " << p << "\n";
    for (const auto& n : r.notes()) ctx.out << "  note: " << n << "\n";
  }
  return r.eligible() ? 0 : 1;
}

int RunPrepare(Context& ctx, const RetentionOptions& o) {
  auto sys = OpenSystem(ctx);
  if (!sys.ok()) return ctx.Fail(sys.status());
  inventory::InventoryConfig cfg;
  cfg.allow_non_scsi = ctx.global.allow_non_scsi;
  auto inv = inventory::Inventory::Scan(**sys, cfg);
  if (!inv.ok()) return ctx.Fail(inv.status());
  auto c = Check(ctx, *inv, **sys, o);
  if (!c.ok()) return ctx.Fail(c.status());
  const auto& r = c->report;
  const std::string& dev = r.device();
  if (!r.eligible()) {
    std::string why;
    for (const auto& p : r.problems()) why += (why.empty() ? "" : "; ") + p;
    return ctx.Fail(dev + " cannot be the retention volume: " + why);
  }
  const bool has_fs = r.fs_type() == "ext4" || r.fs_type() == "xfs";
  if (!has_fs) {
    if (!o.force)
      return ctx.Fail(dev +
                      " has no ext4 file system; formatting erases it: run again with --force");
    ctx.out << "formatting " << dev << " as ext4 (label " << o.label << ")\n";
    Status s = shim::FormatExt4(dev, o.label);
    if (!s.ok()) return ctx.Fail(s);
  } else if (r.fs_type() != "ext4") {
    return ctx.Fail(dev + " holds " + r.fs_type() + "; mt-agent prepares ext4 only");
  }
  auto probe = (*sys)->ProbeContent(dev);
  if (!probe.ok()) return ctx.Fail(probe.status());
  if (probe->uuid.empty()) return ctx.Fail(dev + ": no file-system UUID after formatting");
  if (!r.mounted_at_mount_point()) {
    ctx.out << "mounting " << dev << " (UUID " << probe->uuid << ") at " << o.mount << "\n";
    Status s = shim::MountExt4(dev, o.mount);
    if (!s.ok()) return ctx.Fail(s);
  }
  bool changed = false;
  Status s = shim::EnsureFstabEntry(o.fstab, probe->uuid, o.mount, &changed);
  if (!s.ok()) return ctx.Fail(s);
  if (changed)
    ctx.out << "added " << o.mount << " to " << o.fstab << " (UUID=" << probe->uuid << ")\n";
  if (r.mounted_at_mount_point() && !changed)
    ctx.out << dev << " is already the retention volume at " << o.mount << ": nothing to do\n";
  else
    ctx.out << "retention volume ready at " << o.mount << "\n";
  return 0;
}

int RunStatus(Context& ctx, const RetentionOptions& o) {
  const std::string catalog_path = shim::JoinPath(o.dir, "catalog.db");
  auto catalog = retention::Catalog::OpenReadOnly(catalog_path);
  if (!catalog.ok()) {
    if (catalog.status().code() == Errc::kNotFound)
      return ctx.Fail("no retention store at " + o.dir +
                      " (no catalog.db): prepare a retention volume and start mt-agent first");
    return ctx.Fail(catalog.status());
  }
  // The agent's own space settings (agent.toml, or the defaults without one).
  auto config = LoadAgentConfigForCli(ctx);
  if (!config.ok()) return ctx.Fail(config.status());
  retention::SpacePolicy space;
  space.low_space_percent = config->low_space_percent;
  space.low_space_min_bytes = config->low_space_min_bytes;
  space.low_space_max_bytes = config->low_space_max_bytes;
  space.wal_quota_bytes = config->wal_quota_bytes;
  auto usage = retention::ComputeUsage(**catalog, shim::PosixFileSystem(), o.dir, space);
  if (!usage.ok()) return ctx.Fail(usage.status());
  proto::RetentionStatus st;
  st.set_dir(o.dir);
  st.set_capacity_bytes(usage->volume.capacity);
  st.set_available_bytes(usage->volume.available);
  st.set_used_bytes(usage->volume.capacity - usage->volume.available);
  st.set_low_space_threshold_bytes(usage->low_space_threshold);
  st.set_low_space(usage->low_space);
  st.set_stream_footprint_bytes(
      retention::StreamFootprint(space.wal_quota_bytes, config->segment_bytes));
  st.set_streams_the_volume_holds(
      retention::StreamsTheVolumeHolds(space, usage->volume.capacity, config->segment_bytes));
  for (const auto& u : usage->streams) {
    auto* s = st.add_streams();
    s->set_stream_id(u.stream);
    s->set_name(u.name);
    s->set_wal_bytes(u.wal_bytes);
    s->set_undo_bytes(u.undo_bytes);
    s->set_undo_logical_bytes(u.undo_logical_bytes);
    s->set_retention_ratio(u.undo_bytes == 0 ? 0.0
                                             : static_cast<double>(u.undo_logical_bytes) /
                                                   static_cast<double>(u.undo_bytes));
    s->set_oldest_point_seq(u.oldest_point_seq);
    s->set_window_start_ns(u.window_start_ns);
    s->set_window_end_ns(u.window_end_ns);
    s->set_window_start(UtcTime(u.window_start_ns));
    s->set_window_end(UtcTime(u.window_end_ns));
    s->set_points(u.points);
    s->set_wal_segments(u.wal_segments);
    s->set_undo_segments(u.undo_segments);
  }
  if (o.json) {
    auto j = ToJson(st, true);
    if (!j.ok()) return ctx.Fail(j.status());
    ctx.out << *j;
    return 0;
  }
  ctx.out << "retention " << st.dir() << ": " << Bytes(st.used_bytes()) << " used, "
          << Bytes(st.available_bytes()) << " free of " << Bytes(st.capacity_bytes())
          << (st.low_space()
                  ? "  LOW ON SPACE (below " + Bytes(st.low_space_threshold_bytes()) + ")"
                  : "")
          << "\n";
  ctx.out << "room for " << st.streams_the_volume_holds() << " streams (" << st.streams().size()
          << " now): each takes up to " << Bytes(st.stream_footprint_bytes())
          << " before its retention window (WAL quota " << Bytes(config->wal_quota_bytes)
          << " + 2 segments of " << Bytes(config->segment_bytes)
          << "); lower wal_quota or segment_size in agent.toml for more\n";
  if (st.streams().empty()) ctx.out << "no streams\n";
  for (const auto& s : st.streams()) {
    ctx.out << "stream " << s.name() << " (" << s.stream_id() << "): window "
            << (s.window_start().empty() ? "empty" : s.window_start() + " .. " + s.window_end())
            << ", " << s.points() << " tagged points, undo " << Bytes(s.undo_bytes()) << " for "
            << Bytes(s.undo_logical_bytes()) << " of disk data, WAL " << Bytes(s.wal_bytes())
            << "\n";
  }
  return 0;
}

}  // namespace

void AddRetentionCommand(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<RetentionOptions>();
  CLI::App* ret = app.add_subcommand("retention", "The retention volume and store");
  ret->require_subcommand(1);

  CLI::App* check =
      ret->add_subcommand("check", "Can DEVICE (or the disk under DIR) hold retention?");
  check->add_option("target", opts->target, "Device path or directory")->required();
  check->add_option("--mount", opts->mount, "Retention mount point")->capture_default_str();
  check->add_flag("--json", opts->json, "Protobuf JSON (RetentionCheck)");
  check->callback([&ctx, opts] { ctx.exit_code = RunCheck(ctx, *opts); });

  CLI::App* prep = ret->add_subcommand("prepare", "Format (with --force), mount and add to fstab");
  prep->add_option("device", opts->target, "Device path")->required();
  prep->add_flag("--force", opts->force, "Allow formatting a device without ext4 (erases it)");
  prep->add_option("--mount", opts->mount, "Mount point")->capture_default_str();
  prep->add_option("--fstab", opts->fstab, "fstab file to update")->capture_default_str();
  prep->add_option("--label", opts->label, "File-system label when formatting")
      ->capture_default_str();
  prep->callback([&ctx, opts] { ctx.exit_code = RunPrepare(ctx, *opts); });

  CLI::App* status = ret->add_subcommand("status", "Window, points, space and per-stream usage");
  status->add_option("--dir", opts->dir, "Retention directory")->capture_default_str();
  status->add_flag("--json", opts->json, "Protobuf JSON (RetentionStatus)");
  status->callback([&ctx, opts] { ctx.exit_code = RunStatus(ctx, *opts); });
}

}  // namespace mt::cli
