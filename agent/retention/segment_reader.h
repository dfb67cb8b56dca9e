// SegmentReader: validates one journal segment and gives its records forward
// or backward (newest first).
//
// Scan() reads the whole segment once, checking every header and payload CRC,
// and classifies how the records end:
//   kClean   - the records end at a zero word or at end of file.
//   kTornTail - the first bad record is followed by nothing but (at most) other
//              records of the same or the next group-commit batch: a write that
//              was in flight at a power loss. Those bytes were never reported
//              durable; the journal truncates them on recovery.
//   kCorrupt - a bad record is followed by records of a later batch (which were
//              made durable after it, so the bad one had been durable too), or
//              the segment is sealed (a newer segment exists) and has any bad
//              record. Never skipped: the caller reports the position.
// Contract: the writer syncs batch k before writing batch k+1, so at a power
// loss at most one batch (the newest) is partly on disk.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mt/shim/file_system.h"
#include "retention/record_format.h"

namespace mt::retention {

struct ScanReport {
  enum class End { kClean, kTornTail, kCorrupt } end = End::kClean;
  uint64_t valid_end = kSegmentHeaderSize;  // byte offset just past the last valid record
  uint64_t file_size = 0;
  uint64_t bad_offset = 0;                  // where the first bad record starts (torn/corrupt)
  std::string reason;                       // why that record is bad
  uint64_t dropped_bytes = 0;               // file bytes after valid_end that are not zero
};

struct RecordRef {
  RecordHeader header;
  uint64_t offset = 0;  // of the record header inside the segment file
};

class SegmentReader {
 public:
  // Opens and checks the segment header. `sealed`: a newer segment exists, so
  // any bad record is corruption (see above).
  static Result<std::unique_ptr<SegmentReader>> Open(shim::FileSystem& fs, const std::string& path,
                                                     bool sealed);

  const SegmentHeader& header() const { return header_; }
  const std::string& path() const { return file_->path(); }

  // Validates every record up to `limit` bytes of the file (UINT64_MAX: all),
  // starting at the record header at `from` (a record boundary: the first
  // record, or an index entry's offset). Fills the record index. A corrupt
  // segment returns kCorruption naming the file and offset (and still fills
  // `report` and the index up to the bad spot).
  Status Scan(ScanReport* report, uint64_t limit = UINT64_MAX,
              uint64_t from = kSegmentHeaderSize);

  // The record header at `offset`, checked (kCorruption if it does not decode).
  Result<RecordHeader> ReadHeaderAt(uint64_t offset);
  uint64_t file_size() const { return file_->Size(); }

  // Records found by Scan, in file order (= seq order).
  const std::vector<RecordRef>& records() const { return records_; }

  // Reads and CRC-checks the stored payload of records()[i] into `out`
  // (resized to stored_length).
  Status ReadPayload(size_t i, std::vector<uint8_t>* out);

 private:
  SegmentReader(std::unique_ptr<shim::File> file, SegmentHeader header, bool sealed)
      : file_(std::move(file)), header_(header), sealed_(sealed) {}
  // True if a valid record header of a batch > max_batch lies in [from, end).
  Result<bool> LaterBatchFollows(uint64_t from, uint64_t end, uint64_t max_batch,
                                 uint64_t* nonzero_bytes);

  std::unique_ptr<shim::File> file_;
  SegmentHeader header_;
  bool sealed_;
  std::vector<RecordRef> records_;
};

}  // namespace mt::retention
