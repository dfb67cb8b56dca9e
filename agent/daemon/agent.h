// Agent: the mt-agent daemon as a library object (agent_main.cc runs it;
// tests start it in-process). It owns the retention store, one StreamRuntime
// per protected stream with the target devices it writes, the control socket
// and the TLS data port (Receiver) with the directory of streams it serves.
//
// Start:
//   control socket (refuses to start when another agent serves it, before any
//   target is touched) ─▶ retention store (the directory must exist) ─▶
//   inventory scan (targets = the catalog's, retention = the retention dir's
//   device, allow_non_scsi from the configuration) ─▶ for each stream that is
//   not paused/committed: every target found by identity, IsSafeTarget, then
//   opened writable + O_EXCL + O_DIRECT, size checked ─▶ StreamRuntime::Start
//   (a stream that cannot start is marked failed in the catalog with the
//   reason; the agent goes on) ─▶ data port (TLS identity in tls_dir,
//   created at first start; a port that cannot be bound stops the agent).
// A running stream is reachable for senders through the data port's
// directory (its runtime and credential) — a stream without a credential file
// is applied but cannot be connected to. Pausing (or stopping) a stream
// first closes its gate: the sender's next frame is refused ("unavailable")
// and its session ends, so no data reaches a stopped runtime.
// Shutdown: stop accepting (control socket, data port: every session
// closes), then Stop() every runtime (syncs the WAL, drains the applier,
// records its checkpoint).
//
// Safety: a target device is opened only after inventory::IsSafeTarget held
// for it in a scan taken just before, and only by identity (WWID), never by a
// remembered device name.
// Thread safety: control requests arrive on the control socket's thread and
// are serialized; Shutdown from any other thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "apply/io_pool.h"
#include "apply/memory_budget.h"
#include "config/agent_config.h"
#include "control/control_server.h"
#include "control/pairs.h"
#include "cslink/cs_link.h"
#include "config/credential_store.h"
#include "inventory/inventory.h"
#include "jobs/job_store.h"
#include "mt/control.pb.h"
#include "mt/shim/block_device.h"
#include "mt/shim/clock.h"
#include "mt/shim/disk_system.h"
#include "mt/shim/file_lock.h"
#include "mt/shim/file_system.h"
#include "mt/shim/thread_annotations.h"
#include "daemon/receiver.h"
#include "retention/retention_store.h"
#include "daemon/stream_port.h"
#include "daemon/stream_runtime.h"

namespace mt::daemon {

// The software version ("0.1.0").
const char* AgentVersion();

// What the agent uses of the machine; tests replace parts.
struct AgentEnvironment {
  shim::FileSystem* fs = nullptr;      // null: PosixFileSystem()
  shim::Clock* clock = nullptr;        // null: SystemClock()
  shim::DiskSystem* disks = nullptr;   // null: the host's (udev, sysfs, blkid)
  // Opens a target device for writing; null: OpenBlockDevice(writable,
  // exclusive, direct).
  std::function<Result<std::unique_ptr<shim::BlockDevice>>(const std::string& devnode)> open_target;
  // Reads a new target's size and block size (pair add); null: ReadDeviceGeometry.
  std::function<Result<control::Geometry>(const std::string& devnode)> geometry;
  uint32_t control_uid = 0;            // who may use the control socket
  // The catalog file; "" = <retention dir>/catalog.db. (SQLite always uses
  // the real file system: tests with a MemFileSystem put it in a temp dir.)
  std::string catalog_path;
  // Start-up progress (the systemd start timeout): called before each
  // stream starts, which replays what its WAL holds. May be null.
  std::function<void(const std::string& stream)> on_stream_starting;
  // Liveness test hook: the applier of the stream of this name stops making
  // progress after its first batch (RuntimeOptions::test_stall_after_batches).
  // mt-agent sets it from MT_TEST_STALL_APPLIER; "" in production.
  std::string test_stall_applier;
  // Test hook: every job stays "running" at its first step until the agent
  // stops (kill -9 tests catch a job in its middle). mt-agent sets it from
  // MT_TEST_STALL_JOBS=1; false in production.
  bool test_stall_jobs = false;
};

class Agent {
 public:
  // Errors that stop the agent: the control socket cannot be served (another
  // agent runs: kBusy), the retention directory is missing (kNotFound) or its
  // store cannot be opened, the disk system cannot be read.
  static Result<std::unique_ptr<Agent>> Start(const AgentConfig& config,
                                              AgentEnvironment env = {});
  ~Agent();  // Shutdown()

  // See the class comment. Idempotent.
  void Shutdown();

