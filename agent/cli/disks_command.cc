// mtctl disks: the disk inventory, read directly (no daemon needed).
//
//   mtctl disks [--json]            table (or protobuf JSON) of every disk with
//                                   its identity, device, size, vendor/model, role, reason
//   mtctl disks --watch [--json]    one line (JSON object) per add/remove/change
//                                   as it happens, until SIGINT/SIGTERM
//   mtctl disks --rescan            SCSI host rescan first (hot-added VMDKs)
//   --target ID / --retention ID    what the catalog would say (until the daemon
//                                   answers this; useful for checks and tests)
#include <chrono>
#include <cstdio>
#include <iomanip>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "inventory/inventory.h"
#include "inventory/inventory_proto.h"
#include "inventory/watcher.h"
#include "mt/shim/disk_system.h"
#include "mt/shim/event_wait.h"
#include "mt/shim/uevent.h"

namespace mt::cli {

namespace {

struct DisksOptions {
  bool json = false;
  bool watch = false;
  bool rescan = false;
  bool sysfs_only = false;
  std::vector<std::string> targets;
  std::string retention;
};

std::string HumanSize(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0 || v >= 100 || v == static_cast<double>(static_cast<uint64_t>(v)))
    std::snprintf(buf, sizeof buf, "%.0f %s", v, kUnits[u]);
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

std::string VendorModel(const inventory::Disk& d) {
  std::string s = d.vendor;
  if (!d.model.empty()) s += (s.empty() ? "" : " ") + d.model;
  return s.empty() ? "-" : s;
}

std::string OrDash(const std::string& s) {
  return s.empty() ? "-" : s;
}

// The role's reason; for a disk that could never be a target, also why not
// (the question an operator asks about an "os" virtio disk or a loop device).
std::string TableReason(const inventory::Disk& d) {
  if (d.target_capable || d.role == inventory::Role::kFree || d.not_capable_reason.empty())
    return d.reason;
  return d.reason + "; " + d.not_capable_reason;
}

void PrintTable(std::ostream& out, const std::vector<inventory::Disk>& disks) {
  struct Row {
    std::string cols[6];
  };
  std::vector<Row> rows;
  rows.push_back({{"IDENTITY", "DEVICE", "SIZE", "VENDOR/MODEL", "ROLE", "REASON"}});
  for (const inventory::Disk& d : disks)
    rows.push_back({{OrDash(d.identity), d.devnode, HumanSize(d.size_bytes), VendorModel(d),
                     inventory::RoleName(d.role), TableReason(d)}});
  size_t width[6] = {0, 0, 0, 0, 0, 0};
  for (const Row& r : rows)
    for (int i = 0; i < 5; ++i) width[i] = std::max(width[i], r.cols[i].size());
  for (const Row& r : rows) {
    for (int i = 0; i < 5; ++i)
      out << std::left << std::setw(static_cast<int>(width[i] + 2)) << r.cols[i];
    out << r.cols[5] << '\n';
  }
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int PrintEvents(Context& ctx, const DisksOptions& o, const std::vector<inventory::DiskEvent>& evs) {
  for (const inventory::DiskEvent& ev : evs) {
    if (o.json) {
      auto json = ToJson(inventory::ToProto(ev, NowUnixMs()), /*pretty=*/false);
      if (!json.ok()) return ctx.Fail(json.status());
      ctx.out << *json << '\n';
    } else {
      const inventory::Disk& d = ev.disk;
      ctx.out << std::left << std::setw(7) << inventory::DiskEventKindName(ev.kind) << ' '
              << d.devnode << "  " << OrDash(d.identity) << "  " << HumanSize(d.size_bytes) << "  "
              << inventory::RoleName(d.role) << "  " << d.reason << '\n';
    }
  }
  ctx.out.flush();
  return 0;
}

inventory::InventoryConfig MakeConfig(const Context& ctx, const DisksOptions& o) {
  inventory::InventoryConfig c;
  c.allow_non_scsi = ctx.global.allow_non_scsi;
  c.target_identities = o.targets;
  c.retention_identity = o.retention;
  return c;
}

// After a SCSI rescan the disks' probes finish asynchronously: wait until the
// uevents have been quiet for a second (at most 10 s).
void SettleAfterRescan(shim::UeventSource& events) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    auto ready = shim::WaitReadable({events.fd()}, 1000);
    if (!ready.ok() || !(*ready)[0]) return;
    for (;;) {
      auto ev = events.Next();
      if (!ev.ok() || !*ev) break;
    }
  }
}

int RunWatch(Context& ctx, const DisksOptions& o, shim::DiskSystem& sys) {
  auto events = shim::OpenKernelBlockUevents();
  if (!events.ok()) return ctx.Fail(events.status());
  auto signals = shim::StopSignals::Install();
  if (!signals.ok()) return ctx.Fail(signals.status());
  if (o.rescan) {
    auto n = sys.RescanScsiHosts();
    if (!n.ok()) return ctx.Fail(n.status());
  }
  inventory::DiskWatcher watcher(sys, **events, MakeConfig(ctx, o));
  if (Status s = watcher.Start(); !s.ok()) return ctx.Fail(s);
  ctx.err << "mtctl: watching block devices (kernel uevents); interrupt to stop" << std::endl;
  for (;;) {
    auto ready = shim::WaitReadable({(*events)->fd(), (*signals)->fd()}, -1);
    if (!ready.ok()) return ctx.Fail(ready.status());
    if ((*ready)[1]) {
      (*signals)->Take();
      return 0;
    }
    if (!(*ready)[0]) continue;
    auto changes = watcher.HandlePending();
    if (!changes.ok()) return ctx.Fail(changes.status());
    if (int rc = PrintEvents(ctx, o, *changes); rc != 0) return rc;
  }
}

int RunDisks(Context& ctx, const DisksOptions& o) {
  shim::HostDiskSystemOptions so;
  so.sysroot = ctx.global.sysroot;
  so.use_udev = !o.sysfs_only;
  auto sys = shim::OpenHostDiskSystem(so);
  if (!sys.ok()) return ctx.Fail(sys.status());
  if (o.watch) return RunWatch(ctx, o, **sys);

  if (o.rescan) {
    // Listen first, so the uevents of what the rescan finds are not missed.
    auto events = shim::OpenKernelBlockUevents();
    auto n = (*sys)->RescanScsiHosts();
    if (!n.ok()) return ctx.Fail(n.status());
    if (events.ok() && *n > 0) SettleAfterRescan(**events);
  }
  auto inv = inventory::Inventory::Scan(**sys, MakeConfig(ctx, o));
  if (!inv.ok()) return ctx.Fail(inv.status());
  if (o.json) {
    auto json = ToJson(inventory::ToProto(*inv, ctx.global.sysroot), /*pretty=*/true);
    if (!json.ok()) return ctx.Fail(json.status());
    ctx.out << *json;
  } else {
    PrintTable(ctx.out, inv->disks());
  }
  ctx.out.flush();
  return 0;
}

}  // namespace

void AddDisksCommand(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<DisksOptions>();
  CLI::App* cmd = app.add_subcommand(
      "disks", "List the disks of this machine with identity (WWID), role and reason");
  cmd->add_flag("--json", o->json,
                "Protobuf JSON (mt.proto.Inventory; with --watch one "
                "mt.proto.DiskEvent per line)");
  cmd->add_flag("--watch", o->watch,
                "Print disks that are added, removed or change, as it "
                "happens, until interrupted");
  cmd->add_flag("--rescan", o->rescan, "Rescan the SCSI hosts first (finds hot-added disks)");
  cmd->add_option("--target", o->targets,
                  "Treat this identity as a protection target (normally from the catalog); "
                  "repeatable")
      ->type_name("ID");
  cmd->add_option("--retention", o->retention,
                  "Treat this identity, device or file-system UUID as the retention volume")
      ->type_name("ID");
  cmd->add_flag("--sysfs-only", o->sysfs_only,
                "Enumerate from /sys/class/block only (skip libudev)");
  cmd->callback([&ctx, o] { ctx.exit_code = RunDisks(ctx, *o); });
}

}  // namespace mt::cli
