// Agent's jobs: long operations the daemon runs on one worker thread, in the
// order they were started, each recorded in jobs.db (jobs/job_store.h) from
// queued to succeeded or failed, with its progress. A job that an agent
// stopped while it was queued or running is found at the next start: a
// rollback is queued again (it resumes from its durable progress: running it
// again with the same point is how an interrupted rollback is finished).
//
// An export job: under ops_mu_ the stream is stopped (if it ran) and marked
// busy, its point resolved and pinned, the output checked (a device must be
// in no use); the copy (recovery::Export) runs without ops_mu_; the stream
// runs again after it, whatever the outcome. An export interrupted by a stop
// of the agent runs again at the next start (it starts over).
//
// A vsnap-create job: as an export, the stream stopped, the point resolved
// and pinned ─▶ the snapshot set up (vsnap::Begin: the disk holds exactly
// the applied seq) ─▶ the stream runs again ─▶ the fill (vsnap::Fill) while
// it replicates, the pin held ─▶ the VsnapInfo in the job. One interrupted
// by a stop of the agent is failed at the next start, not run again: its
// vsnap is listed "interrupted" and the operator removes it.
//
// A commit job: under the lock and ops_mu_, each stream found (or already
// listed in the job's result: committed by an earlier run of the job) and
// not busy ─▶ for each: recorded in the result (saved) ─▶ marked busy,
// stopped ─▶ its retention dropped (RetentionStore::DropStream) ─▶ its
// credential deleted ─▶ busy cleared. Run again after a stop of the agent, a
// stream in the result that the catalog no longer lists is done.
//
// A vsnap-remove job: under the lock, vsnap::Remove (which finishes what an
// interrupted remove or create left); safe to run again.
//
// A release job: under the lock and ops_mu_, the stream paused (as the
// Pause command does) ─▶ the disk's map dropped (vsnap::DropTargetMap,
// refused while vsnaps of the disk exist). An attach job resumes the stream
// (its maps made again). Both are safe to run again.
//
// A resync job: under the lock and ops_mu_, what the Resync command does
// (the disks' resync pending again, the stream running); safe to run again
// (the resync is pending once more).
//
// A rollback job:
//   take mtctl's operations lock (<retention>/.mtctl.lock: no mtctl export,
//   commit or vsnap meanwhile) ─▶ under ops_mu_: each stream not committed,
//   not busy, then stopped (its WAL applied, targets and journals closed),
//   recorded paused and marked busy (pause, resume and resync refuse it) ─▶
//   every stream's point resolved and pinned (recovery::PlanRollback) ─▶
//   targets opened (IsSafeTarget, by identity) ─▶ each stream rolled back
//   (recovery::ExecuteRollback), progress into the job ─▶ busy cleared. The
//   streams stay paused: commit, or resync to protect them again.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "daemon/agent.h"
#include "mt/shim/devmapper.h"
#include "mt/shim/file_lock.h"
#include "mt/shim/file_system.h"
#include "recovery/rollback_plan.h"
#include "recovery/store_ops.h"
#include "vsnap/target_map.h"
#include "vsnap/vsnap.h"

