// CatalogCheckpoint: where the apply pipeline records, in the catalog, what an
// applied batch means — its tags become recovery points, a resync-complete
// record marks its disk complete — and the stream's applied seq (one
// checkpoint row per disk, all at the same seq: a stream has one sequence
// space). Runs on the apply thread only.
#pragma once

#include <functional>
#include <vector>

#include "apply/applier.h"
#include "retention/catalog.h"
#include "mt/shim/clock.h"

namespace mt::apply {

class CatalogCheckpoint : public CheckpointSink {
 public:
  // `between_pieces` runs after each piece of a long discard: a long
  // discard's pieces take undo space as batches do, so the owner runs the
  // same retention housekeeping between them. REQUIRES: catalog and clock
  // outlive this object.
  CatalogCheckpoint(retention::Catalog& catalog, shim::Clock& clock, uint64_t stream,
                    std::vector<uint32_t> disks, std::function<Status()> between_pieces)
      : c_(catalog), clock_(clock), stream_(stream), disks_(std::move(disks)),
        between_pieces_(std::move(between_pieces)) {}

  Status PieceApplied(uint64_t, uint64_t, uint64_t) override { return between_pieces_(); }
  // BatchApplied notes the batch's points and resync completions; Record
  // stores them with the checkpoint in one catalog transaction
  // (Catalog::RecordBatch), so a crash keeps all of them or none. Idempotent
  // (a restart may apply a batch again): a point already stored under its
  // name, or a disk already complete, is left as it is.
  Status BatchApplied(const std::vector<WalRecord>& batch) override;
  Status Record(uint64_t seq, int64_t time) override;

 private:
  retention::Catalog& c_;
  shim::Clock& clock_;
  uint64_t stream_;
  std::vector<uint32_t> disks_;
  std::function<Status()> between_pieces_;
  retention::BatchRecord pending_;  // from BatchApplied to Record
};

}  // namespace mt::apply
