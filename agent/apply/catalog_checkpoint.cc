#include "catalog_checkpoint.h"

#include "record_format.h"

namespace mt::apply {

using retention::RecordType;

Status CatalogCheckpoint::BatchApplied(const std::vector<WalRecord>& batch) {
  for (const auto& r : batch) {
    if (r.h.type == RecordType::kTag) {
      retention::TagPayload t;
      MT_RETURN_IF_ERROR(retention::DecodeTag(r.data, r.h.stored_length, &t));
      retention::PointRow p;
      p.stream = stream_;
      p.seq = r.h.seq;
      p.time_ns = r.h.source_time_ns;
      p.kind = t.kind;
      p.name = t.name;
      p.group_tag_id = t.group_tag_id;
      // kAlreadyExists: the same tag applied again after a restart (ingest
      // refuses a name that is taken at another seq).
      Status s = c_.AddPoint(p);
      if (!s.ok() && s.code() != Errc::kAlreadyExists) return s;
    } else if (r.h.type == RecordType::kResyncComplete) {
      MT_ASSIGN_OR_RETURN(auto disks, c_.ListDisks(stream_));
      for (auto d : disks) {
        if (d.disk != r.h.disk || d.resync_state == "complete") continue;
        d.resync_state = "complete";
        d.resync_complete_seq = r.h.seq;
        MT_RETURN_IF_ERROR(c_.UpdateDisk(d));
      }
    }
  }
  return Status::Ok();
}

Status CatalogCheckpoint::Record(uint64_t seq, int64_t time) {
  for (uint32_t d : disks_) {
    retention::CheckpointRow row;
    row.stream = stream_;
    row.disk = d;
    row.applied_seq = seq;
    row.applied_time_ns = time;
    row.updated_ns = clock_.NowNs();
    MT_RETURN_IF_ERROR(c_.SetCheckpoint(row));
  }
  return Status::Ok();
}

}  // namespace mt::apply
