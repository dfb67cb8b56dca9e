#include "stream_runtime.h"

#include <algorithm>
#include <chrono>

#include "block_hash.h"
#include "journal_mapping.h"
#include "mt/shim/aligned_buffer.h"
#include "record_format.h"

namespace mt::daemon {

using retention::RecordType;

namespace {

// The stream's checkpoint in the catalog: one row per disk, all at the same
// seq (a stream has one sequence space).
class CatalogCheckpoint : public apply::CheckpointSink {
 public:
  CatalogCheckpoint(retention::Catalog& c, shim::Clock& clock, uint64_t stream,
                    std::vector<uint32_t> disks, std::function<Status()> housekeeping)
      : c_(c), clock_(clock), stream_(stream), disks_(std::move(disks)),
        housekeeping_(std::move(housekeeping)) {}
  // A long discard's pieces take undo space as batches do: the same
  // housekeeping (pruning under the space policy) runs between them.
  Status PieceApplied(uint64_t, uint64_t, uint64_t) override { return housekeeping_(); }
  // The batch's tags become recovery points; a resync-complete record marks
  // its disk complete. Both idempotent (a restart may apply a batch again).
  Status BatchApplied(const std::vector<apply::WalRecord>& batch) override {
    for (const auto& r : batch) {
      if (r.h.type == RecordType::kTag) {
        retention::TagPayload t;
        MT_RETURN_IF_ERROR(retention::DecodeTag(r.data, r.h.stored_length, &t));
        retention::PointRow p;
        p.stream = stream_;
        p.seq = r.h.seq;
        p.time_ns = r.h.source_time_ns;
        p.kind = t.kind;
        p.name = t.name;
        p.group_tag_id = t.group_tag_id;
        // kAlreadyExists: the same tag applied again after a restart (Ingest
        // refuses a name that is taken at another seq).
        Status s = c_.AddPoint(p);
        if (!s.ok() && s.code() != Errc::kAlreadyExists) return s;
      } else if (r.h.type == RecordType::kResyncComplete) {
        MT_ASSIGN_OR_RETURN(auto disks, c_.ListDisks(stream_));
        for (auto d : disks) {
          if (d.disk != r.h.disk || d.resync_state == "complete") continue;
          d.resync_state = "complete";
          d.resync_complete_seq = r.h.seq;
          MT_RETURN_IF_ERROR(c_.UpdateDisk(d));
        }
      }
    }
    return Status::Ok();
  }
  Status Record(uint64_t seq, int64_t time) override {
    for (uint32_t d : disks_) {
      retention::CheckpointRow row;
      row.stream = stream_;
      row.disk = d;
      row.applied_seq = seq;
      row.applied_time_ns = time;
      row.updated_ns = clock_.NowNs();
      MT_RETURN_IF_ERROR(c_.SetCheckpoint(row));
    }
    return Status::Ok();
  }

