#include "daemon/agent.h"

#include <unistd.h>

#include "inventory/inventory_proto.h"
#include "recovery/points_report.h"
#include "retention/reader_pin.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <type_traits>

#include "control/pairs.h"
#include "retention/policy.h"
#include "recovery/store_ops.h"
#include "config/tls_identity.h"
#include "vsnap/target_map.h"
#include "mt/shim/memory.h"

#ifndef MT_VERSION
#define MT_VERSION "0.0.0"
#endif

namespace mt::daemon {

constexpr size_t kApplyIoDepth = 4;
// Threads of each of the three pools the streams share (WAL commit, undo
// commit, apply), started as they are needed: a stream needs at most one of
// each at a time, so with up to this many busy streams none waits for
// another (docs/operations.md, "Threads").
constexpr size_t kWorkerPoolThreads = 8;

const char* AgentVersion() { return MT_VERSION; }

namespace {

// Resync hashing through the runtime once it is a HashSource (hash_source.h).
template <typename Runtime>
mt::Status HashThrough(Runtime& rt, const proto::ResyncHashRequest& request,
                       std::vector<uint8_t>* out) {
  if constexpr (std::is_base_of_v<HashSource, Runtime>) {
    return rt.HashBlocks(request, out);
  } else {
    return mt::Status(Errc::kUnavailable,
                      "resync hashing is not available yet for stream '" + rt.name() + "'");
  }
}

}  // namespace

// What a sender's session talks to: the stream's runtime, until Close().
// After Close() returns no call is inside the runtime and every new one is
// refused (kUnavailable: the session sends it as its error frame and ends),
// so the runtime may be stopped. Detach still reaches the runtime.
class Agent::Gate final : public StreamPort {
 public:
  explicit Gate(StreamRuntime& runtime) : rt_(runtime) {}

  void Close() {
    WriterLock l(mu_);
    closed_ = true;
  }

  mt::Status Attach(const std::string& session) override {
    ReaderLock l(mu_);
    if (closed_) return Closed();
    return rt_.Attach(session);
  }
  void Detach(const std::string& session) override { rt_.Detach(session); }
  proto::Welcome Welcome(uint32_t protocol_version) override {
    return rt_.Welcome(protocol_version);
  }
  mt::Status Ingest(std::shared_ptr<const stream::Frame> frame, DurableFn on_durable) override {
    ReaderLock l(mu_);
    if (closed_) return Closed();
    return rt_.Ingest(std::move(frame), std::move(on_durable));
  }
  bool Throttled() const override { return rt_.Throttled(); }
  bool ThrottleTellsSender() const override { return rt_.SenderThrottled(); }
  void WatchThrottle(std::function<void()> wake) override { rt_.WatchThrottle(std::move(wake)); }
  mt::Status HashBlocks(const proto::ResyncHashRequest& request,
                        std::vector<uint8_t>* out) override {
    ReaderLock l(mu_);
    if (closed_) return Closed();
    return HashThrough(rt_, request, out);
  }
  mt::Status Failure() const override { return rt_.Failure(); }

 private:
  mt::Status Closed() const {
    return mt::Status(Errc::kUnavailable,
                      "stream '" + rt_.name() + "' is paused or stopping on this master target");
  }

