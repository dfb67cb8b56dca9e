// RetentionJanitor: one stream's retention housekeeping — the periodic prune,
// the low-space rules of the space policy (policy.h) and the alerts they
// raise. It owns that state; nobody else prunes a stream while it runs.
//
// Threads:
//  - the apply thread (apply/apply_pipeline.h) calls HoldFor() before every
//    batch and AfterStep() after every batch or discard piece;
//  - the ingest side (session threads, daemon/stream_runtime.h) calls
//    RefuseIngest() before a frame goes to the WAL;
//  - anyone may call Alert()/Held() (health, throttling).
// Contracts:
//  - HoldFor(bytes) returns "" when the batch may be applied, else why it must
//    wait (full_action = stop on a low volume, or no room for its
//    before-images); it prunes first when the volume is low. The batch then
//    stays in the WAL and the caller retries later — never an ENOSPC half-way
//    through a batch.
//  - RefuseIngest() refuses (kNoSpace, which a sender retries) a frame that
//    would not fit in the WAL with what is appended and not yet written and
//    the room one batch needs.
//  - A prune that drops points because space is low is reported in Alert()
//    for an hour.
//  - Every prune honours the live reader pins of the stream (reader_pin.h):
//    RetentionStore::Prune reads them, so readers in other processes (mtctl
//    export, a vsnap fill) are protected without telling the janitor.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "mt/shim/clock.h"
#include "mt/shim/thread_annotations.h"
#include "retention/retention_store.h"

namespace mt::retention {

class RetentionJanitor {
 public:
  // REQUIRES: store and clock outlive the janitor.
  RetentionJanitor(RetentionStore& store, shim::Clock& clock, uint64_t stream,
                   uint64_t prune_every_steps = 64)
      : store_(store), clock_(clock), stream_(stream), prune_every_(prune_every_steps) {}

  // Apply thread, before a batch whose before-images take `capture_bytes`.
  std::string HoldFor(uint64_t capture_bytes);
  // Apply thread, after each applied batch or discard piece: every
  // prune_every_steps-th call prunes the stream (trims applied WAL, expires
  // old undo, applies the low-space rules).
  Status AfterStep();
  // Ingest side: kNoSpace when a frame of `wal_bytes` would not fit beside
  // `unwritten_bytes` already appended and not yet written. `stream_name`
  // names the stream in the message.
  Status RefuseIngest(uint64_t unwritten_bytes, uint64_t wal_bytes, const std::string& stream_name);

  // Why applying is held, and/or which points a low-space prune dropped
  // (for an hour after the drop); "" when neither.
  std::string Alert() const;
  // Applying waits for space.
  bool Held() const;

  // Free bytes a batch of `bytes` needs before it is applied: its
  // before-images (at most its size, plus headers) and a new undo segment.
  uint64_t RoomFor(uint64_t bytes) const;

 private:
  RetentionStore& store_;
  shim::Clock& clock_;
  const uint64_t stream_;
  const uint64_t prune_every_;
  uint64_t steps_ = 0;  // apply thread only

  mutable Mutex mu_;
  std::string hold_ MT_GUARDED_BY(mu_);         // why applying is held ("" = it is not)
  std::string prune_alert_ MT_GUARDED_BY(mu_);  // points a low-space prune dropped, and when
  int64_t prune_alert_ns_ MT_GUARDED_BY(mu_) = 0;
};

}  // namespace mt::retention
