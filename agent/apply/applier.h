// Applier: writes a stream's acknowledged changes onto its target disks in
// sequence order while keeping every before-image in the undo journal, so that
// every point inside the retention window can be rebuilt (architecture §4).
//
// One Apply() call handles a batch of WAL records:
//
//   capture ──▶ undo Append ×n ──▶ undo Sync ──▶ target WriteAt ×n ──▶ Flush each
//   before-images                   (durable)     (O_DIRECT)           touched disk
//                                                                          │
//                                            checkpoint(applied_seq) ◀─────┘
//
// Invariants this class keeps (each has a named test in tests/unit/apply):
//  2. Undo before overwrite: no target write is issued before the undo
//     records of its whole batch are durable.
//  3. Checkpoint after flush: the checkpoint names a seq only after the target
//     writes it covers are flushed, and after what the batch leaves besides
//     data (CheckpointSink::BatchApplied) is stored.
//  4. Restart is exact: Recover() re-applies WAL records after the checkpoint,
//     reusing durable undo records (re-applying an after-image is idempotent)
//     and capturing the before-image otherwise.
//  5. Every point is exact: a write's before-image is the target content as
//     the earlier writes *of the same batch* left it (the classic trap).
//
// A long discard (longer than ApplierOptions::discard_piece_bytes; a discard
// may cover a whole disk) is applied on its own, between the records of its
// batch before and after it, piece by piece:
//
//   for each piece of ≤ discard_piece_bytes, in ascending offsets:
//     read before-image ─▶ undo Append (the first piece as the item's record,
//     the next ones with kFlagContinued, same seq) ─▶ undo Sync ─▶ write zeroes
//   then Flush ─▶ checkpoint(seq)
//
// so memory and each undo record stay bounded, the undo keeps one item = one
// seq, and every piece's before-image is durable before the piece is
// overwritten. A restart in the middle resumes after the last durable piece
// (Journal::last_durable_record): the pieces before it are zeroed again
// (idempotent), the rest captured.
// The caller guarantees the records are durable in the WAL (invariant 1) and
// that every disk handed in passed IsSafeTarget (the applier never opens a
// device itself).
// Not thread-safe: one applier per stream, driven by one thread — except
// ReadTarget(), which any thread may call: it reads a target ordered against
// the applier's target writes (a read never overlaps a write in flight, which
// BlockDevice does not allow), so a resync hash sees each block either before
// or after a write, never torn.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <vector>

#include "retention/compression.h"
#include "apply/io_pool.h"
#include "retention/journal.h"
#include "mt/shim/aligned_buffer.h"
#include "mt/shim/block_device.h"
#include "mt/shim/file_system.h"
#include "retention/record_format.h"

namespace mt::apply {

// A WAL record in memory: for kWrite/kResyncData, `data` holds h.length bytes
// (null when the record is a discard: the range becomes zeroes); for kTag the
// encoded TagPayload (h.stored_length bytes).
struct WalRecord {
  retention::RecordHeader h;
  const uint8_t* data = nullptr;
  // Its payload was left in the WAL (apply/memory_budget.h): data is null
  // until ApplyPipeline::ReadBack reads it from there.
  bool in_wal = false;
};

// Where the applied seq is recorded durably (catalog, or a file in tests).
class CheckpointSink {
 public:
  virtual ~CheckpointSink() = default;
  // Called once the batch's target writes are flushed, before Record(): what
  // the caller keeps about the batch besides the data (the catalog's recovery
  // points of its tags, a resync completing) is stored here. A crash between
  // the two leaves the checkpoint before the batch, so the batch is applied
  // again after the restart and this is called again: it must be idempotent.
  // (Stored after the checkpoint instead, it would be lost by such a crash.)
  // A sink may also hold what it notes here and store it with the checkpoint
  // in Record(), atomically (the daemon's CatalogCheckpoint does): Record()
  // always follows BatchApplied() for the same batch.
  virtual Status BatchApplied(const std::vector<WalRecord>& batch) { return Status::Ok(); }
  virtual Status Record(uint64_t applied_seq, int64_t applied_time_ns) = 0;
  // Called after each piece of a long discard is written (its undo durable):
  // `done` of `total` bytes. The owner may run its retention housekeeping
  // here (pruning, low-space rules), as it does between batches: a long
  // discard's before-images take undo space like any write. A non-ok return
  // stops the discard; a restart resumes it.
  virtual Status PieceApplied(uint64_t seq, uint64_t done, uint64_t total) { return Status::Ok(); }
};

struct ApplierOptions {
  bool retention = true;  // keep before-images (off: replication without point-in-time)
  bool compress = true;   // zstd for undo payloads
  int zstd_level = 1;
  // Target reads and writes of one batch kept in flight at once (1: one
  // after the other). Before-images are read concurrently; target writes
  // only when no two data records of the batch overlap on a disk (else in
  // order). Invariants 2, 3 and 5 are unchanged: every read of a batch ends
  // before its undo is written, every write starts after the undo is
  // durable and ends before the flush.
  size_t io_depth = 1;
  // With io_depth > 1: the pool that runs the tasks (the agent's one pool,
  // shared by every stream; it must outlive the applier). None: the applier
  // makes its own of io_depth threads (tests, tools).
  IoPool* shared_pool = nullptr;
  // A discard longer than this is applied alone, in pieces of this size
  // (a multiple of 4096): the before-image buffer and each undo record.
  uint64_t discard_piece_bytes = 16u << 20;
};

// Reads the WAL records with seq >= from_seq, in batches of at most
// `batch_records` and at most `batch_bytes` of data (a single larger record
// is a batch of its own), as the live path batches, and hands each batch to
// `apply` (restart recovery). The batch's payloads (and the before-images
// `apply` reads for them) are bounded that way; they live until `apply`
// returns.
Status ForEachWalBatch(shim::FileSystem& fs, const std::vector<retention::SegmentInfo>& wal,
                       uint64_t from_seq, size_t batch_records, uint64_t batch_bytes,
                       const std::function<Status(const std::vector<WalRecord>&)>& apply);

class Applier {
 public:
  // REQUIRES: `undo` (may be null when !options.retention), the disks and the
  // sink outlive the applier. `disks`: disk index -> target device.
  Applier(retention::Journal* undo, std::map<uint32_t, shim::BlockDevice*> disks,
          CheckpointSink* checkpoint, uint64_t applied_seq, ApplierOptions options = {});