namespace mt::daemon {

namespace {

std::string JobsPath(const AgentConfig& config, const AgentEnvironment& env) {
  const std::string catalog =
      env.catalog_path.empty() ? config.retention_dir + "/catalog.db" : env.catalog_path;
  const size_t slash = catalog.rfind('/');
  return (slash == std::string::npos ? std::string(".") : catalog.substr(0, slash)) + "/jobs.db";
}

// Disk `disk` of the stream, or kNotFound naming both.
Result<retention::DiskRow> DiskOf(retention::Catalog& catalog, const retention::StreamRow& row,
                                  uint32_t disk) {
  MT_ASSIGN_OR_RETURN(auto disks, catalog.ListDisks(row.id));
  for (const auto& d : disks)
    if (d.disk == disk) return d;
  return mt::Status(Errc::kNotFound, "stream '" + row.name + "' has no disk " + std::to_string(disk));
}

}  // namespace

mt::Status Agent::StartJobs() {
  MT_ASSIGN_OR_RETURN(jobs_, jobs::JobStore::Open(JobsPath(config_, env_), /*create=*/true));
  MT_ASSIGN_OR_RETURN(auto left, jobs_->Unfinished());
  for (proto::Job& j : left) {
    if (j.spec().has_vsnap_create() && j.state() == jobs::kRunning) {
      // Not run again: a fill cut short leaves the vsnap "interrupted", and
      // only the operator may take it down (it may be in use).
      spdlog::warn("job '{}' ({}) was running when mt-agent stopped: failed", j.id(), j.kind());
      j.set_state(jobs::kFailed);
      j.set_finished_ns(env_.clock->NowNs());
      j.set_message("mt-agent stopped while it ran: if mtctl vsnap list shows the vsnap "
                    "interrupted, remove it (mtctl vsnap remove NAME) and create it again");
      SaveJob(j);
      continue;
    }
    // Safe to run again: a rollback resumes from its progress, an export
    // starts over, a commit skips the streams it committed, a vsnap remove
    // takes down what is left, a queued vsnap create has not begun.
    spdlog::warn("job '{}' ({}) was {} when mt-agent stopped: running it again", j.id(), j.kind(),
                 j.state());
    j.set_message("queued again: mt-agent stopped while it was " + j.state());
    j.set_state(jobs::kQueued);
    SaveJob(j);
    MutexLock l(job_mu_);
    job_queue_.push_back(j.id());
  }
  job_worker_ = std::thread([this] { JobWorker(); });
  return mt::Status::Ok();
}

void Agent::StopJobs() {
  {
    MutexLock l(job_mu_);
    if (job_stop_) return;
    job_stop_ = true;
  }
  job_cv_.notify_all();
  job_changed_cv_.notify_all();
  if (job_worker_.joinable()) job_worker_.join();
}

namespace {

// The percentage of progress a job shows (-1: none).
int PercentOf(const proto::Job& j) {
  return j.total_bytes() == 0 ? -1 : static_cast<int>(j.done_bytes() * 100 / j.total_bytes());
}

}  // namespace

void Agent::SaveJob(const proto::Job& job, bool progress_only) {
  bool store = !progress_only;
  {
    MutexLock l(job_mu_);
    auto it = job_live_.find(job.id());
    if (progress_only && it != job_live_.end() && job.total_bytes() != 0) {
      const uint64_t before = it->second.done_bytes() * 20 / job.total_bytes();
      store = job.done_bytes() * 20 / job.total_bytes() != before;
    }
    // A waiting GetJob wakes when the state, the step or the percentage moves.
    const bool moved = it == job_live_.end() || it->second.state() != job.state() ||
                       it->second.message() != job.message() ||
                       PercentOf(it->second) != PercentOf(job);
    const uint64_t revision = moved ? ++job_revision_ : it->second.revision();
    if (job.state() == jobs::kQueued || job.state() == jobs::kRunning) {
      proto::Job& live = job_live_[job.id()];
      live = job;
      live.set_revision(revision);
    } else {
      job_live_.erase(job.id());
    }
    if (moved) job_changed_cv_.notify_all();
  }
  if (!store) return;
  mt::Status s = jobs_->Save(job);
  if (!s.ok()) spdlog::error("job '{}': {}", job.id(), s.ToString());
}

Result<proto::Job> Agent::StartJob(const proto::StartJob& request) {
  if (!jobs_) return mt::Status(Errc::kUnavailable, "mt-agent has no job table");
  bool created = false;
  MT_ASSIGN_OR_RETURN(proto::Job job,
                      jobs_->Create(request.id(), request.spec(), env_.clock->NowNs(), &created));
  if (!created) return GetJob(job.id());  // the same request again: the job as it stands
  spdlog::info("job '{}' ({}) queued", job.id(), job.kind());
  {
    MutexLock l(job_mu_);
    job.set_revision(++job_revision_);
    job_live_[job.id()] = job;
    job_queue_.push_back(job.id());
  }
  job_cv_.notify_all();
  return job;
}

Result<proto::Job> Agent::GetJob(const std::string& id) {
  {
    MutexLock l(job_mu_);
    auto it = job_live_.find(id);
    if (it != job_live_.end()) return it->second;
  }
  if (!jobs_) return mt::Status(Errc::kUnavailable, "mt-agent has no job table");
  MT_ASSIGN_OR_RETURN(auto job, jobs_->Get(id));
  if (!job) return mt::Status(Errc::kNotFound, "no job '" + id + "' (see mtctl jobs)");
  return *job;
}

Result<proto::Job> Agent::GetJob(const proto::GetJob& request) {
  if (request.wait_ms() > 0) {
    const auto wait = std::chrono::milliseconds(std::min<uint32_t>(request.wait_ms(), 10'000));
    UniqueLock l(job_mu_);
    job_changed_cv_.wait_for(l.native(), wait, [&]() MT_REQUIRES(job_mu_) {
      if (job_stop_ || stopping_) return true;
      auto it = job_live_.find(request.id());
      return it == job_live_.end() || it->second.revision() > request.after_revision();
    });
  }
  return GetJob(request.id());
}

Result<proto::JobList> Agent::ListJobs() {
  if (!jobs_) return mt::Status(Errc::kUnavailable, "mt-agent has no job table");
  MT_ASSIGN_OR_RETURN(auto rows, jobs_->List());
  proto::JobList list;
  MutexLock l(job_mu_);
  for (auto& j : rows) {
    auto it = job_live_.find(j.id());
    *list.add_jobs() = it != job_live_.end() ? it->second : std::move(j);
  }
  return list;
}

void Agent::JobWorker() {
  while (true) {
    std::string id;
    {
      UniqueLock l(job_mu_);
      job_cv_.wait(l.native(), [&]() MT_REQUIRES(job_mu_) { return job_stop_ || !job_queue_.empty(); });
      if (job_stop_) return;  // queued jobs stay queued: the next start runs them
      id = job_queue_.front();
      job_queue_.pop_front();
    }
    auto job = GetJob(id);
    if (job.ok()) RunJob(std::move(job).value());
  }
}

void Agent::RunJob(proto::Job job) {
  job.set_state(jobs::kRunning);
  job.set_started_ns(env_.clock->NowNs());
  job.set_message("started");
  SaveJob(job);
  spdlog::info("job '{}' ({}) running", job.id(), job.kind());
  if (env_.test_stall_jobs) {
    spdlog::warn("job '{}': test hook MT_TEST_STALL_JOBS: held at its first step until mt-agent stops",
                 job.id());
    while (!stopping_) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  mt::Status s = job.spec().has_rollback()      ? RunRollbackJob(job)
                 : job.spec().has_export_disk() ? RunExportJob(job)
                 : job.spec().has_vsnap_create() ? RunVsnapCreateJob(job)
                 : job.spec().has_commit()       ? RunCommitJob(job)
                 : job.spec().has_vsnap_remove() ? RunVsnapRemoveJob(job)
                 : job.spec().has_release()      ? RunReleaseJob(job)
                 : job.spec().has_attach()       ? RunAttachJob(job)
                 : job.spec().has_resync()       ? RunResyncJob(job)
                                                : mt::Status(Errc::kInvalidArgument,
                                                             "job '" + job.id() + "' names no kind of job");
  job.set_finished_ns(env_.clock->NowNs());
  job.set_state(s.ok() ? jobs::kSucceeded : jobs::kFailed);
  job.set_message(s.ok() ? "done" : s.message());
  SaveJob(job);
  if (s.ok())
    spdlog::info("job '{}' ({}) succeeded", job.id(), job.kind());
  else
    spdlog::error("job '{}' ({}) failed: {}", job.id(), job.kind(), s.message());
}

mt::Status Agent::CheckNotBusy(const std::string& stream) {
  MutexLock l(mu_);
  auto it = busy_.find(stream);
  if (it == busy_.end()) return mt::Status::Ok();
  return mt::Status(Errc::kBusy, "stream '" + stream + "' is busy with job '" + it->second +
                                     "' (see mtctl jobs): wait for it to finish");
}

Result<std::unique_ptr<shim::FileLock>> Agent::LockOperationsForJob(const std::string& what) {
  auto lock = shim::TryLockFile(config_.retention_dir + "/.mtctl.lock");
  if (lock.ok() || lock.status().code() != Errc::kBusy) return lock;
  return mt::Status(Errc::kBusy, "an mtctl operation (export, commit, vsnap, release, attach) is "
                                 "running on " + config_.retention_dir + ": run the " + what +
                                 " again when it is done");
}

mt::Status Agent::RunRollbackJob(proto::Job& job) {
  const proto::RollbackJob& spec = job.spec().rollback();
  if (spec.streams().empty()) return mt::Status(Errc::kInvalidArgument, "a rollback job names no stream");
  MT_ASSIGN_OR_RETURN(auto lock, LockOperationsForJob("rollback"));
  std::vector<std::string> names(spec.streams().begin(), spec.streams().end());
  std::vector<std::unique_ptr<shim::BlockDevice>> owned;  // closed when the job ends
  std::vector<recovery::RollbackPlan> plans;
  std::vector<std::map<uint32_t, shim::BlockDevice*>> targets;
  std::vector<std::string> marked;  // the streams this job made busy
  auto release = [&] {
    MutexLock l(mu_);
    for (const auto& n : marked) busy_.erase(n);
  };
  mt::Status prepared = [&]() -> mt::Status {
    MutexLock ops(ops_mu_);
    std::vector<retention::StreamRow> rows;
    for (const auto& name : names) {
      MT_ASSIGN_OR_RETURN(auto row, store_->catalog().FindStream(name));
      if (!row) return mt::Status(Errc::kNotFound, "no stream '" + name + "'");
      if (row->state == retention::StreamState::kCommitted)
        return mt::Status(Errc::kInvalidArgument, "stream '" + name + "' is committed");
      MT_RETURN_IF_ERROR(CheckNotBusy(name));
      {
        MutexLock l(mu_);
        busy_[name] = job.id();
      }
      marked.push_back(name);
      mt::Status stopped = StopStream(name);
      if (!stopped.ok()) spdlog::warn("stream '{}' stopped with an error: {}", name, stopped.message());
      MT_RETURN_IF_ERROR(
          store_->catalog().SetStreamState(row->id, retention::StreamState::kPaused, ""));
      row->state = retention::StreamState::kPaused;
      rows.push_back(*row);
    }
    job.set_message("stopped " + std::to_string(rows.size()) + " stream(s); resolving the point");
    SaveJob(job);
    MT_ASSIGN_OR_RETURN(plans, recovery::PlanRollback(store_->catalog(), *env_.fs,
                                                      config_.retention_dir, rows, spec.to(),
                                                      spec.group()));
    MT_ASSIGN_OR_RETURN(inventory::Inventory inv, Scan());
    for (const auto& p : plans) {
      std::map<uint32_t, shim::BlockDevice*> devs;
      std::vector<std::string> ids;
      MT_RETURN_IF_ERROR(OpenTargets(p.state.disks, inv, &owned, &devs, &ids)
                             .WithContext("rollback '" + p.state.row.name + "'"));
      targets.push_back(std::move(devs));
    }
    return mt::Status::Ok();
  }();
  if (!prepared.ok()) {
    release();
    return prepared;
  }
  proto::RecoveryResult all;
  for (size_t i = 0; i < plans.size(); ++i) {
    const std::string& name = plans[i].state.row.name;
    job.set_message("rolling back stream '" + name + "' to " + plans[i].point.description);
    job.set_done_bytes(0);
    job.set_total_bytes(0);
    SaveJob(job);
    proto::RecoveryResult one;
    mt::Status s = recovery::ExecuteRollback(
        store_->catalog(), *env_.fs, plans[i], targets[i],
        [&](uint64_t done, uint64_t total) {
          job.set_done_bytes(done);
          job.set_total_bytes(total);
          SaveJob(job, /*progress_only=*/true);
        },
        &one);
    if (!s.ok()) {
      release();
      return s;
    }
    spdlog::info("job '{}': stream '{}' rolled back to {}", job.id(), name, one.point());
    recovery::AddStreamResult(one, plans.size(), &all);
  }
  *job.mutable_result() = all;
  release();
  return mt::Status::Ok();
}

// What a job on one disk of a stream (export, vsnap create) holds while
// the stream is stopped for it: the stream's state, the point, the pin that
// keeps the point's undo from a prune, and what to undo at the end.
struct Agent::DiskJob {
  retention::StreamRow row;
  retention::DiskRow disk;
  inventory::Disk target;  // the disk's target, as scanned
  recovery::StreamState st;
  recovery::ResolvedPoint point;
  std::unique_ptr<retention::ReaderPin> pin;
  bool marked = false;       // busy_ names the job
  bool was_running = false;  // the stream ran before: start it again after
};

mt::Status Agent::StopForDiskJob(const proto::Job& job, const std::string& stream, uint32_t disk,
                                 const std::string& at,
                                 const std::function<mt::Status(const inventory::Inventory&)>& check,
                                 DiskJob* dj) {
  MutexLock ops(ops_mu_);
  MT_ASSIGN_OR_RETURN(auto found, store_->catalog().FindStream(stream));
  if (!found) return mt::Status(Errc::kNotFound, "no stream '" + stream + "'");
  dj->row = *found;
  if (dj->row.state == retention::StreamState::kCommitted)
    return mt::Status(Errc::kInvalidArgument, "stream '" + stream + "' is committed");
  MT_RETURN_IF_ERROR(CheckNotBusy(stream));
  MT_ASSIGN_OR_RETURN(dj->disk, DiskOf(store_->catalog(), dj->row, disk));
  MT_ASSIGN_OR_RETURN(inventory::Inventory inv, Scan());
  if (check) MT_RETURN_IF_ERROR(check(inv));
  const inventory::Disk* target = inv.Find(dj->disk.target_id);
  if (target == nullptr)
    return mt::Status(Errc::kNotFound, "target " + dj->disk.target_id + " of disk " +
                                           std::to_string(disk) + " is not attached to this machine");
  dj->target = *target;
  {
    MutexLock l(mu_);
    busy_[stream] = job.id();
    dj->was_running = streams_.count(stream) != 0;
  }
  dj->marked = true;
  mt::Status stopped = StopStream(stream);  // its WAL applied, journals and targets closed
  if (!stopped.ok()) spdlog::warn("stream '{}' stopped with an error: {}", stream, stopped.message());
  MT_ASSIGN_OR_RETURN(dj->pin, retention::ReaderPin::Take(*env_.fs, config_.retention_dir, dj->row.id, 0));
  MT_ASSIGN_OR_RETURN(dj->st, recovery::LoadStreamState(store_->catalog(), *env_.fs,
                                                        config_.retention_dir, dj->row));
  MT_ASSIGN_OR_RETURN(auto sel, recovery::ParsePointSelector(at));
  MT_ASSIGN_OR_RETURN(dj->point, recovery::ResolvePoint(store_->catalog(), *env_.fs, dj->st.View(), sel));
  MT_ASSIGN_OR_RETURN(dj->pin, retention::ReaderPin::Take(*env_.fs, config_.retention_dir, dj->row.id,
                                                          dj->point.seq));  // before the old one goes
  return mt::Status::Ok();
}

void Agent::RestartAfterDiskJob(const proto::Job& job, DiskJob* dj) {
  if (dj->was_running) {
    MutexLock ops(ops_mu_);
    auto inv = Scan();
    mt::Status s = inv.ok() ? StartStream(dj->row, *inv) : inv.status();
    if (!s.ok())
      spdlog::error("job '{}': stream '{}' not started again: {}", job.id(), dj->row.name, s.message());
    dj->was_running = false;
  }
  if (dj->marked) {
    MutexLock l(mu_);
    busy_.erase(dj->row.name);
    dj->marked = false;
  }
}

mt::Status Agent::RunExportJob(proto::Job& job) {
  const proto::ExportJob& spec = job.spec().export_disk();
  if (spec.out().empty() || spec.out()[0] != '/')
    return mt::Status(Errc::kInvalidArgument, "an export job needs an absolute output path");
  MT_ASSIGN_OR_RETURN(auto lock, LockOperationsForJob("export"));
  const std::string& name = spec.stream();
  const bool out_is_dev = spec.out().rfind("/dev/", 0) == 0;
  DiskJob dj;
  std::unique_ptr<shim::BlockDevice> source;
  mt::Status prepared = StopForDiskJob(
      job, name, spec.disk(), spec.at(),
      [&](const inventory::Inventory& inv) {
        const inventory::Disk* d = out_is_dev ? inv.Find(spec.out()) : nullptr;
        if (d != nullptr && d->role != inventory::Role::kFree)
          return mt::Status(Errc::kUnsafeTarget, "refusing to export onto " + spec.out() + ": it is " +
                                                     inventory::RoleName(d->role) + " (" + d->reason + ")");
        return mt::Status::Ok();
      },
      &dj);
  if (prepared.ok()) {
    shim::BlockDeviceOptions ro;  // read-only, shared
    auto opened = shim::OpenBlockDevice(dj.target.devnode, ro);
    if (opened.ok()) source = std::move(opened).value();
    else prepared = opened.status();
  }
  if (!prepared.ok()) {
    RestartAfterDiskJob(job, &dj);
    return prepared;
  }
  const recovery::StreamState& st = dj.st;
  const recovery::ResolvedPoint& point = dj.point;
  const auto start = std::chrono::steady_clock::now();
  mt::Status s = [&]() -> mt::Status {
    if (!out_is_dev) {  // an image file of the disk's size (sparse)
      shim::FileOptions fo;
      fo.writable = fo.create = true;
      MT_ASSIGN_OR_RETURN(auto f, env_.fs->OpenFile(spec.out(), fo));
      MT_RETURN_IF_ERROR(f->Truncate(source->size()).WithContext("create " + spec.out()));
      MT_RETURN_IF_ERROR(f->Sync().WithContext("create " + spec.out()));
    }
    shim::BlockDeviceOptions bo;
    bo.writable = true;
    bo.exclusive = out_is_dev;
    bo.direct = out_is_dev;  // a file through the page cache: tmpfs refuses O_DIRECT
    MT_ASSIGN_OR_RETURN(auto out, shim::OpenBlockDevice(spec.out(), bo));
    job.set_message("exporting disk " + std::to_string(spec.disk()) + " of stream '" + name +
                    "' at " + point.description + " to " + spec.out());
    SaveJob(job);
    MT_RETURN_IF_ERROR(recovery::Export(*env_.fs, st.undo, *source, spec.disk(), point.seq, *out,
                                        [&](uint64_t done, uint64_t total) {
                                          job.set_done_bytes(done);
                                          job.set_total_bytes(total);
                                          SaveJob(job, /*progress_only=*/true);
                                        }));
    proto::RecoveryResult* r = job.mutable_result();
    r->set_operation("export");
    r->set_stream(name);
    r->set_seq(point.seq);
    r->set_point(point.description);
    r->add_disks(spec.out());
    r->set_bytes(out->size());
    r->set_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return mt::Status::Ok();
  }();
  source.reset();
  dj.pin.reset();
  RestartAfterDiskJob(job, &dj);
  return s.ok() ? s : s.WithContext("export (run it again: it starts over)");
}

mt::Status Agent::RunVsnapCreateJob(proto::Job& job) {
  const proto::VsnapCreateJob& spec = job.spec().vsnap_create();
  if (!shim::DeviceMapperAvailable())
    return mt::Status(Errc::kUnavailable,
                      "vsnap needs device-mapper and this kernel has none (no device-mapper in "
                      "/proc/misc: load dm-mod and dm-snapshot); rollback and export work without it");
  if (!config_.device_mapper)
    return mt::Status(Errc::kUnavailable,
                      "vsnap needs the targets written through the agent's device-mapper maps, and "
                      "the configuration says device_mapper = false ([targets])");
  if (!spec.name().empty()) MT_RETURN_IF_ERROR(vsnap::CheckName(spec.name()));
  MT_ASSIGN_OR_RETURN(auto lock, LockOperationsForJob("vsnap create"));
  DiskJob dj;
  vsnap::CreateSpec cs;
  // Set up while the stream is stopped: the disk holds exactly its applied
  // seq (vsnap::Begin's contract).
  auto begun = [&]() -> Result<proto::VsnapInfo> {
    MT_RETURN_IF_ERROR(StopForDiskJob(job, spec.stream(), spec.disk(), spec.at(), {}, &dj));
    MT_RETURN_IF_ERROR(inventory::IsSafeTarget(dj.target));
    cs.retention_dir = config_.retention_dir;
    cs.name = spec.name().empty() ? "seq" + std::to_string(dj.point.seq) : spec.name();
    cs.disk = &dj.target;
    cs.stream = spec.stream();
    cs.disk_index = spec.disk();
    cs.point = dj.point;
    cs.base_seq = dj.st.applied_seq;
    cs.undo = &dj.st.undo;
    cs.now_ns = env_.clock->NowNs();
    job.set_message("setting up vsnap " + cs.name + " of disk " + std::to_string(spec.disk()) +
                    " of stream '" + spec.stream() + "' at " + dj.point.description);
    SaveJob(job);
    return vsnap::Begin(*env_.fs, cs);
  }();
  RestartAfterDiskJob(job, &dj);  // the fill runs while the stream replicates again
  if (!begun.ok()) return begun.status();
  job.set_message("filling vsnap " + cs.name + " (the stream replicates meanwhile)");
  SaveJob(job);
  // The pin keeps the undo the fill reads from a prune until it is done.
  auto made = vsnap::Fill(*env_.fs, cs, *begun, [&](uint64_t done, uint64_t total) {
    job.set_done_bytes(done);
    job.set_total_bytes(total);
    SaveJob(job, /*progress_only=*/true);
  });
  dj.pin.reset();
  if (!made.ok())
    return made.status().WithContext("vsnap " + cs.name + " (it was taken down: create it again)");
  *job.mutable_vsnap() = *made;
  return mt::Status::Ok();
}

mt::Status Agent::RunCommitJob(proto::Job& job) {
  const proto::CommitJob& spec = job.spec().commit();
  if (spec.streams().empty()) return mt::Status(Errc::kInvalidArgument, "a commit job names no stream");
  MT_ASSIGN_OR_RETURN(auto lock, LockOperationsForJob("commit"));
  MutexLock ops(ops_mu_);
  auto done_before = [&](const std::string& name) {  // by an earlier run of this job
    const auto& r = job.result().streams();
    return std::any_of(r.begin(), r.end(), [&](const auto& one) { return one.stream() == name; });
  };
  std::vector<retention::StreamRow> rows;
  for (const auto& name : spec.streams()) {
    MT_ASSIGN_OR_RETURN(auto row, store_->catalog().FindStream(name));
    if (!row) {
      if (done_before(name)) continue;
      return mt::Status(Errc::kNotFound, "no stream '" + name + "'");
    }
    MT_RETURN_IF_ERROR(CheckNotBusy(name));
    rows.push_back(*row);
  }
  job.mutable_result()->set_operation("commit");
  for (const auto& row : rows) {
    auto rolled = recovery::ReadRolledBack(*env_.fs, store_->StreamDir(row.id));
    if (!done_before(row.name)) {  // recorded first: a rerun knows the stream went
      proto::RecoveryResult* one = job.mutable_result()->add_streams();
      one->set_operation("commit");
      one->set_stream(row.name);
      one->set_point(rolled.ok() && *rolled ? **rolled : "");
    }
    job.set_message("committing stream '" + row.name + "'");
    SaveJob(job);
    {
      MutexLock l(mu_);
      busy_[row.name] = job.id();
    }
    mt::Status stopped = StopStream(row.name);
    if (!stopped.ok()) spdlog::warn("stream '{}' stopped with an error: {}", row.name, stopped.message());
    // The rollback marker and progress go last, inside DropStream: until the
    // rows are gone a rolled-back stream stays refused.
    mt::Status s = store_->DropStream(row.id);
    if (s.ok()) s = credentials_->Remove(row.name);
    {
      MutexLock l(mu_);
      busy_.erase(row.name);
    }
    if (!s.ok()) return s.WithContext("commit '" + row.name + "' (run it again: it goes on)");
    spdlog::info("job '{}': stream '{}' committed: its retention and credential are gone", job.id(),
                 row.name);
  }
  const auto& all = job.result().streams();
  if (!all.empty()) job.mutable_result()->set_stream(all[all.size() - 1].stream());
  return mt::Status::Ok();
}

mt::Status Agent::RunVsnapRemoveJob(proto::Job& job) {
  const std::string& name = job.spec().vsnap_remove().name();
  MT_RETURN_IF_ERROR(vsnap::CheckName(name));
  MT_ASSIGN_OR_RETURN(auto lock, LockOperationsForJob("vsnap remove"));
  job.set_message("removing vsnap " + name);
  SaveJob(job);
  return vsnap::Remove(*env_.fs, config_.retention_dir, name);
}

mt::Status Agent::RunReleaseJob(proto::Job& job) {
  const proto::ReleaseJob& spec = job.spec().release();
  MT_ASSIGN_OR_RETURN(auto lock, LockOperationsForJob("release"));
  MutexLock ops(ops_mu_);
  MT_ASSIGN_OR_RETURN(auto row, store_->catalog().FindStream(spec.stream()));
  if (!row) return mt::Status(Errc::kNotFound, "no stream '" + spec.stream() + "'");
  MT_ASSIGN_OR_RETURN(const retention::DiskRow disk, DiskOf(store_->catalog(), *row, spec.disk()));
  MT_RETURN_IF_ERROR(Pause(spec.stream()).status());
  job.set_message("stream '" + spec.stream() + "' paused; dropping the map of " + disk.target_id);
  SaveJob(job);
  MT_ASSIGN_OR_RETURN(inventory::Inventory inv, Scan());
  const inventory::Disk* target = inv.Find(disk.target_id);
  if (target != nullptr)  // a disk already detached has no map left to drop
    MT_RETURN_IF_ERROR(vsnap::DropTargetMap(*target).WithContext(
        "release " + disk.target_id + " (the stream stays paused)"));
  proto::RecoveryResult* r = job.mutable_result();
  r->set_operation("release");
  r->set_stream(spec.stream());
  r->add_disks(disk.target_id);
  return mt::Status::Ok();
}

mt::Status Agent::RunAttachJob(proto::Job& job) {
  const std::string& stream = job.spec().attach().stream();
  MT_ASSIGN_OR_RETURN(auto lock, LockOperationsForJob("attach"));
  MutexLock ops(ops_mu_);
  MT_RETURN_IF_ERROR(Resume(stream).status());
  proto::RecoveryResult* r = job.mutable_result();
  r->set_operation("attach");
  r->set_stream(stream);
  return mt::Status::Ok();
}

mt::Status Agent::RunResyncJob(proto::Job& job) {
  const proto::Resync& spec = job.spec().resync();
  MT_ASSIGN_OR_RETURN(auto lock, LockOperationsForJob("resync"));
  MutexLock ops(ops_mu_);
  MT_ASSIGN_OR_RETURN(const proto::Pair pair, Resync(spec));
  proto::RecoveryResult* r = job.mutable_result();
  r->set_operation("resync");
  r->set_stream(spec.stream());
  for (const auto& d : pair.disks())
    if (d.resync_state() != "complete") r->add_disks(d.target_id());
  return mt::Status::Ok();
}

}  // namespace mt::daemon
