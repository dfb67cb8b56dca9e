#include "retention/segment_reader.h"

#include <algorithm>
#include <cstring>

namespace mt::retention {
namespace {

constexpr size_t kWindow = 1 << 20;

// Reads [offset, offset+len) exactly; kCorruption if the file is shorter.
Status ReadExact(shim::File& f, uint64_t offset, void* buf, size_t len) {
  if (len == 0) return Status::Ok();  // an empty payload (buf may be null)
  MT_ASSIGN_OR_RETURN(size_t n, f.ReadAt(offset, buf, len));
  if (n != len)
    return Status(Errc::kCorruption, f.path() + ": short read at " + std::to_string(offset));
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<SegmentReader>> SegmentReader::Open(shim::FileSystem& fs,
                                                           const std::string& path, bool sealed) {
  shim::FileOptions o;
  MT_ASSIGN_OR_RETURN(auto file, fs.OpenFile(path, o));
  std::vector<uint8_t> buf(kSegmentHeaderSize);
  MT_ASSIGN_OR_RETURN(size_t n, file->ReadAt(0, buf.data(), buf.size()));
  SegmentHeader h;
  if (n != buf.size()) return Status(Errc::kCorruption, path + ": segment header is incomplete");
  Status s = DecodeSegmentHeader(buf.data(), &h);
  if (!s.ok()) return s.WithContext(path);
  return std::unique_ptr<SegmentReader>(new SegmentReader(std::move(file), h, sealed));
}

Status SegmentReader::Scan(ScanReport* r, uint64_t limit, uint64_t from) {
  records_.clear();
  *r = ScanReport();
  const uint64_t end = std::min<uint64_t>(file_->Size(), limit);
  r->file_size = end;
  uint64_t pos = std::max<uint64_t>(from, kSegmentHeaderSize);
  std::vector<uint8_t> hdr(kRecordHeaderSize), payload;
  // Batch of the last valid record; before any, the batch before the first.
  uint64_t last_batch = header_.first_batch == 0 ? 0 : header_.first_batch - 1;
  Status bad;
  while (true) {
    if (pos + kRecordAlignment > end) break;  // clean end of file
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kRecordHeaderSize, end - pos));
    MT_RETURN_IF_ERROR(ReadExact(*file_, pos, hdr.data(), want));
    if (IsEndOfRecords(hdr.data())) break;  // zero word: clean end
    if (want < kRecordHeaderSize) {
      bad = Status(Errc::kCorruption, "record header cut short by end of file");
      break;
    }
    RecordHeader h;
    bad = DecodeRecordHeader(hdr.data(), &h);
    if (!bad.ok()) break;
    const uint64_t rec_end = pos + EncodedRecordSize(h.stored_length);
    if (rec_end > end) {
      bad = Status(Errc::kCorruption, "record payload cut short by end of file");
      break;
    }
    payload.resize(h.stored_length);
    MT_RETURN_IF_ERROR(ReadExact(*file_, pos + kRecordHeaderSize, payload.data(), payload.size()));
    bad = VerifyPayload(h, payload.data());
    if (!bad.ok()) break;
    if (!records_.empty() && !SeqFollows(records_.back().header.seq, h)) {
      bad = Status(Errc::kCorruption, "sequence does not follow (" + std::to_string(h.seq) +
                                          " after " + std::to_string(records_.back().header.seq) +
                                          ")");
      break;
    }
    records_.push_back({h, pos});
    last_batch = h.batch;
    pos = rec_end;
  }
  r->valid_end = pos;
  if (bad.ok()) return Status::Ok();

  r->bad_offset = pos;
  r->reason = bad.message();
  MT_ASSIGN_OR_RETURN(bool later, LaterBatchFollows(pos + kRecordAlignment, end, last_batch + 1,
                                                    &r->dropped_bytes));
  if (sealed_ || later) {
    r->end = ScanReport::End::kCorrupt;
    return Status(Errc::kCorruption,
                  file_->path() + ": corrupt record at offset " + std::to_string(pos) + ": " +
                      bad.message() +
                      (sealed_ ? " (segment is sealed)" : " (durable records follow it)"));
  }
  r->end = ScanReport::End::kTornTail;
  return Status::Ok();
}

Result<bool> SegmentReader::LaterBatchFollows(uint64_t from, uint64_t end, uint64_t max_batch,
                                              uint64_t* nonzero_bytes) {
  // Look at every 8-byte aligned position for a record header that decodes.
  from = (from + kRecordAlignment - 1) / kRecordAlignment * kRecordAlignment;
  std::vector<uint8_t> buf(kWindow + kRecordHeaderSize);
  *nonzero_bytes = 0;
  bool later = false;
  for (uint64_t w = from; w < end; w += kWindow) {
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(buf.size(), end - w));
    MT_RETURN_IF_ERROR(ReadExact(*file_, w, buf.data(), n));
    const size_t scan = std::min<size_t>(n, kWindow);
    for (size_t i = 0; i < scan; ++i)
      if (buf[i] != 0) ++*nonzero_bytes;
    for (size_t i = 0; i + kRecordHeaderSize <= n && i < scan; i += kRecordAlignment) {
      RecordHeader h;
      if (DecodeRecordHeader(buf.data() + i, &h).ok() && h.batch > max_batch) later = true;
    }
  }
  return later;
}

Result<RecordHeader> SegmentReader::ReadHeaderAt(uint64_t offset) {
  uint8_t hdr[kRecordHeaderSize];
  MT_RETURN_IF_ERROR(ReadExact(*file_, offset, hdr, sizeof hdr));
  RecordHeader h;
  Status s = DecodeRecordHeader(hdr, &h);
  if (!s.ok()) return s.WithContext(file_->path() + " offset " + std::to_string(offset));
  return h;
}

Status SegmentReader::ReadPayload(size_t i, std::vector<uint8_t>* out) {
  const RecordRef& r = records_.at(i);
  out->resize(r.header.stored_length);
  MT_RETURN_IF_ERROR(
      ReadExact(*file_, r.offset + kRecordHeaderSize, out->data(), out->size()));
  Status s = VerifyPayload(r.header, out->data());
  if (!s.ok()) return s.WithContext(file_->path() + " offset " + std::to_string(r.offset));
  return Status::Ok();
}

}  // namespace mt::retention
