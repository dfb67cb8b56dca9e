// ApplyPipeline: one stream's apply side — the queue of durable items, the
// apply thread that takes them in batches and applies them (Applier: undo,
// targets, checkpoint), and what applied tags mean (recovery points in the
// catalog, through CatalogCheckpoint). It owns the stream's applied seq and
// its failure latch.
//
//   ingest (daemon/stream_runtime.h) ─Push(DurableItems)─▶ queue ─▶ apply thread
//        apply thread: janitor.HoldFor ─▶ Applier::Apply ─▶ janitor.AfterStep
//
// Threads:
//  - Open() runs on the caller's thread: it replays the WAL beyond the
//    checkpoint (invariant 4) before anything new is taken.
//  - Push() runs on the WAL's committer thread and never blocks for long.
//  - the applier (Start() .. Stop()) is the only one that applies. It is a
//    strand of a WorkerPool (retention/worker_pool.h) shared by the agent's
//    streams: one batch a run, so streams take turns on a few threads; a
//    pipeline without a pool has one thread of its own. "The apply thread"
//    below is whichever pool thread runs the strand.
//  - Stats(), WaitApplied(), Fail(), ReadTarget(), the tag methods: any thread.
// Contracts:
//  - Items are applied in seq order, whole frames per batch (a frame is never
//    split), at most batch_records records and batch_bytes of data a batch
//    (a single larger frame is a batch of its own).
//  - Before every batch (and every batch replayed at Open) the janitor says
//    whether space allows it; if not the batch stays queued (it is in the
//    WAL) and is tried again every space_retry_ms: never an ENOSPC half-way.
//  - A failure (target I/O, catalog, or Fail() from the ingest side) latches:
//    the stream is marked failed in the catalog, nothing more is applied,
//    the queue stays (it is in the WAL) for the next start.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "apply/applier.h"
#include "apply/catalog_checkpoint.h"
#include "mt/shim/busy_since.h"
#include "mt/shim/thread_annotations.h"
#include "retention/retention_janitor.h"
#include "retention/retention_store.h"
#include "retention/worker_pool.h"

namespace mt::apply {

// The hand-off from ingest to apply: a frame's records, durable in the WAL.
// `owner` keeps the memory the records' data points into alive. A record
// marked in_wal was left in the WAL (MemoryBudget): the applier reads its
// payload back from there.
struct DurableItems {
  std::shared_ptr<const void> owner;
  std::vector<WalRecord> records;
};

struct PipelineOptions {
  ApplierOptions applier;
  size_t batch_records = 256;
  // A batch's before-images are held in memory: bound them.
  uint64_t batch_bytes = 16ull << 20;
  // While applying is held for space, how often space is checked again.
  int64_t space_retry_ms = 1000;
  // Test hook (liveness tests only): after this many applied batches the
  // apply thread stops making progress — it stays busy, applying nothing,
  // until Stop() — as a hung target write would. 0: never.
  uint64_t test_stall_after_batches = 0;
  // Called on the apply thread, with no lock held, after each applied batch
  // (the queue is shorter) and when the stream fails: whoever throttles a
  // sender on Stats() looks again. Must not block. May be empty.
  std::function<void()> on_progress;
  // Once the queue has been empty for idle_release_after, the applier gives
  // back the buffers it keeps between batches (Applier::ReleaseBuffers) and
  // calls on_drained (no lock held; may be empty): the memory of the
  // stream's last burst is free now.
  std::chrono::milliseconds idle_release_after{1000};
  std::function<void()> on_drained;
  // The threads applying runs on, shared with other streams; null: one
  // thread of the pipeline's own. REQUIRES: outlives the pipeline.
  retention::WorkerPool* appliers = nullptr;
  // The WAL's segments as they are now (Journal::Segments), for reading back
  // records whose data was left in the WAL. May be empty if none ever is.
  std::function<std::vector<retention::SegmentInfo>()> wal_segments;
};

struct ApplyStats {
  uint64_t applied_seq = 0;
  int64_t applied_time_ns = 0;     // source time of the last applied write (0: none yet)
  int64_t last_app_point_ns = 0;   // source time of the newest app point (0: none)
  uint64_t queued_bytes = 0;       // data bytes durable and not yet applied
  uint64_t bytes_applied = 0;
  Status failed;                   // ok unless the stream failed
};

class ApplyPipeline {
 public:
  // Opens the apply side of `stream` at its catalog checkpoint and applies
  // what the WAL holds beyond it (batches held for space are queued).
  // REQUIRES: store, clock, undo, janitor and the devices outlive the pipeline.
  static Result<std::unique_ptr<ApplyPipeline>> Open(
      retention::RetentionStore& store, shim::Clock& clock, uint64_t stream,
      std::map<uint32_t, shim::BlockDevice*> disks, retention::Journal* undo,
      const std::vector<retention::SegmentInfo>& wal, retention::RetentionJanitor& janitor,
      const PipelineOptions& options);
  ~ApplyPipeline();  // Stop()

