// Journal: an append-only sequence of segment files (the WAL or the undo
// journal of one stream) with group commit.
//
//   Append(record)  ─▶ encoded into the open batch (memory)
//   Commit(done)    ─▶ the committer takes the whole open batch, writes it
//                      (O_DIRECT, block-aligned), fdatasyncs once, then calls every
//                      `done` whose records it covered: many records, one sync.
//
// Durability contract: done(ok) is called only after every record appended
// before the Commit call is durable. Batches are written and synced strictly one
// after another (batch k is synced before batch k+1 is written), which is what
// lets recovery tell a torn tail from corruption (segment_reader.h).
// Records never span segments; a segment rolls over when the next record would
// take it past segment_bytes (one oversized record still fits in an empty one).
// After a write or sync error the journal is failed: every later call returns
// that error; reopen it to recover.
// The committer is a strand of a WorkerPool (worker_pool.h): the agent's
// journals share a few threads, one batch per run; a journal opened without
// a pool has one thread of its own.
// Thread safety: all public methods may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mt/shim/aligned_buffer.h"
#include "mt/shim/busy_since.h"
#include "mt/shim/clock.h"
#include "mt/shim/file_system.h"
#include "mt/shim/thread_annotations.h"
#include "retention/record_format.h"
#include "retention/segment_index.h"
#include "retention/worker_pool.h"

