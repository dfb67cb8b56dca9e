#include "daemon/stream_runtime.h"

#include <algorithm>
#include <set>
#include <chrono>

#include "stream/block_hash.h"
#include "stream/journal_mapping.h"
#include "mt/shim/aligned_buffer.h"
#include "retention/record_format.h"

namespace mt::daemon {

namespace {

proto::ResyncState WireResyncState(retention::ResyncState s) {
  switch (s) {
    case retention::ResyncState::kComplete:
      return proto::RESYNC_STATE_COMPLETE;
    case retention::ResyncState::kRunning:
      return proto::RESYNC_STATE_RUNNING;
    case retention::ResyncState::kPending:
      break;
  }
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
  rt->pipeline_->Start();
  return rt;
}

Status StreamRuntime::Init() {
  MT_ASSIGN_OR_RETURN(auto journals, store_.OpenStream(stream_));
  wal_ = journals.wal;
  janitor_ = std::make_unique<retention::RetentionJanitor>(store_, clock_, stream_);
  apply::PipelineOptions po;
  po.applier = o_.applier;
  po.batch_records = o_.apply_batch_records;
  po.batch_bytes = o_.apply_batch_bytes;
  po.space_retry_ms = o_.space_retry_ms;
  po.test_stall_after_batches = o_.test_stall_after_batches;
  po.on_progress = [this] { WakeIfUnthrottled(); };
  po.on_drained = o_.on_drained;
  po.appliers = o_.appliers;
  po.wal_segments = [this] { return wal_->Segments(); };
  MT_ASSIGN_OR_RETURN(pipeline_, apply::ApplyPipeline::Open(store_, clock_, stream_, disks_,
                                                            journals.undo, wal_->Segments(),
                                                            *janitor_, po));
  // In-place resync records are durable only after their target data: the
  // writer writes it as it arrives; before the WAL's committer writes a
  // batch that holds such records, it waits for their writes and flushes
  // the targets (one flush for the batch).
  wal_->SetBeforeWrite([this](const std::vector<retention::Journal::InPlaceData>& writes) -> Status {
    std::set<uint32_t> touched;
    uint64_t last = 0;
    for (const auto& w : writes) {
      touched.insert(w.h.disk);
      last = std::max(last, w.h.seq);
    }
    Status written = in_place_->WaitThrough(last);
    if (!written.ok()) return written.WithContext("stream '" + name_ + "'");
    for (uint32_t index : touched) {
      Status s = disks_.at(index)->Flush();
      if (!s.ok()) return s.WithContext("flush target disk " + std::to_string(index));
    }
    return Status::Ok();
  });
  recovered_seq_ = wal_->durable_seq();
  MutexLock l(mu_);
  durable_seq_ = std::max(wal_->durable_seq(), pipeline_->Stats().applied_seq);
  return Status::Ok();
}

Status StreamRuntime::WaitInPlaceTurn(const retention::RecordHeader& rh) {
  uint64_t before = recovered_seq_;
  if (auto it = wal_data_seq_.find(rh.disk); it != wal_data_seq_.end()) before = std::max(before, it->second);
  Status caught_up = pipeline_->WaitApplied(before, o_.in_place_wait_ms, /*give_up_when_held=*/false);
  if (caught_up.code() == Errc::kAborted)
    return Status(Errc::kUnavailable, "stream '" + name_ + "' failed: " + caught_up.message());
  if (!caught_up.ok())
    return Status(Errc::kBusy, "stream '" + name_ + "': earlier writes of disk " + std::to_string(rh.disk) +
                                   " not applied in " + std::to_string(o_.in_place_wait_ms) +
                                   " ms; resync data at seq " + std::to_string(rh.seq) +
                                   " not written");
  return Status::Ok();
}

Status StreamRuntime::CheckTagName(const std::string& name, uint64_t seq) {
  uint64_t taken = pipeline_->UnappliedTagSeq(name);
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
  auto busy = [&]() MT_REQUIRES(mu_) {
    return Status(Errc::kBusy, "stream '" + name_ + "' is already connected (" + holder_ +
                                   "); one sender per stream");
  };
  {
    MutexLock l(mu_);
    if (!holder_.empty()) return busy();
  }
  // What an earlier session appended may not be durable yet (its group
  // commit is in flight): wait for it, so that resume_seq covers it and the
  // new sender's resend of it is acknowledged — not admitted again and then
  // refused by the WAL, which has it already. Bounded by one group commit;
  // not under mu_ (the commit callbacks take it), under ingest_mu_ (nothing
  // is appended meanwhile). Callbacks run in commit order, so when Sync()
  // returns durable_seq_ covers every record appended before it.
  {
    MutexLock serial(ingest_mu_);
    Status synced = wal_->Sync();
    if (!synced.ok())
      return Status(Errc::kUnavailable, "stream '" + name_ + "' failed: " + synced.ToString());
  }
  MutexLock l(mu_);
  if (!holder_.empty()) return busy();
  auto disks = store_.catalog().ListDisks(stream_);
  if (!disks.ok()) return disks.status();
  auto v = std::make_unique<stream::StreamValidator>(durable_seq_);
  repeat_resync_.clear();
  blank_targets_.clear();
  for (const auto& d : *disks) {
    if (d.resync_state != retention::ResyncState::kComplete && d.resync_complete_seq != 0)
      repeat_resync_.insert(d.disk);
    // Blank as declared until a resync completes (then it holds the source).
    if (d.target_blank && d.resync_complete_seq == 0 &&
        d.resync_state != retention::ResyncState::kComplete)
      blank_targets_.insert(d.disk);
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
  MutexLock l(mu_);
  if (holder_ != session) return;
  holder_.clear();
  validator_.reset();
  throttle_waiter_ = nullptr;
}

proto::Welcome StreamRuntime::Welcome(uint32_t protocol_version) {
  proto::Welcome w;
  w.set_protocol_version(protocol_version);
  MutexLock l(mu_);
  w.set_resume_seq(durable_seq_);
  if (validator_) {
    for (const auto& [index, st] : validator_->disks()) {
      auto* d = w.add_disks();
      d->set_disk(index);
      d->set_size_bytes(st.size_bytes);
      d->set_logical_block_size(st.logical_block_size);
      d->set_resync_state(st.resync);
      d->set_target_blank(st.resync != proto::RESYNC_STATE_COMPLETE && blank_targets_.count(index) != 0);
    }
  }
  return w;
}

Status StreamRuntime::Ingest(std::shared_ptr<const stream::Frame> frame,
                             std::function<void(const Status&, uint64_t)> on_durable) {
  // ingest_mu_ keeps frames in order; mu_ is held only briefly, never across
  // a WAL call: the WAL's committer calls back into this object under mu_,
  // and a WAL append may wait for that committer (backpressure).
  MutexLock serial(ingest_mu_);
  apply::DurableItems pending;
  uint64_t last_seq = 0;
  uint64_t already_durable = 0;
  bool resyncing = false;     // a disk of the stream is being resynced: a tag is no point
  bool repeat_resync = false;  // resync data of a disk resynced again: a write with undo
  {
    MutexLock l(mu_);
    if (!validator_)
      return Status(Errc::kProtocol, "stream '" + name_ + "': data before the session attached");
    MT_ASSIGN_OR_RETURN(stream::Verdict verdict, validator_->Admit(*frame));
    if (verdict == stream::Verdict::kAlreadyDurable) already_durable = durable_seq_;
    // Resyncing: a disk got resync data and is not complete, or was asked
    // to resync again. (A first resync still pending counts not: such points
    // were recorded before; recovery refuses them, being before the disk's
    // first completion.)
    for (const auto& [index, st] : validator_->disks())
      resyncing = resyncing || st.resync == proto::RESYNC_STATE_RUNNING ||
                  (st.resync != proto::RESYNC_STATE_COMPLETE && repeat_resync_.count(index) != 0);
    repeat_resync = frame->header.has_resync_data() &&
                    repeat_resync_.count(frame->header.resync_data().disk()) != 0;
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
  // Its data skips the WAL (a repeated resync's does not: it needs before-images).
  const bool in_place = fh.has_resync_data() && o_.resync_in_place && !repeat_resync;
  const uint64_t wal_bytes =
      (in_place ? 0 : frame->payload.size()) + items * retention::kRecordHeaderSize + 4096;
  // Held in memory until the committer has written it (in place: to the
  // target): what wal_unwritten_limit bounds.
  const uint64_t unwritten = frame->payload.size() + items * retention::kRecordHeaderSize + 4096;
  {
    MutexLock l(mu_);
    Status room = janitor_->RefuseIngest(wal_unwritten_, wal_bytes, name_);
    if (!room.ok()) {
      validator_.reset();  // the session must end; a new one starts from durable state
      return room;
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
  uint32_t resync_disk = 0;  // resync data: its disk and end, for NoteResync
  uint64_t resync_end = 0;   // (read here: a tag replaces `frame`, and `h` with it)
  if (h.has_write_batch()) {
    uint64_t off = 0;
    for (const auto& w : h.write_batch().writes()) {
      retention::RecordHeader rh = stream::WriteRecord(w);
      const bool discard = (rh.flags & retention::kFlagDiscard) != 0;
      const size_t n = discard ? 0 : rh.length;
      s = append(rh, data + off, n, PayloadCrc::kVerified);
      if (!s.ok()) break;
      wal_data_seq_[rh.disk] = rh.seq;
      off += n;
    }
  } else if (h.has_tag()) {
    retention::TagPayload t;
    retention::RecordHeader rh = stream::TagRecord(h.tag(), &t);
    if (resyncing) rh.flags |= retention::kFlagNoPoint;
    s = CheckTagName(t.name, rh.seq);
    if (s.ok()) {
      const std::string enc = retention::EncodeTag(t);
      // The tag's bytes must outlive the queue entry: keep them in a frame copy.
      auto copy = std::make_shared<stream::Frame>(*frame);
      copy->payload.assign(enc.begin(), enc.end());
      frame = copy;
      s = append(rh, frame->payload.data(), frame->payload.size());
    }
    if (s.ok()) pipeline_->AddUnappliedTag(t.name, rh.seq);
  } else if (h.has_resync_data()) {
    retention::RecordHeader rh = stream::ResyncDataRecord(h.resync_data());
    resync_disk = rh.disk;
    resync_end = rh.offset + rh.length;
    if (in_place) {
      // The WAL's committer writes the data (before-write hook); the frame
      // (pending.owner) keeps it alive until the commit has called back.
      s = WaitInPlaceTurn(rh);
      if (s.ok()) {
        if (!in_place_) {  // its thread only for a stream that gets resync data
          in_place_ = std::make_unique<InPlaceWriter>(
              [this](uint32_t disk, uint64_t offset, const uint8_t* d, uint64_t len) {
                return pipeline_->WriteTarget(disk, offset, d, len);
              },
              o_.appliers);
        }
        in_place_->Submit(rh.seq, rh.disk, rh.offset, data, rh.length);
        s = wal_->AppendInPlace(rh, data);
        // Not appended: the frame goes when Ingest returns, so its write
        // must be over first (the record was never durable: harmless).
        if (!s.ok()) (void)in_place_->WaitThrough(rh.seq);
      }
      if (s.ok()) {
        rh.flags = retention::kFlagInPlace;
        pending.records.push_back({rh, nullptr});
        last_seq = rh.seq;
      }
    } else {
      if (repeat_resync) rh.type = retention::RecordType::kWrite;  // the applier keeps its before-image
      s = append(rh, data, rh.length, PayloadCrc::kVerified);
      if (s.ok()) wal_data_seq_[rh.disk] = rh.seq;
    }
  } else if (h.has_resync_complete()) {
    s = append(stream::ResyncCompleteRecord(h.resync_complete()), nullptr, 0);
  } else {
    s = Status(Errc::kProtocol, std::string("frame ") + stream::FrameTypeName(frame->type()) +
                                    " is not a stream item");
  }
  if (!s.ok()) {
    {
      MutexLock l(mu_);
      validator_.reset();  // the session must end; a new one starts from durable state
    }
    // A WAL that cannot take data is failed until the agent reopens it: say so
    // in the stream's state, not only to this sender.
    if (s.code() != Errc::kInvalidArgument && s.code() != Errc::kAborted &&
        s.code() != Errc::kAlreadyExists && s.code() != Errc::kBusy)  // kBusy: WriteInPlace waited too long
      pipeline_->Fail(s);
    return s;
  }
  {
    MutexLock l(mu_);
    for (const auto& r : pending.records) bytes_ingested_ += r.h.length;
    wal_unwritten_ += unwritten;
    if (resync_end != 0) NoteResync(resync_disk, resync_end, false);
  }
  pending.owner = std::move(frame);
  auto shared = std::make_shared<apply::DurableItems>(std::move(pending));
  wal_->Commit([this, shared, last_seq, on_durable, unwritten](const Status& s) {
    {
      MutexLock l(mu_);
      wal_unwritten_ -= unwritten;
    }
    if (!s.ok()) {
      pipeline_->Fail(s);
      on_durable(s, 0);
      return;
    }
    {
      MutexLock l(mu_);
      durable_seq_ = std::max(durable_seq_, last_seq);
      if (validator_ && last_seq < validator_->next_seq()) validator_->MarkDurable(last_seq);
    }
    KeepOrLeaveInWal(*shared);
    pipeline_->Push(std::move(*shared));
    on_durable(Status::Ok(), last_seq);
    WakeIfUnthrottled();  // fewer bytes unwritten
  });
  return Status::Ok();
}

void StreamRuntime::KeepOrLeaveInWal(apply::DurableItems& items) {
  uint64_t bytes = 0;
  for (const auto& r : items.records)
    if (r.data != nullptr) bytes += r.h.stored_length;
  if (bytes == 0) {
    // Nothing the applier reads from memory (in-place resync data is on the
    // target already, discards store nothing): the frame goes now.
    items.owner.reset();
    return;
  }
  if (o_.memory_budget == nullptr) return;
  if (auto hold = o_.memory_budget->Take(bytes)) {
    // The frame and its share of the budget go together, when applied.
    items.owner = std::make_shared<std::pair<std::shared_ptr<const void>, std::shared_ptr<void>>>(
        std::move(items.owner), std::move(hold));
    return;
  }
  for (auto& r : items.records) {
    if (r.data == nullptr) continue;
    r.data = nullptr;  // read back from the WAL when applied
    r.in_wal = true;
  }
  items.owner.reset();
  o_.memory_budget->NoteLeftInWal(bytes);
}

Status StreamRuntime::HashBlocks(const proto::ResyncHashRequest& request,
                                 std::vector<uint8_t>* out) {
  uint64_t target = 0;
  {
    MutexLock l(mu_);
    if (!validator_)
      return Status(Errc::kProtocol, "stream '" + name_ + "': hash request before the session attached");
    MT_RETURN_IF_ERROR(validator_->CheckHashRequest(request));
    target = validator_->next_seq() - 1;
  }
  if (disks_.count(request.disk()) == 0)
    return Status(Errc::kNotFound, "no disk " + std::to_string(request.disk()));
  // The hashes must show every item admitted before the request.
  Status caught_up = pipeline_->WaitApplied(target, 60'000, /*give_up_when_held=*/false);
  if (caught_up.code() == Errc::kAborted)
    return Status(Errc::kUnavailable, "stream '" + name_ + "' failed: " + caught_up.message());
  if (!caught_up.ok())
    return Status(Errc::kBusy, "stream '" + name_ + "': apply did not catch up for a hash request");
  const uint64_t block = request.block_size();
  // Read in pieces of at most 4 MiB (whole blocks), no larger than the request.
  const uint64_t chunk =
      std::min(request.length(), std::max<uint64_t>(block, (4ull << 20) / block * block));
  AlignedBuffer buf(chunk);
  for (uint64_t off = 0; off < request.length(); off += chunk) {
    const uint64_t n = std::min<uint64_t>(chunk, request.length() - off);
    // Ordered against the applier's writes: items admitted after the request
    // are applied meanwhile, and a read must not overlap a write in flight.
    Status s = pipeline_->ReadTarget(request.disk(), request.offset() + off, buf.data(), n);
    if (!s.ok()) return s.WithContext("resync hash of stream '" + name_ + "'");
    MT_RETURN_IF_ERROR(stream::HashBlocks(buf.data(), n, block, out));
  }
  MutexLock l(mu_);
  NoteResync(request.disk(), request.offset() + request.length(), request.offset() == 0);
  return Status::Ok();
}

void StreamRuntime::NoteResync(uint32_t disk, uint64_t end, bool pass_start) {
  const int64_t now = clock_.NowNs();
  ResyncProgress& p = resync_[disk];
  if (pass_start || p.started_ns == 0) {
    p = ResyncProgress{};
    p.started_ns = now;
  }
  p.bytes = std::max(p.bytes, end);
  p.updated_ns = now;
}

bool StreamRuntime::SenderThrottled() const {
  return pipeline_->Stats().queued_bytes > o_.wal_quota_bytes || janitor_->Held();
}

bool StreamRuntime::Throttled() const {
  if (SenderThrottled()) return true;
  MutexLock l(mu_);
  return wal_unwritten_ > o_.wal_unwritten_limit;
}

void StreamRuntime::WatchThrottle(std::function<void()> wake) {
  {
    MutexLock l(mu_);
    throttle_waiter_ = std::move(wake);
  }
  // Registered before the check: a relief between the two is not missed.
  WakeIfUnthrottled();
}

void StreamRuntime::WakeIfUnthrottled() {
  {
    MutexLock l(mu_);
    if (!throttle_waiter_) return;
  }
  if (Throttled()) return;
  std::function<void()> wake;
  {
    MutexLock l(mu_);
    wake.swap(throttle_waiter_);
  }
  if (wake) wake();
}

StreamHealth StreamRuntime::Health() const {
  StreamHealth h;
  h.stream = stream_;
  h.name = name_;
  auto row = store_.catalog().GetStream(stream_);
  if (row.ok() && *row) {
    h.state = retention::StreamStateName((*row)->state);
    h.error = (*row)->error;
  }
  const apply::ApplyStats a = pipeline_->Stats();
  if (!a.failed.ok()) {
    h.state = retention::StreamStateName(retention::StreamState::kFailed);
    h.error = a.failed.ToString();
  }
  h.applied_seq = a.applied_seq;
  h.wal_bytes = a.queued_bytes;
  h.rpo_ns = a.applied_time_ns == 0 ? -1 : clock_.NowNs() - a.applied_time_ns;
  h.last_app_point_ns = a.last_app_point_ns;
  h.bytes_applied = a.bytes_applied;
  h.space_alert = janitor_->Alert();
  h.space_held = janitor_->Held();
  MutexLock l(mu_);
  h.throttled = a.queued_bytes > o_.wal_quota_bytes || h.space_held ||
                wal_unwritten_ > o_.wal_unwritten_limit;
  h.durable_seq = durable_seq_;
  h.backlog_records = durable_seq_ > a.applied_seq ? durable_seq_ - a.applied_seq : 0;
  h.bytes_ingested = bytes_ingested_;
  h.attached = !holder_.empty();
  h.resync = resync_;
  return h;
}

Status StreamRuntime::Failure() const {
  if (!pipeline_) return Status::Ok();
  Status failed = pipeline_->Stats().failed;
  if (!failed.ok() || wal_ == nullptr) return failed;
  return wal_->status();
}

Status StreamRuntime::WaitApplied(int64_t timeout_ms) {
  uint64_t target;
  {
    MutexLock l(mu_);
    target = durable_seq_;
  }
  Status s = pipeline_->WaitApplied(target, timeout_ms, /*give_up_when_held=*/true);
  if (s.ok()) return s;
  if (s.code() == Errc::kAborted)
    return Status(Errc::kAborted, "stream '" + name_ + "' failed: " + s.message());
  return Status(s.code(), "stream '" + name_ + "': " + s.message());
}

Status StreamRuntime::Stop() {
  {
    MutexLock l(mu_);
    if (stopped_ || !pipeline_) return pipeline_ ? pipeline_->Stats().failed : Status::Ok();
    stopped_ = true;
  }
  // The WAL first: when Sync() returns, every record appended before it is
  // durable and its commit callback has handed it to the pipeline (callbacks
  // run in commit order). Asking the apply thread to stop before that would
  // let it exit on an empty queue while a commit is in flight, leaving
  // durable items unapplied until the next start.
  Status s = wal_ != nullptr ? wal_->Sync() : Status::Ok();
  // Nothing is appended after Stop(): the WAL (the store may keep it) must
  // not call back into a runtime that is gone.
  if (wal_ != nullptr) wal_->SetBeforeWrite(nullptr);
  pipeline_->RequestStop();  // drains what is queued, then stops
  // Let the applier drain what is durable before it stops (bounded by the queue).
  (void)WaitApplied(30'000);
  pipeline_->Stop();
  Status failed = pipeline_->Stats().failed;
  return failed.ok() ? s : failed;
}

}  // namespace mt::daemon
