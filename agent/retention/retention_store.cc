#include "retention/retention_store.h"

#include <algorithm>

#include "retention/reader_pin.h"

namespace mt::retention {

uint64_t OldestReachablePoint(const std::vector<SegmentInfo>& undo) {
  for (const auto& s : undo)
    if (s.records > 0) return s.first_continues ? s.first_seq : s.first_seq - 1;
  return 0;
}

RetentionStore::RetentionStore(shim::FileSystem& fs, shim::Clock& clock, StoreOptions o,
                               std::unique_ptr<Catalog> catalog)
    : fs_(fs), clock_(clock), o_(std::move(o)), catalog_(std::move(catalog)) {}

RetentionStore::~RetentionStore() {
  MutexLock l(mu_);
  for (auto& [id, j] : open_) {
    if (j.wal) (void)j.wal->Close();
    if (j.undo) (void)j.undo->Close();
  }
}

Result<std::unique_ptr<RetentionStore>> RetentionStore::Open(shim::FileSystem& fs,
                                                             shim::Clock& clock,
                                                             const StoreOptions& o) {
  if (o.root.empty()) return Status(Errc::kInvalidArgument, "retention directory not set");
  StoreOptions opts = o;
  if (opts.catalog_path.empty()) opts.catalog_path = shim::JoinPath(o.root, "catalog.db");
  MT_RETURN_IF_ERROR(fs.CreateDir(shim::JoinPath(o.root, "streams")));
  MT_ASSIGN_OR_RETURN(auto catalog, Catalog::Open(opts.catalog_path));
  std::unique_ptr<RetentionStore> store(
      new RetentionStore(fs, clock, std::move(opts), std::move(catalog)));
  RetentionStore* self = store.get();
  store->catalog_->SetSpaceReserve([self] { return self->ReleaseCatalogReserve(); });
  (void)store->KeepCatalogReserve();  // a full volume at open: taken back later
  return store;
}

std::string RetentionStore::ReservePath() const { return shim::JoinPath(o_.root, "catalog.reserve"); }

bool RetentionStore::KeepCatalogReserve() {
  MutexLock l(reserve_mu_);
  if (reserve_held_) return true;
  const std::string path = ReservePath();
  shim::FileOptions fo;
  fo.writable = true;
  fo.create = true;
  auto f = fs_.OpenFile(path, fo);
  if (!f.ok()) return false;
  // Preallocated, not written: the blocks are the volume's, counted as used.
  Status s = (*f)->Preallocate(0, kCatalogReserveBytes);
  if (s.ok()) s = (*f)->Sync();
  if (!s.ok()) {
    f->reset();
    (void)fs_.Remove(path);
    return false;
  }
  reserve_held_ = true;
  return true;
}

bool RetentionStore::ReleaseCatalogReserve() {
  MutexLock l(reserve_mu_);
  if (!reserve_held_) return false;
  if (!fs_.Remove(ReservePath()).ok()) return false;
  reserve_held_ = false;
  return true;
}

uint64_t RetentionStore::CatalogReserveShortfall() const {
  MutexLock l(reserve_mu_);
  return reserve_held_ ? 0 : kCatalogReserveBytes;
}

std::string RetentionStore::StreamDir(uint64_t stream) const {
  return shim::JoinPath(shim::JoinPath(o_.root, "streams"), std::to_string(stream));
}

JournalOptions RetentionStore::JournalOpts(uint64_t stream, SegmentKind kind) const {
  JournalOptions j;
  j.kind = kind;
  j.stream = stream;
  j.dir = shim::JoinPath(StreamDir(stream), SegmentKindName(kind));
  j.segment_bytes = o_.segment_bytes;
  j.max_batch_bytes = o_.max_batch_bytes;
  j.direct = o_.direct;
  j.preallocate = o_.preallocate;
  // The WAL is appended from network threads: never wait there (the stream's
  // runtime throttles its session instead, retention/journal.h).
  j.append_waits = kind != SegmentKind::kWal;
  j.committers = kind == SegmentKind::kWal ? o_.wal_committers : o_.undo_committers;
  return j;
}

Result<RetentionStore::Journals> RetentionStore::OpenStream(uint64_t stream) {
  MT_ASSIGN_OR_RETURN(auto row, catalog_->GetStream(stream));
  if (!row) return Status(Errc::kNotFound, "no stream " + std::to_string(stream) + " in the catalog");
  Journals out;
  {
    MutexLock l(mu_);
    OpenJournals& o = open_[stream];
    if (!o.wal) {
      auto wal = Journal::Open(fs_, clock_, JournalOpts(stream, SegmentKind::kWal), &out.wal_report);
      if (!wal.ok()) return wal.status().WithContext("stream '" + row->name + "'");
      auto undo =
          Journal::Open(fs_, clock_, JournalOpts(stream, SegmentKind::kUndo), &out.undo_report);
      if (!undo.ok()) return undo.status().WithContext("stream '" + row->name + "'");
      o.wal = std::move(wal).value();
      o.undo = std::move(undo).value();
    }
    out.wal = o.wal.get();
    out.undo = o.undo.get();
  }
  MT_RETURN_IF_ERROR(ReconcileCatalog(stream));
  return out;
}

Status RetentionStore::CloseStream(uint64_t stream) {
  MutexLock l(mu_);
  auto it = open_.find(stream);
  if (it == open_.end()) return Status::Ok();
  Status s = it->second.wal ? it->second.wal->Close() : Status::Ok();
  Status u = it->second.undo ? it->second.undo->Close() : Status::Ok();
  open_.erase(it);
  return s.ok() ? u : s;
}

std::vector<Scrubber::StreamJournals> RetentionStore::OpenJournalSegments() const {
  MutexLock l(mu_);
  std::vector<Scrubber::StreamJournals> out;
  for (const auto& [id, j] : open_) {
    if (!j.wal || !j.undo) continue;
    out.push_back({id, StreamDir(id), j.wal->Segments(), j.undo->Segments()});
  }
  return out;
}

Status RetentionStore::ReconcileCatalog(uint64_t stream) {
  std::vector<SegmentInfo> wal, undo;
  {
    MutexLock l(mu_);
    auto it = open_.find(stream);
    if (it == open_.end() || !it->second.wal)
      return Status(Errc::kInvalidArgument, "stream " + std::to_string(stream) + " is not open");
    wal = it->second.wal->Segments();
    undo = it->second.undo->Segments();
  }
  std::vector<SegmentRow> stale;
  for (SegmentKind kind : {SegmentKind::kWal, SegmentKind::kUndo}) {
    const auto& on_disk = kind == SegmentKind::kWal ? wal : undo;
    MT_ASSIGN_OR_RETURN(auto rows, catalog_->ListSegments(stream, kind));
    for (const auto& r : rows) {
      const bool present = std::any_of(on_disk.begin(), on_disk.end(),
                                       [&](const SegmentInfo& s) { return s.number == r.number; });
      if (!present) stale.push_back(r);
    }
  }
  // Points below the oldest reachable one were pruned (perhaps by a prune a
  // crash interrupted): drop them.
  uint64_t oldest = 0;
  if (!undo.empty() && undo.front().number > 1) oldest = OldestReachablePoint(undo);
  // The rows follow the files, all in one transaction.
  return catalog_->Transact("reconcile the segments of stream " + std::to_string(stream),
                            [&](Catalog::Transaction& t) -> Status {
    for (const auto& r : stale) MT_RETURN_IF_ERROR(t.RemoveSegment(stream, r.kind, r.number));
    for (SegmentKind kind : {SegmentKind::kWal, SegmentKind::kUndo}) {
      const auto& on_disk = kind == SegmentKind::kWal ? wal : undo;
      for (const auto& s : on_disk) {
        SegmentRow r;
        r.stream = stream;
        r.kind = kind;
        r.number = s.number;
        r.file = s.path.substr(std::min(s.path.size(), o_.root.size() + 1));
        r.first_seq = s.first_seq;
        r.last_seq = s.last_seq;
        r.first_time_ns = s.first_time_ns;
        r.last_time_ns = s.last_time_ns;
        r.records = s.records;
        r.bytes = s.bytes;
        r.logical_bytes = s.logical_bytes;
        r.sealed = s.sealed;
        MT_RETURN_IF_ERROR(t.UpsertSegment(r));
      }
    }
    if (oldest > 0) MT_RETURN_IF_ERROR(t.RemovePointsBefore(stream, oldest));
    return Status::Ok();
  });
}

Result<PrunePlan> RetentionStore::Prune(uint64_t stream, const std::vector<uint64_t>& pinned) {
  MT_ASSIGN_OR_RETURN(Journals j, OpenStream(stream));
  MT_ASSIGN_OR_RETURN(PolicyRow policy, catalog_->GetPolicy(stream));
  PruneInput in;
  in.wal = j.wal->Segments();
  in.undo = j.undo->Segments();
  MT_ASSIGN_OR_RETURN(auto checkpoint, catalog_->StreamCheckpoint(stream));
  in.applied_seq = checkpoint ? checkpoint->applied_seq : 0;
  in.now_ns = clock_.NowNs();
  in.window_ns = policy.window_ns;
  in.pinned_seqs = pinned;
  MT_ASSIGN_OR_RETURN(auto readers, LivePins(fs_, o_.root, stream));
  in.pinned_seqs.insert(in.pinned_seqs.end(), readers.begin(), readers.end());
  in.full_action = policy.full_action;
  MT_ASSIGN_OR_RETURN(shim::SpaceInfo space, fs_.Space(o_.root));
  const uint64_t floor = LowSpaceThreshold(o_.space, space.capacity);
  in.low_space = space.available < floor;
  in.bytes_to_free = in.low_space ? floor - space.available : 0;
  PrunePlan plan = PlanPrune(in);

  // Crash-safe order: points first (they must never name an unreachable
  // state), then files oldest first, then their rows in one transaction
  // (ReconcileCatalog on restart finishes whatever a crash interrupted).
  if (plan.oldest_point_seq > 0)
    MT_RETURN_IF_ERROR(catalog_->RemovePointsBefore(stream, plan.oldest_point_seq));
  for (uint64_t n : plan.undo_segments) MT_RETURN_IF_ERROR(j.undo->RemoveSegment(n));
  for (uint64_t n : plan.wal_segments) MT_RETURN_IF_ERROR(j.wal->RemoveSegment(n));
  if (plan.undo_segments.empty() && plan.wal_segments.empty()) return plan;
  MT_RETURN_IF_ERROR(catalog_->Transact("prune stream " + std::to_string(stream),
                                        [&](Catalog::Transaction& t) -> Status {
    for (uint64_t n : plan.undo_segments)
      MT_RETURN_IF_ERROR(t.RemoveSegment(stream, SegmentKind::kUndo, n));
    for (uint64_t n : plan.wal_segments)
      MT_RETURN_IF_ERROR(t.RemoveSegment(stream, SegmentKind::kWal, n));
    return Status::Ok();
  }));
  return plan;
}

Status RetentionStore::DropStream(uint64_t stream) {
  MT_RETURN_IF_ERROR(CloseStream(stream));
  for (SegmentKind kind : {SegmentKind::kWal, SegmentKind::kUndo}) {
    const std::string dir = JournalOpts(stream, kind).dir;
    if (!fs_.Exists(dir)) continue;
    MT_ASSIGN_OR_RETURN(auto names, fs_.ListDir(dir));
    for (const auto& n : names) MT_RETURN_IF_ERROR(fs_.Remove(shim::JoinPath(dir, n)));
    MT_RETURN_IF_ERROR(fs_.RemoveDir(dir));
  }
  // Journals first, then the rows (a rerun after a failure finds the rows
  // gone or not), then what else the stream directory holds. Those files
  // (the rollback's "rolled-back" marker and progress record) keep the daemon
  // from resuming the stream: they go only once the catalog no longer lists
  // it, so a drop that stops anywhere never leaves a resumable stream whose
  // targets no longer match its retention.
  Status s = catalog_->RemoveStream(stream);
  if (!s.ok() && s.code() != Errc::kNotFound) return s;
  const std::string dir = StreamDir(stream);
  if (!fs_.Exists(dir)) return Status::Ok();
  MT_ASSIGN_OR_RETURN(auto rest, fs_.ListDir(dir));
  for (const auto& n : rest) MT_RETURN_IF_ERROR(fs_.Remove(shim::JoinPath(dir, n)));
  return fs_.RemoveDir(dir);
}

namespace {

Result<StreamUsage> UsageOf(Catalog& catalog, const StreamRow& row) {
  StreamUsage u;
  u.stream = row.id;
  u.name = row.name;
  MT_ASSIGN_OR_RETURN(auto wal, catalog.ListSegments(row.id, SegmentKind::kWal));
  MT_ASSIGN_OR_RETURN(auto undo, catalog.ListSegments(row.id, SegmentKind::kUndo));
  for (const auto& s : wal) {
    u.wal_bytes += s.bytes;
    ++u.wal_segments;
  }
  std::vector<SegmentInfo> undo_info;
  for (const auto& s : undo) {
    u.undo_bytes += s.bytes;
    u.undo_logical_bytes += s.logical_bytes;
    ++u.undo_segments;
    if (s.records > 0) {
      if (u.window_start_ns == 0) u.window_start_ns = s.first_time_ns;
      u.window_end_ns = s.last_time_ns;
    }
    SegmentInfo i;
    i.records = s.records;
    i.first_seq = s.first_seq;
    undo_info.push_back(i);
  }
  u.oldest_point_seq = OldestReachablePoint(undo_info);
  MT_ASSIGN_OR_RETURN(auto points, catalog.ListPoints(row.id, u.oldest_point_seq == 0
                                                                   ? 0
                                                                   : u.oldest_point_seq - 1));
  u.points = points.size();
  return u;
}

}  // namespace

Result<StoreUsage> ComputeUsage(Catalog& catalog, shim::FileSystem& fs, const std::string& root,
                                const SpacePolicy& space) {
  StoreUsage out;
  MT_ASSIGN_OR_RETURN(out.volume, fs.Space(root));
  out.low_space_threshold = LowSpaceThreshold(space, out.volume.capacity);
  out.low_space = out.volume.available < out.low_space_threshold;
  MT_ASSIGN_OR_RETURN(auto streams, catalog.ListStreams());
  for (const auto& s : streams) {
    MT_ASSIGN_OR_RETURN(StreamUsage u, UsageOf(catalog, s));
    out.streams.push_back(std::move(u));
  }
  return out;
}

Result<StoreUsage> RetentionStore::Usage() { return ComputeUsage(*catalog_, fs_, o_.root, o_.space); }

}  // namespace mt::retention
