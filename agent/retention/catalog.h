// Catalog: the SQLite index of a retention store — streams and their disks
// (pairs), journal segments, recovery points (tags), per-disk checkpoints and
// policies. Schema and versioning: docs/formats/catalog.md.
//
// The journal segments are the truth; the catalog indexes them so lookups by
// seq, time and tag name are indexed queries, never scans. Every method is one
// transaction, and Transact makes several changes one; durability is SQLite's
// (journal_mode=WAL, synchronous=FULL): a change that returned ok survives a
// power loss.
// Thread safety: one Catalog object may be used from several threads (calls
// are serialized inside). Several processes may open the same file (the daemon
// writing, mtctl reading); a lock held by another process is waited for up to
// 5 s, then kBusy.
//
// Values: every uint64 (ids, seqs, sizes) is stored as an SQLite INTEGER, so it
// must be < 2^63; a write of a larger value is kInvalidArgument (UINT64_MAX as a
// query bound is fine: it means "no bound"). Timestamps are int64 ns.
// Errors: a taken name/target is kAlreadyExists naming it; a row that refers to a
// stream that does not exist is kNotFound; a file that is not an SQLite
// database, is not ours, or holds an invalid row is kCorruption naming the file
// (and the table); SQLite/OS failures are kIoError, kNoSpace, kBusy, ....
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mt/shim/status.h"
#include "retention/record_format.h"

struct sqlite3;

namespace mt::retention {

inline constexpr int kCatalogSchemaVersion = 2;

// What to do when the retention volume runs low on space.
enum class FullAction { kPrune, kStop };
const char* FullActionName(FullAction a);
Result<FullAction> ParseFullAction(const std::string& s);

// A stream's state; stored by name in streams.state (docs/formats/catalog.md).
enum class StreamState { kProtected, kPaused, kFailed, kCommitted };
// "protected", "paused", "failed", "committed"; "unknown" out of range.
const char* StreamStateName(StreamState s);
// kInvalidArgument for any other text.
Result<StreamState> ParseStreamState(std::string_view s);

// A disk's resync state; stored by name in disks.resync_state.
enum class ResyncState { kPending, kRunning, kComplete };
// "pending", "running", "complete"; "unknown" out of range.
const char* ResyncStateName(ResyncState s);
Result<ResyncState> ParseResyncState(std::string_view s);

struct StreamRow {
  uint64_t id = 0;              // assigned by AddStream
  std::string name;             // unique, operator-chosen (e.g. source VM name)
  std::string group;            // replication group, may be empty
  int64_t created_ns = 0;
  StreamState state = StreamState::kProtected;
  std::string error;            // why it is failed, empty otherwise
};

struct DiskRow {
  uint64_t stream = 0;
  uint32_t disk = 0;            // index inside the stream (the frames' disk index)
  std::string target_id;        // normalized WWID (naa....) or allowed non-SCSI identity
  std::string target_device;    // device path when last seen (informational)
  std::string source_disk_id;   // the source machine's name for the disk
  uint64_t size_bytes = 0;
  uint32_t block_size = 512;
  ResyncState resync_state = ResyncState::kPending;
  uint64_t resync_complete_seq = 0;      // first recovery point of the disk (kept by a repeated resync)
  bool target_blank = false;    // declared blank (all zeros) at pair add (schema 2)
};

struct SegmentRow {
  uint64_t stream = 0;
  SegmentKind kind = SegmentKind::kWal;
  uint64_t number = 0;
  std::string file;             // path relative to the store root
  uint64_t first_seq = 0, last_seq = 0;     // of the records it holds (0,0: none yet)
  int64_t first_time_ns = 0, last_time_ns = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;           // file bytes
  uint64_t logical_bytes = 0;   // sum of record lengths (before compression)
  bool sealed = false;          // no more records will be appended
};

struct PointRow {
  uint64_t stream = 0;
  uint64_t seq = 0;             // the point is the state after every write <= seq
  int64_t time_ns = 0;
  TagKind kind = TagKind::kApp;
  std::string name;             // unique inside the stream
  std::string group_tag_id;     // shared by the streams of a group, may be empty
};

struct CheckpointRow {
  uint64_t stream = 0;
  uint32_t disk = 0;
  uint64_t applied_seq = 0;     // every write <= applied_seq is flushed on the target
  int64_t applied_time_ns = 0;  // source time of that write
  int64_t updated_ns = 0;
};

// What one applied batch means for the catalog, recorded in one transaction
// (Catalog::RecordBatch): the recovery points of its tags, the disks whose
// resync it completed, and the stream's checkpoint (one row per disk, all at
// applied_seq).
struct BatchRecord {
  uint64_t stream = 0;
  std::vector<PointRow> points;
  std::vector<std::pair<uint32_t, uint64_t>> resync_completed;  // disk, seq of its completion
  std::vector<uint32_t> disks;  // the checkpoint rows to set
  uint64_t applied_seq = 0;
  int64_t applied_time_ns = 0;
  int64_t updated_ns = 0;
};

struct PolicyRow {
  uint64_t stream = 0;
  int64_t window_ns = 24LL * 3600 * 1'000'000'000;
  int64_t rpo_threshold_ns = 15LL * 60 * 1'000'000'000;
  int64_t app_frequency_ns = 60LL * 60 * 1'000'000'000;
  FullAction full_action = FullAction::kPrune;
};

class Catalog {
 public:
  class Transaction;

