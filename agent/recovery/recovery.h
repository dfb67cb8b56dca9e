// Recovery operations on a stream's retention (architecture §5): naming a
// point, rolling targets back to it in place, exporting a disk at a point,
// and the common point of a replication group.
//
// A point is a stream sequence number p: the state after every write <= p.
// It is reachable when every write after p that was applied has its
// before-image in the undo journal, i.e. oldest_point <= p <= applied_seq.
// Rebuilding p = current target + undo records with seq > p, newest first
// (invariant 5).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "retention/catalog.h"
#include "retention/journal.h"
#include "retention/scrub.h"
#include "mt/shim/block_device.h"
#include "mt/shim/file_system.h"

namespace mt::recovery {

// A time in ns since the epoch as RFC 3339 UTC ("2026-11-27T10:15:00Z");
// `none` when ns <= 0 (not known).
std::string UtcTime(int64_t ns, const char* none = "");

// What the operator may write for a point: "latest", "latest-app", "seq:N",
// a time ("2026-11-27T10:15:00Z" in UTC, or "@<unix seconds>"), or a tag name.
struct PointSelector {
  enum class Kind { kLatest, kLatestApp, kSeq, kTime, kTag } kind = Kind::kLatest;
  uint64_t seq = 0;
  int64_t time_ns = 0;
  std::string tag;
};
Result<PointSelector> ParsePointSelector(const std::string& text);

// What recovery needs to know about a stream right now.
struct StreamView {
  uint64_t stream = 0;
  uint64_t applied_seq = 0;                      // the checkpoint
  std::vector<retention::SegmentInfo> undo;      // durable undo segments, oldest first
  // Undo segments the scrub found damaged (retention/scrub.h): a point
  // before the last seq of one is refused (reaching it reads that segment).
  std::vector<retention::DamagedSegment> damaged;
};

// Oldest reachable point (see above).
uint64_t OldestPoint(const StreamView& v);

struct ResolvedPoint {
  uint64_t seq = 0;
  int64_t time_ns = 0;       // source time of write `seq` (0 when unknown)
  std::string description;   // "tag 'app-3' (app) at seq 120", "seq 99", ...
};

// Resolves a selector. A time resolves to the last applied write with source
// time <= T (found through the undo records, segment time ranges first). Out
// of the window, unknown tag, or a time before the window: kNotFound / kOutOfRange
// with the window in the message.
Result<ResolvedPoint> ResolvePoint(retention::Catalog& catalog, shim::FileSystem& fs,
                                   const StreamView& view, const PointSelector& selector);

// Durable progress of a rollback, so that it resumes after a crash.
struct RollbackProgress {
  uint64_t to_seq = 0;       // the point being rolled back to
  uint64_t done_above = 0;   // undo records with seq >= done_above are applied and flushed (0: none)
};
class ProgressStore {
 public:
  virtual ~ProgressStore() = default;
  virtual Result<std::optional<RollbackProgress>> Load() = 0;
  virtual Status Save(const RollbackProgress& p) = 0;
  virtual Status Clear() = 0;
};
// A small file replaced atomically through the FileSystem.
class FileProgressStore : public ProgressStore {
 public:
  FileProgressStore(shim::FileSystem& fs, std::string path) : fs_(fs), path_(std::move(path)) {}
  Result<std::optional<RollbackProgress>> Load() override;
  Status Save(const RollbackProgress& p) override;
  Status Clear() override;

 private:
  shim::FileSystem& fs_;
  std::string path_;
};

using ProgressFn = std::function<void(uint64_t bytes_done, uint64_t bytes_total)>;

// Rolls `disks` (disk index -> target; a subset rolls back only those disks)
// back to `to_seq` in place: undo records with seq > to_seq are written onto
// the targets newest first; targets are flushed and progress saved every
// `flush_every_bytes`; the progress is cleared at the end. Resumable: called
// again after a crash (with the same to_seq) it continues where the saved
// progress says. REQUIRES: applying to these targets is stopped.
Status Rollback(shim::FileSystem& fs, const std::vector<retention::SegmentInfo>& undo,
                const std::map<uint32_t, shim::BlockDevice*>& disks, uint64_t to_seq,
                ProgressStore& progress, const ProgressFn& on_progress = {},
                uint64_t flush_every_bytes = 64ull << 20);

// Writes disk `disk` as it was at `at_seq` to `out` (a file or device at
// least as large): a full copy of `source`, then the undo records with seq >
// at_seq of that disk, newest first; then flush. Target and retention are only
// read. Restartable from scratch (a crash leaves `out` to be rewritten).
// REQUIRES: applying to `source` is paused while it runs.
Status Export(shim::FileSystem& fs, const std::vector<retention::SegmentInfo>& undo,
              shim::BlockDevice& source, uint32_t disk, uint64_t at_seq, shim::BlockDevice& out,
              const ProgressFn& on_progress = {});

// Writes onto `out` the before-images of disk `disk` recorded after `at_seq`,
// newest first, then flushes: an `out` that holds the disk's image as of the
// newest undo record (or later: the target itself) then holds the disk at
// `at_seq`. Export does it after its full copy; a vsnap on its snapshot
// device. Progress counts from `done_before` to `total` (0: done_before plus
// the undo bytes). Only reads the retention.
Status OverlayUndo(shim::FileSystem& fs, const std::vector<retention::SegmentInfo>& undo,
                   uint32_t disk, uint64_t at_seq, shim::BlockDevice& out,
                   const ProgressFn& on_progress = {}, uint64_t done_before = 0,
                   uint64_t total = 0);

// The common point of a group: the newest group tag id present in every
// stream of the group (optionally only app-consistent tags), with each
// stream's seq for it; with `only_id`, that group tag id instead of the
// newest. kNotFound when the group has no stream or no shared tag (or not
// `only_id` in every stream).
struct GroupPoint {
  std::string group_tag_id;
  std::map<uint64_t, retention::PointRow> per_stream;  // stream id -> its point
};
Result<GroupPoint> CommonPoint(retention::Catalog& catalog, const std::string& group,
                               bool app_only, const std::string& only_id = "");

}  // namespace mt::recovery
