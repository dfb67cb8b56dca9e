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
// runs again after it, whatever the outcome.
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

#include "daemon/agent.h"
#include "mt/shim/file_lock.h"
#include "mt/shim/file_system.h"
#include "recovery/rollback_plan.h"

namespace mt::daemon {

namespace {

std::string JobsPath(const AgentConfig& config, const AgentEnvironment& env) {
  const std::string catalog =
      env.catalog_path.empty() ? config.retention_dir + "/catalog.db" : env.catalog_path;
  const size_t slash = catalog.rfind('/');
  return (slash == std::string::npos ? std::string(".") : catalog.substr(0, slash)) + "/jobs.db";
}

}  // namespace

mt::Status Agent::StartJobs() {
  MT_ASSIGN_OR_RETURN(jobs_, jobs::JobStore::Open(JobsPath(config_, env_), /*create=*/true));
  MT_ASSIGN_OR_RETURN(auto left, jobs_->Unfinished());
  for (proto::Job& j : left) {
    // Safe to run again: a rollback resumes from its progress, an export
    // starts over.
    spdlog::warn("job '{}' ({}) was {} when mt-agent stopped: running it again", j.id(), j.kind(),
                 j.state());
    j.set_state(jobs::kQueued);
    j.set_message("queued again: mt-agent stopped while it was " + j.state());
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
  if (job_worker_.joinable()) job_worker_.join();
}

void Agent::SaveJob(const proto::Job& job, bool progress_only) {
  bool store = !progress_only;
  {
    MutexLock l(job_mu_);
    auto it = job_live_.find(job.id());
    if (progress_only && it != job_live_.end() && job.total_bytes() != 0) {
      const uint64_t before = it->second.done_bytes() * 20 / job.total_bytes();
      store = job.done_bytes() * 20 / job.total_bytes() != before;
    }
    if (job.state() == jobs::kQueued || job.state() == jobs::kRunning)
      job_live_[job.id()] = job;
    else
      job_live_.erase(job.id());
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
  mt::Status s = job.spec().has_rollback()      ? RunRollbackJob(job)
                 : job.spec().has_export_disk() ? RunExportJob(job)
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

mt::Status Agent::RunExportJob(proto::Job& job) {
  const proto::ExportJob& spec = job.spec().export_disk();
  if (spec.out().empty() || spec.out()[0] != '/')
    return mt::Status(Errc::kInvalidArgument, "an export job needs an absolute output path");
  MT_ASSIGN_OR_RETURN(auto lock, LockOperationsForJob("export"));
  const std::string& name = spec.stream();
  const bool out_is_dev = spec.out().rfind("/dev/", 0) == 0;
  bool marked = false, was_running = false;
  retention::StreamRow row;
  recovery::StreamState st;
  recovery::ResolvedPoint point;
  std::unique_ptr<retention::ReaderPin> pin;
  std::unique_ptr<shim::BlockDevice> source;
  // Whatever happens once the stream was stopped: run it again, clear busy.
  auto finish = [&] {
    if (was_running) {
      MutexLock ops(ops_mu_);
      auto inv = Scan();
      mt::Status s = inv.ok() ? StartStream(row, *inv) : inv.status();
      if (!s.ok()) spdlog::error("job '{}': stream '{}' not started again: {}", job.id(), name, s.message());
    }
    if (marked) {
      MutexLock l(mu_);
      busy_.erase(name);
    }
  };
  mt::Status prepared = [&]() -> mt::Status {
    MutexLock ops(ops_mu_);
    MT_ASSIGN_OR_RETURN(auto found, store_->catalog().FindStream(name));
    if (!found) return mt::Status(Errc::kNotFound, "no stream '" + name + "'");
    row = *found;
    if (row.state == retention::StreamState::kCommitted)
      return mt::Status(Errc::kInvalidArgument, "stream '" + name + "' is committed");
    MT_RETURN_IF_ERROR(CheckNotBusy(name));
    MT_ASSIGN_OR_RETURN(auto disks, store_->catalog().ListDisks(row.id));
    auto disk = std::find_if(disks.begin(), disks.end(),
                             [&](const retention::DiskRow& d) { return d.disk == spec.disk(); });
    if (disk == disks.end())
      return mt::Status(Errc::kNotFound, "stream '" + name + "' has no disk " + std::to_string(spec.disk()));
    MT_ASSIGN_OR_RETURN(inventory::Inventory inv, Scan());
    if (out_is_dev) {
      const inventory::Disk* d = inv.Find(spec.out());
      if (d != nullptr && d->role != inventory::Role::kFree)
        return mt::Status(Errc::kUnsafeTarget, "refusing to export onto " + spec.out() + ": it is " +
                                                   inventory::RoleName(d->role) + " (" + d->reason + ")");
    }
    const inventory::Disk* src = inv.Find(disk->target_id);
    if (src == nullptr)
      return mt::Status(Errc::kNotFound, "target " + disk->target_id + " of disk " +
                                             std::to_string(disk->disk) + " is not attached to this machine");
    {
      MutexLock l(mu_);
      busy_[name] = job.id();
      was_running = streams_.count(name) != 0;
    }
    marked = true;
    mt::Status stopped = StopStream(name);  // its WAL applied, journals closed
    if (!stopped.ok()) spdlog::warn("stream '{}' stopped with an error: {}", name, stopped.message());
    MT_ASSIGN_OR_RETURN(pin, retention::ReaderPin::Take(*env_.fs, config_.retention_dir, row.id, 0));
    MT_ASSIGN_OR_RETURN(st, recovery::LoadStreamState(store_->catalog(), *env_.fs,
                                                      config_.retention_dir, row));
    MT_ASSIGN_OR_RETURN(auto sel, recovery::ParsePointSelector(spec.at()));
    MT_ASSIGN_OR_RETURN(point, recovery::ResolvePoint(store_->catalog(), *env_.fs, st.View(), sel));
    MT_ASSIGN_OR_RETURN(pin, retention::ReaderPin::Take(*env_.fs, config_.retention_dir, row.id,
                                                        point.seq));  // before the old one goes
    shim::BlockDeviceOptions ro;  // read-only, shared
    MT_ASSIGN_OR_RETURN(source, shim::OpenBlockDevice(src->devnode, ro));
    return mt::Status::Ok();
  }();
  if (!prepared.ok()) {
    finish();
    return prepared;
  }
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
  pin.reset();
  finish();
  return s.ok() ? s : s.WithContext("export (run it again: it starts over)");
}

}  // namespace mt::daemon
