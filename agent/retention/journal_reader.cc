#include "retention/journal_reader.h"

#include <algorithm>

#include "retention/segment_reader.h"

namespace mt::retention {

Status ForEachRecord(shim::FileSystem& fs, const std::vector<SegmentInfo>& segments,
                     Direction direction, const RecordVisitor& visit, uint64_t min_seq,
                     uint64_t max_seq) {
  const bool fwd = direction == Direction::kForward;
  std::vector<uint8_t> payload;
  for (size_t k = 0; k < segments.size(); ++k) {
    const SegmentInfo& seg = segments[fwd ? k : segments.size() - 1 - k];
    if (seg.records == 0 || seg.last_seq < min_seq || seg.first_seq > max_seq) continue;
    // Everything up to seg.bytes is durable, so the reader treats it as sealed:
    // any bad record inside it is corruption.
    MT_ASSIGN_OR_RETURN(auto reader, SegmentReader::Open(fs, seg.path, /*sealed=*/true));
    // With an index, the scan starts at most kIndexStride before the first
    // record at or past min_seq: a rollback to a recent point reads what lies
    // after the point, not the whole segment.
    const uint64_t from = seg.index && min_seq > seg.first_seq ? IndexedStart(*seg.index, min_seq)
                                                               : kSegmentHeaderSize;
    // And it ends at the index entry past max_seq: the WAL's read-back of one
    // batch (ApplyPipeline::ReadBack) reads that batch, not the segment's rest.
    const uint64_t to = seg.index && max_seq < seg.last_seq
                            ? std::min(seg.bytes, IndexedEnd(*seg.index, max_seq))
                            : seg.bytes;
    ScanReport report;
    MT_RETURN_IF_ERROR(reader->Scan(&report, to, from));
    const auto& recs = reader->records();
    for (size_t n = 0; n < recs.size(); ++n) {
      const size_t i = fwd ? n : recs.size() - 1 - n;
      const RecordHeader& h = recs[i].header;
      if (h.seq < min_seq || h.seq > max_seq) continue;
      MT_RETURN_IF_ERROR(reader->ReadPayload(i, &payload));
      bool stop = false;
      MT_RETURN_IF_ERROR(visit(h, payload, &stop));
      if (stop) return Status::Ok();
    }
  }
  return Status::Ok();
}

}  // namespace mt::retention
