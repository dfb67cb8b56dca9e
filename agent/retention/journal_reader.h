// Reading a journal's records in seq order or newest first (rollback walks the
// undo journal backwards). Every record's header and payload CRC is checked;
// a bad record stops the walk with kCorruption naming file and offset.
#pragma once

#include <functional>
#include <vector>

#include "retention/journal.h"
#include "mt/shim/file_system.h"

namespace mt::retention {

enum class Direction { kForward, kBackward };

// Called for each record; set *stop to end the walk early. A non-ok return
// ends the walk and is returned by ForEachRecord.
using RecordVisitor =
    std::function<Status(const RecordHeader& h, const std::vector<uint8_t>& payload, bool* stop)>;

// Walks the records of `segments` (as given by Journal::Segments(): only the
// durable `bytes` of each are read) whose seq lies in [min_seq, max_seq].
// Each segment's part that is read is checked whole (every header and payload
// CRC) before any record of it is delivered: from the first record, or, when
// the segment has index entries and min_seq lies past its first record, from
// the index entry before min_seq (at most kIndexStride before it).
Status ForEachRecord(shim::FileSystem& fs, const std::vector<SegmentInfo>& segments,
                     Direction direction, const RecordVisitor& visit, uint64_t min_seq = 0,
                     uint64_t max_seq = UINT64_MAX);

}  // namespace mt::retention