namespace mt::retention {

struct JournalOptions {
  SegmentKind kind = SegmentKind::kWal;
  uint64_t stream = 0;
  std::string dir;                       // segment files: <kind>-<number:016>.seg
  uint64_t segment_bytes = 256ull << 20;
  size_t max_batch_bytes = 16u << 20;    // a batch is sealed when this full
  // When a batch is full while another sealed one waits for the committer:
  // true, Append waits (the undo journal: its one writer, the apply thread,
  // may wait); false, Append seals it anyway and never waits (the WAL: it is
  // appended from a network thread, and its caller bounds the bytes not yet
  // committed: StreamRuntime throttles the session past wal_unwritten_limit).
  bool append_waits = true;
  bool direct = true;                    // O_DIRECT writes
  // Reserve the segment's space ahead of the writer, preallocate_step bytes
  // at a time (never past segment_bytes): writes then land in reserved
  // extents, and an idle journal holds at most one step it has not written
  // (a whole segment per journal would fill a volume shared by many streams).
  bool preallocate = true;
  uint64_t preallocate_step = 16ull << 20;
  // Group-commit buffers are kept while records keep coming and given back
  // (all but one small one) once nothing was appended for this long. Not at
  // the first moment the open batch is empty: under load that happens after
  // most batches, and buffers given back then are allocated and page-faulted
  // in afresh for the next burst.
  std::chrono::milliseconds idle_release_after{1000};
  // The threads the committer runs on, shared with other journals; null: a
  // pool of one thread of the journal's own. REQUIRES: outlives the journal.
  // A committer never waits for another journal's committer, but the WAL's
  // before-write hook waits for target writes, which wait for the undo
  // journal: WAL and undo journals take different pools.
  WorkerPool* committers = nullptr;
};

struct SegmentInfo {
  uint64_t number = 0;
  std::string path;
  uint64_t first_seq = 0, last_seq = 0;   // 0, 0 while it holds no record
  int64_t first_time_ns = 0, last_time_ns = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;          // durable file bytes (end of the last durable record)
  uint64_t logical_bytes = 0;  // sum of record `length`s
  uint64_t stored_bytes = 0;   // sum of stored payload bytes
  bool sealed = false;         // a newer segment exists
  // Its first record continues (kFlagContinued) the item of the previous
  // segment's last record: the state before first_seq is not reachable from
  // this segment on (OldestReachablePoint).
  bool first_continues = false;
  int64_t created_ns = 0;      // from the segment header
  // seq -> offset entries (segment_index.h), for readers that start past the
  // first record; null when unknown (a reader then scans from the start).
  IndexEntries index;
};

struct RecoveryReport {
  size_t segments = 0;
  uint64_t records = 0;
  uint64_t last_seq = 0;
  uint64_t truncated_bytes = 0;  // torn tail cut from the newest segment
  std::string torn_reason;       // why the torn record was bad
  bool removed_empty_segment = false;  // newest segment had no valid header (crash at creation)
  size_t indexed_segments = 0;   // sealed segments taken from their index file, not scanned
};

std::string SegmentFileName(SegmentKind kind, uint64_t number);

// Reads a journal directory without changing it (recovery tools, verify)
// while nobody appends to it, as Journal::Open does: a sealed segment with a
// matching index file is taken from it, every other one is scanned; a torn
// tail of the newest segment is left out of its `bytes`, not truncated; a
// newest segment without a valid header is skipped. kCorruption as Open. A
// missing directory is an empty journal. Readers of the records (ForEachRecord)
// check every record they read.
Result<std::vector<SegmentInfo>> ReadJournalSegments(shim::FileSystem& fs, const std::string& dir,
                                                     SegmentKind kind);

class Journal {
 public:
  // Opens the journal in o.dir (created if missing). The newest segment is
  // scanned whole (every header and payload CRC): a torn tail is truncated
  // (durably) and described in `report`. A sealed segment is taken from its
  // index file when one matches it (segment_index.h): its header is read and
  // checked, its records are not — so opening takes the same time whatever
  // the journal holds. A sealed segment without a matching index is scanned
  // whole and its index written. Corruption found on the way fails with
  // kCorruption naming file and offset; damage inside an indexed sealed
  // segment is found by whoever reads its records (ForEachRecord checks every
  // record it reads: rollback, export, vsnap, mtctl verify, the scrub).
  static Result<std::unique_ptr<Journal>> Open(shim::FileSystem& fs, shim::Clock& clock,
                                               const JournalOptions& o, RecoveryReport* report);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Adds a record to the open batch. REQUIRES SeqFollows(last appended seq,
  // h) (kInvalidArgument otherwise); a discard stores nothing (len 0), any
  // other record at most kMaxPayload bytes of length. h.batch is set here; h.payload_crc
  // too, unless `crc` is kVerified: then h.payload_crc is the payload's CRC32C,
  // already checked by the caller (EncodeRecordWithVerifiedCrc).
  enum class PayloadCrc { kCompute, kVerified };
  Status Append(RecordHeader h, const void* payload, size_t len,
                PayloadCrc crc = PayloadCrc::kCompute);
  // Asks for durability of everything appended so far; `done` runs on the
  // committer thread (or inline when nothing is pending) with the outcome.
  // Callbacks of successive Commit()s run in the order of the calls (the
  // WAL's callbacks hand items to the applier, which needs seq order).
  void Commit(std::function<void(const Status&)> done);
  // In-place resync data (kFlagInPlace, docs/formats/journal.md): the
  // record stores nothing; its data is written to the target by the
  // before-write hook, which the committer runs (not under the journal's
  // lock) before it writes a batch that holds such records, with their
  // headers and data: it must write them and make them durable (flush the
  // targets). Its error fails the journal as a write error does. Set it
  // before appending such a record (a batch of them without it fails with
  // kInternal).
  struct InPlaceData {
    RecordHeader h;
    const uint8_t* data;  // h.length bytes
  };
  using BeforeWrite = std::function<Status(const std::vector<InPlaceData>&)>;
  void SetBeforeWrite(BeforeWrite before_write);
  // Appends resync data `h` as a kFlagInPlace record (the flag is set here).
  // REQUIRES: `data` stays valid until a Commit() covering the record has
  // called back.
  Status AppendInPlace(RecordHeader h, const uint8_t* data);
  // Commit and wait.
  Status Sync();
  // Syncs what is pending and stops the committer. Idempotent.
  Status Close();

  uint64_t last_appended_seq() const;
  uint64_t durable_seq() const;
  // How long the committer has been writing its current batch (0: waiting
  // for work). Liveness: a write + fdatasync that never returns shows here.
  int64_t CommitBusyForNs() const { return commit_busy_.BusyForNs(); }
  // Header of the newest durable record (seq 0 when there is none): restart
  // recovery learns from it how much of a long discard's before-image is kept.
  RecordHeader last_durable_record() const;
  Status status() const;  // ok, or the error that failed the journal
  // Durable state of every segment, oldest first.
  std::vector<SegmentInfo> Segments() const;
  // Deletes a sealed segment file (pruning / WAL trimming). kInvalidArgument
  // for the newest segment.
  Status RemoveSegment(uint64_t number);

  // Memory: a new batch's buffer is this big and grows (doubling) as records
  // are appended; under load the grown buffers are reused (at most three
  // live: open, sealed, being written), and when the journal goes idle they
  // are released, so an idle journal holds one buffer of this size.
  static constexpr size_t kFirstBatchBufferBytes = 256u << 10;
  // Bytes of batch buffers the journal holds now.
  size_t HeldBufferBytes() const;

 private:
  struct Batch;
  Journal(shim::FileSystem& fs, shim::Clock& clock, JournalOptions o);
  Status Recover(RecoveryReport* report);
  std::unique_ptr<Batch> NewBatchAfter(const Batch* prev) MT_REQUIRES(mu_);
  // A batch buffer: the largest spare one, else kFirstBatchBufferBytes.
  AlignedBuffer TakeBufferLocked() MT_REQUIRES(mu_);
  std::unique_ptr<Batch> NewSegmentBatch(uint64_t first_seq) MT_REQUIRES(mu_);
  void SealOpenLocked() MT_REQUIRES(mu_);
  // One run of the committer: writes one ready batch (sealing the open one
  // when a Commit wants it) and wakes itself again while work is left.
  void CommitStep();
  // Idle: gives back the spare buffers and shrinks the open batch's.
  void ReleaseIdleBuffersLocked() MT_REQUIRES(mu_);
  bool HoldsIdleBuffersLocked() const MT_REQUIRES(mu_);
  // `seal`: for the first batch of a segment, the index file of the segment
  // before it, written (durably) before the new segment is created.
  Status WriteBatch(Batch& b, const std::optional<SegmentIndexFile>& seal);
  void FailLocked(const Status& s) MT_REQUIRES(mu_);

  shim::FileSystem& fs_;
  shim::Clock& clock_;
  const JournalOptions o_;

  mutable Mutex mu_;
  std::condition_variable space_cv_;  // appenders: the open batch has room again
  std::unique_ptr<Batch> open_ MT_GUARDED_BY(mu_);
  BeforeWrite before_write_ MT_GUARDED_BY(mu_);
  Status AppendRecord(RecordHeader h, const void* payload, size_t len, PayloadCrc crc,
                      const uint8_t* in_place_data);
  std::deque<std::unique_ptr<Batch>> ready_ MT_GUARDED_BY(mu_);  // sealed, to be written in order
  // by batch
  std::map<uint64_t, std::vector<std::function<void(const Status&)>>> waiters_ MT_GUARDED_BY(mu_);
  // The committer is running a batch's callbacks (outside mu_). A Commit()
  // that finds its records durable meanwhile queues its callback in late_,
  // which the committer runs after those: it must not overtake them.
  bool delivering_ MT_GUARDED_BY(mu_) = false;
  std::vector<std::function<void(const Status&)>> late_ MT_GUARDED_BY(mu_);
  std::map<uint64_t, SegmentInfo> segments_ MT_GUARDED_BY(mu_);  // durable state, by number
  uint64_t next_batch_ MT_GUARDED_BY(mu_) = 1;
  uint64_t next_segment_ MT_GUARDED_BY(mu_) = 1;
  uint64_t last_appended_seq_ MT_GUARDED_BY(mu_) = 0;
  uint64_t last_sealed_batch_ MT_GUARDED_BY(mu_) = 0;
  uint64_t durable_batch_ MT_GUARDED_BY(mu_) = 0;
  uint64_t durable_seq_ MT_GUARDED_BY(mu_) = 0;
  RecordHeader durable_last_ MT_GUARDED_BY(mu_);  // header of the newest durable record
  uint64_t durable_last_offset_ MT_GUARDED_BY(mu_) = 0;  // its offset in its segment
  // Index entries (segment_index.h) of the segment being appended: the offset
  // from which the next one is due.
  uint64_t next_index_at_ MT_GUARDED_BY(mu_) = 0;
  bool stopping_ MT_GUARDED_BY(mu_) = false;
  bool committer_done_ MT_GUARDED_BY(mu_) = false;  // stopping_ and nothing left to write
  std::condition_variable closed_cv_;  // Close(): committer_done_
  // When the committer last wrote a batch (idle_release_after counts from it).
  std::chrono::steady_clock::time_point last_write_ MT_GUARDED_BY(mu_);
  bool writing_ MT_GUARDED_BY(mu_) = false;
  shim::BusySince commit_busy_;  // the committer, while it writes a batch
  Status error_ MT_GUARDED_BY(mu_);
  std::vector<AlignedBuffer> spare_ MT_GUARDED_BY(mu_);  // written batches' buffers, for reuse
  std::unique_ptr<shim::File> file_;  // committer-only: the segment being written
  uint64_t file_segment_ = 0;
  uint64_t file_reserved_ = 0;  // committer-only: bytes of file_ preallocated (from 0)
  std::unique_ptr<WorkerPool> own_pool_;  // no JournalOptions::committers
  std::unique_ptr<WorkerPool::Strand> committer_;
};

}  // namespace mt::retention