  StreamRuntime& rt_;
  SharedMutex mu_;
  bool closed_ MT_GUARDED_BY(mu_) = false;
};

struct Agent::Stream {
  retention::StreamRow row;
  std::vector<std::string> identities;  // of its targets (held O_EXCL by us)
  // Declaration order is destruction order reversed: the gate goes first,
  // then the runtime, then the devices it writes. A session keeps the whole
  // Stream alive while it holds the gate (aliasing shared_ptr); StopStream
  // closes the devices before that, once the gate is closed and the runtime
  // stopped.
  std::vector<std::unique_ptr<shim::BlockDevice>> devices;
  std::unique_ptr<StreamRuntime> runtime;
  std::unique_ptr<Gate> gate;
};

Agent::Agent(const AgentConfig& config, AgentEnvironment env)
    : config_(config), env_(std::move(env)) {
  if (env_.fs == nullptr) env_.fs = &shim::PosixFileSystem();
  if (env_.clock == nullptr) env_.clock = &shim::SystemClock();
  if (!env_.geometry) env_.geometry = control::ReadDeviceGeometry;
  if (!env_.open_target) {
    env_.open_target = [](const std::string& devnode) {
      shim::BlockDeviceOptions o;
      o.writable = true;
      o.exclusive = true;
      o.direct = true;
      return shim::OpenBlockDevice(devnode, o);
    };
  }
}

Agent::~Agent() { Shutdown(); }

Result<std::unique_ptr<Agent>> Agent::Start(const AgentConfig& config, AgentEnvironment env) {
  std::unique_ptr<Agent> agent(new Agent(config, std::move(env)));
  mt::Status s = agent->Init();
  if (!s.ok()) {
    agent->Shutdown();
    return s;
  }
  return agent;
}

mt::Status Agent::Init() {
  // kApplyIoDepth - 1 threads for every stream together (each stream's apply
  // thread runs its own batch's tasks too): threads do not grow with streams.
  io_pool_ = std::make_unique<apply::IoPool>(kApplyIoDepth);
  wal_committers_ = std::make_unique<retention::WorkerPool>("wal-commit", kWorkerPoolThreads);
  undo_committers_ = std::make_unique<retention::WorkerPool>("undo-commit", kWorkerPoolThreads);
  appliers_ = std::make_unique<retention::WorkerPool>("apply", kWorkerPoolThreads);
  wal_memory_ = std::make_unique<apply::MemoryBudget>(config_.wal_memory_bytes);
  trim_ = appliers_->NewStrand([] { shim::ReleaseFreeMemory(); });
  started_ns_ = env_.clock->NowNs();
  started_mono_ns_ = env_.clock->MonotonicNs();
  // The control socket first: if another agent serves it, it also holds the
  // targets, and nothing here may touch them (or mark its streams failed).
  control::ControlServer::Options co;
  co.socket_path = config_.control_socket;
  co.allowed_uid = env_.control_uid;
  MT_ASSIGN_OR_RETURN(control_, control::ControlServer::Start(
                                    co, [this](const proto::ControlRequest& r) { return Handle(r); }));

  if (!env_.fs->Exists(config_.retention_dir))
    return mt::Status(Errc::kNotFound,
                      "retention directory " + config_.retention_dir +
                          " does not exist: prepare the retention volume (mtctl retention "
                          "prepare DEVICE --force) or set [retention] dir in the configuration");
  retention::StoreOptions so;
  so.root = config_.retention_dir;
  so.catalog_path = env_.catalog_path;
  so.segment_bytes = config_.segment_bytes;
  so.space.low_space_percent = config_.low_space_percent;
  so.space.low_space_min_bytes = config_.low_space_min_bytes;
  so.space.low_space_max_bytes = config_.low_space_max_bytes;
  so.space.wal_quota_bytes = config_.wal_quota_bytes;
  so.wal_committers = wal_committers_.get();
  so.undo_committers = undo_committers_.get();
  auto store = retention::RetentionStore::Open(*env_.fs, *env_.clock, so);
  if (!store.ok())
    return store.status().WithContext("retention store at " + config_.retention_dir);
  store_ = std::move(store).value();
  retention::Scrubber::Options scrub;
  scrub.bytes_per_second = config_.scrub_bytes_per_second;
  scrub.every_ns = config_.scrub_every_ns;
  scrub.on_damage = [](uint64_t stream, const std::string& alert) {
    spdlog::error("retention of stream {}: {}", stream, alert);
  };
  scrubber_ = std::make_unique<retention::Scrubber>(
      *env_.fs, *env_.clock, scrub, [this] { return store_->OpenJournalSegments(); });
  credentials_ = std::make_unique<CredentialStore>(*env_.fs, config_.credentials_dir);

  if (env_.disks == nullptr) {
    MT_ASSIGN_OR_RETURN(own_disks_, shim::OpenHostDiskSystem({}));
    env_.disks = own_disks_.get();
  }

  MutexLock ops(ops_mu_);
  MT_ASSIGN_OR_RETURN(auto streams, store_->catalog().ListStreams());
  if (!streams.empty()) {
    MT_ASSIGN_OR_RETURN(inventory::Inventory inv, Scan());
    for (const auto& row : streams) {
      if (row.state == retention::StreamState::kPaused ||
          row.state == retention::StreamState::kCommitted) {
        spdlog::info("stream '{}' is {}: not started", row.name, StreamStateName(row.state));
        continue;
      }
      (void)StartStream(row, inv);  // logs and marks the stream failed itself
    }
  }
  MT_RETURN_IF_ERROR(StartReceiver());
  MT_RETURN_IF_ERROR(StartJobs());
  // The link is made before ready_ (Status reads cs_link_ once the agent is
  // ready) and started after it: a CS request that arrives at once is
  // served, not refused as "starting" (its seq would be spent).
  MakeCsLink();
  ready_ = true;
  cs_link_->Start();
  scrubber_->Start();  // its first round sees the streams started above
  size_t running;
  {
    MutexLock l(mu_);
    running = streams_.size();
  }
  spdlog::info("mt-agent {} ready: {} of {} streams running, retention {}, control socket {}",
               AgentVersion(), running, streams.size(), config_.retention_dir,
               config_.control_socket);
  return mt::Status::Ok();
}

// --- data port ----------------------------------------------------------------

mt::Status Agent::StartReceiver() {
  auto identity = LoadOrCreateTlsIdentity(*env_.fs, config_.tls_dir);
  if (!identity.ok()) return identity.status().WithContext("TLS identity in " + config_.tls_dir);
  ReceiverOptions ro;
  ro.address = config_.listen_host;
  ro.port = config_.listen_port;
  auto receiver = Receiver::Start(*identity, directory_, ro);
  if (!receiver.ok()) return receiver.status().WithContext("data port " + config_.ListenAddress());
  receiver_ = std::move(receiver).value();
  AgentConfig actual = config_;
  actual.listen_port = receiver_->port();
  listen_ = actual.ListenAddress();
  fingerprint_ = receiver_->fingerprint();  // the receiver logs address and fingerprint
  return mt::Status::Ok();
}

void Agent::StopReceiver() {
  if (receiver_) receiver_->Stop();
}

// --- configuration-server link --------------------------------------------------

void Agent::MakeCsLink() {
  cslink::CsLinkOptions o;
  o.fs = env_.fs;
  o.cs_dir = config_.cs_dir;
  char host[256] = {};
  o.hostname = ::gethostname(host, sizeof host - 1) == 0 ? host : "unknown";
  o.version = AgentVersion();
  o.heartbeat = std::chrono::milliseconds(config_.cs_heartbeat_ns / 1'000'000);
  if (!config_.cs_address.empty() && !config_.cs_passphrase_file.empty()) {
    o.auto_register.cs = config_.cs_address;
    o.auto_register.passphrase_file = config_.cs_passphrase_file;
    o.auto_register.fingerprint = config_.cs_fingerprint;
  }
  cslink::CsLinkHooks hooks;
  hooks.handle = [this](const proto::ControlRequest& r) { return Handle(r); };
  hooks.status = [this] { return Status(); };
  hooks.inventory = [this]() -> Result<proto::Inventory> {
    MT_ASSIGN_OR_RETURN(inventory::Inventory inv, Scan());
    return inventory::ToProto(inv, "");
  };
  hooks.jobs = [this] { return ListJobs(); };
  cs_link_ = std::make_unique<cslink::CsLink>(std::move(o), std::move(hooks));
}

void Agent::Register(const std::shared_ptr<Stream>& stream) {
  const std::string& name = stream->row.name;
  auto key = credentials_->Get(name);
  if (!key.ok()) {
    spdlog::warn("stream '{}' has no usable credential ({}): it is applied, but no sender can "
                 "connect to it",
                 name, key.status().message());
    return;
  }
  // The entry keeps the whole Stream alive while a session holds its port.
  directory_.Set(name, StreamEntry{std::shared_ptr<StreamPort>(stream, stream->gate.get()),
                                   std::move(key).value()});
}

void Agent::Unregister(const Stream& stream) {
  // The credential stays without a port: a sender that proves it is told the
  // stream is paused or stopping (and retries), not that it failed to
  // authenticate.
  auto entry = directory_.Find(stream.row.name);
  if (entry.ok())
    directory_.Set(stream.row.name, StreamEntry{nullptr, entry->credential});
  stream.gate->Close();
}

// --- streams ------------------------------------------------------------------

Result<inventory::InventoryConfig> Agent::InventoryConfig() {
  MT_ASSIGN_OR_RETURN(inventory::InventoryConfig cfg,
                      control::AgentInventoryConfig(store_->catalog(), *env_.disks,
                                                    config_.retention_dir,
                                                    config_.allow_non_scsi));
  MutexLock l(mu_);
  for (const auto& [_, s] : streams_)
    cfg.held_by_us.insert(cfg.held_by_us.end(), s->identities.begin(), s->identities.end());
  return cfg;
}

Result<inventory::Inventory> Agent::Scan() {
  MT_ASSIGN_OR_RETURN(inventory::InventoryConfig cfg, InventoryConfig());
  return inventory::Inventory::Scan(*env_.disks, cfg);
}

mt::Status Agent::OpenTargets(const std::vector<retention::DiskRow>& disks,
                              const inventory::Inventory& inv,
                              std::vector<std::unique_ptr<shim::BlockDevice>>* owned,
                              std::map<uint32_t, shim::BlockDevice*>* devices,
                              std::vector<std::string>* identities) {
  retention::Catalog& catalog = store_->catalog();
  for (auto d : disks) {
    const std::string label = "target of disk " + std::to_string(d.disk) + " (" + d.target_id + ")";
    const inventory::Disk* disk = inv.Find(d.target_id);
    if (disk == nullptr)
      return mt::Status(Errc::kNotFound,
                        label + " is not attached to this machine (last seen as " +
                            (d.target_device.empty() ? "-" : d.target_device) + ")");
    mt::Status safe = inventory::IsSafeTarget(*disk);
    if (!safe.ok()) return safe.WithContext(label);
    // Through the agent's map "mt-<wwid>" where device-mapper is there (so
    // vsnaps of the disk see every write), else the disk itself.
    auto path = vsnap::TargetWritePath(*disk, config_.device_mapper, config_.retention_dir);
    if (!path.ok()) return path.status().WithContext(label);
    auto dev = env_.open_target(*path);
    if (!dev.ok()) return dev.status().WithContext(label);
    if ((*dev)->size() < d.size_bytes)
      return mt::Status(Errc::kOutOfRange,
                        label + ": " + disk->devnode + " has " + std::to_string((*dev)->size()) +
                            " bytes, less than the " + std::to_string(d.size_bytes) +
                            " the pair was created with");
    if (d.block_size == 0 || d.block_size % (*dev)->logical_block_size() != 0)
      return mt::Status(Errc::kInvalidArgument,
                        label + ": " + disk->devnode + " has logical blocks of " +
                            std::to_string((*dev)->logical_block_size()) +
                            " bytes; the pair was created with " + std::to_string(d.block_size));
    if (d.target_device != disk->devnode) {
      d.target_device = disk->devnode;
      (void)catalog.UpdateDisk(d);  // informational only
    }
    (*devices)[d.disk] = dev->get();
    owned->push_back(std::move(dev).value());
    identities->push_back(d.target_id);
  }
  return mt::Status::Ok();
}

mt::Status Agent::StartStream(const retention::StreamRow& row, const inventory::Inventory& inv) {
  retention::Catalog& catalog = store_->catalog();
  auto fail = [&](const mt::Status& why) {
    spdlog::error("stream '{}' not started: {}", row.name, why.message());
    (void)catalog.SetStreamState(row.id, retention::StreamState::kFailed, why.message());
    return why;
  };
  auto stream = std::make_shared<Stream>();
  stream->row = row;
  auto disks = catalog.ListDisks(row.id);
  if (!disks.ok()) return fail(disks.status());
  std::map<uint32_t, shim::BlockDevice*> devices;
  mt::Status opened = OpenTargets(*disks, inv, &stream->devices, &devices, &stream->identities);
  if (!opened.ok()) return fail(opened);
  RuntimeOptions ro;
  ro.wal_quota_bytes = config_.wal_quota_bytes;
  ro.resync_in_place = config_.resync_in_place;
  // Several target reads/writes in flight per apply batch (docs/benchmarks.md:
  // the apply stage is bound by one-at-a-time I/O, not by the CPU).
  ro.applier.io_depth = kApplyIoDepth;
  ro.applier.shared_pool = io_pool_.get();
  ro.appliers = appliers_.get();
  ro.memory_budget = wal_memory_.get();
  // A second later: the undo journal gives its idle buffers back a second
  // after its last batch, about when this is called.
  ro.on_drained = [this] { trim_->WakeAfter(std::chrono::seconds(1)); };
  if (!env_.test_stall_applier.empty() && env_.test_stall_applier == row.name) {
    spdlog::warn("stream '{}': test hook MT_TEST_STALL_APPLIER: its applier will hang", row.name);
    ro.test_stall_after_batches = 1;
  }
  if (env_.on_stream_starting) env_.on_stream_starting(row.name);
  auto rt = StreamRuntime::Start(*store_, *env_.clock, row.id, devices, ro);
  if (!rt.ok()) return fail(rt.status());
  stream->runtime = std::move(rt).value();
  stream->gate = std::make_unique<Gate>(*stream->runtime);
  if (row.state != retention::StreamState::kProtected) {
    (void)catalog.SetStreamState(row.id, retention::StreamState::kProtected, "");
    stream->row.state = retention::StreamState::kProtected;
    stream->row.error.clear();
  }
  {
    MutexLock l(mu_);
    streams_[row.name] = stream;
  }
  Register(stream);
  spdlog::info("stream '{}' started: {} disk(s), applied up to seq {}", row.name,
               stream->devices.size(), stream->runtime->Health().applied_seq);
  return mt::Status::Ok();
}

mt::Status Agent::StopStream(const std::string& name) {
  std::shared_ptr<Stream> s;
  {
    MutexLock l(mu_);
    auto it = streams_.find(name);
    if (it == streams_.end()) return mt::Status::Ok();
    s = it->second;
    streams_.erase(it);
  }
  Unregister(*s);
  mt::Status st = s->runtime->Stop();
  // Close its targets now: a sender's session may keep the Stream (its gate,
  // and the runtime behind it) alive until it notices the pause, and an idle
  // one may not for a while. The closed gate lets no call reach the devices.
  s->devices.clear();
  // Close its journals too: while paused, mtctl may roll back, export or
  // commit, working on the files directly.
  mt::Status closed = store_->CloseStream(s->row.id);
  if (st.ok()) st = closed;
  if (!st.ok())
    spdlog::error("stream '{}' stopped with an error: {}", name, st.ToString());
  else
    spdlog::info("stream '{}' stopped at applied seq {}", name, s->runtime->Health().applied_seq);
  return st;
}

std::vector<std::string> Agent::RunningStreams() const {
  MutexLock l(mu_);
  std::vector<std::string> out;
  for (const auto& [name, _] : streams_) out.push_back(name);
  return out;
}

std::string Agent::Stalled(int64_t limit_ns) {
  auto seconds = [](int64_t ns) { return std::to_string(ns / 1'000'000'000) + " s"; };
  if (receiver_) {
    const int64_t waited = receiver_->ProbeNetworkThreadsNs();
    if (waited > limit_ns) return "data port: network threads have not run for " + seconds(waited);
  }
  MutexLock l(mu_);
  for (const auto& [name, s] : streams_) {
    if (!s->runtime) continue;
    const int64_t apply = s->runtime->ApplyBusyForNs();
    if (apply > limit_ns) return "stream '" + name + "': applier busy for " + seconds(apply);
    const int64_t commit = s->runtime->WalCommitBusyForNs();
    if (commit > limit_ns) return "stream '" + name + "': WAL commit busy for " + seconds(commit);
  }
  return "";
}

std::string Agent::StatusLine() {
  auto st = Status();
  if (!st.ok()) return "status unavailable: " + st.status().message();
  size_t running = 0;
  uint64_t backlog = 0;
  for (const auto& p : st->pairs()) {
    running += p.running() ? 1 : 0;
    backlog += p.backlog_records();
  }
  std::string line = std::to_string(running) + "/" + std::to_string(st->pairs_size()) +
                     " streams running, backlog " + std::to_string(backlog) + " records, ";
  if (st->alerts_size() == 0) return line + "no alerts";
  return line + std::to_string(st->alerts_size()) + " alert(s): " + st->alerts(0).message();
}

void Agent::Shutdown() {
  // Stop accepting first (without ops_mu_: a running control request holds it
  // and the server waits for that request to finish).
  stopping_ = true;
  ready_ = false;
  {
    MutexLock l(job_mu_);  // a GetJob that waits sees stopping_ now, or is woken
  }
  job_changed_cv_.notify_all();
  if (cs_link_) cs_link_->Stop();  // waits for the request it runs
  if (control_) control_->Stop();  // waits for the requests it serves
  StopReceiver();
  StopJobs();  // waits for the running job (it takes ops_mu_ itself)
  MutexLock ops(ops_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  for (const std::string& name : RunningStreams()) (void)StopStream(name);
  control_.reset();
  if (scrubber_) scrubber_->Stop();
  scrubber_.reset();
  store_.reset();
}

// --- control commands ----------------------------------------------------------

Result<proto::Pair> Agent::DescribeStream(const retention::StreamRow& row) {
  const int64_t now = env_.clock->NowNs();
  MT_ASSIGN_OR_RETURN(proto::Pair p, control::PairFromCatalog(store_->catalog(), row, now));
  std::shared_ptr<Stream> s;
  {
    MutexLock l(mu_);
    auto it = streams_.find(row.name);
    if (it != streams_.end()) s = it->second;
  }
  if (!s) return p;
  const StreamHealth h = s->runtime->Health();
  p.set_running(true);
  if (!h.state.empty()) p.set_state(h.state);
  p.set_error(h.error);
  p.set_durable_seq(h.durable_seq);
  p.set_applied_seq(h.applied_seq);
  p.set_backlog_records(h.backlog_records);
  p.set_wal_bytes(h.wal_bytes);
  p.set_rpo_ns(h.rpo_ns);
  if (h.last_app_point_ns > p.last_app_point_ns()) p.set_last_app_point_ns(h.last_app_point_ns);
  p.set_bytes_ingested(h.bytes_ingested);
  p.set_bytes_applied(h.bytes_applied);
  p.set_throttled(h.throttled);
  p.set_attached(h.attached);
  p.set_retention_alert(h.space_alert);
  if (scrubber_) p.set_retention_damage(scrubber_->Alert(row.id));
  for (proto::PairDisk& d : *p.mutable_disks()) {
    auto it = h.resync.find(d.disk());
    if (it == h.resync.end() || d.resync_state() == "complete") continue;
    d.set_resync_bytes(std::min(it->second.bytes, d.size_bytes()));
    d.set_resync_bytes_per_second(it->second.BytesPerSecond());
  }
  return p;
}

Result<proto::PairList> Agent::ListPairs() {
  proto::PairList list;
  list.set_source("daemon");
  MT_ASSIGN_OR_RETURN(auto streams, store_->catalog().ListStreams());
  for (const auto& row : streams) {
    MT_ASSIGN_OR_RETURN(proto::Pair p, DescribeStream(row));
    *list.add_pairs() = std::move(p);
  }
  return list;
}

Result<proto::AgentStatus> Agent::Status() {
  proto::AgentStatus st;
  st.set_daemon_running(true);
  st.set_source("daemon");
  st.set_version(AgentVersion());
  const int64_t now = env_.clock->NowNs();
  st.set_now_ns(now);
  st.set_started_ns(started_ns_);
  st.set_uptime_s((env_.clock->MonotonicNs() - started_mono_ns_) / 1'000'000'000);
  st.set_listen(listen_);
  st.set_tls_fingerprint(fingerprint_);
  st.set_cs_link(cs_link_ ? cs_link_->State() : "not configured");
  st.set_retention_dir(config_.retention_dir);
  control::RetentionSpace space;
  space.dir = config_.retention_dir;
  auto info = env_.fs->Space(config_.retention_dir);
  if (info.ok()) {
    st.set_retention_capacity_bytes(info->capacity);
    st.set_retention_available_bytes(info->available);
    space.available_bytes = info->available;
    space.threshold_bytes = retention::LowSpaceThreshold(store_->options().space, info->capacity);
    space.low_space = info->available < space.threshold_bytes;
    st.set_retention_low_space(space.low_space);
  }
  MT_ASSIGN_OR_RETURN(proto::PairList list, ListPairs());
  *st.mutable_pairs() = list.pairs();
  for (auto& a : control::ComputeAlerts({list.pairs().begin(), list.pairs().end()}, now, space))
    *st.add_alerts() = std::move(a);
  return st;
}

Result<proto::PairAddResult> Agent::PairAdd(const proto::PairAdd& request) {
  control::PairEnvironment env;
  env.catalog = &store_->catalog();
  env.credentials = credentials_.get();
  env.disks = env_.disks;
  env.clock = env_.clock;
  env.geometry = env_.geometry;
  MT_ASSIGN_OR_RETURN(env.inventory, InventoryConfig());
  env.default_policy = config_.policy;
  MT_ASSIGN_OR_RETURN(proto::PairAddResult result, control::AddPair(request, env));
  spdlog::info("pair added: stream '{}' with {} disk(s)", request.stream(), request.disks_size());
  MT_ASSIGN_OR_RETURN(auto row, store_->catalog().FindStream(request.stream()));
  if (!row) return mt::Status(Errc::kInternal, "stream '" + request.stream() + "' vanished");
  MT_ASSIGN_OR_RETURN(inventory::Inventory inv, Scan());
  (void)StartStream(*row, inv);  // a failure is the pair's state, shown in the result
  MT_ASSIGN_OR_RETURN(row, store_->catalog().FindStream(request.stream()));
  MT_ASSIGN_OR_RETURN(proto::Pair p, DescribeStream(*row));
  *result.mutable_pair() = std::move(p);
  result.set_source("daemon");
  return result;
}

Result<proto::Pair> Agent::Pause(const std::string& name) {
  MT_RETURN_IF_ERROR(CheckNotBusy(name));
  MT_ASSIGN_OR_RETURN(auto row, store_->catalog().FindStream(name));
  if (!row) return mt::Status(Errc::kNotFound, "no stream '" + name + "'");
  if (row->state == retention::StreamState::kCommitted)
    return mt::Status(Errc::kInvalidArgument, "stream '" + name + "' is committed");
  mt::Status stopped = StopStream(name);
  MT_RETURN_IF_ERROR(
      store_->catalog().SetStreamState(row->id, retention::StreamState::kPaused, ""));
  spdlog::info("stream '{}' paused{}", name, stopped.ok() ? "" : " (it had failed)");
  MT_ASSIGN_OR_RETURN(row, store_->catalog().FindStream(name));
  return DescribeStream(*row);
}

Result<proto::Pair> Agent::Resume(const std::string& name) {
  MT_RETURN_IF_ERROR(CheckNotBusy(name));
  MT_ASSIGN_OR_RETURN(auto row, store_->catalog().FindStream(name));
  if (!row) return mt::Status(Errc::kNotFound, "no stream '" + name + "'");
  if (row->state == retention::StreamState::kCommitted)
    return mt::Status(Errc::kInvalidArgument, "stream '" + name + "' is committed");
  bool running;
  {
    MutexLock l(mu_);
    running = streams_.count(name) != 0;
  }
  if (!running) {
    // A rollback (finished or interrupted) changed the targets under the
    // stream's retention: resuming would apply the old future onto them.
    const std::string dir = store_->StreamDir(row->id);
    if (env_.fs->Exists(recovery::RollbackProgressPathOf(dir)))
      return mt::Status(Errc::kBusy, "a rollback of stream '" + name +
                                         "' was interrupted: run mtctl rollback again with the "
                                         "same point to finish it");
    MT_ASSIGN_OR_RETURN(auto rolled, recovery::ReadRolledBack(*env_.fs, dir));
    if (rolled)
      return mt::Status(Errc::kInvalidArgument,
                        "stream '" + name + "' cannot resume: " + *rolled +
                            "; commit it (mtctl commit), or protect the disks again with a resync");
    MT_ASSIGN_OR_RETURN(inventory::Inventory inv, Scan());
    MT_RETURN_IF_ERROR(StartStream(*row, inv).WithContext("resume '" + name + "'"));
    spdlog::info("stream '{}' resumed", name);
  }
  MT_ASSIGN_OR_RETURN(row, store_->catalog().FindStream(name));
  return DescribeStream(*row);
}

Result<proto::Pair> Agent::Resync(const proto::Resync& request) {
  const std::string& name = request.stream();
  MT_RETURN_IF_ERROR(CheckNotBusy(name));
  MT_ASSIGN_OR_RETURN(auto row, store_->catalog().FindStream(name));
  if (!row) return mt::Status(Errc::kNotFound, "no stream '" + name + "'");
  if (row->state == retention::StreamState::kCommitted)
    return mt::Status(Errc::kInvalidArgument, "stream '" + name + "' is committed");
  // A failed stream may hold WAL records it has not applied (a resync
  // completion among them would undo the request when they are applied).
  if (row->state == retention::StreamState::kFailed)
    return mt::Status(Errc::kInvalidArgument,
                      "stream '" + name + "' failed (" + row->error +
                          "): fix the cause and mtctl resume it, then ask for the resync");
  // Stopped first, which applies everything the WAL holds: the runtime's
  // validator holds the disks' resync states, and a new session reads them
  // from the catalog.
  MT_RETURN_IF_ERROR(StopStream(name).WithContext(
      "stop stream '" + name + "' for its resync (mtctl resume restarts it)"));
  MT_ASSIGN_OR_RETURN(
      std::vector<uint32_t> disks,
      recovery::RequireResync(store_->catalog(), *env_.fs, store_->StreamDir(row->id), *row,
                              {request.disks().begin(), request.disks().end()}));
  std::string which;
  for (uint32_t d : disks) which += (which.empty() ? "" : ",") + std::to_string(d);
  spdlog::info("stream '{}': resync of disk(s) {} required", name, which);
  MT_ASSIGN_OR_RETURN(row, store_->catalog().FindStream(name));
  MT_ASSIGN_OR_RETURN(inventory::Inventory inv, Scan());
  (void)StartStream(*row, inv);  // a failure is the pair's state, shown in the result
  MT_ASSIGN_OR_RETURN(row, store_->catalog().FindStream(name));
  return DescribeStream(*row);
}

Result<proto::PointsReport> Agent::ListPoints(const proto::ListPoints& request) {
  MT_ASSIGN_OR_RETURN(auto all, store_->catalog().ListStreams());
  std::vector<retention::StreamRow> rows;
  for (const auto& name : request.streams()) {
    auto it = std::find_if(all.begin(), all.end(), [&](const auto& r) { return r.name == name; });
    if (it == all.end()) return mt::Status(Errc::kNotFound, "no stream '" + name + "'");
    rows.push_back(*it);
  }
  if (request.streams().empty()) {
    for (const auto& r : all) {
      if (r.state == retention::StreamState::kCommitted) continue;
      if (!request.group().empty() && r.group != request.group()) continue;
      rows.push_back(r);
    }
    if (rows.empty() && !request.group().empty())
      return mt::Status(Errc::kNotFound, "no stream in group '" + request.group() + "'");
  }
  recovery::PointFilter filter;
  filter.app_only = request.app_only();
  proto::PointsReport report;
  for (const auto& row : rows) {
    // The pin keeps a prune from taking segments the listing reads.
    auto pin = retention::ReaderPin::Take(*env_.fs, config_.retention_dir, row.id, 0);
    MT_ASSIGN_OR_RETURN(*report.add_streams(),
                        recovery::DescribePoints(store_->catalog(), *env_.fs,
                                                 config_.retention_dir, row, filter));
  }
  return report;
}

proto::ControlResponse Agent::Handle(const proto::ControlRequest& request) {
  auto not_ready = [&] {
    return control::ErrorResponse(mt::Status(
        Errc::kUnavailable, stopping_ ? "mt-agent is stopping" : "mt-agent is starting"));
  };
  if (!ready_) return not_ready();
  proto::ControlResponse r;
  auto reply = [&](auto result, auto setter) {
    if (!result.ok()) return control::ErrorResponse(result.status());
    setter(std::move(result).value());
    return r;
  };
  // Job queries are answered while a job holds ops_mu_ (it does, briefly).
  if (request.command_case() == proto::ControlRequest::kGetJob)
    return reply(GetJob(request.get_job()), [&](proto::Job v) { *r.mutable_job() = std::move(v); });
  if (request.command_case() == proto::ControlRequest::kListJobs)
    return reply(ListJobs(), [&](proto::JobList v) { *r.mutable_jobs() = std::move(v); });
  MutexLock ops(ops_mu_);
  if (!ready_) return not_ready();
  switch (request.command_case()) {
    case proto::ControlRequest::kPairAdd:
      return reply(PairAdd(request.pair_add()),
                   [&](proto::PairAddResult v) { *r.mutable_pair_add() = std::move(v); });
    case proto::ControlRequest::kListPairs:
      return reply(ListPairs(), [&](proto::PairList v) { *r.mutable_pairs() = std::move(v); });
    case proto::ControlRequest::kGetStatus:
      return reply(Status(), [&](proto::AgentStatus v) { *r.mutable_status() = std::move(v); });
    case proto::ControlRequest::kPause:
      return reply(Pause(request.pause().stream()),
                   [&](proto::Pair v) { *r.mutable_pair() = std::move(v); });
    case proto::ControlRequest::kResume:
      return reply(Resume(request.resume().stream()),
                   [&](proto::Pair v) { *r.mutable_pair() = std::move(v); });
    case proto::ControlRequest::kResync:
      return reply(Resync(request.resync()),
                   [&](proto::Pair v) { *r.mutable_pair() = std::move(v); });
    case proto::ControlRequest::kStartJob:
      return reply(StartJob(request.start_job()),
                   [&](proto::Job v) { *r.mutable_job() = std::move(v); });
    case proto::ControlRequest::kListPoints:
      return reply(ListPoints(request.list_points()),
                   [&](proto::PointsReport v) { *r.mutable_points() = std::move(v); });
    case proto::ControlRequest::kGetJob:
    case proto::ControlRequest::kListJobs:
      break;  // answered above
    case proto::ControlRequest::COMMAND_NOT_SET:
      break;
  }
  return control::ErrorResponse(mt::Status(Errc::kProtocol, "control request without a command"));
}

}  // namespace mt::daemon
