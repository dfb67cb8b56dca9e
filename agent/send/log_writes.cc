#include "send/log_writes.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "mt/shim/aligned_buffer.h"

namespace mt::send::logwrites {

namespace {

uint64_t Le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint32_t Le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}
void Put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

std::string Hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

}  // namespace

Status BytesSource::Read(uint64_t offset, void* buf, size_t len) {
  if (offset > size_ || len > size_ - offset) {
    return Status(Errc::kOutOfRange, "read of " + std::to_string(len) + " bytes at " +
                                         std::to_string(offset) + " beyond the capture");
  }
  if (len > 0) std::memcpy(buf, data_ + offset, len);
  return Status::Ok();
}

Status FileSource::Read(uint64_t offset, void* buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    MT_ASSIGN_OR_RETURN(size_t n, f_.ReadAt(offset + done, static_cast<uint8_t*>(buf) + done, len - done));
    if (n == 0) {
      return Status(Errc::kIoError, f_.path() + ": short read at byte " + std::to_string(offset + done));
    }
    done += n;
  }
  return Status::Ok();
}

Status BlockDeviceSource::Read(uint64_t offset, void* buf, size_t len) {
  const uint64_t lbs = d_.logical_block_size() == 0 ? 512 : d_.logical_block_size();
  if (offset > d_.size() || len > d_.size() - offset) {
    return Status(Errc::kOutOfRange, d_.name() + ": read beyond the device");
  }
  constexpr uint64_t kChunk = 4u << 20;
  size_t done = 0;
  while (done < len) {
    const uint64_t at = offset + done;
    const uint64_t start = at / lbs * lbs;
    const uint64_t want = std::min<uint64_t>(len - done, kChunk);
    const uint64_t end = std::min<uint64_t>((at + want + lbs - 1) / lbs * lbs, d_.size());
    AlignedBuffer b(end - start, std::max<size_t>(lbs, kDirectIoAlignment));
    MT_RETURN_IF_ERROR(d_.ReadAt(start, b.data(), end - start));
    const uint64_t n = std::min<uint64_t>(want, end - at);
    std::memcpy(static_cast<uint8_t*>(buf) + done, b.data() + (at - start), n);
    done += n;
  }
  return Status::Ok();
}

Result<Super> DecodeSuper(const uint8_t* p, size_t len) {
  if (len < kSuperBytes) {
    return Status(Errc::kCorruption, "dm-log-writes capture: " + std::to_string(len) +
                                         " bytes, too short for the super block");
  }
  const uint64_t magic = Le64(p);
  if (magic != kMagic) {
    return Status(Errc::kCorruption, "dm-log-writes capture: bad magic " + Hex(magic) + " (expected " +
                                         Hex(kMagic) + ")");
  }
  const uint64_t version = Le64(p + 8);
  if (version != kVersion) {
    return Status(Errc::kCorruption,
                  "dm-log-writes capture: unsupported version " + std::to_string(version) + " (only 1)");
  }
  Super s;
  s.nr_entries = Le64(p + 16);
  s.sectorsize = Le32(p + 24);
  if (s.sectorsize < 512 || s.sectorsize > 65536 || (s.sectorsize & (s.sectorsize - 1)) != 0) {
    return Status(Errc::kCorruption, "dm-log-writes capture: sectorsize " + std::to_string(s.sectorsize) +
                                         " is not a power of two in 512..65536");
  }
  return s;
}

Result<Entry> DecodeEntry(const uint8_t* header, size_t len, uint32_t ss, uint64_t index, uint64_t offset,
                          uint64_t capture_size) {
  const std::string where = "dm-log-writes entry " + std::to_string(index) + " at byte " + std::to_string(offset);
  if (offset > capture_size || capture_size - offset < ss || len < ss) {
    return Status(Errc::kCorruption, where + ": header block beyond the end of the capture (" +
                                         std::to_string(capture_size) + " bytes)");
  }
  Entry e;
  e.index = index;
  e.header_offset = offset;
  e.sector = Le64(header);
  e.nr_sectors = Le64(header + 8);
  e.flags = Le64(header + 16);
  e.data_len = Le64(header + 24);
  if ((e.flags & ~kKnownFlags) != 0) {
    return Status(Errc::kCorruption, where + ": unknown flags " + Hex(e.flags & ~kKnownFlags));
  }
  // Sector arithmetic must not overflow a byte offset.
  const uint64_t max_sectors = UINT64_MAX / ss;
  if (e.sector > max_sectors || e.nr_sectors > max_sectors - e.sector) {
    return Status(Errc::kCorruption, where + ": sector " + std::to_string(e.sector) + " + " +
                                         std::to_string(e.nr_sectors) + " overflows");
  }
  const uint64_t after_header = offset + ss;
  if (e.is_mark()) {
    if (e.nr_sectors != 0 || (e.flags & kDiscard) != 0) {
      return Status(Errc::kCorruption, where + ": a mark with sectors or the discard flag");
    }
    if (e.data_len == 0 || e.data_len > ss - kEntryHeaderBytes) {
      return Status(Errc::kCorruption, where + ": mark data_len " + std::to_string(e.data_len) +
                                           " is not 1.." + std::to_string(ss - kEntryHeaderBytes));
    }
    e.mark.assign(reinterpret_cast<const char*>(header + kEntryHeaderBytes), e.data_len);
    if (e.mark.find('\0') != std::string::npos) {
      return Status(Errc::kCorruption, where + ": mark name contains a NUL byte");
    }
    return e;
  }
  if (e.is_discard()) {
    if (e.data_len != 0) {
      return Status(Errc::kCorruption, where + ": discard with data_len " + std::to_string(e.data_len));
    }
    if (e.nr_sectors == 0) return Status(Errc::kCorruption, where + ": discard of 0 sectors");
    return e;
  }
  const uint64_t bytes = e.nr_sectors * ss;
  if (e.data_len != 0 && e.data_len != bytes) {
    return Status(Errc::kCorruption, where + ": data_len " + std::to_string(e.data_len) + " but " +
                                         std::to_string(e.nr_sectors) + " sectors of " + std::to_string(ss) +
                                         " bytes");
  }
  if (bytes == 0 && (e.flags & kFlush) == 0) {
    return Status(Errc::kCorruption, where + ": a write of 0 sectors without the flush flag");
  }
  if (bytes > capture_size - after_header) {
    return Status(Errc::kCorruption, where + ": its " + std::to_string(bytes) +
                                         " data bytes run beyond the end of the capture (" +
                                         std::to_string(capture_size) + " bytes)");
  }
  e.data_offset = after_header;
  e.data_bytes = bytes;
  return e;
}

