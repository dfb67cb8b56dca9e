#include "retention/journal.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <optional>

#include "mt/shim/aligned_buffer.h"
#include "retention/segment_reader.h"

namespace mt::retention {

// A group-commit batch: the bytes of one aligned write. buf[0] lands at
// file_offset (4096-aligned); buf[0..head) are bytes already in the file (the
// partial last block of the previous batch, rewritten unchanged) or the segment
// header of a new segment; records follow up to `used`.
struct Journal::Batch {
  uint64_t number = 0;
  uint64_t segment = 0;
  bool new_segment = false;
  bool wanted = false;  // a Commit waits for it
  uint64_t file_offset = 0;
  AlignedBuffer buf;
  size_t head = 0;
  size_t used = 0;
  // Statistics of the records it adds.
  uint64_t records = 0, first_seq = 0, last_seq = 0, logical = 0, stored = 0;
  int64_t first_time = 0, last_time = 0;
  bool first_continues = false;
  std::vector<Journal::InPlaceData> in_place;  // its kFlagInPlace records: before_write_ writes them first
  RecordHeader last_header;
  uint64_t last_record_offset = 0;   // of last_header in the segment
  std::vector<IndexEntry> index;     // index entries of its records
  int64_t created_ns = 0;            // new_segment: the header's

