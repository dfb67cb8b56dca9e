// mtctl recovery commands (architecture §5): points, common-point, rollback,
// export, verify, commit, release, attach, vsnap.
//
// With mt-agent running, rollback, export, commit and vsnap create/remove
// are jobs the daemon runs (it stops the streams itself; mtctl starts the
// job and follows its progress; a job cut short by a stop of the agent runs
// again at its next start, except a vsnap create, which is failed:
// agent/daemon/agent_jobs.cc), and so are release and attach (a pause with
// the disk's map dropped, a resume). Offline, they work on the retention
// store directly (agent/recovery); only release, which drops the map, works
// without the daemon among those two. Without a daemon they all work offline the same way,
// the jobs' operations included. Every command that
// reads a stream's journals pins them first (retention/reader_pin.h), so no
// prune deletes what it reads: the daemon's, while a vsnap fills with
// replication running or while `points` and `verify` read a live stream.
//
//   mtctl points (DISK | --stream S | --group G) [--app] [--after T] [--before T] [--json]
//   mtctl common-point --group G [--app] [--json]
//   mtctl rollback (DISK | --stream S | --group G) [--to POINT] --yes [--json]
//   mtctl export DISK --at POINT --out FILE|DEVICE [--json]
//   mtctl verify (DISK | --stream S) [--json]
//   mtctl commit (--stream S | --group G) --yes [--json]
//   mtctl release DISK / mtctl attach DISK
//   mtctl vsnap create|list|remove ...
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iomanip>
#include <sstream>
#include <thread>
#include <utility>
#include <unistd.h>

#include "cli/agent_link.h"
#include "cli/audit.h"
#include "cli/commands.h"
#include "control/pairs.h"
#include "config/credential_store.h"
#include "inventory/inventory.h"
#include "inventory/wwid.h"
#include "mt/recovery.pb.h"
#include "mt/shim/block_device.h"
#include "mt/shim/clock.h"
#include "mt/shim/devmapper.h"
#include "mt/shim/disk_system.h"
#include "mt/shim/file_lock.h"
#include "mt/shim/file_system.h"
#include "retention/reader_pin.h"
#include "recovery/points_report.h"
#include "recovery/recovery.h"
#include "recovery/rollback_plan.h"
#include "jobs/job_store.h"
#include "retention/retention_store.h"
#include "recovery/store_ops.h"
#include "vsnap/target_map.h"
#include "vsnap/vsnap.h"

