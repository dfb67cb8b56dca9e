// StreamRuntime: one protected stream inside the agent — its ingest side,
// and the owner of its apply pipeline and retention janitor.
//
//   session ─Ingest(frame)─▶ validate ─▶ WAL Append ─▶ group commit ─▶ durable(seq) ─▶ ACK
//                                                            │ DurableItems
//                     apply thread (apply/apply_pipeline.h) ◀┘  Applier: undo, targets,
//                          │                                    checkpoint, tags → points
//                          └─ before/after each batch: RetentionJanitor (prune, low space)
//
// Who owns what: the durable seq, the validator and the attached session live
// here (ingest); the applied seq, the queue of durable items and the failure
// latch in the ApplyPipeline; prune and the space alerts in the
// RetentionJanitor (retention/retention_janitor.h). Calls go one way: ingest
// hands durable items to the pipeline, the pipeline asks the janitor; the only
// call back is the acknowledgement to the session.
//
// Contracts:
//  - Invariant 1: on_durable(ok, seq) is called only when every item <= seq
//    is durable in the WAL; the session acknowledges exactly that seq.
//  - Invariant 7: a frame that fails validation changes nothing (the
//    validator checks everything before the WAL sees a byte).
//  - A tag name is used once per stream: a tag frame naming a recovery point
//    that exists at another seq, or a tag admitted and not yet applied, is
//    refused with kAlreadyExists (the session ends, the stream goes on).
//  - Only one session at a time: Attach() returns kBusy while another holds
//    the stream; Detach() releases it. A new attach starts from the durable
//    state (Welcome.resume_seq): Attach() first waits (one group commit at
//    most) until what the previous session appended is durable, so that the
//    resume seq covers it and a resend of it is acknowledged, not refused.
//  - Backpressure is a state, never a wait on a network thread: Throttled()
//    is true while the WAL holds more than the WAL quota of unapplied bytes,
//    while more than wal_unwritten_limit bytes are appended and not yet
//    committed (the WAL never makes Ingest wait for its writer), or while
//    applying is held for space; the session then stops reading its socket
//    and asks WatchThrottle() to wake it (an event from the WAL's committer
//    or the apply thread, not a poll).
//  - An applier failure (target I/O error) marks the stream failed in the
//    catalog with the error; ingest goes on (nothing acknowledged is lost)
//    until the quota throttles the sender.
//  - Retention space is checked before every batch is applied (and at start,
//    before every batch replayed from the WAL): when the volume is low the
//    store is pruned as the policy says; with full_action = stop, or when the
//    batch's before-images would not fit, applying is held (never an ENOSPC
//    half-way through a batch): the batch stays in the WAL, the sender is
//    throttled, a frame that would not fit either is refused with kNoSpace
//    (which a sender retries), Health().space_alert says why, and applying
//    resumes by itself once there is room. The stream does not fail.
// Threads: Ingest/Attach/Detach/Welcome/HashBlocks run on session threads
// (Ingest serialized inside); the durable callback runs on the WAL committer
// thread and must not block; applying runs on the pipeline's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "apply/apply_pipeline.h"
#include "apply/memory_budget.h"
#include "stream/frame_codec.h"
#include "daemon/hash_source.h"
#include "daemon/in_place_writer.h"
#include "mt/shim/block_device.h"
#include "mt/shim/clock.h"
#include "mt/shim/thread_annotations.h"
#include "mt/stream.pb.h"
#include "retention/retention_janitor.h"
#include "retention/retention_store.h"
#include "stream/validator.h"