  // Opens (creating and migrating the schema when writable) the catalog file.
  // A file from a newer schema version is refused with a clear error
  // (kUnavailable). OpenReadOnly never creates or migrates: a missing file is
  // kNotFound, an older schema version kUnavailable; every write through a
  // read-only Catalog fails with kPermissionDenied.
  static Result<std::unique_ptr<Catalog>> Open(const std::string& path);
  static Result<std::unique_ptr<Catalog>> OpenReadOnly(const std::string& path);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // Streams and their disks.
  // Returns the new id; row.id is ignored. Ids are never reused, even after
  // RemoveStream. kAlreadyExists on a taken name.
  Result<uint64_t> AddStream(const StreamRow& row);
  Result<std::optional<StreamRow>> FindStream(const std::string& name);
  Result<std::optional<StreamRow>> GetStream(uint64_t id);
  Result<std::vector<StreamRow>> ListStreams();
  // kNotFound if there is no such stream.
  Status SetStreamState(uint64_t id, StreamState state, const std::string& error);
  // Removes the stream and every row that belongs to it (disks, segments,
  // points, checkpoints, policy). kNotFound if there is no such stream.
  Status RemoveStream(uint64_t id);
  // kAlreadyExists if the stream already has that disk index or the target
  // belongs to any disk; kNotFound if the stream does not exist.
  Status AddDisk(const DiskRow& row);
  // Rewrites every field of the disk (row.stream, row.disk); kNotFound if absent.
  Status UpdateDisk(const DiskRow& row);
  Result<std::vector<DiskRow>> ListDisks(uint64_t stream);
  // The stream and disk a target identity belongs to, if any.
  Result<std::optional<DiskRow>> FindDiskByTarget(const std::string& target_id);

  // Segments.
  Status UpsertSegment(const SegmentRow& row);
  // A no-op if the segment is not there (pruning is resumable).
  Status RemoveSegment(uint64_t stream, SegmentKind kind, uint64_t number);
  // Ordered by number.
  Result<std::vector<SegmentRow>> ListSegments(uint64_t stream, SegmentKind kind);

  // Recovery points (tags).
  Status AddPoint(const PointRow& row);  // kAlreadyExists if the name is taken in the stream
  // Points with after_seq < seq <= before_seq, ordered by seq (several points
  // at one seq: in the order they were added).
  Result<std::vector<PointRow>> ListPoints(uint64_t stream, uint64_t after_seq = 0,
                                           uint64_t before_seq = UINT64_MAX);
  Result<std::optional<PointRow>> FindPoint(uint64_t stream, const std::string& name);
  // Newest point (of `kind`, if given) with seq <= max_seq.
  Result<std::optional<PointRow>> LatestPoint(uint64_t stream, std::optional<TagKind> kind,
                                              uint64_t max_seq = UINT64_MAX);
  // Newest point (of `kind`, if given) with time_ns <= time_ns; among points
  // with the same time, the one with the highest seq.
  Result<std::optional<PointRow>> LatestPointAtTime(uint64_t stream, int64_t time_ns,
                                                    std::optional<TagKind> kind = std::nullopt);
  // Every point carrying this group tag id, any stream, ordered by stream then
  // seq. An empty id matches nothing.
  Result<std::vector<PointRow>> PointsWithGroupTag(const std::string& group_tag_id);
  // Drops points with seq < seq (they fell out of the window).
  Status RemovePointsBefore(uint64_t stream, uint64_t seq);
  // Drops points with seq > seq (a rollback made them unreachable).
  Status RemovePointsAfter(uint64_t stream, uint64_t seq);