  // The control commands (proto/mt/control.proto).
  proto::ControlResponse Handle(const proto::ControlRequest& request);
  Result<proto::PairAddResult> PairAdd(const proto::PairAdd& request);
  Result<proto::PairList> ListPairs();
  Result<proto::AgentStatus> Status();
  Result<proto::Pair> Pause(const std::string& stream);
  Result<proto::Pair> Resume(const std::string& stream);
  // Stops the stream if it runs, marks the disks' resync pending
  // (recovery::RequireResync) and starts it again.
  Result<proto::Pair> Resync(const proto::Resync& request);

  // Jobs (agent_jobs.cc; docs/formats/control.md, "jobs"): long operations
  // run one at a time on the job worker, recorded in jobs.db.
  Result<proto::Job> StartJob(const proto::StartJob& request);
  Result<proto::Job> GetJob(const std::string& id);
  // GetJob with its wait (proto GetJob): returns once the job moved past
  // after_revision, ended, the agent stops, or wait_ms passed.
  Result<proto::Job> GetJob(const proto::GetJob& request);
  Result<proto::JobList> ListJobs();
  // The points of streams, as `mtctl points` shows them (recovery::DescribePoints
  // under a reader pin).
  Result<proto::PointsReport> ListPoints(const proto::ListPoints& request);
  // Names of the streams running now (tests, logs).
  std::vector<std::string> RunningStreams() const;
  // What the data port serves: a session finds its stream's port here by the
  // name in its hello (tests play a session through it).
  StreamDirectory& directory() { return directory_; }

  // Liveness, for the systemd watchdog: "" while the data port's network
  // threads answer, and every stream's WAL committer and applier is idle or
  // busy for at most `limit_ns` with its current unit of work; otherwise the
  // first worker that is not, and for how long ("stream 'vm1': applier busy
  // for 31 s"). Cheap; from any thread.
  std::string Stalled(int64_t limit_ns);
  // One line for systemd's STATUS=: streams running, backlog, alerts.
  std::string StatusLine();

 private:
  struct Stream;  // a running stream: devices, runtime, gate
  class Gate;     // the StreamPort senders use: the runtime, until closed

  Agent(const AgentConfig& config, AgentEnvironment env);
  mt::Status Init();
  // The TLS data port: TLS identity (config_.tls_dir) and the Receiver over
  // directory_.
  mt::Status StartReceiver();
  void StopReceiver();
  // The configuration-server link (cslink::CsLink) over this agent's
  // control commands, status, inventory and jobs; Init starts it.
  void MakeCsLink();
  // Called when a stream starts / stops: make it reachable for senders (its
  // gate and credential) or not (closes the gate: see the class comment).
  void Register(const std::shared_ptr<Stream>& stream);
  void Unregister(const Stream& stream);

  // The inventory set-up (control::AgentInventoryConfig) plus the targets
  // this daemon holds open.
  Result<inventory::InventoryConfig> InventoryConfig();
  // A scan with the catalog's targets, the retention volume and what we hold.
  Result<inventory::Inventory> Scan();
  // Opens the stream's targets and starts its runtime; on failure marks the
  // stream failed in the catalog and returns why. REQUIRES: ops_mu_ held.
  mt::Status StartStream(const retention::StreamRow& row, const inventory::Inventory& inv);
  mt::Status StopStream(const std::string& name);
  // Opens `disks`' targets found in `inv` for writing (IsSafeTarget, by
  // identity, through the agent's map), size and block size checked; the
  // error names the disk. Appends the devices to `owned`.
  mt::Status OpenTargets(const std::vector<retention::DiskRow>& disks,
                         const inventory::Inventory& inv,
                         std::vector<std::unique_ptr<shim::BlockDevice>>* owned,
                         std::map<uint32_t, shim::BlockDevice*>* devices,
                         std::vector<std::string>* identities);
  // Refuses (kBusy) when a job works on the stream.
  mt::Status CheckNotBusy(const std::string& stream);
  // The job worker: opened and started by Init (jobs left queued or running
  // by an agent that stopped are queued again: a rollback resumes from its
  // progress), stopped by Shutdown after its running job ends.
  mt::Status StartJobs();
  void StopJobs();
  void JobWorker();
  // Runs one job to its end and records the outcome.
  void RunJob(proto::Job job);
  mt::Status RunRollbackJob(proto::Job& job);
  mt::Status RunExportJob(proto::Job& job);
  mt::Status RunVsnapCreateJob(proto::Job& job);
  mt::Status RunCommitJob(proto::Job& job);
  mt::Status RunVsnapRemoveJob(proto::Job& job);
  mt::Status RunReleaseJob(proto::Job& job);
  mt::Status RunAttachJob(proto::Job& job);
  mt::Status RunResyncJob(proto::Job& job);
  // A job on one disk of a stream (export, vsnap create): StopForDiskJob
  // finds the disk and its target (`check`, when given, sees the inventory
  // first), marks the stream busy with the job, stops it (its WAL applied)
  // and resolves and pins the point; RestartAfterDiskJob starts the stream
  // again if it ran and clears busy, whatever StopForDiskJob got to.
  struct DiskJob;
  mt::Status StopForDiskJob(const proto::Job& job, const std::string& stream, uint32_t disk,
                            const std::string& at,
                            const std::function<mt::Status(const inventory::Inventory&)>& check,
                            DiskJob* dj);
  void RestartAfterDiskJob(const proto::Job& job, DiskJob* dj);
  // mtctl's operations lock (<retention>/.mtctl.lock), for a job's duration.
  Result<std::unique_ptr<shim::FileLock>> LockOperationsForJob(const std::string& what);
  // Records the job (memory and jobs.db; progress at most every 5%).
  void SaveJob(const proto::Job& job, bool progress_only = false);
  Result<proto::Pair> DescribeStream(const retention::StreamRow& row);

