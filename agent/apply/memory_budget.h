// MemoryBudget: one bound, shared by every stream of the agent, on the data
// held in memory between "durable in the WAL" and "applied" (issue 19: a
// quota per stream let 30 busy streams hold 30 x 256 MiB).
//
// Contract: Take(bytes) either returns a token that holds `bytes` of the
// budget until the last copy of it is destroyed, or null when the hold would
// take the total past the limit. A stream that gets null keeps nothing in
// memory: its durable items go to the applier without their data, which the
// applier reads back from the WAL when it applies them
// (ApplyPipeline::ReadBack) — slower, never lost, and the memory stays
// bounded whatever the number of busy streams. Thread safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "stream/payload_budget.h"

namespace mt::apply {

class MemoryBudget {
 public:
  explicit MemoryBudget(uint64_t limit_bytes) : budget_(limit_bytes) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // The same all-or-nothing accounting as the receive budget
  // (stream::PayloadBudget), as a token that can be shared.
  std::shared_ptr<void> Take(uint64_t bytes) {
    auto grant = std::make_shared<stream::PayloadBudget::Grant>();
    if (!budget_.TryAcquire(bytes, grant.get())) return nullptr;
    return grant;
  }
  // Items that went to the applier without their data (a figure for tests
  // and benchmarks).
  void NoteLeftInWal(uint64_t bytes) { left_in_wal_.fetch_add(bytes); }

  uint64_t limit() const { return budget_.limit(); }
  uint64_t held() const { return budget_.in_use(); }
  uint64_t left_in_wal_bytes() const { return left_in_wal_.load(); }

 private:
  stream::PayloadBudget budget_;
  std::atomic<uint64_t> left_in_wal_{0};
};

}  // namespace mt::apply