  // Applies the records, in order. REQUIRES: seqs strictly increasing and all
  // greater than applied_seq(). On error nothing later is applied; the caller
  // fails the pair and restart recovery (Recover) repairs what was half done.
  Status Apply(const std::vector<WalRecord>& batch);

  // Restart recovery: re-applies every record of the WAL segments with seq >
  // applied_seq(), in batches of at most `batch_records`.
  Status Recover(shim::FileSystem& fs, const std::vector<retention::SegmentInfo>& wal,
                 size_t batch_records = 256);

  // Reads a target range while no target write of this applier is in
  // flight (see the class comment). Any thread. The offset, length and
  // buffer follow the BlockDevice I/O contract.
  Status ReadTarget(uint32_t disk, uint64_t offset, void* buf, size_t len);
  // Writes a target range (in-place resync data, kFlagInPlace) while no
  // target write or ReadTarget of this applier is in flight. Any thread.
  // REQUIRES: no unapplied record of the disk overlaps the range (the caller
  // orders it: StreamRuntime waits for the disk's unapplied writes). The
  // data need not be aligned (it is copied if it is not).
  Status WriteTarget(uint32_t disk, uint64_t offset, const uint8_t* data, size_t len);

  // Gives back the buffers kept between batches (before-images, bounce
  // buffers: up to a batch's bytes each). Call from the applying thread only,
  // between Apply() calls; the next batch allocates them again.
  void ReleaseBuffers() {
    before_bufs_.clear();
    bounce_bufs_.clear();
  }
  size_t HeldBufferBytes() const {
    size_t n = 0;
    for (const auto& b : before_bufs_) n += b.size();
    for (const auto& b : bounce_bufs_) n += b.size();
    return n;
  }

  uint64_t applied_seq() const { return applied_seq_; }
  uint64_t bytes_applied() const { return bytes_applied_; }

 private:
  struct Planned;
  // Apply() of records none of which is a long discard.
  Status ApplyBatch(const std::vector<WalRecord>& batch);
  bool IsLongDiscard(const retention::RecordHeader& h) const;
  Status ApplyLongDiscard(const WalRecord& r);
  Status CaptureBeforeImages(const std::vector<WalRecord>& batch, std::vector<Planned>& plan);
  Status WriteTargets(const std::vector<Planned>& plan);
  Result<shim::BlockDevice*> Disk(uint32_t index, uint64_t seq);
  // Runs tasks 0..n-1: on the pool when io_depth > 1, else in order here.
  Status RunIo(size_t n, const std::function<Status(size_t)>& task);
  // The i-th reusable aligned buffer, at least `len` bytes.
  uint8_t* Buffer(std::vector<AlignedBuffer>& bufs, size_t i, size_t len);

  retention::Journal* undo_;
  std::map<uint32_t, shim::BlockDevice*> disks_;
  CheckpointSink* checkpoint_;
  uint64_t applied_seq_;
  ApplierOptions o_;
  retention::PayloadEncoder encoder_;
  uint64_t bytes_applied_ = 0;
  std::unique_ptr<IoPool> own_pool_;  // io_depth > 1 and no shared_pool
  IoPool* pool_ = nullptr;            // io_depth > 1: shared_pool or own_pool_
  // Held exclusively while target writes are in flight (WriteTargets, each
  // piece of a long discard), shared by ReadTarget.
  std::shared_mutex target_writes_mu_;
  // Reused across batches (no allocation, no page faults per batch).
  std::vector<AlignedBuffer> before_bufs_, bounce_bufs_;
};

}  // namespace mt::apply