  const AgentConfig config_;
  AgentEnvironment env_;
  std::unique_ptr<shim::DiskSystem> own_disks_;
  // The appliers' I/O threads, one pool for every stream (apply/io_pool.h);
  // declared before the streams, so it outlives them.
  std::unique_ptr<apply::IoPool> io_pool_;
  // The threads every stream's WAL and undo committers and applier run on
  // (retention/worker_pool.h), declared before the store and the streams
  // for the same reason. Three pools: an applier waits for its undo
  // journal's committer, and the WAL's committer (in-place resync data) for
  // the applier's target writes; a pool never waits for itself.
  std::unique_ptr<retention::WorkerPool> wal_committers_, undo_committers_, appliers_;
  // [retention] wal_memory: durable, unapplied data of every stream kept in
  // memory (apply/memory_budget.h).
  std::unique_ptr<apply::MemoryBudget> wal_memory_;
  // Gives free memory back to the system (shim::ReleaseFreeMemory) a second
  // after a stream's applier, idle, gave its buffers back (on_drained), at
  // most once a second: what was freed would otherwise stay in the C
  // library's arenas (3 busy streams left 285 MiB behind, 146 MiB of it in
  // arenas). A strand
  // of appliers_, declared after it and before the streams.
  std::unique_ptr<retention::WorkerPool::Strand> trim_;
  std::unique_ptr<retention::RetentionStore> store_;
  // Checks the sealed segments of the open streams (retention/scrub.h);
  // stopped before store_ goes.
  std::unique_ptr<retention::Scrubber> scrubber_;
  std::unique_ptr<CredentialStore> credentials_;
  std::unique_ptr<control::ControlServer> control_;
  int64_t started_ns_ = 0, started_mono_ns_ = 0;
  MapStreamDirectory directory_;        // what the data port serves
  std::unique_ptr<Receiver> receiver_;
  std::unique_ptr<cslink::CsLink> cs_link_;  // null until Init makes it
  std::string listen_;       // the data port's actual address ("" until it listens)
  std::string fingerprint_;  // of the data port's certificate

  Mutex ops_mu_;             // serializes control operations and shutdown
  // Control requests are answered "starting"/"stopping" at once, not queued
  // behind a long start (WAL recovery) or shutdown.
  std::atomic<bool> ready_{false};
  std::atomic<bool> stopping_{false};
  bool shut_down_ MT_GUARDED_BY(ops_mu_) = false;
  mutable Mutex mu_;
  std::map<std::string, std::shared_ptr<Stream>> streams_ MT_GUARDED_BY(mu_);
  std::map<std::string, std::string> busy_ MT_GUARDED_BY(mu_);  // stream -> the job on it

  std::unique_ptr<jobs::JobStore> jobs_;  // set by StartJobs, before the worker runs
  Mutex job_mu_;
  std::condition_variable job_cv_;
  std::deque<std::string> job_queue_ MT_GUARDED_BY(job_mu_);
  std::map<std::string, proto::Job> job_live_ MT_GUARDED_BY(job_mu_);  // queued or running, as now
  bool job_stop_ MT_GUARDED_BY(job_mu_) = false;
  std::condition_variable job_changed_cv_;            // a live job moved or ended
  uint64_t job_revision_ MT_GUARDED_BY(job_mu_) = 0;  // the last revision given
  std::thread job_worker_;
};

}  // namespace mt::daemon