  void Reserve(size_t need) {
    if (need <= buf.size()) return;
    // Not zero-filled: bytes past `used` are never read, and the padding a
    // direct write takes past it is zeroed there (WriteBatch).
    AlignedBuffer bigger = AlignedBuffer::Uninitialized(std::max<size_t>(need, buf.size() * 2));
    if (used > 0) std::memcpy(bigger.data(), buf.data(), used);
    buf = std::move(bigger);
  }
};

std::string SegmentFileName(SegmentKind kind, uint64_t number) {
  char name[64];
  std::snprintf(name, sizeof name, "%s-%016" PRIu64 ".seg", SegmentKindName(kind), number);
  return name;
}

namespace {

// Parses "<kind>-<number>.seg"; 0 if the name is not a segment of `kind`.
uint64_t ParseSegmentNumber(SegmentKind kind, const std::string& name) {
  const std::string prefix = std::string(SegmentKindName(kind)) + "-";
  if (name.size() != prefix.size() + 16 + 4 || name.compare(0, prefix.size(), prefix) != 0 ||
      name.compare(name.size() - 4, 4, ".seg") != 0)
    return 0;
  uint64_t n = 0;
  for (size_t i = prefix.size(); i < prefix.size() + 16; ++i) {
    if (name[i] < '0' || name[i] > '9') return 0;
    n = n * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return n;
}

// The segment numbers of `kind` among a directory's entry names, ascending.
std::vector<uint64_t> SegmentNumbers(SegmentKind kind, const std::vector<std::string>& names) {
  std::vector<uint64_t> numbers;
  for (const auto& n : names)
    if (uint64_t num = ParseSegmentNumber(kind, n)) numbers.push_back(num);
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

// One segment as both Journal::Recover and ReadJournalSegments read it.
struct ScannedSegment {
  bool headerless = false;  // the newest segment has no valid header: only info's number,
                            // path and sealed are set
  SegmentHeader header;
  ScanReport scan;
  SegmentInfo info;         // bytes: the valid end (a torn tail left out); sealed: not the newest
  uint64_t last_batch = 0;  // highest batch number of its records
  RecordHeader last_header; // of its last record (seq 0 if it has none)
  uint64_t last_record_offset = 0;  // 0 if it has none
  bool from_index = false;  // taken from its index file, records not read
};

// The index file that describes `seg` (a scanned or written segment).
SegmentIndexFile IndexFileOf(const SegmentHeader& h, const SegmentInfo& info, uint64_t last_batch,
                             uint64_t last_record_offset) {
  SegmentIndexFile f;
  f.kind = h.kind;
  f.stream = h.stream;
  f.number = h.number;
  f.created_ns = h.created_ns;
  f.bytes = info.bytes;
  f.records = info.records;
  f.first_seq = info.first_seq;
  f.last_seq = info.last_seq;
  f.first_time_ns = info.first_time_ns;
  f.last_time_ns = info.last_time_ns;
  f.logical_bytes = info.logical_bytes;
  f.stored_bytes = info.stored_bytes;
  f.last_batch = last_batch;
  f.last_record_offset = last_record_offset;
  f.first_continues = info.first_continues;
  if (info.index) f.entries = *info.index;
  return f;
}

// Opens segment `number` of `kind` in `dir` (`newest`: no newer one exists)
// and scans every record. A newest segment whose header is corrupt is
// reported as headerless (a crash while it was created), any other error is
// returned. With `stream`, the header must name this kind, stream and number
// (checked before the records are scanned), else kCorruption.
Result<ScannedSegment> ScanSegment(shim::FileSystem& fs, const std::string& dir, SegmentKind kind,
                                   uint64_t number, bool newest,
                                   std::optional<uint64_t> stream) {
  ScannedSegment out;
  SegmentInfo& info = out.info;
  info.number = number;
  info.path = shim::JoinPath(dir, SegmentFileName(kind, number));
  info.sealed = !newest;
  const std::string& path = info.path;
  auto reader = SegmentReader::Open(fs, path, /*sealed=*/!newest);
  if (!reader.ok()) {
    if (newest && reader.status().code() == Errc::kCorruption) {
      out.headerless = true;
      return out;
    }
    return reader.status();
  }
  out.header = (*reader)->header();
  const SegmentHeader& h = out.header;
  if (stream && (h.kind != kind || h.stream != *stream || h.number != number))
    return Status(Errc::kCorruption, path + ": segment header names stream " +
                                         std::to_string(h.stream) + " segment " +
                                         std::to_string(h.number) + ", not this journal's");
  info.created_ns = h.created_ns;
  MT_RETURN_IF_ERROR((*reader)->Scan(&out.scan));
  info.bytes = out.scan.valid_end;
  auto index = std::make_shared<std::vector<IndexEntry>>();
  uint64_t next_index_at = 0;
  for (const auto& r : (*reader)->records()) {
    MaybeIndex(r.header.seq, r.offset, &next_index_at, index.get());
    out.last_record_offset = r.offset;
    if (info.records++ == 0) {
      info.first_seq = r.header.seq;
      info.first_time_ns = r.header.source_time_ns;
      info.first_continues = (r.header.flags & kFlagContinued) != 0;
    }
    out.last_header = r.header;
    info.last_seq = r.header.seq;
    info.last_time_ns = r.header.source_time_ns;
    info.logical_bytes += r.header.length;
    info.stored_bytes += r.header.stored_length;
    out.last_batch = std::max(out.last_batch, r.header.batch);
  }
  info.index = std::move(index);
  return out;
}

// A sealed segment from its index file, when one matches it (segment_index.h):
// its header is read and checked against the index, and the header of its
// last record is read; nothing else. nullopt: no matching index (scan it).
std::optional<ScannedSegment> IndexedSegment(shim::FileSystem& fs, const std::string& dir,
                                             SegmentKind kind, uint64_t number,
                                             std::optional<uint64_t> stream) {
  const std::string path = shim::JoinPath(dir, SegmentFileName(kind, number));
  std::optional<SegmentIndexFile> idx = ReadSegmentIndex(fs, path);
  if (!idx) return std::nullopt;
  auto reader = SegmentReader::Open(fs, path, /*sealed=*/true);
  if (!reader.ok()) return std::nullopt;  // the scan reports it
  const SegmentHeader& h = (*reader)->header();
  if (h.kind != kind || h.number != number || idx->kind != kind || idx->number != number ||
      idx->stream != h.stream || idx->created_ns != h.created_ns ||
      (stream && h.stream != *stream) || (*reader)->file_size() < idx->bytes)
    return std::nullopt;
  ScannedSegment out;
  out.header = h;
  out.from_index = true;
  if (idx->records > 0) {
    auto last = (*reader)->ReadHeaderAt(idx->last_record_offset);
    if (!last.ok() || last->seq != idx->last_seq) return std::nullopt;
    out.last_header = *last;
  }
  SegmentInfo& info = out.info;
  info.number = number;
  info.path = path;
  info.sealed = true;
  info.first_seq = idx->first_seq;
  info.last_seq = idx->last_seq;
  info.first_time_ns = idx->first_time_ns;
  info.last_time_ns = idx->last_time_ns;
  info.records = idx->records;
  info.bytes = idx->bytes;
  info.logical_bytes = idx->logical_bytes;
  info.stored_bytes = idx->stored_bytes;
  info.first_continues = idx->first_continues;
  info.created_ns = h.created_ns;
  info.index = std::make_shared<const std::vector<IndexEntry>>(std::move(idx->entries));
  out.scan.end = ScanReport::End::kClean;
  out.scan.valid_end = out.scan.file_size = idx->bytes;
  out.last_batch = idx->last_batch;
  out.last_record_offset = idx->last_record_offset;
  return out;
}

// A sealed segment from its index when one matches, else scanned; the newest
// always scanned (its tail may be torn, and it has no index yet).
Result<ScannedSegment> LoadSegment(shim::FileSystem& fs, const std::string& dir, SegmentKind kind,
                                   uint64_t number, bool newest, std::optional<uint64_t> stream) {
  if (!newest)
    if (auto seg = IndexedSegment(fs, dir, kind, number, stream)) return std::move(*seg);
  return ScanSegment(fs, dir, kind, number, newest, stream);
}

}  // namespace

Result<std::vector<SegmentInfo>> ReadJournalSegments(shim::FileSystem& fs, const std::string& dir,
                                                     SegmentKind kind) {
  std::vector<SegmentInfo> out;
  if (!fs.Exists(dir)) return out;
  MT_ASSIGN_OR_RETURN(auto names, fs.ListDir(dir));
  const std::vector<uint64_t> numbers = SegmentNumbers(kind, names);
  for (size_t i = 0; i < numbers.size(); ++i) {
    MT_ASSIGN_OR_RETURN(ScannedSegment seg, LoadSegment(fs, dir, kind, numbers[i],
                                                        /*newest=*/i + 1 == numbers.size(),
                                                        /*stream=*/std::nullopt));
    if (seg.headerless) continue;
    out.push_back(seg.info);
  }
  return out;
}

Journal::Journal(shim::FileSystem& fs, shim::Clock& clock, JournalOptions o)
    : fs_(fs), clock_(clock), o_(std::move(o)) {}

Journal::~Journal() { (void)Close(); }

Result<std::unique_ptr<Journal>> Journal::Open(shim::FileSystem& fs, shim::Clock& clock,
                                               const JournalOptions& o, RecoveryReport* report) {
  if (o.dir.empty()) return Status(Errc::kInvalidArgument, "journal directory not set");
  std::unique_ptr<Journal> j(new Journal(fs, clock, o));
  RecoveryReport local;
  MT_RETURN_IF_ERROR(j->Recover(report != nullptr ? report : &local));
  WorkerPool* pool = o.committers;
  if (pool == nullptr) {
    j->own_pool_ = std::make_unique<WorkerPool>("committer", 1);
    pool = j->own_pool_.get();
  }
  j->committer_ = pool->NewStrand([p = j.get()] { p->CommitStep(); });
  return j;
}

Status Journal::Recover(RecoveryReport* report) {
  MutexLock l(mu_);  // nothing else runs yet: for the analysis's sake
  *report = RecoveryReport();
  MT_RETURN_IF_ERROR(fs_.CreateDir(o_.dir));
  MT_ASSIGN_OR_RETURN(auto names, fs_.ListDir(o_.dir));
  const std::vector<uint64_t> numbers = SegmentNumbers(o_.kind, names);
  // Index files without their segment (a crash while one was removed) and
  // leftovers of an interrupted index write: never read, removed.
  for (const auto& n : names) {
    const std::string path = shim::JoinPath(o_.dir, n);
    const bool tmp = n.size() > 8 && n.compare(n.size() - 8, 8, ".idx.tmp") == 0;
    const bool idx = n.size() > 4 && n.compare(n.size() - 4, 4, ".idx") == 0;
    if (!tmp && !idx) continue;
    const std::string seg = n.substr(0, n.size() - (tmp ? 8 : 4)) + ".seg";
    if (tmp || !fs_.Exists(shim::JoinPath(o_.dir, seg))) MT_RETURN_IF_ERROR(fs_.Remove(path));
  }

  uint64_t last_batch = 0;
  uint64_t continue_end = 0;  // valid end of the newest segment, which we append to
  for (size_t i = 0; i < numbers.size(); ++i) {
    const bool newest = i + 1 == numbers.size();
    MT_ASSIGN_OR_RETURN(ScannedSegment seg,
                        LoadSegment(fs_, o_.dir, o_.kind, numbers[i], newest, o_.stream));
    const std::string& path = seg.info.path;
    if (seg.headerless) {
      // Power was lost while the newest segment was being created: its first
      // batch (header included) never became durable, so nothing in it was.
      MT_RETURN_IF_ERROR(RemoveSegmentFiles(fs_, path));
      report->removed_empty_segment = true;
      continue;
    }
    const ScanReport& scan = seg.scan;
    if (scan.end == ScanReport::End::kTornTail) {
      shim::FileOptions wo;
      wo.writable = true;
      MT_ASSIGN_OR_RETURN(auto f, fs_.OpenFile(path, wo));
      MT_RETURN_IF_ERROR(f->Truncate(scan.valid_end));
      MT_RETURN_IF_ERROR(f->Sync());
      report->truncated_bytes = scan.file_size - scan.valid_end;
      report->torn_reason = scan.reason;
    }
    const SegmentInfo& info = seg.info;
    last_batch = std::max(last_batch, seg.last_batch);
    // A first record that continues an item needs the previous segment's
    // last seq; its predecessor may be pruned (last_appended_seq_ still 0).
    const bool follows = info.first_continues ? info.first_seq == last_appended_seq_
                                              : info.first_seq > last_appended_seq_;
    if (info.records > 0 && last_appended_seq_ != 0 && !follows)
      return Status(Errc::kCorruption, path + ": sequence " + std::to_string(info.first_seq) +
                                           " does not follow the previous segment's " +
                                           std::to_string(last_appended_seq_));
    if (info.records > 0) {
      last_appended_seq_ = info.last_seq;
      durable_last_ = seg.last_header;
      durable_last_offset_ = seg.last_record_offset;
    }
    last_batch = std::max(last_batch, seg.header.first_batch);
    if (seg.from_index) {
      ++report->indexed_segments;
    } else if (!newest) {
      // Scanned in full (no index yet: written before index files existed,
      // or its index was lost): write it now, so the next open reads it.
      // Best effort: without it the next open scans this segment again.
      (void)WriteSegmentIndex(fs_, path, IndexFileOf(seg.header, info, seg.last_batch,
                                                     seg.last_record_offset));
    }
    report->records += info.records;
    ++report->segments;
    segments_[info.number] = info;
    next_segment_ = info.number + 1;
    continue_end = scan.valid_end;
  }
  report->last_seq = durable_seq_ = last_appended_seq_;
  next_batch_ = durable_batch_ = last_sealed_batch_ = last_batch;
  ++next_batch_;

  if (segments_.empty()) {
    open_ = NewSegmentBatch(0);
    return Status::Ok();
  }
  // Continue the newest segment: reload its partial last block so the next
  // aligned write rewrites it unchanged.
  const SegmentInfo& last = segments_.rbegin()->second;
  // It is appended to from now on: an index file of it (left when a rollback
  // or a crash at a segment's creation made an older segment the newest)
  // would describe less than it holds.
  const std::string last_idx = SegmentIndexPath(last.path);
  if (fs_.Exists(last_idx)) MT_RETURN_IF_ERROR(fs_.Remove(last_idx));
  next_index_at_ =
      last.index && !last.index->empty() ? last.index->back().offset + kIndexStride : 0;
  shim::FileOptions wo;
  wo.writable = true;
  wo.direct = o_.direct;
  MT_ASSIGN_OR_RETURN(file_, fs_.OpenFile(last.path, wo));
  file_segment_ = last.number;
  open_ = std::make_unique<Batch>();
  open_->number = next_batch_++;
  open_->segment = last.number;
  open_->file_offset = continue_end / kDirectIoAlignment * kDirectIoAlignment;
  open_->head = open_->used = static_cast<size_t>(continue_end - open_->file_offset);
  open_->buf = TakeBufferLocked();
  if (open_->used > 0) {
    AlignedBuffer block(kDirectIoAlignment);
    MT_ASSIGN_OR_RETURN(size_t n, file_->ReadAt(open_->file_offset, block.data(), block.size()));
    if (n < open_->used) return Status(Errc::kIoError, last.path + ": short read of the last block");
    std::memcpy(open_->buf.data(), block.data(), open_->used);
  }
  return Status::Ok();
}

AlignedBuffer Journal::TakeBufferLocked() {
  // Not zero-filled (Batch::Reserve says why that is safe): a fresh buffer's
  // pages then cost no memory until records are written into them, so an
  // idle stream's two journals do not hold 2 x 256 KiB each.
  if (spare_.empty()) return AlignedBuffer::Uninitialized(kFirstBatchBufferBytes);
  // The largest: under load the buffers have grown to the batches' size.
  auto it = std::max_element(spare_.begin(), spare_.end(),
                             [](const AlignedBuffer& a, const AlignedBuffer& b) {
                               return a.size() < b.size();
                             });
  AlignedBuffer b = std::move(*it);
  spare_.erase(it);
  return b;
}

bool Journal::HoldsIdleBuffersLocked() const {
  return !spare_.empty() || (open_ && open_->buf.size() > kFirstBatchBufferBytes);
}

void Journal::ReleaseIdleBuffersLocked() {
  spare_.clear();
  if (open_ && open_->buf.size() > kFirstBatchBufferBytes) {
    AlignedBuffer small = AlignedBuffer::Uninitialized(kFirstBatchBufferBytes);
    if (open_->used > 0) std::memcpy(small.data(), open_->buf.data(), open_->used);
    open_->buf = std::move(small);
  }
}

size_t Journal::HeldBufferBytes() const {
  MutexLock l(mu_);
  size_t n = open_ ? open_->buf.size() : 0;
  for (const auto& b : ready_) n += b->buf.size();
  for (const auto& b : spare_) n += b.size();
  return n;
}

std::unique_ptr<Journal::Batch> Journal::NewSegmentBatch(uint64_t first_seq) {
  auto b = std::make_unique<Batch>();
  b->number = next_batch_++;
  b->segment = next_segment_++;
  b->new_segment = true;
  b->file_offset = 0;
  b->buf = TakeBufferLocked();
  b->head = b->used = kSegmentHeaderSize;  // header encoded when sealed
  b->first_seq = first_seq;
  next_index_at_ = 0;
  return b;
}

std::unique_ptr<Journal::Batch> Journal::NewBatchAfter(const Batch* prev) {
  auto b = std::make_unique<Batch>();
  b->number = next_batch_++;
  b->segment = prev->segment;
  const uint64_t end = prev->file_offset + prev->used;
  b->file_offset = end / kDirectIoAlignment * kDirectIoAlignment;
  b->head = b->used = static_cast<size_t>(end - b->file_offset);
  b->buf = TakeBufferLocked();
  if (b->used > 0) std::memcpy(b->buf.data(), prev->buf.data() + (prev->used - b->used), b->used);
  return b;
}

void Journal::SealOpenLocked() {
  Batch& b = *open_;
  if (b.new_segment) {
    SegmentHeader h;
    h.kind = o_.kind;
    h.stream = o_.stream;
    h.number = b.segment;
    h.first_seq = b.first_seq;
    h.first_batch = b.number;
    h.created_ns = b.created_ns = clock_.NowNs();
    EncodeSegmentHeader(h, b.buf.data());
  }
  last_sealed_batch_ = b.number;
  auto next = NewBatchAfter(&b);
  ready_.push_back(std::move(open_));
  open_ = std::move(next);
  committer_->Wake();
}

Status Journal::Append(RecordHeader h, const void* payload, size_t len, PayloadCrc crc) {
  if ((h.flags & kFlagInPlace) != 0)
    return Status(Errc::kInvalidArgument, "an in-place record goes through AppendInPlace");
  return AppendRecord(h, payload, len, crc, nullptr);
}

Status Journal::AppendInPlace(RecordHeader h, const uint8_t* data) {
  h.flags = kFlagInPlace;
  h.payload_crc = 0;
  if (h.type != RecordType::kResyncData || data == nullptr || h.length == 0)
    return Status(Errc::kInvalidArgument, "an in-place record is resync data with its data");
  return AppendRecord(h, nullptr, 0, PayloadCrc::kCompute, data);
}

Status Journal::AppendRecord(RecordHeader h, const void* payload, size_t len, PayloadCrc crc,
                             const uint8_t* in_place_data) {
  if (len > kMaxPayload)
    return Status(Errc::kInvalidArgument, "record payload of " + std::to_string(len) +
                                              " bytes is over the limit");
  if ((h.flags & kFlagDiscard) != 0 ? len != 0 : h.length > kMaxPayload)
    return Status(Errc::kInvalidArgument, "record of " + std::to_string(h.length) +
                                              " bytes: a discard stores nothing, any other "
                                              "record is at most 64 MiB long");
  const size_t rec = EncodedRecordSize(static_cast<uint32_t>(len));
  UniqueLock l(mu_);
  if (!error_.ok()) return error_;
  if (stopping_) return Status(Errc::kAborted, "journal " + o_.dir + " is closed");
  if (!SeqFollows(last_appended_seq_, h))
    return Status(Errc::kInvalidArgument, "journal " + o_.dir + ": seq " + std::to_string(h.seq) +
                                              ((h.flags & kFlagContinued) != 0
                                                   ? " does not continue "
                                                   : " is not after ") +
                                              std::to_string(last_appended_seq_));
  // Roll over when this record would take a segment that has records past its size.
  const bool segment_has_records =
      open_->records > 0 || (!open_->new_segment && segments_.count(open_->segment) != 0 &&
                             segments_[open_->segment].records > 0);
  if (segment_has_records && open_->file_offset + open_->used + rec > o_.segment_bytes) {
    if (open_->used > open_->head) SealOpenLocked();
    open_ = NewSegmentBatch(h.seq);
  }
  // Backpressure: at most one sealed batch waits while another is written —
  // unless the caller bounds what is unwritten itself (!append_waits).
  while (open_->records > 0 && open_->used + rec > o_.max_batch_bytes) {
    if (ready_.empty() || !o_.append_waits) {
      SealOpenLocked();
    } else {
      space_cv_.wait(l.native());
      if (!error_.ok()) return error_;
    }
  }
  Batch& b = *open_;
  h.batch = b.number;
  h.stored_length = static_cast<uint32_t>(len);
  b.Reserve(b.used + rec);
  b.last_record_offset = b.file_offset + b.used;
  MaybeIndex(h.seq, b.last_record_offset, &next_index_at_, &b.index);
  if (crc == PayloadCrc::kVerified) {
    EncodeRecordWithVerifiedCrc(h, payload, len, b.buf.data() + b.used);
  } else {
    EncodeRecord(h, payload, len, b.buf.data() + b.used);
  }
  b.used += rec;
  if (b.records++ == 0) {
    b.first_seq = h.seq;
    b.first_time = h.source_time_ns;
    b.first_continues = (h.flags & kFlagContinued) != 0;
  }
  if (in_place_data != nullptr) b.in_place.push_back({h, in_place_data});
  b.last_header = h;
  b.last_seq = h.seq;
  b.last_time = h.source_time_ns;
  b.logical += h.length;
  b.stored += len;
  last_appended_seq_ = h.seq;
  return Status::Ok();
}

void Journal::SetBeforeWrite(BeforeWrite before_write) {
  MutexLock l(mu_);
  before_write_ = std::move(before_write);
}

void Journal::Commit(std::function<void(const Status&)> done) {
  UniqueLock l(mu_);
  if (!error_.ok()) {
    Status e = error_;
    l.Unlock();
    done(e);
    return;
  }
  uint64_t target;
  if (open_->records > 0) {
    target = open_->number;
    open_->wanted = true;
    committer_->Wake();
  } else if (last_sealed_batch_ > durable_batch_) {
    target = last_sealed_batch_;
  } else if (delivering_) {
    // Durable already, but earlier Commit()s' callbacks are still being run:
    // after them, in order.
    late_.push_back(std::move(done));
    return;
  } else {
    l.Unlock();
    done(Status::Ok());
    return;
  }
  waiters_[target].push_back(std::move(done));
}

Status Journal::Sync() {
  std::mutex m;
  std::condition_variable cv;
  bool finished = false;
  Status result;
  Commit([&](const Status& s) {
    std::lock_guard<std::mutex> g(m);
    result = s;
    finished = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> g(m);
  cv.wait(g, [&] { return finished; });
  return result;
}

Status Journal::Close() {
  {
    UniqueLock l(mu_);
    if (!committer_) return error_;
    if (!stopping_) {
      if (open_->records > 0) open_->wanted = true;
      stopping_ = true;
      committer_->Wake();
    }
    closed_cv_.wait(l.native(), [&]() MT_REQUIRES(mu_) { return committer_done_; });
  }
  committer_->Stop();  // waits for the run that found nothing left
  MutexLock l(mu_);
  file_.reset();
  return error_;
}

void Journal::FailLocked(const Status& s) {
  if (error_.ok())
    error_ = s.WithContext(std::string(SegmentKindName(o_.kind)) + " journal " + o_.dir);
  space_cv_.notify_all();
}

Status Journal::WriteBatch(Batch& b, const std::optional<SegmentIndexFile>& seal) {
  const std::string path = shim::JoinPath(o_.dir, SegmentFileName(o_.kind, b.segment));
  if (b.new_segment && seal) {
    // Before the next segment exists: a sealed segment is never seen without
    // its own index (or with an older one, segment_index.h).
    const std::string sealed = shim::JoinPath(o_.dir, SegmentFileName(o_.kind, seal->number));
    MT_RETURN_IF_ERROR(WriteSegmentIndex(fs_, sealed, *seal).WithContext("index of " + sealed));
  }
  if (b.new_segment) {
    shim::FileOptions o;
    o.writable = o.create = o.must_not_exist = true;
    o.direct = o_.direct;
    file_.reset();
    MT_ASSIGN_OR_RETURN(file_, fs_.OpenFile(path, o));
    file_segment_ = b.segment;
    file_reserved_ = 0;
  }
  if (!file_ || file_segment_ != b.segment)
    return Status(Errc::kInternal, path + ": batch for a segment that is not open");
  const size_t len = o_.direct ? AlignUp(b.used, kDirectIoAlignment) : b.used;
  // The padding of a direct write: zeros, never what the buffer held before.
  if (len > b.used) std::memset(b.buf.data() + b.used, 0, len - b.used);
  const uint64_t end = b.file_offset + len;
  if (o_.preallocate && end > file_reserved_) {
    // One step past this batch (the segment's end at most). Best effort: a
    // volume too full to reserve a step may still hold this batch; when it
    // cannot, the write below fails with kNoSpace.
    const uint64_t to = std::max(end, std::min(o_.segment_bytes, end + o_.preallocate_step));
    Status p = file_->Preallocate(file_reserved_, to - file_reserved_);
    if (p.ok()) {
      file_reserved_ = to;
    } else if (p.code() != Errc::kNoSpace) {
      return p;
    }
  }
  if (!b.in_place.empty()) {
    BeforeWrite before;
    {
      MutexLock l(mu_);
      before = before_write_;
    }
    if (!before)
      return Status(Errc::kInternal, path + ": in-place records and nothing that flushes their data");
    MT_RETURN_IF_ERROR(before(b.in_place).WithContext("before writing in-place records"));
    b.in_place.clear();
  }
  b.Reserve(len);
  std::memset(b.buf.data() + b.used, 0, len - b.used);  // recycled buffers hold old bytes
  MT_RETURN_IF_ERROR(file_->WriteAt(b.file_offset, b.buf.data(), len));
  return file_->Sync();
}

void Journal::CommitStep() {
  UniqueLock l(mu_);
  if (committer_done_) return;
  if (ready_.empty() && open_->wanted && open_->records > 0) SealOpenLocked();
  if (ready_.empty()) {
    if (stopping_) {
      committer_done_ = true;
      closed_cv_.notify_all();
      return;
    }
    // Nothing to write. Idle for idle_release_after since the last batch:
    // give the buffers back. (Records appended but not yet wanted are work
    // to come: keep the buffers then.)
    if (HoldsIdleBuffersLocked()) {
      const auto idle = std::chrono::steady_clock::now() - last_write_;
      if (idle >= o_.idle_release_after && open_->records == 0) {
        ReleaseIdleBuffersLocked();
      } else {
        committer_->WakeAfter(std::max(
            std::chrono::milliseconds(1),
            std::chrono::duration_cast<std::chrono::milliseconds>(o_.idle_release_after - idle)));
      }
    }
    return;
  }
  std::unique_ptr<Batch> b = std::move(ready_.front());
  ready_.pop_front();
  Status s;
  if (error_.ok()) {
    std::optional<SegmentIndexFile> seal;
    if (b->new_segment && !segments_.empty()) {
      // Every batch of the previous segment is durable (batches are
      // written in order): its summary is final.
      const SegmentInfo& prev = segments_.rbegin()->second;
      SegmentHeader h;
      h.kind = o_.kind;
      h.stream = o_.stream;
      h.number = prev.number;
      h.created_ns = prev.created_ns;
      seal = IndexFileOf(h, prev, durable_batch_, prev.records > 0 ? durable_last_offset_ : 0);
    }
    writing_ = true;
    commit_busy_.Busy();
    l.Unlock();
    s = WriteBatch(*b, seal);
    l.Lock();
    commit_busy_.Idle();
    writing_ = false;
  } else {
    s = error_;
  }
  std::vector<std::function<void(const Status&)>> done;
  if (!s.ok()) {
    FailLocked(s);
    for (auto& [n, v] : waiters_)
      for (auto& f : v) done.push_back(std::move(f));
    waiters_.clear();
  } else {
    durable_batch_ = b->number;
    if (b->records > 0) {
      durable_seq_ = b->last_seq;
      durable_last_ = b->last_header;
      durable_last_offset_ = b->last_record_offset;
    }
    if (b->new_segment && !segments_.empty()) segments_.rbegin()->second.sealed = true;
    SegmentInfo& info = segments_[b->segment];
    info.number = b->segment;
    info.path = shim::JoinPath(o_.dir, SegmentFileName(o_.kind, b->segment));
    if (b->new_segment) info.created_ns = b->created_ns;
    if (!b->index.empty()) {
      // Copied, not appended: readers hold the old vector (Segments()).
      auto grown = info.index ? std::make_shared<std::vector<IndexEntry>>(*info.index)
                              : std::make_shared<std::vector<IndexEntry>>();
      grown->insert(grown->end(), b->index.begin(), b->index.end());
      info.index = std::move(grown);
    }
    if (b->records > 0) {
      if (info.records == 0) {
        info.first_seq = b->first_seq;
        info.first_time_ns = b->first_time;
        info.first_continues = b->first_continues;
      }
      info.records += b->records;
      info.last_seq = b->last_seq;
      info.last_time_ns = b->last_time;
      info.logical_bytes += b->logical;
      info.stored_bytes += b->stored;
    }
    info.bytes = b->file_offset + b->used;
    auto end = waiters_.upper_bound(b->number);
    for (auto it = waiters_.begin(); it != end; ++it)
      for (auto& f : it->second) done.push_back(std::move(f));
    waiters_.erase(waiters_.begin(), end);
  }
  // At most three batches live at once (open, ready, being written): keep
  // that many buffers so the steady state never allocates or page-faults.
  // Idle for idle_release_after: the committer gives them back and shrinks
  // the open batch's, so an idle journal holds kFirstBatchBufferBytes, not
  // several max_batch_bytes (issue 19: 30 idle streams held 2 GiB).
  if (spare_.size() < 3) spare_.push_back(std::move(b->buf));
  if (o_.idle_release_after.count() == 0 && ready_.empty() && open_ && open_->records == 0)
    ReleaseIdleBuffersLocked();
  space_cv_.notify_all();
  delivering_ = true;
  const Status outcome = s.ok() ? Status::Ok() : error_;
  l.Unlock();
  for (auto& f : done) f(outcome);
  l.Lock();
  while (!late_.empty()) {  // their records were durable: ok
    std::vector<std::function<void(const Status&)>> late;
    late.swap(late_);
    l.Unlock();
    for (auto& f : late) f(Status::Ok());
    l.Lock();
  }
  delivering_ = false;
  last_write_ = std::chrono::steady_clock::now();
  // One batch a run: the pool's other journals get their turn in between.
  if (!ready_.empty() || stopping_ || (open_->wanted && open_->records > 0)) {
    committer_->Wake();
  } else if (HoldsIdleBuffersLocked()) {
    committer_->WakeAfter(o_.idle_release_after);
  }
}

uint64_t Journal::last_appended_seq() const {
  MutexLock l(mu_);
  return last_appended_seq_;
}

uint64_t Journal::durable_seq() const {
  MutexLock l(mu_);
  return durable_seq_;
}

RecordHeader Journal::last_durable_record() const {
  MutexLock l(mu_);
  return durable_last_;
}

Status Journal::status() const {
  MutexLock l(mu_);
  return error_;
}

std::vector<SegmentInfo> Journal::Segments() const {
  MutexLock l(mu_);
  std::vector<SegmentInfo> out;
  for (const auto& [n, info] : segments_) out.push_back(info);
  return out;
}

Status Journal::RemoveSegment(uint64_t number) {
  MutexLock l(mu_);
  auto it = segments_.find(number);
  if (it == segments_.end())
    return Status(Errc::kNotFound, "journal " + o_.dir + " has no segment " + std::to_string(number));
  if (!it->second.sealed || number >= open_->segment)
    return Status(Errc::kInvalidArgument,
                  "segment " + std::to_string(number) + " of " + o_.dir + " is still being written");
  MT_RETURN_IF_ERROR(RemoveSegmentFiles(fs_, it->second.path));
  segments_.erase(it);
  return Status::Ok();
}

}  // namespace mt::retention