 private:
  retention::Catalog& c_;
  shim::Clock& clock_;
  uint64_t stream_;
  std::vector<uint32_t> disks_;
  std::function<Status()> housekeeping_;
};

proto::ResyncState WireResyncState(const std::string& s) {
  if (s == "complete") return proto::RESYNC_STATE_COMPLETE;
  if (s == "running") return proto::RESYNC_STATE_RUNNING;
  return proto::RESYNC_STATE_PENDING;
}

}  // namespace

StreamRuntime::StreamRuntime(retention::RetentionStore& store, shim::Clock& clock,
                             uint64_t stream, std::string name,
                             std::map<uint32_t, shim::BlockDevice*> disks,
                             const RuntimeOptions& options)
    : store_(store), clock_(clock), stream_(stream), name_(std::move(name)),
      disks_(std::move(disks)), o_(options) {}

StreamRuntime::~StreamRuntime() { (void)Stop(); }

Result<std::unique_ptr<StreamRuntime>> StreamRuntime::Start(
    retention::RetentionStore& store, shim::Clock& clock, uint64_t stream,
    std::map<uint32_t, shim::BlockDevice*> disks, const RuntimeOptions& options) {
  MT_ASSIGN_OR_RETURN(auto row, store.catalog().GetStream(stream));
  if (!row) return Status(Errc::kNotFound, "no stream " + std::to_string(stream));
  std::unique_ptr<StreamRuntime> rt(
      new StreamRuntime(store, clock, stream, row->name, std::move(disks), options));
  Status s = rt->Init();
  if (!s.ok()) return s.WithContext("start stream '" + row->name + "'");
  rt->apply_thread_ = std::thread([p = rt.get()] { p->ApplyLoop(); });
  return rt;
}

Status StreamRuntime::Init() {
  MT_ASSIGN_OR_RETURN(auto journals, store_.OpenStream(stream_));
  wal_ = journals.wal;
  undo_ = journals.undo;
  MT_ASSIGN_OR_RETURN(auto rows, store_.catalog().ListDisks(stream_));
  std::vector<uint32_t> indexes;
  uint64_t applied = UINT64_MAX;
  for (const auto& d : rows) {
    if (disks_.count(d.disk) == 0)
      return Status(Errc::kNotFound, "disk " + std::to_string(d.disk) + " (" + d.target_id +
                                         ") has no open target device");
    indexes.push_back(d.disk);
    MT_ASSIGN_OR_RETURN(auto cp, store_.catalog().GetCheckpoint(stream_, d.disk));
    applied = std::min(applied, cp ? cp->applied_seq : 0);
  }
  if (rows.empty()) applied = 0;
  checkpoint_ = std::make_unique<CatalogCheckpoint>(store_.catalog(), clock_, stream_, indexes,
                                                    [this] { return Housekeeping(); });
  applier_ = std::make_unique<apply::Applier>(undo_, disks_, checkpoint_.get(), applied, o_.applier);
  applied_seq_ = applied;
  MT_RETURN_IF_ERROR(RecoverFromWal());  // invariant 4: finish what the WAL holds
  durable_seq_ = std::max(wal_->durable_seq(), applied_seq_);
  MT_ASSIGN_OR_RETURN(auto app, store_.catalog().LatestPoint(stream_, retention::TagKind::kApp));
  if (app) last_app_point_ns_ = app->time_ns;
  return Status::Ok();
}

Status StreamRuntime::RecoverFromWal() {
  // Once applying is held for space, every later batch is queued behind the
  // held one (in memory, bounded by the WAL backlog) for the apply thread.
  bool held = false;
  return apply::ForEachWalBatch(
      store_.fs(), wal_->Segments(), applied_seq_ + 1, o_.apply_batch_records,
      o_.apply_batch_bytes, [this, &held](const std::vector<apply::WalRecord>& batch) {
        if (!held) {
          uint64_t room = 0;
          for (const auto& r : batch) room += CaptureBytes(r);
          held = !SpaceHold(room).empty();
        }
        if (!held) return ApplyRecords(batch);
        QueueCopy(batch);
        return Status::Ok();
      });
}

void StreamRuntime::QueueCopy(const std::vector<apply::WalRecord>& records) {
  auto frame = std::make_shared<stream::Frame>();
  for (const auto& r : records)
    if (r.data != nullptr) frame->payload.insert(frame->payload.end(), r.data, r.data + r.h.stored_length);
  Pending p;
  size_t off = 0;
  for (const auto& r : records) {
    apply::WalRecord c = r;
    if (r.data != nullptr) {
      c.data = frame->payload.data() + off;
      off += r.h.stored_length;
    }
    p.records.push_back(c);
  }
  p.frame = std::move(frame);
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& r : p.records) pending_bytes_ += r.h.length;
  queue_.push_back(std::move(p));
}