namespace mt::cli {
namespace {

using std::chrono::milliseconds;

struct RecoveryOptions {
  std::string disk, stream, group, to, at, out, after, before, name, job_id;
  bool app = false, yes = false, json = false;
};

using recovery::FillPoint;

// Everything a recovery command needs, opened once.
struct Env {
  daemon::AgentConfig config;
  std::unique_ptr<retention::Catalog> catalog;
  shim::FileSystem& fs = shim::PosixFileSystem();
  bool daemon = false;  // mt-agent answers on its control socket
  std::unique_ptr<shim::FileLock> lock;  // when the command changes something
};

// kWhenOffline: when mt-agent does not answer (with it, its job takes the lock).
enum class Locked { kNo, kYes, kWhenOffline };

// A reader pin on `row` at `seq` (retention/reader_pin.h): while it lives no
// prune deletes the undo a point at or after `seq` needs. Commands pin seq 0
// (everything) before they read the journals and narrow to their point once
// it is resolved.
Result<std::unique_ptr<retention::ReaderPin>> PinStream(Env& env, const retention::StreamRow& row,
                                                        uint64_t seq) {
  auto pin = retention::ReaderPin::Take(env.fs, env.config.retention_dir, row.id, seq);
  if (!pin.ok()) return pin.status().WithContext("pin the retention of stream '" + row.name + "'");
  return pin;
}

// For listings: a pin that cannot be taken (a read-only retention volume)
// is a warning, not a failure — the listing may then race a prune.
std::unique_ptr<retention::ReaderPin> PinForListing(Context& ctx, Env& env,
                                                    const retention::StreamRow& row) {
  auto pin = PinStream(env, row, 0);
  if (pin.ok()) return std::move(pin).value();
  ctx.err << "mtctl: warning: " << pin.status().message()
          << "; a prune running meanwhile may make this listing fail: run it again" << std::endl;
  return nullptr;
}

Result<Env> OpenEnv(Context& ctx, bool writable, Locked locked = Locked::kNo) {
  Env env;
  MT_ASSIGN_OR_RETURN(env.config, LoadAgentConfigForCli(ctx));
  proto::ControlRequest req;
  req.mutable_get_status();
  env.daemon = CallAgent(ctx, env.config, req, milliseconds(2000)).ok();
  if (locked == Locked::kYes || (locked == Locked::kWhenOffline && !env.daemon)) {
    MT_ASSIGN_OR_RETURN(env.lock, LockOperations(env.config));
  }
  MT_ASSIGN_OR_RETURN(env.catalog, OpenOfflineCatalog(env.config, writable));
  return env;
}

// The inventory with the catalog's targets (so they show as targets).
Result<inventory::Inventory> ScanWithTargets(Context& ctx, Env& env) {
  shim::HostDiskSystemOptions ho;
  ho.sysroot = ctx.global.sysroot;
  MT_ASSIGN_OR_RETURN(auto sys, shim::OpenHostDiskSystem(ho));
  // The daemon's set-up: the configuration alone says which non-SCSI
  // devices may be targets, and the retention volume is the device holding
  // the retention directory.
  MT_ASSIGN_OR_RETURN(inventory::InventoryConfig cfg,
                      control::AgentInventoryConfig(*env.catalog, *sys, env.config.retention_dir,
                                                    env.config.allow_non_scsi));
  cfg.held_by_us = cfg.target_identities;  // paused: we are about to open them
  return inventory::Inventory::Scan(*sys, cfg);
}

struct Selected {
  std::vector<retention::StreamRow> streams;
  bool by_disk = false;
  retention::DiskRow disk;  // when by_disk
};

// DISK (a WWID in any spelling, a target identity or a device path),
// --stream or --group.
Result<Selected> Select(Context& ctx, Env& env, const RecoveryOptions& o) {
  Selected sel;
  const int given = !o.disk.empty() + !o.stream.empty() + !o.group.empty();
  if (given != 1)
    return Status(Errc::kInvalidArgument, "name exactly one of DISK, --stream S or --group G");
  if (!o.stream.empty()) {
    MT_ASSIGN_OR_RETURN(auto row, env.catalog->FindStream(o.stream));
    if (!row) return Status(Errc::kNotFound, "no stream '" + o.stream + "' (see mtctl pairs)");
    sel.streams.push_back(*row);
    return sel;
  }
  if (!o.group.empty()) {
    MT_ASSIGN_OR_RETURN(auto all, env.catalog->ListStreams());
    for (const auto& s : all)
      if (s.group == o.group) sel.streams.push_back(s);
    if (sel.streams.empty()) return Status(Errc::kNotFound, "no stream in group '" + o.group + "'");
    return sel;
  }
  std::optional<retention::DiskRow> row;
  auto id = inventory::NormalizeIdentity(o.disk);
  if (id.ok()) {
    MT_ASSIGN_OR_RETURN(row, env.catalog->FindDiskByTarget(*id));
  }
  if (!row && o.disk.rfind("/dev/", 0) == 0) {
    MT_ASSIGN_OR_RETURN(auto inv, ScanWithTargets(ctx, env));
    const inventory::Disk* d = inv.Find(o.disk);
    if (d != nullptr) {
      MT_ASSIGN_OR_RETURN(row, env.catalog->FindDiskByTarget(d->identity));
    }
  }
  if (!row) return Status(Errc::kNotFound, o.disk + " is not a protected target (see mtctl pairs)");
  MT_ASSIGN_OR_RETURN(auto stream, env.catalog->GetStream(row->stream));
  if (!stream) return Status(Errc::kNotFound, "stream of " + o.disk + " is gone");
  sel.streams.push_back(*stream);
  sel.by_disk = true;
  sel.disk = *row;
  return sel;
}

// Pauses the stream in the daemon (if it runs it); returns whether it was running.
Result<bool> PauseInDaemon(Context& ctx, Env& env, const retention::StreamRow& row) {
  if (!env.daemon || row.state == retention::StreamState::kPaused ||
      row.state == retention::StreamState::kCommitted)
    return false;
  proto::ControlRequest req;
  req.mutable_pause()->set_stream(row.name);
  auto r = CallAgent(ctx, env.config, req, milliseconds(120'000));
  if (!r.ok()) return r.status().WithContext("pause '" + row.name + "' in mt-agent");
  return true;
}

Status ResumeInDaemon(Context& ctx, Env& env, const retention::StreamRow& row) {
  proto::ControlRequest req;
  req.mutable_resume()->set_stream(row.name);
  auto r = CallAgent(ctx, env.config, req, milliseconds(120'000));
  return r.ok() ? Status::Ok() : r.status().WithContext("resume '" + row.name + "' in mt-agent");
}

Result<recovery::ResolvedPoint> Resolve(Env& env, const recovery::StreamState& st,
                                        const std::string& text) {
  MT_ASSIGN_OR_RETURN(auto sel, recovery::ParsePointSelector(text));
  return recovery::ResolvePoint(*env.catalog, env.fs, st.View(), sel);
}

// Opens the stream's targets (all, or one disk) for rollback: only after
// IsSafeTarget, writable, exclusive, O_DIRECT, through the agent's map.
Result<std::vector<std::unique_ptr<shim::BlockDevice>>> OpenTargets(
    const inventory::Inventory& inv, const std::vector<retention::DiskRow>& disks, bool writable,
    bool device_mapper, const std::string& retention_dir,
    std::map<uint32_t, shim::BlockDevice*>* out) {
  std::vector<std::unique_ptr<shim::BlockDevice>> devs;
  for (const auto& d : disks) {
    const inventory::Disk* disk = inv.Find(d.target_id);
    if (disk == nullptr)
      return Status(Errc::kNotFound, "target " + d.target_id + " of disk " + std::to_string(d.disk) +
                                         " is not attached to this machine");
    std::string path = disk->devnode;
    if (writable) {
      MT_RETURN_IF_ERROR(inventory::IsSafeTarget(*disk));
      // Writes go where the daemon's go: through the agent's map when there
      // is one, so that vsnaps of the disk keep their point.
      MT_ASSIGN_OR_RETURN(path, vsnap::TargetWritePath(*disk, device_mapper, retention_dir));
    }
    shim::BlockDeviceOptions bo;
    bo.writable = writable;
    bo.exclusive = writable;
    MT_ASSIGN_OR_RETURN(auto dev, shim::OpenBlockDevice(path, bo));
    (*out)[d.disk] = dev.get();
    devs.push_back(std::move(dev));
  }
  return devs;
}

recovery::ProgressFn Progress(Context& ctx, const std::string& what) {
  auto last = std::make_shared<int>(-1);
  return [&ctx, what, last](uint64_t done, uint64_t total) {
    const int pct = total == 0 ? 100 : static_cast<int>(done * 100 / total);
    if (pct / 10 == *last / 10 && pct != 100) return;
    *last = pct;
    ctx.err << what << ": " << pct << "% (" << (done >> 20) << " of " << (total >> 20) << " MiB)"
            << std::endl;
  };
}

int Emit(Context& ctx, const RecoveryOptions& o, const google::protobuf::Message& m,
         const std::string& text) {
  if (o.json) return PrintJson(ctx, m);
  ctx.out << text;
  return 0;
}

// ---------------------------------------------------------------------------

}  // namespace

std::string PointsText(const proto::PointsReport& report, bool app_only) {
  std::ostringstream text;
  for (const auto& sp : report.streams()) {
    text << "stream " << sp.stream() << (sp.group().empty() ? "" : " (group " + sp.group() + ")")
         << ": crash-consistent points seq " << sp.oldest_seq() << " .. " << sp.latest_seq();
    if (!sp.oldest_time().empty()) text << " (" << sp.oldest_time() << " .. " << sp.latest_time() << ")";
    text << "\n";
    if (!sp.rolled_back().empty()) text << "  note: " << sp.rolled_back() << "\n";
    for (const auto& rp : sp.points()) {
      text << "  " << std::setw(10) << rp.seq() << "  " << std::setw(20) << std::left << rp.time()
           << std::right << "  " << std::setw(5) << rp.kind() << "  " << rp.name()
           << (rp.group_tag_id().empty() ? "" : "  [" + rp.group_tag_id() + "]") << "\n";
    }
    if (sp.points().empty()) text << "  (no tagged points" << (app_only ? " of kind app" : "") << ")\n";
  }
  return text.str();
}

namespace {

int RunPoints(Context& ctx, const RecoveryOptions& o) {
  auto env = OpenEnv(ctx, false);
  if (!env.ok()) return ctx.Fail(env.status());
  auto sel = Select(ctx, *env, o);
  if (!sel.ok()) return ctx.Fail(sel.status());
  int64_t after = INT64_MIN, before = INT64_MAX;
  for (auto [text, bound] : {std::pair<std::string, int64_t*>{o.after, &after}, {o.before, &before}}) {
    if (text.empty()) continue;
    auto p = recovery::ParsePointSelector(text);
    if (!p.ok() || p->kind != recovery::PointSelector::Kind::kTime)
      return ctx.Fail("--after/--before take a time: 2026-11-27T10:15:00Z or @<unix seconds>");
    *bound = p->time_ns;
  }
  proto::PointsReport report;
  recovery::PointFilter filter;
  filter.app_only = o.app;
  filter.after_ns = after;
  filter.before_ns = before;
  for (const auto& row : sel->streams) {
    auto pin = PinForListing(ctx, *env, row);
    auto sp = recovery::DescribePoints(*env->catalog, env->fs, env->config.retention_dir, row, filter);
    if (!sp.ok()) return ctx.Fail(sp.status());
    *report.add_streams() = std::move(*sp);
  }
  const std::string text = PointsText(report, o.app);
  return Emit(ctx, o, report, text);
}

int RunCommonPoint(Context& ctx, const RecoveryOptions& o) {
  auto env = OpenEnv(ctx, false);
  if (!env.ok()) return ctx.Fail(env.status());
  if (o.group.empty()) return ctx.Fail("--group G is required");
  auto cp = recovery::CommonPoint(*env->catalog, o.group, o.app);
  if (!cp.ok()) return ctx.Fail(cp.status());
  proto::CommonPointReport r;
  r.set_group(o.group);
  r.set_group_tag_id(cp->group_tag_id);
  std::ostringstream text;
  text << "group " << o.group << ": common point " << cp->group_tag_id << "\n";
  for (const auto& [sid, p] : cp->per_stream) {
    auto row = env->catalog->GetStream(sid);
    auto* m = r.add_members();
    m->set_stream(row.ok() && *row ? (*row)->name : std::to_string(sid));
    auto* rp = m->mutable_point();
    FillPoint(p, rp);
    text << "  " << m->stream() << ": tag '" << p.name << "' at seq " << p.seq << " (" << rp->time() << ")\n";
  }
  return Emit(ctx, o, r, text.str());
}

// Starts a job in the daemon and follows it to its end, printing progress
// on stderr; the job as it ended (kAborted with its message when it failed).
Result<proto::Job> RunJobInDaemon(Context& ctx, Env& env, const std::string& id,
                                  const proto::JobSpec& spec, const std::string& what) {
  proto::ControlRequest req;
  req.mutable_start_job()->set_id(id);
  *req.mutable_start_job()->mutable_spec() = spec;
  MT_ASSIGN_OR_RETURN(auto started, CallAgent(ctx, env.config, req, milliseconds(30'000)));
  proto::Job job = started.job();
  ctx.err << what << ": job " << job.id() << " " << job.state() << " in mt-agent" << std::endl;
  const recovery::ProgressFn progress = Progress(ctx, what);
  std::string said = job.message();
  std::pair<uint64_t, uint64_t> shown{0, 0};  // progress is printed when it moves
  while (job.state() == jobs::kQueued || job.state() == jobs::kRunning) {
    // The daemon answers once the job moved (or after wait_ms): progress
    // arrives as it happens, without polling.
    proto::ControlRequest get;
    get.mutable_get_job()->set_id(id);
    get.mutable_get_job()->set_wait_ms(5'000);
    get.mutable_get_job()->set_after_revision(job.revision());
    auto r = CallAgent(ctx, env.config, get, milliseconds(30'000));
    if (!r.ok() && r.status().code() == Errc::kBusy) {  // the daemon serves many requests now
      std::this_thread::sleep_for(milliseconds(200));
      continue;
    }
    if (!r.ok()) return r.status();
    job = r->job();
    // Revision 0: an mt-agent that does not wait; do not spin on it.
    if (job.revision() == 0 && (job.state() == jobs::kQueued || job.state() == jobs::kRunning))
      std::this_thread::sleep_for(milliseconds(200));
    if (job.message() != said && job.state() == jobs::kRunning) {
      said = job.message();
      ctx.err << what << ": " << said << std::endl;
    }
    const std::pair<uint64_t, uint64_t> now{job.done_bytes(), job.total_bytes()};
    if (now.second != 0 && now != shown) progress(now.first, now.second);
    shown = now;
  }
  if (job.state() != jobs::kSucceeded)
    return Status(Errc::kAborted, what + " job " + job.id() + " " + job.state() + ": " + job.message());
  return job;
}

// `path` from this process's working directory: the daemon's is "/".
std::string Absolute(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[4096];
  if (getcwd(cwd, sizeof cwd) == nullptr) return path;  // the daemon then refuses it
  return std::string(cwd) + "/" + path;
}

// A new job id: the operation, the time and this process.
std::string NewJobId(const std::string& op) {
  return "mtctl-" + op + "-" + std::to_string(shim::SystemClock().NowNs()) + "-" +
         std::to_string(getpid());
}

int RunRollback(Context& ctx, const RecoveryOptions& o) {
  if (!o.yes)
    return ctx.Fail("rollback rewrites the target disks in place and cannot be undone: add --yes");
  if (o.group.empty() && o.to.empty())
    return ctx.Fail("--to POINT is required (latest, latest-app, a tag, a time or seq:N)");
  auto env = OpenEnv(ctx, true, Locked::kWhenOffline);
  if (!env.ok()) return ctx.Fail(env.status());
  auto sel = Select(ctx, *env, o);
  if (!sel.ok()) return ctx.Fail(sel.status());
  for (const auto& row : sel->streams) {
    auto disks = env->catalog->ListDisks(row.id);
    if (!disks.ok()) return ctx.Fail(disks.status());
    if (sel->by_disk && disks->size() > 1)
      return ctx.Fail(o.disk + " is one of " + std::to_string(disks->size()) + " disks of stream '" +
                      row.name + "', written in one order: roll back --stream " + row.name);
  }
  if (env->daemon) {  // the daemon runs it as a job: it stops the streams and resumes it after a crash
    proto::JobSpec spec;
    for (const auto& row : sel->streams) spec.mutable_rollback()->add_streams(row.name);
    spec.mutable_rollback()->set_to(o.to);
    spec.mutable_rollback()->set_group(o.group);
    auto job = RunJobInDaemon(ctx, *env, o.job_id.empty() ? NewJobId("rollback") : o.job_id, spec,
                              "rollback");
    if (!job.ok()) return ctx.Fail(job.status());
    return Emit(ctx, o, job->result(), recovery::RollbackText(job->result()));
  }
  // Offline: here, under the operations lock (OpenEnv), the streams recorded paused.
  auto plans = recovery::PlanRollback(*env->catalog, env->fs, env->config.retention_dir,
                                      sel->streams, o.to, o.group);
  if (!plans.ok()) return ctx.Fail(plans.status());
  for (const auto& p : *plans)
    if (p.state.row.state != retention::StreamState::kPaused)
      (void)env->catalog->SetStreamState(p.state.row.id, retention::StreamState::kPaused, "");
  auto inv = ScanWithTargets(ctx, *env);
  if (!inv.ok()) return ctx.Fail(inv.status());
  proto::RecoveryResult all;
  for (auto& p : *plans) {
    std::map<uint32_t, shim::BlockDevice*> devmap;
    auto devs = OpenTargets(*inv, p.state.disks, true, env->config.device_mapper,
                            env->config.retention_dir, &devmap);
    if (!devs.ok()) return ctx.Fail(devs.status().WithContext("rollback '" + p.state.row.name + "'"));
    proto::RecoveryResult one;
    Status s = recovery::ExecuteRollback(*env->catalog, env->fs, p, devmap,
                                         Progress(ctx, "rollback " + p.state.row.name), &one);
    if (!s.ok()) return ctx.Fail(s);
    recovery::AddStreamResult(one, plans->size(), &all);
  }
  return Emit(ctx, o, all, recovery::RollbackText(all));
}

int RunExport(Context& ctx, const RecoveryOptions& o) {
  if (o.disk.empty() || o.at.empty() || o.out.empty())
    return ctx.Fail("usage: mtctl export DISK --at POINT --out FILE|DEVICE");
  auto env = OpenEnv(ctx, false, Locked::kWhenOffline);
  if (!env.ok()) return ctx.Fail(env.status());
  RecoveryOptions so = o;
  auto sel = Select(ctx, *env, so);
  if (!sel.ok()) return ctx.Fail(sel.status());
  const retention::StreamRow row = sel->streams[0];
  if (env->daemon) {  // the daemon's job: it stops the stream for the copy and starts it again
    proto::JobSpec spec;
    proto::ExportJob* ex = spec.mutable_export_disk();
    ex->set_stream(row.name);
    ex->set_disk(sel->disk.disk);
    ex->set_at(o.at);
    ex->set_out(Absolute(o.out));
    auto job = RunJobInDaemon(ctx, *env, o.job_id.empty() ? NewJobId("export") : o.job_id, spec,
                              "export");
    if (!job.ok()) return ctx.Fail(job.status());
    const proto::RecoveryResult& r = job->result();
    std::ostringstream text;
    text << "exported disk " << sel->disk.disk << " (" << sel->disk.target_id << ") of stream "
         << row.name << " at " << r.point() << " to " << ex->out() << " (" << std::fixed
         << std::setprecision(2) << r.seconds() << " s)\n";
    return Emit(ctx, o, r, text.str());
  }
  auto inv = ScanWithTargets(ctx, *env);
  if (!inv.ok()) return ctx.Fail(inv.status());
  // The output: a file (created, the disk's size) or a device that is not in use.
  const bool out_is_dev = o.out.rfind("/dev/", 0) == 0;
  if (out_is_dev) {
    const inventory::Disk* d = inv->Find(o.out);
    if (d != nullptr && d->role != inventory::Role::kFree)
      return ctx.Fail("refusing to export onto " + o.out + ": it is " +
                      inventory::RoleName(d->role) + " (" + d->reason + ")");
  }
  auto paused = PauseInDaemon(ctx, *env, row);
  if (!paused.ok()) return ctx.Fail(paused.status());
  auto resume = [&]() {
    if (*paused) {
      Status r = ResumeInDaemon(ctx, *env, row);
      if (!r.ok()) ctx.err << "mtctl: warning: " << r.message() << std::endl;
    }
  };
  const auto start = std::chrono::steady_clock::now();
  auto pin = PinStream(*env, row, 0);
  if (!pin.ok()) {
    resume();
    return ctx.Fail(pin.status());
  }
  auto st = recovery::LoadStreamState(*env->catalog, env->fs, env->config.retention_dir, row);
  if (!st.ok()) {
    resume();
    return ctx.Fail(st.status());
  }
  auto point = Resolve(*env, *st, o.at);
  if (!point.ok()) {
    resume();
    return ctx.Fail(point.status());
  }
  pin = PinStream(*env, row, point->seq);  // the new one is taken before the old goes
  if (!pin.ok()) {
    resume();
    return ctx.Fail(pin.status());
  }
  std::map<uint32_t, shim::BlockDevice*> src;
  auto devs = OpenTargets(*inv, {sel->disk}, false, false, "", &src);
  if (!devs.ok()) {
    resume();
    return ctx.Fail(devs.status());
  }
  if (!out_is_dev) {  // an image file of the disk's size (sparse)
    shim::FileOptions fo;
    fo.writable = fo.create = true;
    auto f = env->fs.OpenFile(o.out, fo);
    Status s = f.ok() ? (*f)->Truncate(src.begin()->second->size()) : f.status();
    if (s.ok()) s = (*f)->Sync();
    if (!s.ok()) {
      resume();
      return ctx.Fail(s.WithContext("create " + o.out));
    }
  }
  shim::BlockDeviceOptions bo;
  bo.writable = true;
  bo.exclusive = out_is_dev;
  // An image file goes through the page cache (and is synced at the end):
  // tmpfs and some other file systems refuse O_DIRECT (found by vm.e2e).
  bo.direct = out_is_dev;
  auto out = shim::OpenBlockDevice(o.out, bo);
  if (!out.ok()) {
    resume();
    return ctx.Fail(out.status());
  }
  Status s = recovery::Export(env->fs, st->undo, *src.begin()->second, sel->disk.disk, point->seq,
                              **out, Progress(ctx, "export"));
  resume();
  if (!s.ok()) return ctx.Fail(s.WithContext("export (run it again: it starts over)"));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  proto::RecoveryResult r;
  r.set_operation("export");
  r.set_stream(row.name);
  r.set_seq(point->seq);
  r.set_point(point->description);
  r.add_disks(o.out);
  r.set_bytes((*out)->size());
  r.set_seconds(secs);
  std::ostringstream text;
  text << "exported disk " << sel->disk.disk << " (" << sel->disk.target_id << ") of stream "
       << row.name << " at " << point->description << " to " << o.out << " (" << std::fixed
       << std::setprecision(2) << secs << " s)\n";
  return Emit(ctx, o, r, text.str());
}

int RunVerify(Context& ctx, const RecoveryOptions& o) {
  auto env = OpenEnv(ctx, false);
  if (!env.ok()) return ctx.Fail(env.status());
  auto sel = Select(ctx, *env, o);
  if (!sel.ok()) return ctx.Fail(sel.status());
  int rc = 0;
  std::ostringstream text;
  proto::VerifyReport last;
  for (const auto& row : sel->streams) {
    const std::string dir = shim::JoinPath(shim::JoinPath(env->config.retention_dir, "streams"),
                                           std::to_string(row.id));
    auto pin = PinForListing(ctx, *env, row);  // a prune would show as missing segments
    recovery::VerifyReport v = recovery::VerifyStream(env->fs, dir);
    last.set_stream(row.name);
    last.set_segments(v.segments);
    last.set_records(v.records);
    last.set_bytes(v.bytes);
    last.set_ok(v.problems.empty());
    last.clear_problems();
    for (const auto& p : v.problems) last.add_problems(p);
    text << "stream " << row.name << ": " << v.records << " records in " << v.segments
         << " segments, " << (v.bytes >> 20) << " MiB checked: "
         << (v.problems.empty() ? "every CRC is right" : "PROBLEMS") << "\n";
    for (const auto& p : v.problems) text << "  - " << p << "\n";
    if (!v.problems.empty()) rc = 1;
  }
  Emit(ctx, o, last, text.str());
  return rc;
}

int RunCommit(Context& ctx, const RecoveryOptions& o) {
  if (!o.yes) return ctx.Fail("commit drops the stream's retention for good: add --yes");
  auto env = OpenEnv(ctx, true, Locked::kWhenOffline);
  if (!env.ok()) return ctx.Fail(env.status());
  if (!o.disk.empty()) return ctx.Fail("commit takes --stream S or --group G");
  auto sel = Select(ctx, *env, o);
  if (!sel.ok()) return ctx.Fail(sel.status());
  auto committed_line = [](const std::string& stream, const std::string& rolled) {
    return "stream " + stream + " committed: its retention and credential are gone" +
           (rolled.empty() ? "" : " (" + rolled + ")") + "\n";
  };
  if (env->daemon) {  // the daemon's job: it stops the streams itself
    proto::JobSpec spec;
    for (const auto& row : sel->streams) spec.mutable_commit()->add_streams(row.name);
    auto job = RunJobInDaemon(ctx, *env, o.job_id.empty() ? NewJobId("commit") : o.job_id, spec,
                              "commit");
    if (!job.ok()) return ctx.Fail(job.status());
    std::string text;
    for (const auto& one : job->result().streams()) text += committed_line(one.stream(), one.point());
    return Emit(ctx, o, job->result(), text);
  }
  env->catalog.reset();  // mt-agent does not run; the store opens the catalog again
  retention::StoreOptions so;
  so.root = env->config.retention_dir;
  auto store = retention::RetentionStore::Open(env->fs, shim::SystemClock(), so);
  if (!store.ok()) return ctx.Fail(store.status());
  daemon::CredentialStore creds(env->fs, env->config.credentials_dir);
  std::string text;
  proto::RecoveryResult all;
  all.set_operation("commit");
  for (const auto& row : sel->streams) {
    const std::string dir = (*store)->StreamDir(row.id);
    auto rolled = recovery::ReadRolledBack(env->fs, dir);
    // The rollback marker and progress go last, inside DropStream: until the
    // rows are gone a rolled-back stream must stay refused.
    Status s = (*store)->DropStream(row.id);
    if (!s.ok()) return ctx.Fail(s.WithContext("commit '" + row.name + "'"));
    if (env->fs.Exists(creds.PathOf(row.name))) (void)env->fs.Remove(creds.PathOf(row.name));
    proto::RecoveryResult* one = all.add_streams();
    one->set_operation("commit");
    one->set_stream(row.name);
    one->set_point(rolled.ok() && *rolled ? **rolled : "");
    all.set_stream(row.name);
    text += committed_line(one->stream(), one->point());
  }
  return Emit(ctx, o, all, text);
}

int RunReleaseAttach(Context& ctx, const RecoveryOptions& o, bool release) {
  auto env = OpenEnv(ctx, false, Locked::kWhenOffline);
  if (!env.ok()) return ctx.Fail(env.status());
  auto sel = Select(ctx, *env, o);
  if (!sel.ok()) return ctx.Fail(sel.status());
  const auto& row = sel->streams[0];
  if (env->daemon) {  // the daemon's job: it pauses (and drops the map) or resumes
    proto::JobSpec spec;
    if (release) {
      spec.mutable_release()->set_stream(row.name);
      spec.mutable_release()->set_disk(sel->disk.disk);
    } else {
      spec.mutable_attach()->set_stream(row.name);
    }
    const std::string what = release ? "release" : "attach";
    auto job = RunJobInDaemon(ctx, *env, o.job_id.empty() ? NewJobId(what) : o.job_id, spec, what);
    if (!job.ok()) return ctx.Fail(job.status());
    ctx.out << (release ? "released " : "attached ") << o.disk << ": stream " << row.name
            << (release ? " paused, all its disks flushed and closed; the disk can be detached"
                        : " resumed")
            << "\n";
    return 0;
  }
  if (!release)
    return ctx.Fail("mt-agent is not running: start it (systemctl start mt-agent) and the stream's "
                    "disks are taken back");
  // The agent's map holds the disk too: drop it so the VMDK can go.
  auto inv = ScanWithTargets(ctx, *env);
  if (!inv.ok()) return ctx.Fail(inv.status());
  const inventory::Disk* disk = inv->Find(sel->disk.target_id);
  if (disk != nullptr) {
    Status s = vsnap::DropTargetMap(*disk);
    if (!s.ok()) return ctx.Fail(s.WithContext("release " + o.disk));
  }
  ctx.out << "released " << o.disk
          << ": mt-agent is not running, nothing writes it; the disk can be detached\n";
  return 0;
}

int RunVsnapCreate(Context& ctx, const RecoveryOptions& o) {
  if (!shim::DeviceMapperAvailable())
    return ctx.Fail("vsnap needs device-mapper and this kernel has none (no device-mapper in "
                    "/proc/misc: load dm-mod and dm-snapshot); rollback and export work without it");
  auto env = OpenEnv(ctx, false, Locked::kWhenOffline);
  if (!env.ok()) return ctx.Fail(env.status());
  if (!env->config.device_mapper)
    return ctx.Fail("vsnap needs the targets written through the agent's device-mapper maps, and "
                    "the configuration says device_mapper = false ([targets])");
  auto sel = Select(ctx, *env, o);
  if (!sel.ok()) return ctx.Fail(sel.status());
  if (!sel->by_disk) return ctx.Fail("usage: mtctl vsnap create DISK --at POINT [--name N]");
  const retention::StreamRow row = sel->streams[0];
  if (env->daemon) {  // the daemon's job: it stops the stream for the set-up only
    if (!o.name.empty()) {
      Status named = vsnap::CheckName(o.name);
      if (!named.ok()) return ctx.Fail(named);
    }
    proto::JobSpec spec;
    proto::VsnapCreateJob* vc = spec.mutable_vsnap_create();
    vc->set_stream(row.name);
    vc->set_disk(sel->disk.disk);
    vc->set_at(o.at);
    vc->set_name(o.name);
    auto job = RunJobInDaemon(ctx, *env, o.job_id.empty() ? NewJobId("vsnap") : o.job_id, spec,
                              "vsnap");
    if (!job.ok()) return ctx.Fail(job.status());
    const proto::VsnapInfo& made = job->vsnap();
    const double secs = (job->finished_ns() - job->started_ns()) / 1e9;
    std::ostringstream text;
    text << "vsnap " << made.name() << ": " << made.device() << " shows disk " << made.disk()
         << " (" << made.target_id() << ") of stream " << row.name << " at " << made.point()
         << " (" << std::fixed << std::setprecision(2) << secs
         << " s in mt-agent); replication goes on. Remove it with mtctl vsnap remove "
         << made.name() << "\n";
    return Emit(ctx, o, made, text.str());
  }
  auto inv = ScanWithTargets(ctx, *env);
  if (!inv.ok()) return ctx.Fail(inv.status());
  const inventory::Disk* disk = inv->Find(sel->disk.target_id);
  if (disk == nullptr)
    return ctx.Fail("target " + sel->disk.target_id + " is not attached to this machine");
  Status safe = inventory::IsSafeTarget(*disk);
  if (!safe.ok()) return ctx.Fail(safe);
  // The stream is paused only while the snapshot is set up (the disk must
  // hold exactly the applied seq then); the fill runs while it replicates
  // again (vsnap::Begin / Fill).
  const auto start = std::chrono::steady_clock::now();
  auto paused = PauseInDaemon(ctx, *env, row);
  if (!paused.ok()) return ctx.Fail(paused.status());
  recovery::StreamState st;
  vsnap::CreateSpec spec;
  // The fill reads undo while the daemon applies (and prunes) again: the pin
  // keeps what the point needs until the fill is done.
  std::unique_ptr<retention::ReaderPin> pin;
  auto begun = [&]() -> Result<proto::VsnapInfo> {
    MT_ASSIGN_OR_RETURN(pin, PinStream(*env, row, 0));
    MT_ASSIGN_OR_RETURN(st, recovery::LoadStreamState(*env->catalog, env->fs,
                                                      env->config.retention_dir, row));
    MT_ASSIGN_OR_RETURN(auto point, Resolve(*env, st, o.at));
    MT_ASSIGN_OR_RETURN(pin, PinStream(*env, row, point.seq));
    spec.retention_dir = env->config.retention_dir;
    spec.name = o.name.empty() ? "seq" + std::to_string(point.seq) : o.name;
    spec.disk = disk;
    spec.stream = row.name;
    spec.disk_index = sel->disk.disk;
    spec.point = point;
    spec.base_seq = st.applied_seq;
    spec.undo = &st.undo;
    spec.now_ns = shim::SystemClock().NowNs();
    return vsnap::Begin(env->fs, spec);
  }();
  const double paused_secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (*paused) {
    Status r = ResumeInDaemon(ctx, *env, row);
    if (!r.ok()) ctx.err << "mtctl: warning: " << r.message() << std::endl;
  }
  if (!begun.ok()) return ctx.Fail(begun.status());
  auto made = vsnap::Fill(env->fs, spec, *begun, Progress(ctx, "vsnap"));
  if (!made.ok()) return ctx.Fail(made.status());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::ostringstream text;
  text << "vsnap " << made->name() << ": " << made->device() << " shows disk " << made->disk()
       << " (" << made->target_id() << ") of stream " << row.name << " at " << made->point()
       << " (" << std::fixed << std::setprecision(2) << secs
       << " s; replication paused for " << std::setprecision(2) << paused_secs
       << " s of it); replication goes on. Remove it with mtctl vsnap remove " << made->name()
       << "\n";
  return Emit(ctx, o, *made, text.str());
}

int RunVsnapList(Context& ctx, const RecoveryOptions& o) {
  auto config = LoadAgentConfigForCli(ctx);
  if (!config.ok()) return ctx.Fail(config.status());
  auto list = vsnap::List(shim::PosixFileSystem(), config->retention_dir);
  if (!list.ok()) return ctx.Fail(list.status());
  proto::VsnapList report;
  std::ostringstream text;
  if (list->empty()) text << "no virtual snapshots\n";
  for (auto& v : *list) {
    text << v.name() << "  " << v.state() << "  " << (v.device().empty() ? "-" : v.device())
         << "  " << v.target_id() << " (stream " << v.stream() << ", disk " << v.disk() << ") at "
         << v.point() << ", created " << v.created() << ", COW " << (v.cow_used_bytes() >> 20)
         << " MiB\n";
    if (!v.detail().empty()) text << "    " << v.detail() << "\n";
    *report.add_vsnaps() = std::move(v);
  }
  return Emit(ctx, o, report, text.str());
}

int RunVsnapRemove(Context& ctx, const RecoveryOptions& o) {
  auto env = OpenEnv(ctx, false, Locked::kWhenOffline);
  if (!env.ok()) return ctx.Fail(env.status());
  if (env->daemon) {  // the daemon's job
    Status named = vsnap::CheckName(o.name);
    if (!named.ok()) return ctx.Fail(named);
    proto::JobSpec spec;
    spec.mutable_vsnap_remove()->set_name(o.name);
    auto job = RunJobInDaemon(ctx, *env, o.job_id.empty() ? NewJobId("vsnap") : o.job_id, spec,
                              "vsnap");
    if (!job.ok()) return ctx.Fail(job.status());
  } else {
    Status s = vsnap::Remove(env->fs, env->config.retention_dir, o.name);
    if (!s.ok()) return ctx.Fail(s);
  }
  ctx.out << "vsnap " << o.name << " removed\n";
  return 0;
}

}  // namespace

void AddRecoveryCommands(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<RecoveryOptions>();
  auto selectors = [o](CLI::App* c, bool group) {
    c->add_option("disk", o->disk, "Target disk: WWID, identity or device path");
    c->add_option("--stream", o->stream, "Stream name");
    if (group) c->add_option("--group", o->group, "Replication group");
  };

  CLI::App* points = app.add_subcommand("points", "Recovery points of a disk, stream or group");
  selectors(points, true);
  points->add_flag("--app", o->app, "Only app-consistent points");
  points->add_option("--after", o->after, "Only points after this time");
  points->add_option("--before", o->before, "Only points before this time");
  points->add_flag("--json", o->json, "Protobuf JSON (PointsReport)");
  points->callback([&ctx, o] { ctx.exit_code = RunPoints(ctx, *o); });

  CLI::App* common = app.add_subcommand("common-point", "Newest point every stream of a group has");
  common->add_option("--group", o->group, "Replication group")->required();
  common->add_flag("--app", o->app, "Only app-consistent group tags");
  common->add_flag("--json", o->json, "Protobuf JSON (CommonPointReport)");
  common->callback([&ctx, o] { ctx.exit_code = RunCommonPoint(ctx, *o); });

  CLI::App* rb = app.add_subcommand("rollback", "Roll targets back in place to a point (destructive)");
  selectors(rb, true);
  rb->add_option("--to", o->to, "latest | latest-app | TAG | TIME | seq:N (--group: its common point, common-app, group-tag:ID)");
  rb->add_flag("--yes", o->yes, "Confirm: the targets are rewritten");
  rb->add_option("--job-id", o->job_id,
                 "The daemon's job id (default: a new one); the same id again follows that job");
  rb->add_flag("--json", o->json, "Protobuf JSON (RecoveryResult)");
  rb->callback([&ctx, o] {
    ctx.exit_code = Audited({"rollback", o->stream, o->group, o->disk, o->to, "", ""},
                            [&] { return RunRollback(ctx, *o); });
  });

  CLI::App* ex = app.add_subcommand("export", "Copy a disk as it was at a point to a file or device");
  ex->add_option("disk", o->disk, "Target disk")->required();
  ex->add_option("--at", o->at, "The point")->required();
  ex->add_option("--out", o->out, "Output file or unused device")->required();
  ex->add_option("--job-id", o->job_id,
                 "The daemon's job id (default: a new one); the same id again follows that job");
  ex->add_flag("--json", o->json, "Protobuf JSON (RecoveryResult)");
  ex->callback([&ctx, o] {
    ctx.exit_code = Audited({"export", o->stream, "", o->disk, o->at, o->out, ""},
                            [&] { return RunExport(ctx, *o); });
  });

  CLI::App* verify = app.add_subcommand("verify", "Re-read the retention and check every CRC");
  selectors(verify, false);
  verify->add_flag("--json", o->json, "Protobuf JSON (VerifyReport)");
  verify->callback([&ctx, o] { ctx.exit_code = RunVerify(ctx, *o); });

  CLI::App* commit = app.add_subcommand("commit", "End of failback: drop the stream's retention");
  commit->add_option("--stream", o->stream, "Stream name");
  commit->add_option("--group", o->group, "Replication group");
  commit->add_flag("--yes", o->yes, "Confirm");
  commit->add_option("--job-id", o->job_id,
                     "The daemon's job id (default: a new one); the same id again follows that job");
  commit->add_flag("--json", o->json, "Protobuf JSON (RecoveryResult, one entry per stream in streams)");
  commit->callback([&ctx, o] {
    ctx.exit_code = Audited({"commit", o->stream, o->group, "", "", "", ""},
                            [&] { return RunCommit(ctx, *o); });
  });

  CLI::App* rel = app.add_subcommand("release", "Flush and close a target so its VMDK can be detached");
  rel->add_option("disk", o->disk, "Target disk")->required();
  rel->add_option("--job-id", o->job_id,
                  "The daemon's job id (default: a new one); the same id again follows that job");
  rel->callback([&ctx, o] {
    ctx.exit_code = Audited({"release", o->stream, "", o->disk, "", "", ""},
                            [&] { return RunReleaseAttach(ctx, *o, true); });
  });
  CLI::App* att = app.add_subcommand("attach", "Take a released target back");
  att->add_option("disk", o->disk, "Target disk")->required();
  att->add_option("--job-id", o->job_id,
                  "The daemon's job id (default: a new one); the same id again follows that job");
  att->callback([&ctx, o] {
    ctx.exit_code = Audited({"attach", o->stream, "", o->disk, "", "", ""},
                            [&] { return RunReleaseAttach(ctx, *o, false); });
  });

  CLI::App* vsnap = app.add_subcommand("vsnap", "Virtual snapshots through device-mapper");
  vsnap->require_subcommand(1);
  CLI::App* create = vsnap->add_subcommand("create", "Snapshot of DISK at a point, while replication goes on");
  create->add_option("disk", o->disk, "Target disk")->required();
  create->add_option("--at", o->at, "The point")->required();
  create->add_option("--name", o->name, "Snapshot name");
  create->add_option("--job-id", o->job_id,
                     "The daemon's job id (default: a new one); the same id again follows that job");
  create->add_flag("--json", o->json, "Protobuf JSON (VsnapInfo)");
  create->callback([&ctx, o] {
    ctx.exit_code = Audited({"vsnap-create", o->stream, "", o->disk, o->at, "", o->name},
                            [&] { return RunVsnapCreate(ctx, *o); });
  });
  CLI::App* list = vsnap->add_subcommand("list", "The virtual snapshots");
  list->add_flag("--json", o->json, "Protobuf JSON (VsnapList)");
  list->callback([&ctx, o] { ctx.exit_code = RunVsnapList(ctx, *o); });
  CLI::App* remove = vsnap->add_subcommand("remove", "Remove a virtual snapshot");
  remove->add_option("name", o->name, "Snapshot name")->required();
  remove->add_option("--job-id", o->job_id,
                     "The daemon's job id (default: a new one); the same id again follows that job");
  remove->callback([&ctx, o] {
    ctx.exit_code = Audited({"vsnap-remove", "", "", "", "", "", o->name},
                            [&] { return RunVsnapRemove(ctx, *o); });
  });
}

}  // namespace mt::cli
