// `mtsend replay --log-writes FILE`: replays a Linux dm-log-writes capture
// (log_writes.h, docs/formats/dm-log-writes.md) in log order to one disk of
// a stream, its marks becoming tags.
//
// Items: every write (with data), every discard and every mark of the log is
// one stream item; the i-th (1-based) gets seq start + i, start being the
// stream's resume_seq when the replay began (kept in the --record file, so a
// restarted replay maps the same entries to the same seqs). An empty FLUSH
// entry is not an item: its FLUSH is carried onto the next write or discard
// (a preflush before that write, which is what the log says happened); a
// trailing one is dropped. FUA, FLUSH and DISCARD on writes map to the
// stream's WRITE_FLAG_FUA/FLUSH/DISCARD; METADATA is dropped. A discard
// may cover any range of the disk (it carries no data); writes are at most
// the stream's 64 MiB. With skip_discards (--no-discard) a discard is not an
// item either: like an empty flush, its FLUSH goes onto the next write.
//
// Connection handling is the workload's (sender.h): reconnect with back-off,
// resend the unacknowledged items after the welcome's resume_seq.
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <string>

#include "send/client.h"
#include "send/log_writes.h"
#include "stream/messages.h"
#include "mt/shim/status.h"
#include "send/sender.h"

namespace mt::send {

struct ReplayItem {
  enum Type { kWrite, kDiscard, kMark } type = kWrite;
  uint64_t index = 0;   // 0-based item index (seq = start + 1 + index)
  uint64_t entry = 0;   // the log entry it comes from
  uint64_t offset = 0, length = 0;  // bytes on the disk (writes, discards)
  uint32_t flags = 0;   // stream WriteFlag bits
  logwrites::Entry log; // for reading the data
  std::string name;     // marks: tag name (a repeated name gets "#2", "#3", ...)
};

// Walks a capture's entries as replay items (no data read).
class ReplayCursor {
 public:
  static Result<ReplayCursor> Open(logwrites::LogSource& src, bool skip_discards = false);
  // The next item; false at the end of the log.
  Result<bool> Next(ReplayItem* item);
  Status ReadData(const ReplayItem& item, std::vector<uint8_t>* out) { return reader_.ReadData(item.log, out); }
  const logwrites::Super& super() const { return reader_.super(); }

 private:
  ReplayCursor(logwrites::Reader r, bool skip_discards)
      : reader_(std::move(r)), skip_discards_(skip_discards) {}
  logwrites::Reader reader_;
  bool skip_discards_;
  uint64_t next_index_ = 0;
  uint32_t pending_flags_ = 0;
  std::set<std::string> names_;
};

// One pass over the capture before anything is sent.
struct ReplaySummary {
  uint64_t items = 0, writes = 0, discards = 0, marks = 0, folded_flushes = 0;
  uint64_t skipped_discards = 0;  // skip_discards: discards that are not items
  uint64_t write_bytes = 0;
  uint64_t max_end = 0;       // highest byte written or discarded + 1
  uint64_t align_or = 0;      // OR of every offset and length (alignment check)
  uint64_t max_write = 0;     // largest single write or discard
  // FNV-1a of the super and every header (and of skip_discards when set):
  // the record's seed, so a restart maps the same entries to the same seqs.
  uint64_t fingerprint = 0;
  uint32_t sectorsize = 0;
};
Result<ReplaySummary> ScanCapture(logwrites::LogSource& src, bool skip_discards = false);
// kMisaligned naming the first entry whose offset or length is not a
// multiple of lbs; Ok if there is none.
Status CheckAlignment(logwrites::LogSource& src, uint64_t lbs, uint32_t disk,
                      bool skip_discards = false);

// Applies the capture onto `image` (zero-filled by the caller) in memory, as
// the replay would: the oracle of tests.
Status ApplyCapture(logwrites::LogSource& src, std::vector<uint8_t>* image,
                    bool skip_discards = false);

struct ReplayOptions {
  ConnectOptions connect;
  std::string path;               // the capture
  uint32_t disk = 0;
  proto::TagKind mark_kind = proto::TAG_KIND_APP;
  std::string record_path;        // empty: no record (a restart replays from its own welcome)
  bool skip_discards = false;     // --no-discard: the capture's discards are not sent
  uint64_t window_bytes = 64u << 20;
  uint64_t batch_bytes = 1u << 20;
  uint32_t batch_writes = 64;
  std::chrono::milliseconds retry_for{60'000};
  bool verbose = false;
};

struct ReplayResult {
  RunResult run;
  ReplaySummary summary;
  uint64_t start = 0;  // seq before the capture's first item
};

Result<ReplayResult> RunReplay(const ReplayOptions& options);

}  // namespace mt::send
