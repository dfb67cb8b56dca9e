// StreamRuntime: one protected stream inside the agent — the bridge between a
// network session and the retention store / applier.
//
//   session ─Ingest(frame)─▶ validate ─▶ WAL Append ─▶ group commit ─▶ on_durable(seq) ─▶ ACK
//                                                            │
//                                   apply thread ◀───────────┘  (Applier: undo, targets,
//                                                                checkpoint, tags → catalog)
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
//    state (Welcome.resume_seq), whatever the previous session left pending.
//  - Backpressure: Throttled() is true while the WAL holds more than the WAL
//    quota of unapplied bytes; the session then stops reading its socket.
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
// Thread safety: Ingest/Attach/Detach/Welcome from session threads (serialized
// inside); on_durable runs on the WAL committer thread and must not block.
#pragma once

#include <atomic>
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

#include "applier.h"
#include "frame_codec.h"
#include "hash_source.h"
#include "mt/shim/block_device.h"
#include "mt/shim/busy_since.h"
#include "mt/shim/clock.h"
#include "mt/stream.pb.h"
#include "retention_store.h"
#include "validator.h"

namespace mt::daemon {

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
};

struct RuntimeOptions {
  apply::ApplierOptions applier;
  // Unapplied bytes held (in memory, and in the WAL) before the sender is
  // throttled: bounds the agent's memory as well as the backlog. A discard
  // counts its whole length (it holds no memory, but applying it reads and
  // keeps that many bytes of before-image): one larger than the quota is
  // taken, and the sender waits until it is applied.
  uint64_t wal_quota_bytes = 256ull << 20;
  size_t apply_batch_records = 256;
  // A batch's before-images are held in memory: bound them.
  uint64_t apply_batch_bytes = 16ull << 20;
  // Test hook (liveness tests only): after this many applied batches the
  // apply thread stops making progress — it stays busy, applying nothing,
  // until Stop() — as a hung target write would. 0: never.
  uint64_t test_stall_after_batches = 0;
  // While applying is held for space, how often space is checked again.
  int64_t space_retry_ms = 1000;
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
  // admitted seq (bounded), then reads in 4 MiB chunks.
  Status HashBlocks(const proto::ResyncHashRequest& request, std::vector<uint8_t>* out) override;

  bool Throttled() const;
  StreamHealth Health() const;
  // Liveness (the systemd watchdog): how long the apply thread and the WAL's
  // committer have been busy with their current unit of work; 0 while they
  // wait for work, which is idle by design.
  int64_t ApplyBusyForNs() const { return apply_busy_.BusyForNs(); }
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
  void ApplyLoop();
  // Applies records (live or from the WAL at start) and records what they
  // mean in the catalog: tags become points, resync completions update disks.
  Status ApplyRecords(const std::vector<apply::WalRecord>& records);
  Status RecoverFromWal();
  // kAlreadyExists when `name` already names a point or an unapplied tag at
  // another seq than `seq`.
  Status CheckTagName(const std::string& name, uint64_t seq);
  // After every applied batch and every piece of a long discard (apply
  // thread): every 64th step, prune the stream's retention (policy.h).
  Status Housekeeping();
  // Before a batch of `bytes` is applied: prunes when the volume is low and
  // returns why applying must wait ("" = go ahead). Updates the space alert.
  std::string SpaceHold(uint64_t bytes);
  // Free bytes a batch of `bytes` needs before it is applied: its
  // before-images (at most its size, plus headers) and a new undo segment.
  uint64_t RoomFor(uint64_t bytes) const;
  // Before-image bytes a record captures before its first target write: its
  // length, but for a long discard one piece (applier discard_piece_bytes) —
  // it is applied piece by piece, each captured, written and followed by a
  // prune pass (Housekeeping), so it needs room for one piece at a time.
  uint64_t CaptureBytes(const apply::WalRecord& r) const;
  // Queues a copy of records read from the WAL at start (applying held).
  void QueueCopy(const std::vector<apply::WalRecord>& records);
  void Fail(const Status& s);

  retention::RetentionStore& store_;
  shim::Clock& clock_;
  const uint64_t stream_;
  const std::string name_;
  std::map<uint32_t, shim::BlockDevice*> disks_;
  const RuntimeOptions o_;
  retention::Journal* wal_ = nullptr;
  retention::Journal* undo_ = nullptr;
  std::unique_ptr<apply::CheckpointSink> checkpoint_;
  std::unique_ptr<apply::Applier> applier_;
  shim::BusySince apply_busy_;  // the apply thread, from taking a batch to its end

  std::mutex ingest_mu_;  // serializes Ingest (frames stay in seq order)
  mutable std::mutex mu_;
  std::condition_variable apply_cv_;  // apply thread: work arrived / stopping
  std::condition_variable idle_cv_;   // WaitApplied: progress
  std::string holder_;                // attached session ("" = none)
  std::unique_ptr<stream::StreamValidator> validator_;
  // Durable items not yet applied, in seq order; frames keep their payloads alive.
  struct Pending {
    std::shared_ptr<const stream::Frame> frame;
    std::vector<apply::WalRecord> records;
  };
  std::deque<Pending> queue_;
  uint64_t pending_bytes_ = 0;  // payload bytes in queue_ (the WAL's unapplied data)
  // Tags in the WAL not yet applied (not yet points in the catalog): name -> seq.
  std::map<std::string, uint64_t> unapplied_tags_;
  uint64_t durable_seq_ = 0;
  uint64_t applied_seq_ = 0;
  int64_t applied_time_ns_ = 0;
  int64_t last_app_point_ns_ = 0;
  uint64_t bytes_ingested_ = 0;
  std::string space_alert_;   // why applying is held ("" = it is not)
  std::string prune_alert_;   // points a low-space prune dropped, and when
  int64_t prune_alert_ns_ = 0;
  bool space_held_ = false;   // applying waits for space
  bool space_low_ = false;    // the volume was low at the last check
  uint64_t wal_unwritten_ = 0;  // estimated WAL bytes appended, commit not done
  bool stopping_ = false;
  std::atomic<bool> stop_requested_{false};  // stopping_, for the test hook's unlocked loop
  uint64_t applied_steps_ = 0;  // apply thread only (Housekeeping)
  Status failed_;
  std::thread apply_thread_;
};

}  // namespace mt::daemon
