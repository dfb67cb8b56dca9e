// The record file of `mtsend workload --record FILE`: every item the workload
// sent and the receiver may hold, one text line each, so a test can rebuild
// the source disks at any seq. Format: docs/formats/mtsend-record.md.
//
//   mtsend-record 1 seed=<seed> start=<seq>        header (start: resume seq of the first run)
//   W <seq> <disk> <offset> <length> <crc32c, 8 hex digits>
//   T <seq> <kind: crash|app|user> <name (rest of the line)>
//
// Lines are appended (pwrite) before their items are sent, so a killed mtsend
// never leaves a durable item out of the record; a restart keeps the lines
// with seq <= the welcome's resume_seq (the rest never became durable) and
// appends after them. A torn last line (no "\n") is ignored.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mt/shim/file_system.h"
#include "mt/shim/status.h"
#include "send/workload.h"

namespace mt::send {

struct RecordEntry {
  char type = 'W';  // 'W' write, 'T' tag
  uint64_t seq = 0;
  uint32_t disk = 0;
  uint64_t offset = 0, length = 0;
  uint32_t crc32c = 0;
  std::string kind;  // tags: crash | app | user
  std::string name;  // tags
};

struct Record {
  uint64_t seed = 0;
  uint64_t start = 0;
  std::vector<RecordEntry> entries;  // in seq order
};

// kNotFound if the file does not exist; kCorruption naming the line if a
// complete line does not parse.
Result<Record> ReadRecord(shim::FileSystem& fs, const std::string& path);

class RecordWriter {
 public:
  // Opens (or creates) the record for a run whose first welcome said
  // `resume_seq`: an existing record must have the same seed; its lines with
  // seq > resume_seq are dropped (rewritten atomically). A new one starts at
  // resume_seq.
  static Result<std::unique_ptr<RecordWriter>> Open(shim::FileSystem& fs, const std::string& path,
                                                    uint64_t seed, uint64_t resume_seq);
  Status Append(const std::vector<RecordEntry>& entries);
  uint64_t start() const { return start_; }

 private:
  RecordWriter(std::unique_ptr<shim::File> f, uint64_t start) : f_(std::move(f)), start_(start) {}
  std::unique_ptr<shim::File> f_;
  uint64_t start_;
};

std::string FormatEntry(const RecordEntry& e);

// The source disks after every write of `record` with seq <= upto_seq,
// starting from zeroes (the data regenerated from the seed).
Status RebuildDisks(const Record& record, uint32_t disks, uint64_t disk_size, uint64_t upto_seq,
                    std::vector<std::vector<uint8_t>>* images);

}  // namespace mt::send
