// Recovery operations at the level of a retention store, for a stream that is
// not being applied (paused in the daemon, or no daemon running): loading
// what recovery needs, and bringing the store back in line with the targets
// after a rollback.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "retention/catalog.h"
#include "retention/journal.h"
#include "mt/shim/file_system.h"
#include "recovery/recovery.h"

namespace mt::recovery {

struct StreamState {
  retention::StreamRow row;
  std::vector<retention::DiskRow> disks;
  uint64_t applied_seq = 0;
  int64_t applied_time_ns = 0;
  std::vector<retention::SegmentInfo> undo, wal;  // read from the journal files
  std::string dir;                                // <root>/streams/<id>
  std::vector<retention::DamagedSegment> damaged;  // undo segments the scrub found damaged
  StreamView View() const { return {row.id, applied_seq, undo, damaged}; }
};

// Reads the stream's catalog rows and scans its journals (read-only).
Result<StreamState> LoadStreamState(retention::Catalog& catalog, shim::FileSystem& fs,
                                    const std::string& root, const retention::StreamRow& row);

// Where a rollback keeps its progress and, once done, its marker.
std::string RollbackProgressPath(const StreamState& s);
std::string RollbackProgressPathOf(const std::string& stream_dir);
std::string RolledBackMarkerPath(const std::string& stream_dir);

// After Rollback() to `seq` finished: undo records after `seq` are dropped
// (later segments removed, the segment holding `seq` cut after its last
// record <= seq), the WAL emptied, every disk's checkpoint set to `seq`,
// points after `seq` dropped, and a marker written saying what was done. The
// store then describes the targets again, so the operator can list points,
// roll back further or export; resuming replication needs a resync (the
// marker stops the daemon from starting the stream). Idempotent: safe to run
// again after a crash. `what` is the marker's text ("rolled back to ...").
Status FinishRollback(retention::Catalog& catalog, shim::FileSystem& fs, StreamState& state,
                      const ResolvedPoint& point, int64_t now_ns, const std::string& what);

// Writes the marker: from the moment a rollback begins, the stream's targets
// no longer match its retention, and the daemon must refuse to resume it —
// whatever crash comes between the target writes and FinishRollback.
Status MarkRolledBack(shim::FileSystem& fs, const std::string& stream_dir, const std::string& what);

// The marker's text, if the stream was rolled back.
Result<std::optional<std::string>> ReadRolledBack(shim::FileSystem& fs, const std::string& stream_dir);

// A resync on demand of `disks` (empty: every disk of the stream), for a
// stream that is not being applied. Refused, changing nothing, for a
// committed stream, an unknown disk, and while a rollback is unfinished
// (kBusy). Otherwise the disks' resync becomes pending
// (Catalog::RequireResync), a rolled-back marker is removed (the resync is
// what brings such targets back in line with their source) and the stream
// becomes protected again: started, it lets the sender's resync run. In
// that order, so a crash leaves either nothing done or a stream that runs
// this again harmlessly. Returns the disks marked.
Result<std::vector<uint32_t>> RequireResync(retention::Catalog& catalog, shim::FileSystem& fs,
                                            const std::string& stream_dir,
                                            const retention::StreamRow& row,
                                            std::vector<uint32_t> disks);

// Re-reads every record of the stream's WAL and undo journal and checks every
// CRC (ReadJournalSegments + ForEachRecord); reports, never repairs.
struct VerifyReport {
  uint64_t segments = 0, records = 0, bytes = 0;
  std::vector<std::string> problems;  // one line each
};
VerifyReport VerifyStream(shim::FileSystem& fs, const std::string& stream_dir);

}  // namespace mt::recovery
