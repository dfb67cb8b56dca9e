#include "apply/apply_pipeline.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "retention/journal_reader.h"
#include "retention/record_format.h"

namespace mt::apply {

using retention::RecordType;

Result<std::unique_ptr<ApplyPipeline>> ApplyPipeline::Open(
    retention::RetentionStore& store, shim::Clock& clock, uint64_t stream,
    std::map<uint32_t, shim::BlockDevice*> disks, retention::Journal* undo,
    const std::vector<retention::SegmentInfo>& wal, retention::RetentionJanitor& janitor,
    const PipelineOptions& options) {
  std::unique_ptr<ApplyPipeline> p(new ApplyPipeline(store, stream, janitor, options));
  MT_ASSIGN_OR_RETURN(auto rows, store.catalog().ListDisks(stream));
  std::vector<uint32_t> indexes;
  for (const auto& d : rows) {
    if (disks.count(d.disk) == 0)
      return Status(Errc::kNotFound, "disk " + std::to_string(d.disk) + " (" + d.target_id +
                                         ") has no open target device");
    indexes.push_back(d.disk);
  }
  MT_ASSIGN_OR_RETURN(auto checkpoint, store.catalog().StreamCheckpoint(stream));
  const uint64_t applied = checkpoint ? checkpoint->applied_seq : 0;
  ApplyPipeline* self = p.get();
  p->checkpoint_ = std::make_unique<CatalogCheckpoint>(
      store.catalog(), clock, stream, indexes, [self] {
        // Each piece of a long discard is progress (the liveness check).
        self->busy_.Busy();
        return self->janitor_.AfterStep();
      });
  p->applier_ = std::make_unique<Applier>(undo, std::move(disks), p->checkpoint_.get(), applied,
                                          options.applier);
  MT_ASSIGN_OR_RETURN(auto app, store.catalog().LatestPoint(stream, retention::TagKind::kApp));
  {
    MutexLock l(p->mu_);
    p->applied_seq_ = applied;
    if (app) p->last_app_point_ns_ = app->time_ns;
  }
  MT_RETURN_IF_ERROR(p->Recover(wal));  // invariant 4: finish what the WAL holds
  return p;
}

ApplyPipeline::~ApplyPipeline() { Stop(); }

Status ApplyPipeline::Recover(const std::vector<retention::SegmentInfo>& wal) {
  // Once applying is held for space, every later batch is queued behind the
  // held one (in memory, bounded by the WAL backlog) for the apply thread.
  bool held = false;
  return ForEachWalBatch(
      store_.fs(), wal, Stats().applied_seq + 1, o_.batch_records, o_.batch_bytes,
      [this, &held](const std::vector<WalRecord>& batch) {
        if (!held) {
          uint64_t room = 0;
          for (const auto& r : batch) room += CaptureBytes(r);
          held = !janitor_.HoldFor(room).empty();
        }
        if (!held) return ApplyRecords(batch);
        QueueCopy(batch);
        return Status::Ok();
      });
}

void ApplyPipeline::QueueCopy(const std::vector<WalRecord>& records) {
  auto payload = std::make_shared<std::vector<uint8_t>>();
  for (const auto& r : records)
    if (r.data != nullptr) payload->insert(payload->end(), r.data, r.data + r.h.stored_length);
  DurableItems items;
  size_t off = 0;
  for (const auto& r : records) {
    WalRecord c = r;
    if (r.data != nullptr) {
      c.data = payload->data() + off;
      off += r.h.stored_length;
    }
    items.records.push_back(c);
  }
  items.owner = std::move(payload);
  Push(std::move(items));
}

uint64_t ApplyPipeline::QueuedBytes(const WalRecord& r) {
  return (r.h.flags & retention::kFlagInPlace) != 0 ? 0 : r.h.length;  // in place: on the target already
}

uint64_t ApplyPipeline::CaptureBytes(const WalRecord& r) const {
  if ((r.h.flags & retention::kFlagInPlace) != 0) return 0;  // nothing to write or capture
  if ((r.h.flags & retention::kFlagDiscard) == 0) return r.h.length;
  return std::min<uint64_t>(r.h.length, o_.applier.discard_piece_bytes);
}

void ApplyPipeline::Push(DurableItems items) {
  {
    MutexLock l(mu_);
    for (const auto& r : items.records) queued_bytes_ += QueuedBytes(r);
    queue_.push_back(std::move(items));
    // Held for space: the applier looks again every space_retry_ms (its
    // timer), not at every frame that arrives meanwhile.
    if (strand_ && !space_held_) strand_->Wake();
  }
}

Status ApplyPipeline::ApplyRecords(const std::vector<WalRecord>& records) {
  if (records.empty()) return Status::Ok();
  // The applier stores the batch's points and resync completions
  // (CatalogCheckpoint::BatchApplied) before its checkpoint.
  MT_RETURN_IF_ERROR(applier_->Apply(records));
  MutexLock l(mu_);
  for (const auto& r : records) {
    if (r.h.type != RecordType::kTag) continue;
    retention::TagPayload t;
    if (!retention::DecodeTag(r.data, r.h.stored_length, &t).ok()) continue;
    if (auto it = unapplied_tags_.find(t.name); it != unapplied_tags_.end() && it->second == r.h.seq)
      unapplied_tags_.erase(it);  // a point in the catalog now
    if (t.kind == retention::TagKind::kApp && (r.h.flags & retention::kFlagNoPoint) == 0)
      last_app_point_ns_ = std::max(last_app_point_ns_, r.h.source_time_ns);
  }
  applied_seq_ = records.back().h.seq;
  bytes_applied_ = applier_->bytes_applied();
  if (records.back().h.source_time_ns != 0) applied_time_ns_ = records.back().h.source_time_ns;
  return Status::Ok();
}

void ApplyPipeline::Start() {
  MutexLock l(mu_);
  if (strand_ || stopping_) return;
  retention::WorkerPool* pool = o_.appliers;
  if (pool == nullptr) {
    own_pool_ = std::make_unique<retention::WorkerPool>("applier", 1);
    pool = own_pool_.get();
  }
  strand_ = pool->NewStrand([this] { Step(); });
  strand_->Wake();  // what Open queued (applying held) waits for it
}

void ApplyPipeline::Step() {
  UniqueLock l(mu_);
  if (finished_) return;
  space_held_ = false;  // looking again now
  if (queue_.empty() || !failed_.ok()) {
    if (stopping_) {
      finished_ = true;
      progress_cv_.notify_all();
      return;
    }
    if (buffers_held_) {  // idle: the buffers go once idle_release_after has passed
      const auto idle = std::chrono::steady_clock::now() - last_batch_end_;
      if (idle < o_.idle_release_after) {
        strand_->WakeAfter(std::max(std::chrono::milliseconds(1),
                                    std::chrono::duration_cast<std::chrono::milliseconds>(
                                        o_.idle_release_after - idle)));
        return;
      }
      buffers_held_ = false;
      applier_->ReleaseBuffers();  // this is the applier: no batch is under way
      l.Unlock();
      if (o_.on_drained) o_.on_drained();
    }
    return;  // a Push (or RequestStop) wakes the strand again
  }
  // Take whole frames up to the batch size (a frame is never split).
  std::vector<WalRecord> batch;
  size_t frames = 0;
  uint64_t bytes = 0;
  uint64_t room_bytes = 0;  // before-images captured at once (CaptureBytes)
  for (const auto& p : queue_) {
    uint64_t frame_bytes = 0, frame_room = 0;
    for (const auto& r : p.records) {
      frame_bytes += QueuedBytes(r);
      frame_room += CaptureBytes(r);
    }
    if (!batch.empty() && (batch.size() + p.records.size() > o_.batch_records ||
                           bytes + frame_bytes > o_.batch_bytes))
      break;
    batch.insert(batch.end(), p.records.begin(), p.records.end());
    bytes += frame_bytes;
    room_bytes += frame_room;
    ++frames;
  }
  busy_.Busy();
  l.Unlock();
  if (o_.test_stall_after_batches != 0 && batches_ >= o_.test_stall_after_batches) {
    // The liveness test hook: busy, and no progress, until stopped.
    while (!stop_requested_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // Space first: with full_action = stop on a low volume, or no room for
  // the batch's before-images, the batch waits in the WAL.
  if (!janitor_.HoldFor(room_bytes).empty()) {
    busy_.Idle();  // waiting for space is waiting by design, not a hang
    l.Lock();
    progress_cv_.notify_all();
    if (stopping_) {
      finished_ = true;  // what is held stays in the WAL for the next start
      return;
    }
    space_held_ = true;
    strand_->WakeAfter(std::chrono::milliseconds(o_.space_retry_ms));
    return;
  }
  std::vector<std::vector<uint8_t>> read_back;  // payloads of records left in the WAL
  Status s = ReadBack(&batch, &read_back);
  if (s.ok()) s = ApplyRecords(batch);
  if (s.ok()) {
    ++batches_;
    busy_.Busy();
    s = janitor_.AfterStep();
  }
  busy_.Idle();
  if (!s.ok()) {
    Fail(s);
    l.Lock();
    if (stopping_) {
      finished_ = true;
      progress_cv_.notify_all();
    }
    return;
  }
  l.Lock();
  for (size_t i = 0; i < frames; ++i) queue_.pop_front();
  queued_bytes_ -= bytes;
  progress_cv_.notify_all();
  // One batch a run: the pool's other streams get their turn in between.
  if (!queue_.empty() || stopping_) {
    strand_->Wake();
  } else {
    buffers_held_ = true;
    last_batch_end_ = std::chrono::steady_clock::now();
    strand_->WakeAfter(o_.idle_release_after);  // the idle release
  }
  l.Unlock();
  if (o_.on_progress) o_.on_progress();
}

Status ApplyPipeline::ReadBack(std::vector<WalRecord>* batch,
                               std::vector<std::vector<uint8_t>>* storage) {
  std::vector<size_t> wanted;  // indexes into *batch, in WAL order
  for (size_t i = 0; i < batch->size(); ++i)
    if ((*batch)[i].in_wal) wanted.push_back(i);
  if (wanted.empty()) return Status::Ok();
  if (!o_.wal_segments)
    return Status(Errc::kInternal, "records left in the WAL and no WAL to read them from");
  storage->reserve(wanted.size());  // the records point into it: never reallocated
  size_t next = 0;
  const uint64_t first = (*batch)[wanted.front()].h.seq, last = (*batch)[wanted.back()].h.seq;
  MT_RETURN_IF_ERROR(retention::ForEachRecord(
      store_.fs(), o_.wal_segments(), retention::Direction::kForward,
      [&](const retention::RecordHeader& h, const std::vector<uint8_t>& payload, bool* stop) -> Status {
        WalRecord& r = (*batch)[wanted[next]];
        if (h.seq != r.h.seq || h.disk != r.h.disk || h.offset != r.h.offset ||
            h.length != r.h.length || h.type != r.h.type)
          return Status::Ok();  // a record of the range that is in memory
        r.h = h;  // as durable (what a restart's replay applies too)
        storage->push_back(payload);
        r.data = storage->back().data();
        r.in_wal = false;
        *stop = ++next == wanted.size();
        return Status::Ok();
      },
      first, last));
  if (next != wanted.size())
    return Status(Errc::kCorruption, "stream " + std::to_string(stream_) + ": WAL record seq " +
                                         std::to_string((*batch)[wanted[next]].h.seq) +
                                         " to be applied is not in the WAL");
  return Status::Ok();
}

void ApplyPipeline::RequestStop() {
  MutexLock l(mu_);
  stopping_ = true;
  stop_requested_ = true;
  if (strand_) strand_->Wake();
}

void ApplyPipeline::Stop() {
  {
    UniqueLock l(mu_);
    stopping_ = true;
    stop_requested_ = true;
    if (!strand_) return;
    strand_->Wake();
    progress_cv_.wait(l.native(), [&]() MT_REQUIRES(mu_) { return finished_; });
  }
  strand_->Stop();  // waits for the run that finished
}

void ApplyPipeline::Fail(const Status& s) {
  {
    MutexLock l(mu_);
    if (!failed_.ok()) return;
    failed_ = s;
  }
  (void)store_.catalog().SetStreamState(stream_, retention::StreamState::kFailed, s.ToString());
  progress_cv_.notify_all();
  if (o_.on_progress) o_.on_progress();
}

void ApplyPipeline::AddUnappliedTag(const std::string& name, uint64_t seq) {
  MutexLock l(mu_);
  unapplied_tags_[name] = seq;
}

uint64_t ApplyPipeline::UnappliedTagSeq(const std::string& name) const {
  MutexLock l(mu_);
  auto it = unapplied_tags_.find(name);
  return it == unapplied_tags_.end() ? 0 : it->second;
}

Status ApplyPipeline::WaitApplied(uint64_t target, int64_t timeout_ms, bool give_up_when_held) {
  UniqueLock l(mu_);
  auto held = [&] { return give_up_when_held && janitor_.Held(); };
  const bool done = progress_cv_.wait_for(l.native(), std::chrono::milliseconds(timeout_ms), [&]() MT_REQUIRES(mu_) {
    return !failed_.ok() || held() || applied_seq_ >= target;
  });
  if (!failed_.ok()) return Status(Errc::kAborted, failed_.ToString());
  if (applied_seq_ >= target) return Status::Ok();
  if (held()) return Status(Errc::kNoSpace, janitor_.Alert());
  if (!done) return Status(Errc::kBusy, "apply did not catch up in time");
  return Status::Ok();
}

ApplyStats ApplyPipeline::Stats() const {
  MutexLock l(mu_);
  ApplyStats s;
  s.applied_seq = applied_seq_;
  s.applied_time_ns = applied_time_ns_;
  s.last_app_point_ns = last_app_point_ns_;
  s.queued_bytes = queued_bytes_;
  s.bytes_applied = bytes_applied_;
  s.failed = failed_;
  return s;
}

}  // namespace mt::apply