  // Checkpoints.
  Status SetCheckpoint(const CheckpointRow& row);
  // One applied batch, all or nothing (one transaction): a crash leaves
  // either the checkpoint before the batch and none of its rows, or all of
  // them. Idempotent, as a batch applied again after a restart needs: a point
  // whose name is already stored in the stream is left as it is, a disk
  // whose resync is already complete keeps its completion seq.
  Status RecordBatch(const BatchRecord& batch);
  // A resync on demand: the disks' resync state becomes pending again, all
  // of them or none (kNotFound names a disk the stream does not have). Their
  // resync_complete_seq is kept, and a later completion keeps it too
  // (RecordBatch): a repeated resync records before-images, so the points
  // after the first completion stay reachable.
  Status RequireResync(uint64_t stream, const std::vector<uint32_t>& disks);
  Result<std::optional<CheckpointRow>> GetCheckpoint(uint64_t stream, uint32_t disk);
  // The stream's checkpoint: the lowest of its disks' rows (they move together
  // in RecordBatch; a disk without a row counts as seq 0), read in one
  // transaction. The one place that says how far a stream is applied.
  // nullopt when the stream has no disks (or does not exist).
  Result<std::optional<CheckpointRow>> StreamCheckpoint(uint64_t stream);

  // Several changes as one transaction: `body` makes them through the
  // Transaction it is given; they are committed together when it returns ok
  // and rolled back otherwise, so a crash leaves all of them or none. The
  // catalog's lock is held while body runs: body must not call this Catalog
  // (it would wait on itself) nor wait on other threads. Body may run twice
  // (SetSpaceReserve: after a first run whose changes were rolled back for
  // want of space): it makes its changes through the Transaction only. `what` names the
  // change in errors ("finish the rollback of stream 3").
  Status Transact(std::string_view what, const std::function<Status(Transaction&)>& body);

  // Policy (defaults of PolicyRow when none was set; kNotFound if the stream
  // does not exist).
  Status SetPolicy(const PolicyRow& row);
  Result<PolicyRow> GetPolicy(uint64_t stream);

  // The catalog's space reserve on the retention volume (RetentionStore keeps
  // it as a preallocated file): when a write fails for want of space
  // (kNoSpace), `release` is called; if it gave space back (true) the write
  // runs once more. So when the volume fills, the catalog is not what fails:
  // the journals are refused first (RetentionJanitor). Set before the
  // catalog is used from other threads.
  void SetSpaceReserve(std::function<bool()> release);

 private:
  explicit Catalog(sqlite3* db);
  template <typename F>
  auto WithReserve(F&& write) -> decltype(write());
  Result<uint64_t> AddStreamOnce(const StreamRow& row);
  Status SetStreamStateOnce(uint64_t id, StreamState state, const std::string& error);
  Status RemoveStreamOnce(uint64_t id);
  Status AddDiskOnce(const DiskRow& row);
  Status UpdateDiskOnce(const DiskRow& row);
  Status UpsertSegmentOnce(const SegmentRow& row);
  Status RemoveSegmentOnce(uint64_t stream, SegmentKind kind, uint64_t number);
  Status AddPointOnce(const PointRow& row);
  Status RemovePointsBeforeOnce(uint64_t stream, uint64_t seq);
  Status RemovePointsAfterOnce(uint64_t stream, uint64_t seq);
  Status SetCheckpointOnce(const CheckpointRow& row);
  Status RecordBatchOnce(const BatchRecord& b);
  Status RequireResyncOnce(uint64_t stream, const std::vector<uint32_t>& disks);
  Status TransactOnce(std::string_view what, const std::function<Status(Transaction&)>& body);
  Status SetPolicyOnce(const PolicyRow& row);
  struct Impl;  // catalog.cc: connection, statement cache, mutex
  std::unique_ptr<Impl> impl_;
  std::function<bool()> release_reserve_;
};

// The changes a Catalog::Transact body may make; each behaves as the Catalog
// method of the same name. Exists only inside Transact's call.
class Catalog::Transaction {
 public:
  Status UpsertSegment(const SegmentRow& row);
  Status RemoveSegment(uint64_t stream, SegmentKind kind, uint64_t number);
  Status RemovePointsBefore(uint64_t stream, uint64_t seq);
  Status RemovePointsAfter(uint64_t stream, uint64_t seq);
  Status SetCheckpoint(const CheckpointRow& row);

 private:
  friend class Catalog;
  explicit Transaction(Impl* impl) : impl_(impl) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Impl* impl_;
};

}  // namespace mt::retention