uint64_t StreamRuntime::CaptureBytes(const apply::WalRecord& r) const {
  if ((r.h.flags & retention::kFlagDiscard) == 0) return r.h.length;
  return std::min<uint64_t>(r.h.length, o_.applier.discard_piece_bytes);
}

uint64_t StreamRuntime::RoomFor(uint64_t bytes) const {
  return 2 * bytes + store_.options().segment_bytes;
}

std::string StreamRuntime::SpaceHold(uint64_t bytes) {
  const std::string& root = store_.options().root;
  auto space = store_.fs().Space(root);
  if (!space.ok()) return {};  // cannot tell: apply (a real ENOSPC still fails the batch)
  const uint64_t floor = retention::LowSpaceThreshold(store_.options().space, space->capacity);
  const uint64_t need = RoomFor(bytes);
  if (space->available >= floor && space->available >= need) {
    std::lock_guard<std::mutex> l(mu_);
    space_alert_.clear();
    space_held_ = space_low_ = false;
    return {};
  }
  // Low on space: prune as the policy says, now rather than at the next
  // periodic pass.
  std::string why;
  auto plan = store_.Prune(stream_, {});
  const bool stop = plan.ok() && plan->stop_applying;
  if (plan.ok()) {
    for (const auto& a : plan->alerts)
      if (a.find("dropped recovery points") != std::string::npos) why = a;
  }
  if (auto again = store_.fs().Space(root); again.ok()) space = again;
  auto kib = [](uint64_t b) { return std::to_string(b >> 10) + " KiB"; };
  const std::string low = "retention volume " + root + " is low on space (" +
                          kib(space->available) + " free, below " + kib(floor) + ")";
  std::string hold;
  if (stop)
    hold = low + ": applying is held (full action: stop) until space is freed; the sender is "
                 "throttled";
  else if (space->available < need)
    hold = "retention volume " + root + " is full (" + kib(space->available) +
           " free, the next batch needs " + kib(need) +
           "): applying is held until space is freed; the sender is throttled";
  std::lock_guard<std::mutex> l(mu_);
  space_low_ = space->available < floor || !hold.empty();
  space_held_ = !hold.empty();
  space_alert_ = hold;
  if (!why.empty()) {
    prune_alert_ = why;
    prune_alert_ns_ = clock_.NowNs();
  }
  return hold;
}

Status StreamRuntime::ApplyRecords(const std::vector<apply::WalRecord>& records) {
  if (records.empty()) return Status::Ok();
  // The applier stores the batch's points and resync completions
  // (CatalogCheckpoint::BatchApplied) before its checkpoint.
  MT_RETURN_IF_ERROR(applier_->Apply(records));
  for (const auto& r : records) {
    if (r.h.type != RecordType::kTag) continue;
    retention::TagPayload t;
    if (!retention::DecodeTag(r.data, r.h.stored_length, &t).ok()) continue;
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = unapplied_tags_.find(t.name); it != unapplied_tags_.end() && it->second == r.h.seq)
      unapplied_tags_.erase(it);  // a point in the catalog now
    if (t.kind == retention::TagKind::kApp)
      last_app_point_ns_ = std::max(last_app_point_ns_, r.h.source_time_ns);
  }
  std::lock_guard<std::mutex> l(mu_);
  applied_seq_ = records.back().h.seq;
  if (records.back().h.source_time_ns != 0) applied_time_ns_ = records.back().h.source_time_ns;
  return Status::Ok();
}

Status StreamRuntime::CheckTagName(const std::string& name, uint64_t seq) {
  uint64_t taken = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = unapplied_tags_.find(name); it != unapplied_tags_.end()) taken = it->second;
  }
  if (taken == 0) {
    MT_ASSIGN_OR_RETURN(auto point, store_.catalog().FindPoint(stream_, name));
    if (point) taken = point->seq;
  }
  if (taken == 0 || taken == seq) return Status::Ok();
  return Status(Errc::kAlreadyExists, "tag '" + name + "' (seq " + std::to_string(seq) +
                                          ") is refused: the name already marks recovery point "
                                          "seq " + std::to_string(taken) + " of stream '" + name_ +
                                          "' (a tag name is used once per stream)");
}

