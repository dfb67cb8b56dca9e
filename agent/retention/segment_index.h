// Segment index files: the summary and seq -> offset index of a sealed journal
// segment, kept next to it as <kind>-<number>.idx. Prose spec:
// docs/formats/journal.md ("Index files of sealed segments").
//
// Contract: an index file describes its segment only while it matches it:
// same kind, stream, number and created_ns as the segment's header, and the
// segment file at least `bytes` long. Anything else (missing, a bad CRC, a
// mismatch) means "no index": the reader scans the segment instead. The
// journal writes a segment's index (atomically) before it creates the next
// segment, so a sealed segment is never paired with an index of an older
// state of itself. The index is a cache: it may always be deleted.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mt/shim/file_system.h"
#include "retention/record_format.h"

namespace mt::retention {

// The first record of a segment and then the first record starting at least
// kIndexStride bytes after the previous entry: a reader looking for seq S
// starts at most kIndexStride bytes before the first record of S.
struct IndexEntry {
  uint64_t seq = 0;
  uint64_t offset = 0;  // of the record header in the segment file
};
inline constexpr uint64_t kIndexStride = 256u << 10;
using IndexEntries = std::shared_ptr<const std::vector<IndexEntry>>;

// Adds an entry for a record at `offset` when the stride rule asks for one.
// `next_at`: the offset from which the next entry is due (0 for an empty
// segment); updated.
inline void MaybeIndex(uint64_t seq, uint64_t offset, uint64_t* next_at,
                       std::vector<IndexEntry>* out) {
  if (offset < *next_at) return;
  out->push_back({seq, offset});
  *next_at = offset + kIndexStride;
}

// Where a reader that wants the records with seq >= min_seq starts: the last
// entry with a seq below min_seq (every later record has seq >= that one's),
// else the first record.
uint64_t IndexedStart(const std::vector<IndexEntry>& entries, uint64_t min_seq);
// Where a reader that wants nothing past max_seq may stop: the offset of the
// first entry whose seq is past it, UINT64_MAX when there is none.
uint64_t IndexedEnd(const std::vector<IndexEntry>& entries, uint64_t max_seq);

struct SegmentIndexFile {
  SegmentKind kind = SegmentKind::kWal;
  uint64_t stream = 0, number = 0;
  int64_t created_ns = 0;        // the segment header's
  uint64_t bytes = 0;            // end of the last record
  uint64_t records = 0, first_seq = 0, last_seq = 0;
  int64_t first_time_ns = 0, last_time_ns = 0;
  uint64_t logical_bytes = 0, stored_bytes = 0;
  uint64_t last_batch = 0;       // highest batch number of its records
  uint64_t last_record_offset = 0;  // header of its last record (0: no record)
  bool first_continues = false;
  std::vector<IndexEntry> entries;
};

std::string SegmentIndexPath(const std::string& segment_path);  // .seg -> .idx
std::string EncodeSegmentIndex(const SegmentIndexFile& f);
// kCorruption when the bytes are not a whole, valid index file.
Status DecodeSegmentIndex(const std::string& bytes, SegmentIndexFile* f);
// The index of the segment at `segment_path`, or nullopt when there is none
// or it does not decode (the caller scans the segment).
std::optional<SegmentIndexFile> ReadSegmentIndex(shim::FileSystem& fs,
                                                 const std::string& segment_path);
// Writes it atomically (a crash leaves the old file or the new one).
Status WriteSegmentIndex(shim::FileSystem& fs, const std::string& segment_path,
                         const SegmentIndexFile& f);
// Removes a segment's index (if any), then the segment: a crash in between
// leaves a segment without an index, which is scanned, never an index that
// outlives its segment file unnoticed.
Status RemoveSegmentFiles(shim::FileSystem& fs, const std::string& segment_path);

}  // namespace mt::retention
