#include "apply/catalog_checkpoint.h"

#include "retention/record_format.h"

namespace mt::apply {

using retention::RecordType;

Status CatalogCheckpoint::BatchApplied(const std::vector<WalRecord>& batch) {
  pending_ = retention::BatchRecord{};
  for (const auto& r : batch) {
    if (r.h.type == RecordType::kTag && (r.h.flags & retention::kFlagNoPoint) == 0) {
      retention::TagPayload t;
      MT_RETURN_IF_ERROR(retention::DecodeTag(r.data, r.h.stored_length, &t));
      retention::PointRow p;
      p.stream = stream_;
      p.seq = r.h.seq;
      p.time_ns = r.h.source_time_ns;
      p.kind = t.kind;
      p.name = t.name;
      p.group_tag_id = t.group_tag_id;
      pending_.points.push_back(std::move(p));
    } else if (r.h.type == RecordType::kResyncComplete) {
      pending_.resync_completed.emplace_back(r.h.disk, r.h.seq);
    }
  }
  return Status::Ok();
}

Status CatalogCheckpoint::Record(uint64_t seq, int64_t time) {
  // The batch's rows and the checkpoint in one transaction (RecordBatch).
  retention::BatchRecord b = std::move(pending_);
  pending_ = retention::BatchRecord{};
  b.stream = stream_;
  b.disks = disks_;
  b.applied_seq = seq;
  b.applied_time_ns = time;
  b.updated_ns = clock_.NowNs();
  return c_.RecordBatch(b);
}

}  // namespace mt::apply