Status StreamRuntime::Attach(const std::string& session) {
  std::lock_guard<std::mutex> l(mu_);
  if (!holder_.empty())
    return Status(Errc::kBusy, "stream '" + name_ + "' is already connected (" + holder_ +
                                   "); one sender per stream");
  auto disks = store_.catalog().ListDisks(stream_);
  if (!disks.ok()) return disks.status();
  auto v = std::make_unique<stream::StreamValidator>(durable_seq_);
  for (const auto& d : *disks) {
    stream::DiskState st;
    st.size_bytes = d.size_bytes;
    st.logical_block_size = d.block_size;
    st.resync = WireResyncState(d.resync_state);
    MT_RETURN_IF_ERROR(v->AddDisk(d.disk, st));
  }
  validator_ = std::move(v);
  holder_ = session;
  return Status::Ok();
}

void StreamRuntime::Detach(const std::string& session) {
  std::lock_guard<std::mutex> l(mu_);
  if (holder_ != session) return;
  holder_.clear();
  validator_.reset();
}

proto::Welcome StreamRuntime::Welcome(uint32_t protocol_version) {
  proto::Welcome w;
  w.set_protocol_version(protocol_version);
  std::lock_guard<std::mutex> l(mu_);
  w.set_resume_seq(durable_seq_);
  if (validator_) {
    for (const auto& [index, st] : validator_->disks()) {
      auto* d = w.add_disks();
      d->set_disk(index);
      d->set_size_bytes(st.size_bytes);
      d->set_logical_block_size(st.logical_block_size);
      d->set_resync_state(st.resync);
    }
  }
  return w;
}

