#include "retention/policy.h"

#include <algorithm>

namespace mt::retention {

uint64_t LowSpaceThreshold(const SpacePolicy& p, uint64_t capacity) {
  const auto pct = static_cast<uint64_t>(static_cast<double>(capacity) * p.low_space_percent / 100.0);
  // The floor in bytes protects large volumes from a tiny percentage; on a
  // volume smaller than four times that floor it would declare the volume
  // always full, so the percentage alone decides there.
  uint64_t t = p.low_space_min_bytes <= capacity / 4 ? std::max(pct, p.low_space_min_bytes) : pct;
  return std::min(t, p.low_space_max_bytes);
}

uint64_t StreamFootprint(uint64_t wal_quota_bytes, uint64_t segment_bytes) {
  return wal_quota_bytes + 2 * segment_bytes;
}

uint64_t StreamsTheVolumeHolds(const SpacePolicy& p, uint64_t capacity, uint64_t segment_bytes) {
  const uint64_t floor = LowSpaceThreshold(p, capacity);
  const uint64_t footprint = StreamFootprint(p.wal_quota_bytes, segment_bytes);
  if (capacity <= floor || footprint == 0) return 0;
  return (capacity - floor) / footprint;
}

PrunePlan PlanPrune(const PruneInput& in) {
  PrunePlan plan;
  for (size_t i = 0; i + 1 < in.wal.size(); ++i) {
    const SegmentInfo& s = in.wal[i];
    if (!s.sealed || s.last_seq > in.applied_seq) break;
    plan.wal_segments.push_back(s.number);
    plan.bytes_freed += s.bytes;
  }

  const int64_t window_start = in.now_ns - in.window_ns;
  uint64_t freed_undo = 0;
  size_t n = 0;  // undo segments that may go, oldest first
  for (size_t i = 0; i + 1 < in.undo.size(); ++i) {
    const SegmentInfo& s = in.undo[i];
    if (!s.sealed) break;
    if (s.records > 0 && s.last_seq > in.applied_seq) break;  // crash recovery needs it
    const bool pinned = std::any_of(in.pinned_seqs.begin(), in.pinned_seqs.end(),
                                    [&](uint64_t p) { return p < s.last_seq; });
    if (pinned) {
      if (in.low_space)
        plan.alerts.push_back(
            "retention is low on space but points older than seq " + std::to_string(s.last_seq) +
            " are held by a virtual snapshot, rollback or export: release them to free space");
      break;
    }
    const bool expired = s.records == 0 || s.last_time_ns < window_start;
    const bool make_room = in.low_space && in.full_action == FullAction::kPrune &&
                           freed_undo < in.bytes_to_free;
    if (!expired && !make_room) break;
    freed_undo += s.bytes;
    ++n;
  }
  // Never cut inside an item: an item's before-image in pieces (a long
  // discard) goes with all its segments or stays with all of them.
  while (n > 0 && in.undo[n].first_continues) --n;
  freed_undo = 0;
  bool dropped_unexpired = false;
  for (size_t i = 0; i < n; ++i) {
    const SegmentInfo& s = in.undo[i];
    if (!(s.records == 0 || s.last_time_ns < window_start)) dropped_unexpired = true;
    plan.undo_segments.push_back(s.number);
    plan.oldest_point_seq = s.last_seq;
    freed_undo += s.bytes;
  }
  plan.bytes_freed += freed_undo;
  if (dropped_unexpired)
    plan.alerts.push_back("retention low on space: dropped recovery points older than seq " +
                          std::to_string(plan.oldest_point_seq) +
                          " before the end of the retention window (full action: prune)");
  if (in.low_space && in.full_action == FullAction::kStop && freed_undo < in.bytes_to_free) {
    plan.stop_applying = true;
    plan.alerts.push_back(
        "retention low on space: applying stopped (full action: stop); the WAL backlog grows "
        "until space is freed or the policy changes");
  }
  return plan;
}

}  // namespace mt::retention
