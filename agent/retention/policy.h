// Retention policy: when segments may be deleted, and what to do when the
// retention volume runs low on space. Pure functions over segment lists so
// every rule is unit-tested without files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "retention/catalog.h"
#include "retention/journal.h"
#include "mt/shim/file_system.h"

namespace mt::retention {

struct SpacePolicy {
  // Low-space trigger: free space below clamp(percent of capacity, min, max).
  double low_space_percent = 10.0;
  uint64_t low_space_min_bytes = 1ull << 30;
  uint64_t low_space_max_bytes = 50ull << 30;
  // The WAL's own quota (bytes not yet applied); past it the receiver stops
  // reading from the socket.
  uint64_t wal_quota_bytes = 4ull << 30;
};

// The free-space floor for a volume of `capacity` bytes: percent of capacity,
// at least low_space_min_bytes (unless the volume is smaller than four times
// that), at most low_space_max_bytes.
uint64_t LowSpaceThreshold(const SpacePolicy& p, uint64_t capacity);

// What one stream takes of the volume before it holds any retention window,
// at worst: its WAL quota (received, not yet applied), the WAL's open segment
// (applied records stay until the segment is sealed) and the undo journal's
// open segment (prune frees sealed segments only). Each journal reserves at
// most its segment ahead of its writer, so reservations are inside these.
uint64_t StreamFootprint(uint64_t wal_quota_bytes, uint64_t segment_bytes);
// How many such streams fit between the low-space threshold and the
// capacity: what the volume can hold at these settings before the window of
// any stream takes a byte (0 when not even one fits).
uint64_t StreamsTheVolumeHolds(const SpacePolicy& p, uint64_t capacity, uint64_t segment_bytes);

struct PruneInput {
  std::vector<SegmentInfo> wal;   // oldest first, as Journal::Segments()
  std::vector<SegmentInfo> undo;  // oldest first
  uint64_t applied_seq = 0;       // checkpoint: min applied seq over the stream's disks
  int64_t now_ns = 0;
  int64_t window_ns = 0;
  std::vector<uint64_t> pinned_seqs;  // points held by a vsnap, rollback or export
  bool low_space = false;
  uint64_t bytes_to_free = 0;     // with low_space: how far below the threshold we are
  FullAction full_action = FullAction::kPrune;
};

struct PrunePlan {
  std::vector<uint64_t> wal_segments;   // numbers to delete
  std::vector<uint64_t> undo_segments;  // numbers to delete, oldest first
  uint64_t oldest_point_seq = 0;        // oldest reachable point after the plan (0: unchanged)
  uint64_t bytes_freed = 0;
  bool stop_applying = false;           // full_action=stop and space is low
  std::vector<std::string> alerts;      // one line each, for the operator
};

// The rules (each one has a named test):
//  - the newest (unsealed) segment of a journal is never deleted;
//  - a WAL segment is deleted once every record in it is applied (last_seq <= applied_seq);
//  - an undo segment is needed by every point p < its last_seq (undoing down to
//    p needs all its records) and by crash recovery while it holds records
//    newer than applied_seq; it is deleted oldest first, only when no pinned
//    point needs it, and either it has expired (its newest write is older than
//    now - window, so every point it serves is outside the window) or space is
//    low and full_action is prune (then an alert names the points dropped);
//  - low space with full_action stop deletes nothing unexpired and asks to stop applying;
//  - the plan never ends inside an item kept in pieces (a long discard's
//    before-image, kFlagContinued): a segment whose successor's first record
//    continues its last item is deleted only with that successor.
PrunePlan PlanPrune(const PruneInput& in);

}  // namespace mt::retention