Status StreamRuntime::Ingest(std::shared_ptr<const stream::Frame> frame,
                             std::function<void(const Status&, uint64_t)> on_durable) {
  // ingest_mu_ keeps frames in order; mu_ is held only briefly, never across
  // a WAL call: the WAL's committer calls back into this object under mu_,
  // and a WAL append may wait for that committer (backpressure).
  std::lock_guard<std::mutex> serial(ingest_mu_);
  Pending pending;
  uint64_t last_seq = 0;
  uint64_t already_durable = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!validator_)
      return Status(Errc::kProtocol, "stream '" + name_ + "': data before the session attached");
    MT_ASSIGN_OR_RETURN(stream::Verdict verdict, validator_->Admit(*frame));
    if (verdict == stream::Verdict::kAlreadyDurable) already_durable = durable_seq_;
  }
  if (already_durable != 0) {  // a resend: acknowledge, store nothing
    on_durable(Status::Ok(), already_durable);
    return Status::Ok();
  }
  // The commit path checks space: a frame that would not fit in the WAL,
  // with what is appended and not yet written and a journal segment to
  // spare, is refused (kNoSpace, which the sender retries) rather than
  // failing the WAL with ENOSPC.
  const auto& fh = frame->header;
  const size_t items = fh.has_write_batch() ? static_cast<size_t>(fh.write_batch().writes_size()) : 1;
  const uint64_t wal_bytes = frame->payload.size() + items * retention::kRecordHeaderSize + 4096;
  if (auto space = store_.fs().Space(store_.options().root); space.ok()) {
    std::lock_guard<std::mutex> l(mu_);
    if (space->available < wal_unwritten_ + wal_bytes + RoomFor(0)) {
      space_low_ = true;
      validator_.reset();  // the session must end; a new one starts from durable state
      return Status(Errc::kNoSpace, "stream '" + name_ + "': the retention volume " +
                                        store_.options().root + " is full (" +
                                        std::to_string(space->available >> 10) +
                                        " KiB free); retry once space is freed");
    }
  }
  // Admitted: every record goes to the WAL (invariant 7 held: nothing was
  // stored before the whole frame was checked).
  const auto& h = frame->header;
  const uint8_t* data = frame->payload.data();
  // Write and resync data records carry the sender's CRC32C of their data,
  // which Admit() has just checked: it goes into the WAL as is (kVerified).
  using PayloadCrc = retention::Journal::PayloadCrc;
  auto append = [&](const retention::RecordHeader& rh, const uint8_t* d, size_t n,
                    PayloadCrc crc = PayloadCrc::kCompute) -> Status {
    MT_RETURN_IF_ERROR(wal_->Append(rh, d, n, n == 0 ? PayloadCrc::kCompute : crc));
    pending.records.push_back({rh, n == 0 ? nullptr : d});
    last_seq = rh.seq;
    return Status::Ok();
  };
  Status s;
  if (h.has_write_batch()) {
    uint64_t off = 0;
    for (const auto& w : h.write_batch().writes()) {
      retention::RecordHeader rh = stream::WriteRecord(w);
      const bool discard = (rh.flags & retention::kFlagDiscard) != 0;
      const size_t n = discard ? 0 : rh.length;
      s = append(rh, data + off, n, PayloadCrc::kVerified);
      if (!s.ok()) break;
      off += n;
    }
  } else if (h.has_tag()) {
    retention::TagPayload t;
    retention::RecordHeader rh = stream::TagRecord(h.tag(), &t);
    s = CheckTagName(t.name, rh.seq);
    if (s.ok()) {
      const std::string enc = retention::EncodeTag(t);
      // The tag's bytes must outlive the queue entry: keep them in a frame copy.
      auto copy = std::make_shared<stream::Frame>(*frame);
      copy->payload.assign(enc.begin(), enc.end());
      frame = copy;
      s = append(rh, frame->payload.data(), frame->payload.size());
    }
    if (s.ok()) {
      std::lock_guard<std::mutex> l(mu_);
      unapplied_tags_[t.name] = rh.seq;
    }
  } else if (h.has_resync_data()) {
    retention::RecordHeader rh = stream::ResyncDataRecord(h.resync_data());
    s = append(rh, data, rh.length, PayloadCrc::kVerified);
  } else if (h.has_resync_complete()) {
    s = append(stream::ResyncCompleteRecord(h.resync_complete()), nullptr, 0);
  } else {
    s = Status(Errc::kProtocol, std::string("frame ") + stream::FrameTypeName(frame->type()) +
                                    " is not a stream item");
  }
  if (!s.ok()) {
    {
      std::lock_guard<std::mutex> l(mu_);
      validator_.reset();  // the session must end; a new one starts from durable state
    }
    // A WAL that cannot take data is failed until the agent reopens it: say so
    // in the stream's state, not only to this sender.
    if (s.code() != Errc::kInvalidArgument && s.code() != Errc::kAborted &&
        s.code() != Errc::kAlreadyExists)
      Fail(s);
    return s;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& r : pending.records) bytes_ingested_ += r.h.length;
    wal_unwritten_ += wal_bytes;
  }
  pending.frame = std::move(frame);
  auto shared = std::make_shared<Pending>(std::move(pending));
  wal_->Commit([this, shared, last_seq, on_durable, wal_bytes](const Status& s) {
    {
      std::lock_guard<std::mutex> l(mu_);
      wal_unwritten_ -= wal_bytes;
    }
    if (!s.ok()) {
      Fail(s);
      on_durable(s, 0);
      return;
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      durable_seq_ = std::max(durable_seq_, last_seq);
      if (validator_ && last_seq < validator_->next_seq()) validator_->MarkDurable(last_seq);
      for (const auto& r : shared->records) pending_bytes_ += r.h.length;
      queue_.push_back(std::move(*shared));
    }
    apply_cv_.notify_one();
    on_durable(Status::Ok(), last_seq);
  });
  return Status::Ok();
}