  void Start();  // the apply thread
  // Asks the apply thread to stop once the queue is empty (or at once while
  // applying is held for space); returns at once. A stalled test hook ends.
  void RequestStop();
  // RequestStop(), then waits for the thread; what is queued stays in the WAL.
  void Stop();

  void Push(DurableItems items);

  // Latches the stream failed (the first failure wins) and records it in
  // the catalog.
  void Fail(const Status& s);

  // Tags admitted to the WAL and not yet applied (not yet points): the
  // ingest side records them so that a name is used once per stream.
  void AddUnappliedTag(const std::string& name, uint64_t seq);
  // The seq of an unapplied tag of that name, 0 if none.
  uint64_t UnappliedTagSeq(const std::string& name) const;

  // Waits until applied_seq >= target. kAborted if the stream failed, kBusy
  // after timeout_ms; with `give_up_when_held`, kNoSpace at once while the
  // janitor holds applying for space.
  Status WaitApplied(uint64_t target, int64_t timeout_ms, bool give_up_when_held);

  // Reads a target range ordered against the apply thread's target writes
  // (Applier::ReadTarget). Any thread.
  Status ReadTarget(uint32_t disk, uint64_t offset, void* buf, size_t len) {
    return applier_->ReadTarget(disk, offset, buf, len);
  }
  // Applier::WriteTarget. Any thread.
  Status WriteTarget(uint32_t disk, uint64_t offset, const uint8_t* data, size_t len) {
    return applier_->WriteTarget(disk, offset, data, len);
  }

  ApplyStats Stats() const;
  // Liveness: how long the apply thread has been busy with its current
  // batch; 0 while it waits for work.
  int64_t BusyForNs() const { return busy_.BusyForNs(); }

 private:
  ApplyPipeline(retention::RetentionStore& store, uint64_t stream,
                retention::RetentionJanitor& janitor, const PipelineOptions& options)
      : store_(store), stream_(stream), janitor_(janitor), o_(options) {}
  Status Recover(const std::vector<retention::SegmentInfo>& wal);
  // One run of the applier: applies one batch (or finds applying held, or
  // the pipeline stopped) and wakes itself again while work is left.
  void Step();
  // Applies records and notes what they mean for the stream's counters.
  Status ApplyRecords(const std::vector<WalRecord>& records);
  // Before-image bytes a record captures before its first target write: its
  // length, but for a long discard one piece (applier discard_piece_bytes) —
  // it is applied piece by piece, each captured, written and followed by a
  // janitor step, so it needs room for one piece at a time.
  uint64_t CaptureBytes(const WalRecord& r) const;
  // What a record counts in queued_bytes and a batch's bytes: its length,
  // 0 for an in-place record (it holds nothing and writes nothing).
  static uint64_t QueuedBytes(const WalRecord& r);
  // Reads the payloads of the batch's records that were left in the WAL
  // (in_wal) into `storage` and points them
  // there; every one must be found, checked (CRC), with the same header.
  Status ReadBack(std::vector<WalRecord>* batch, std::vector<std::vector<uint8_t>>* storage);
  // Queues a copy of records read from the WAL at Open (applying held).
  void QueueCopy(const std::vector<WalRecord>& records);

  retention::RetentionStore& store_;
  const uint64_t stream_;
  retention::RetentionJanitor& janitor_;
  const PipelineOptions o_;
  std::unique_ptr<CatalogCheckpoint> checkpoint_;
  std::unique_ptr<Applier> applier_;
  shim::BusySince busy_;  // the apply thread, from taking a batch to its end

  mutable Mutex mu_;
  mutable std::condition_variable progress_cv_;  // WaitApplied: progress
  std::deque<DurableItems> queue_ MT_GUARDED_BY(mu_);
  uint64_t queued_bytes_ MT_GUARDED_BY(mu_) = 0;
  std::map<std::string, uint64_t> unapplied_tags_ MT_GUARDED_BY(mu_);  // name -> seq
  uint64_t applied_seq_ MT_GUARDED_BY(mu_) = 0;
  int64_t applied_time_ns_ MT_GUARDED_BY(mu_) = 0;
  int64_t last_app_point_ns_ MT_GUARDED_BY(mu_) = 0;
  uint64_t bytes_applied_ MT_GUARDED_BY(mu_) = 0;
  bool stopping_ MT_GUARDED_BY(mu_) = false;
  bool finished_ MT_GUARDED_BY(mu_) = false;
  bool space_held_ MT_GUARDED_BY(mu_) = false;  // waiting space_retry_ms for space
  // The applier keeps buffers since the batch that ended at last_batch_end_.
  bool buffers_held_ MT_GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point last_batch_end_ MT_GUARDED_BY(mu_);  // stopping_ and the applier gave up its work
  uint64_t batches_ = 0;  // applier-only: applied batches (the stall test hook)
  std::atomic<bool> stop_requested_{false};  // stopping_, for the test hook's unlocked loop
  Status failed_ MT_GUARDED_BY(mu_);
  std::unique_ptr<retention::WorkerPool> own_pool_;  // no PipelineOptions::appliers
  std::unique_ptr<retention::WorkerPool::Strand> strand_;
};

}  // namespace mt::apply