namespace mt::daemon {

// A disk's resync as this agent has seen it since it started: how far the
// sender's current pass got (the end of the furthest range hashed for it, or
// of the furthest resync data received; a pass that starts again from
// offset 0 after a reconnect starts the figures again) and its average rate.
struct ResyncProgress {
  uint64_t bytes = 0;          // [0, bytes) compared or copied in this pass
  int64_t started_ns = 0;      // the pass's first request or data (0: none seen)
  int64_t updated_ns = 0;      // its latest
  uint64_t BytesPerSecond() const {
    const int64_t ns = updated_ns - started_ns;
    return ns <= 0 ? 0 : static_cast<uint64_t>(static_cast<double>(bytes) * 1e9 / static_cast<double>(ns));
  }
};

struct StreamHealth {
  uint64_t stream = 0;
  std::string name;
  std::string state;          // protected | paused | failed | committed
  std::string error;
  uint64_t durable_seq = 0;   // acknowledged
  uint64_t applied_seq = 0;
  uint64_t backlog_records = 0;   // durable - applied
  uint64_t wal_bytes = 0;
  int64_t rpo_ns = -1;        // now - source time of the last applied write (-1: nothing yet)
  int64_t last_app_point_ns = 0;  // source time of the newest app tag (0: none)
  uint64_t bytes_ingested = 0, bytes_applied = 0;
  bool throttled = false;
  bool attached = false;
  // Retention space: why applying is held (full_action stop, or no room for
  // the next batch), and/or which points a low-space prune dropped (shown
  // for an hour after the drop); "" when neither.
  std::string space_alert;
  bool space_held = false;
  std::map<uint32_t, ResyncProgress> resync;  // by disk index: disks resynced while running
};

struct RuntimeOptions {
  apply::ApplierOptions applier;
  // The threads the stream's applying runs on, shared by the agent's streams
  // (apply/apply_pipeline.h); null: a thread of the stream's own.
  retention::WorkerPool* appliers = nullptr;
  // The agent's one bound on durable, unapplied data kept in memory for the
  // appliers of all streams (apply/memory_budget.h): a frame that finds it
  // full goes to the applier without its data, which is read back from the
  // WAL. Null: every frame's data is kept until applied (bounded per stream
  // by wal_quota_bytes only).
  apply::MemoryBudget* memory_budget = nullptr;
  // ApplyPipeline's on_drained: the stream's backlog is applied and its
  // applier gave its buffers back, a second after its last batch (the agent
  // gives free memory back to the system then). May be empty.
  std::function<void()> on_drained;
  // Unapplied bytes held in the WAL (and in memory, up to memory_budget)
  // before the sender is throttled: bounds the backlog. A discard
  // counts its whole length (it holds no memory, but applying it reads and
  // keeps that many bytes of before-image): one larger than the quota is
  // taken, and the sender waits until it is applied.
  uint64_t wal_quota_bytes = 256ull << 20;
  // WAL bytes appended and not yet committed before the sender is throttled:
  // bounds the WAL's batch buffers (Ingest never waits for the WAL writer).
  uint64_t wal_unwritten_limit = 32ull << 20;
  size_t apply_batch_records = 256;
  // A batch's before-images are held in memory: bound them.
  uint64_t apply_batch_bytes = 16ull << 20;
  // Test hook (liveness tests only): see PipelineOptions. 0: never.
  uint64_t test_stall_after_batches = 0;
  // While applying is held for space, how often space is checked again.
  int64_t space_retry_ms = 1000;
  // Resync data is written straight to its target at ingest, and the WAL
  // gets a record without payload (kFlagInPlace; docs/formats/journal.md):
  // one write of the data instead of two. false: through the WAL as writes.
  bool resync_in_place = true;
  // How long in-place resync data waits for the disk's earlier writes to be
  // applied before the frame is refused (kBusy; the sender retries).
  int64_t in_place_wait_ms = 60'000;
};

class StreamRuntime : public HashSource {
 public:
  // `disks`: disk index -> the target device, opened by the caller only after
  // IsSafeTarget held (the runtime never opens a device). REQUIRES: store and
  // devices outlive the runtime.
  static Result<std::unique_ptr<StreamRuntime>> Start(
      retention::RetentionStore& store, shim::Clock& clock, uint64_t stream,
      std::map<uint32_t, shim::BlockDevice*> disks, const RuntimeOptions& options);
  ~StreamRuntime() override;  // Stop()

  // Session ownership (see class comment). `session` names the holder in messages.
  Status Attach(const std::string& session);
  void Detach(const std::string& session);

  // What the receiver tells a newly attached sender.
  proto::Welcome Welcome(uint32_t protocol_version);

  // Takes one stream item frame (write-batch, tag, resync-data,
  // resync-complete). Errors are the validator's (send them as an error
  // frame and close) or the WAL's. On success `on_durable` will be called
  // once with the seq to acknowledge (at once for a resend of durable items).
  Status Ingest(std::shared_ptr<const stream::Frame> frame,
                std::function<void(const Status&, uint64_t)> on_durable);

  // Resync hashes of the target as it is after every item ingested before
  // the call (hash_source.h): waits for the applier to reach the last
  // admitted seq (bounded), then reads in 4 MiB chunks, each ordered against
  // the applier's target writes (items admitted later are applied meanwhile;
  // a chunk never overlaps a write in flight).
  Status HashBlocks(const proto::ResyncHashRequest& request, std::vector<uint8_t>* out) override;

  bool Throttled() const;
  // The part of Throttled() the sender is told about (throttle frame): the
  // WAL quota or a space hold — not the WAL writer being briefly behind.
  bool SenderThrottled() const;
  // Calls `wake` once (on any thread; it must not block) after Throttled()
  // may have become false: at once if it is false now, else after the next
  // WAL commit or applied batch that leaves it false. A newer call replaces
  // an older one; Detach() drops it.
  void WatchThrottle(std::function<void()> wake);
  StreamHealth Health() const;
  // The error that failed the stream, or ok: the apply pipeline's failure
  // latch (an applier or WAL commit error; Health().state "failed") or the
  // WAL's (an append or sync error). Either lasts until the stream is
  // stopped and started again (mtctl resume). The session marks its
  // refusals of a failed stream ERROR_CONDITION_STREAM_FAILED.
  Status Failure() const;
  // Liveness (the systemd watchdog): how long the apply thread and the WAL's
  // committer have been busy with their current unit of work; 0 while they
  // wait for work, which is idle by design.
  int64_t ApplyBusyForNs() const { return pipeline_ ? pipeline_->BusyForNs() : 0; }
  int64_t WalCommitBusyForNs() const { return wal_ ? wal_->CommitBusyForNs() : 0; }
  uint64_t id() const { return stream_; }
  const std::string& name() const { return name_; }