Status StreamRuntime::Housekeeping() {
  // Each step is progress: the pieces of a long discard, each a bounded unit
  // of work, keep the liveness check (and so the watchdog) satisfied.
  apply_busy_.Busy();
  if (++applied_steps_ % 64 != 0) return Status::Ok();
  auto plan = store_.Prune(stream_, {});  // trims applied WAL, expires old undo, low space
  return plan.ok() ? Status::Ok() : plan.status().WithContext("prune");
}

void StreamRuntime::ApplyLoop() {
  uint64_t batches = 0;  // applied batches (the liveness test hook counts them)
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    apply_cv_.wait(l, [&] { return stopping_ || (!queue_.empty() && failed_.ok()); });
    if (queue_.empty() || !failed_.ok()) {
      if (stopping_) break;
      continue;
    }
    // Take whole frames up to the batch size (a frame is never split).
    std::vector<apply::WalRecord> batch;
    size_t frames = 0;
    uint64_t bytes = 0;
    uint64_t room_bytes = 0;  // before-images captured at once (CaptureBytes)
    for (const auto& p : queue_) {
      uint64_t frame_bytes = 0, frame_room = 0;
      for (const auto& r : p.records) {
        frame_bytes += r.h.length;
        frame_room += CaptureBytes(r);
      }
      if (!batch.empty() && (batch.size() + p.records.size() > o_.apply_batch_records ||
                             bytes + frame_bytes > o_.apply_batch_bytes))
        break;
      batch.insert(batch.end(), p.records.begin(), p.records.end());
      bytes += frame_bytes;
      room_bytes += frame_room;
      ++frames;
    }
    apply_busy_.Busy();
    l.unlock();
    if (o_.test_stall_after_batches != 0 && batches >= o_.test_stall_after_batches) {
      // The liveness test hook: busy, and no progress, until stopped.
      while (!stop_requested_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    // Space first: with full_action = stop on a low volume, or no room for
    // the batch's before-images, the batch waits in the WAL.
    if (!SpaceHold(room_bytes).empty()) {
      apply_busy_.Idle();  // waiting for space is waiting by design, not a hang
      l.lock();
      idle_cv_.notify_all();
      apply_cv_.wait_for(l, std::chrono::milliseconds(o_.space_retry_ms), [&] { return stopping_; });
      if (stopping_) break;  // what is held stays in the WAL for the next start
      continue;
    }
    Status s = ApplyRecords(batch);
    if (s.ok()) {
      ++batches;
      s = Housekeeping();
    }
    apply_busy_.Idle();
    l.lock();
    if (!s.ok()) {
      l.unlock();
      Fail(s);
      l.lock();
      idle_cv_.notify_all();
      continue;
    }
    for (size_t i = 0; i < frames; ++i) queue_.pop_front();
    pending_bytes_ -= bytes;
    idle_cv_.notify_all();
  }
}

void StreamRuntime::Fail(const Status& s) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!failed_.ok()) return;
    failed_ = s;
  }
  (void)store_.catalog().SetStreamState(stream_, "failed", s.ToString());
  apply_cv_.notify_all();
  idle_cv_.notify_all();
}

