// Scrub: the background check of sealed journal segments. Opening a journal
// no longer reads the records of a sealed segment that has an index file
// (segment_index.h), so damage inside one (a bad sector, a stray write) would
// only be found when a recovery reads it. The scrubber reads every sealed
// segment of the open streams whole, at a bounded rate, and again every
// `every_ns`; a segment that fails its check is recorded:
//   - in <stream dir>/damaged (one line per segment, see ReadDamage), which
//     recovery reads: a point whose rollback, export or vsnap would read a
//     damaged undo segment is refused with the reason (recovery.h);
//   - in Alert(stream), which the agent's status shows for the stream;
//   - in the agent's log (error).
// Only kCorruption is damage, and only of a segment that is still listed,
// unchanged, and fails a second read too: a segment a prune removed or a
// rollback cut while it was read is not damage; an I/O error is retried in
// the next round.
// Thread safety: Start/Stop from one thread; Alert/Stats from any.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "mt/shim/clock.h"
#include "mt/shim/file_system.h"
#include "mt/shim/thread_annotations.h"
#include "retention/journal.h"

namespace mt::retention {

struct DamagedSegment {
  SegmentKind kind = SegmentKind::kUndo;
  uint64_t number = 0;
  uint64_t first_seq = 0, last_seq = 0;
  int64_t found_ns = 0;
  std::string reason;
};

std::string DamagePath(const std::string& stream_dir);
// The damage recorded for a stream (none if the file is missing).
Result<std::vector<DamagedSegment>> ReadDamage(shim::FileSystem& fs, const std::string& stream_dir);
// Adds `d` (once per kind and number), atomically.
Status RecordDamage(shim::FileSystem& fs, const std::string& stream_dir, const DamagedSegment& d);
// The recorded damage that still applies to `undo` (a segment pruned since is
// gone, and so is its damage): undo segments present with the same number and
// first seq.
std::vector<DamagedSegment> DamageOf(const std::vector<DamagedSegment>& recorded,
                                     const std::vector<SegmentInfo>& undo);

// Reads a segment's first `bytes` whole: every header and payload CRC and the
// seq order. kCorruption names file and offset.
Status VerifySegment(shim::FileSystem& fs, const SegmentInfo& seg);

class Scrubber {
 public:
  struct Options {
    uint64_t bytes_per_second = 32ull << 20;  // 0: no scrub
    int64_t every_ns = 24ll * 3600 * 1'000'000'000;  // a segment is checked again after this
    int64_t idle_poll_ns = 60ll * 1'000'000'000;     // how often to look for new sealed segments
    // Called (on the scrub thread) with the stream and the alert when a
    // segment fails its check: the agent logs it.
    std::function<void(uint64_t stream, const std::string& alert)> on_damage;
  };
  struct StreamJournals {
    uint64_t stream = 0;
    std::string dir;  // <root>/streams/<id>
    std::vector<SegmentInfo> wal, undo;
  };
  using ListFn = std::function<std::vector<StreamJournals>()>;

  Scrubber(shim::FileSystem& fs, shim::Clock& clock, Options o, ListFn list);
  ~Scrubber();  // Stop()
  void Start();
  void Stop();

  // One round: checks every sealed segment that is due (never checked, or
  // last checked every_ns ago) without waiting between them. Returns how
  // many it checked. (The thread runs rounds with the rate limit.)
  size_t RunOnce();

  std::string Alert(uint64_t stream) const;  // "" when no damage was found
  uint64_t checked_segments() const;
  uint64_t checked_bytes() const;

 private:
  // Checks one segment and records what it found.
  void Check(const StreamJournals& s, SegmentKind kind, const SegmentInfo& seg);
  size_t Round(bool paced);
  // The segment is still a sealed segment of an open stream, unchanged (a
  // failed check of a segment that a prune removed or a rollback cut while
  // it was read is no damage).
  bool StillListed(uint64_t stream, SegmentKind kind, const SegmentInfo& seg) const;

  shim::FileSystem& fs_;
  shim::Clock& clock_;
  const Options o_;
  const ListFn list_;
  std::thread thread_;

  mutable Mutex mu_;
  std::condition_variable cv_;
  bool stopping_ MT_GUARDED_BY(mu_) = false;
  std::map<std::string, int64_t> checked_at_ MT_GUARDED_BY(mu_);  // path -> when
  std::map<uint64_t, std::string> alerts_ MT_GUARDED_BY(mu_);
  uint64_t checked_segments_ MT_GUARDED_BY(mu_) = 0;
  uint64_t checked_bytes_ MT_GUARDED_BY(mu_) = 0;
};

}  // namespace mt::retention