Result<Reader> Reader::Open(LogSource& src) {
  Reader r(src);
  uint8_t buf[kSuperBytes];
  if (src.Size() < kSuperBytes) {
    return Status(Errc::kCorruption, "dm-log-writes capture: " + std::to_string(src.Size()) +
                                         " bytes, too short for the super block");
  }
  MT_RETURN_IF_ERROR(src.Read(0, buf, sizeof buf));
  MT_ASSIGN_OR_RETURN(r.super_, DecodeSuper(buf, sizeof buf));
  r.next_offset_ = r.super_.sectorsize;
  r.header_.resize(r.super_.sectorsize);
  return r;
}

Result<bool> Reader::Next(Entry* e) {
  if (next_index_ >= super_.nr_entries) return false;
  const uint32_t ss = super_.sectorsize;
  const uint64_t size = src_->Size();
  if (next_offset_ > size || size - next_offset_ < ss) {
    return Status(Errc::kCorruption, "dm-log-writes entry " + std::to_string(next_index_) + " of " +
                                         std::to_string(super_.nr_entries) + " at byte " +
                                         std::to_string(next_offset_) + " is beyond the end of the capture (" +
                                         std::to_string(size) + " bytes)");
  }
  MT_RETURN_IF_ERROR(src_->Read(next_offset_, header_.data(), ss));
  MT_ASSIGN_OR_RETURN(*e, DecodeEntry(header_.data(), ss, ss, next_index_, next_offset_, size));
  next_offset_ += ss + e->data_bytes;
  ++next_index_;
  return true;
}

Status Reader::ReadData(const Entry& e, std::vector<uint8_t>* out) {
  out->resize(e.data_bytes);
  return src_->Read(e.data_offset, out->data(), out->size());
}

// ---------------------------------------------------------------------------

Writer::Writer(uint32_t sectorsize) : ss_(sectorsize) {}

void Writer::Header(uint64_t sector, uint64_t nr, uint64_t flags, uint64_t data_len,
                    const std::string& inline_data) {
  const size_t at = log_.size();
  log_.resize(at + ss_, 0);
  Put64(&log_[at], sector);
  Put64(&log_[at + 8], nr);
  Put64(&log_[at + 16], flags);
  Put64(&log_[at + 24], data_len);
  std::memcpy(&log_[at + kEntryHeaderBytes], inline_data.data(), inline_data.size());
  ++entries_;
}

void Writer::Write(uint64_t sector, const std::vector<uint8_t>& data, uint64_t flags) {
  Header(sector, data.size() / ss_, flags, 0, "");
  log_.insert(log_.end(), data.begin(), data.end());
}
void Writer::Discard(uint64_t sector, uint64_t nr_sectors, uint64_t flags) {
  Header(sector, nr_sectors, kDiscard | flags, 0, "");
}
void Writer::Flush(uint64_t flags) { Header(0, 0, flags, 0, ""); }
void Writer::Mark(const std::string& name) { Header(0, 0, kMark, name.size(), name); }

std::vector<uint8_t> Writer::Finish(int64_t nr_entries) const {
  std::vector<uint8_t> out(ss_, 0);
  Put64(&out[0], kMagic);
  Put64(&out[8], kVersion);
  Put64(&out[16], nr_entries < 0 ? entries_ : static_cast<uint64_t>(nr_entries));
  Put32(&out[24], ss_);
  out.insert(out.end(), log_.begin(), log_.end());
  return out;
}

}  // namespace mt::send::logwrites