Status StreamRuntime::HashBlocks(const proto::ResyncHashRequest& request,
                                 std::vector<uint8_t>* out) {
  shim::BlockDevice* dev = nullptr;
  {
    std::unique_lock<std::mutex> l(mu_);
    if (!validator_)
      return Status(Errc::kProtocol, "stream '" + name_ + "': hash request before the session attached");
    MT_RETURN_IF_ERROR(validator_->CheckHashRequest(request));
    const uint64_t target = validator_->next_seq() - 1;
    const bool caught_up = idle_cv_.wait_for(l, std::chrono::seconds(60), [&] {
      return !failed_.ok() || applied_seq_ >= target;
    });
    if (!failed_.ok()) return Status(Errc::kUnavailable, "stream '" + name_ + "' failed: " + failed_.ToString());
    if (!caught_up)
      return Status(Errc::kBusy, "stream '" + name_ + "': apply did not catch up for a hash request");
    auto it = disks_.find(request.disk());
    if (it == disks_.end()) return Status(Errc::kNotFound, "no disk " + std::to_string(request.disk()));
    dev = it->second;
  }
  const uint64_t block = request.block_size();
  const uint64_t chunk = std::max<uint64_t>(block, (4ull << 20) / block * block);
  AlignedBuffer buf(chunk);
  for (uint64_t off = 0; off < request.length(); off += chunk) {
    const uint64_t n = std::min<uint64_t>(chunk, request.length() - off);
    Status s = dev->ReadAt(request.offset() + off, buf.data(), n);
    if (!s.ok()) return s.WithContext("resync hash of stream '" + name_ + "'");
    MT_RETURN_IF_ERROR(stream::HashBlocks(buf.data(), n, block, out));
  }
  return Status::Ok();
}

bool StreamRuntime::Throttled() const {
  std::lock_guard<std::mutex> l(mu_);
  return pending_bytes_ > o_.wal_quota_bytes || space_held_;
}

StreamHealth StreamRuntime::Health() const {
  StreamHealth h;
  h.stream = stream_;
  h.name = name_;
  auto row = store_.catalog().GetStream(stream_);
  if (row.ok() && *row) {
    h.state = (*row)->state;
    h.error = (*row)->error;
  }
  std::lock_guard<std::mutex> l(mu_);
  if (!failed_.ok()) {
    h.state = "failed";
    h.error = failed_.ToString();
  }
  h.durable_seq = durable_seq_;
  h.applied_seq = applied_seq_;
  h.backlog_records = durable_seq_ > applied_seq_ ? durable_seq_ - applied_seq_ : 0;
  h.wal_bytes = pending_bytes_;
  h.rpo_ns = applied_time_ns_ == 0 ? -1 : clock_.NowNs() - applied_time_ns_;
  h.last_app_point_ns = last_app_point_ns_;
  h.bytes_ingested = bytes_ingested_;
  h.bytes_applied = applier_ ? applier_->bytes_applied() : 0;
  h.throttled = pending_bytes_ > o_.wal_quota_bytes || space_held_;
  h.attached = !holder_.empty();
  h.space_alert = space_alert_;
  constexpr int64_t kPruneAlertNs = 3600LL * 1'000'000'000;
  if (!prune_alert_.empty() && clock_.NowNs() - prune_alert_ns_ < kPruneAlertNs)
    h.space_alert += (h.space_alert.empty() ? "" : "; ") + prune_alert_;
  h.space_held = space_held_;
  return h;
}

Status StreamRuntime::WaitApplied(int64_t timeout_ms) {
  std::unique_lock<std::mutex> l(mu_);
  const uint64_t target = durable_seq_;
  const bool done = idle_cv_.wait_for(l, std::chrono::milliseconds(timeout_ms), [&] {
    return !failed_.ok() || space_held_ || (applied_seq_ >= target && queue_.empty());
  });
  if (!failed_.ok()) return Status(Errc::kAborted, "stream '" + name_ + "' failed: " + failed_.ToString());
  if (space_held_) return Status(Errc::kNoSpace, "stream '" + name_ + "': " + space_alert_);
  if (!done) return Status(Errc::kBusy, "stream '" + name_ + "': apply did not catch up in time");
  return Status::Ok();
}

Status StreamRuntime::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!apply_thread_.joinable()) return failed_;
    stopping_ = true;
    stop_requested_ = true;
  }
  Status s = wal_ != nullptr ? wal_->Sync() : Status::Ok();
  // Let the applier drain what is durable before it stops (bounded by the queue).
  (void)WaitApplied(30'000);
  apply_cv_.notify_all();
  apply_thread_.join();
  std::lock_guard<std::mutex> l(mu_);
  return failed_.ok() ? s : failed_;
}

}  // namespace mt::daemon