  // Waits until everything durable now is applied (or the stream failed);
  // for tests, demos and an orderly shutdown. kAborted if it failed,
  // kNoSpace at once while applying is held for space.
  Status WaitApplied(int64_t timeout_ms = 60'000);
  // Syncs the WAL, lets the apply thread finish what is durable, stops it.
  Status Stop();

 private:
  StreamRuntime(retention::RetentionStore& store, shim::Clock& clock, uint64_t stream,
                std::string name, std::map<uint32_t, shim::BlockDevice*> disks,
                const RuntimeOptions& options);
  Status Init();
  // kAlreadyExists when `name` already names a point or an unapplied tag at
  // another seq than `seq`.
  Status CheckTagName(const std::string& name, uint64_t seq);
  // Calls the WatchThrottle waiter if Throttled() is false now.
  // On the WAL committer, as a frame becomes durable: its data is kept in
  // memory for the applier if the budget (RuntimeOptions::memory_budget) has
  // room, else left in the WAL (records marked in_wal, the frame let go).
  void KeepOrLeaveInWal(apply::DurableItems& items);
  void WakeIfUnthrottled() MT_EXCLUDES(mu_);

  retention::RetentionStore& store_;
  shim::Clock& clock_;
  const uint64_t stream_;
  const std::string name_;
  std::map<uint32_t, shim::BlockDevice*> disks_;
  const RuntimeOptions o_;
  retention::Journal* wal_ = nullptr;
  std::unique_ptr<retention::RetentionJanitor> janitor_;
  std::unique_ptr<apply::ApplyPipeline> pipeline_;
  // Writes in-place resync data as it arrives (after pipeline_: it writes
  // through it, and goes first). Made by Ingest (under ingest_mu_) at the
  // first in-place record; the WAL's before-write hook reads it without a
  // lock: it runs only for a batch holding such a record, appended after
  // in_place_ was set (the journal's lock orders the two).
  std::unique_ptr<InPlaceWriter> in_place_;

  // Serializes Ingest (frames stay in seq order) and Attach's wait for the
  // WAL; taken before mu_, never while holding it.
  Mutex ingest_mu_;
  // Ordering of in-place resync data (WriteInPlace): per disk, the newest
  // seq whose data goes through the WAL (writes, discards); and the WAL's
  // durable seq at start (recovered records the applier may still hold).
  std::map<uint32_t, uint64_t> wal_data_seq_ MT_GUARDED_BY(ingest_mu_);
  uint64_t recovered_seq_ = 0;  // set by Init
  // In-place resync data `rh` may be appended (and then written by the WAL's
  // committer) once the disk's earlier WAL data is applied: it must not land
  // under it. Waits for that, at most in_place_wait_ms (then kBusy).
  Status WaitInPlaceTurn(const retention::RecordHeader& rh) MT_REQUIRES(ingest_mu_);
  mutable Mutex mu_;  // the ingest state below
  std::string holder_ MT_GUARDED_BY(mu_);  // attached session ("" = none)
  std::unique_ptr<stream::StreamValidator> validator_ MT_GUARDED_BY(mu_);
  // Disks resynced again on demand (their first resync completed before,
  // Catalog::RequireResync since): their resync data goes through the WAL as
  // writes, so it gets before-images and the points before it stay
  // reachable. Set by Attach from the catalog.
  std::set<uint32_t> repeat_resync_ MT_GUARDED_BY(mu_);
  // Disks declared blank at pair add whose first resync has not completed:
  // the welcome says so (DiskInfo.target_blank). Set by Attach from the catalog.
  std::set<uint32_t> blank_targets_ MT_GUARDED_BY(mu_);
  uint64_t durable_seq_ MT_GUARDED_BY(mu_) = 0;
  uint64_t bytes_ingested_ MT_GUARDED_BY(mu_) = 0;
  uint64_t wal_unwritten_ MT_GUARDED_BY(mu_) = 0;  // estimated WAL bytes appended, commit not done
  std::function<void()> throttle_waiter_ MT_GUARDED_BY(mu_);  // WatchThrottle's
  bool stopped_ MT_GUARDED_BY(mu_) = false;
  std::map<uint32_t, ResyncProgress> resync_ MT_GUARDED_BY(mu_);
  // A resync pass of `disk` reached `end`: see ResyncProgress. A hash
  // request at offset 0 (`pass_start`) begins a new pass.
  void NoteResync(uint32_t disk, uint64_t end, bool pass_start) MT_REQUIRES(mu_);
};

}  // namespace mt::daemon
