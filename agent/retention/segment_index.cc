#include "retention/segment_index.h"

#include <algorithm>
#include <cstring>

#include "mt/shim/crc32c.h"

namespace mt::retention {
namespace {

constexpr char kIndexMagic[8] = {'M', 'T', 'S', 'I', 'D', 'X', '0', '1'};
constexpr uint32_t kIndexVersion = 1;
constexpr size_t kFixedBytes = 128;  // through entry_count
constexpr size_t kEntryBytes = 16;
// A 256 MiB segment indexed every 256 KiB has 1024 entries; a segment of the
// largest size the agent accepts (4 GiB) 16384. Anything beyond is damage.
constexpr uint32_t kMaxEntries = 1u << 20;

template <typename T>
void Put(std::string* out, T v) {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian host required");
  char b[sizeof v];
  std::memcpy(b, &v, sizeof v);
  out->append(b, sizeof v);
}
template <typename T>
T Get(const std::string& in, size_t* pos) {
  T v;
  std::memcpy(&v, in.data() + *pos, sizeof v);
  *pos += sizeof v;
  return v;
}

}  // namespace

uint64_t IndexedStart(const std::vector<IndexEntry>& entries, uint64_t min_seq) {
  // First entry with seq >= min_seq; the one before it is where to start.
  auto it = std::lower_bound(entries.begin(), entries.end(), min_seq,
                             [](const IndexEntry& e, uint64_t s) { return e.seq < s; });
  if (it == entries.begin()) return kSegmentHeaderSize;
  return std::prev(it)->offset;
}

uint64_t IndexedEnd(const std::vector<IndexEntry>& entries, uint64_t max_seq) {
  // First entry past max_seq: a record header, so the records before it are
  // whole and none of them is past max_seq.
  auto it = std::upper_bound(entries.begin(), entries.end(), max_seq,
                             [](uint64_t s, const IndexEntry& e) { return s < e.seq; });
  return it == entries.end() ? UINT64_MAX : it->offset;
}

std::string SegmentIndexPath(const std::string& segment_path) {
  const std::string ext = ".seg";
  if (segment_path.size() >= ext.size() &&
      segment_path.compare(segment_path.size() - ext.size(), ext.size(), ext) == 0)
    return segment_path.substr(0, segment_path.size() - ext.size()) + ".idx";
  return segment_path + ".idx";
}

std::string EncodeSegmentIndex(const SegmentIndexFile& f) {
  std::string out(kIndexMagic, sizeof kIndexMagic);
  Put<uint32_t>(&out, kIndexVersion);
  Put<uint32_t>(&out, static_cast<uint32_t>(f.kind));
  Put<uint64_t>(&out, f.stream);
  Put<uint64_t>(&out, f.number);
  Put<int64_t>(&out, f.created_ns);
  Put<uint64_t>(&out, f.bytes);
  Put<uint64_t>(&out, f.records);
  Put<uint64_t>(&out, f.first_seq);
  Put<uint64_t>(&out, f.last_seq);
  Put<int64_t>(&out, f.first_time_ns);
  Put<int64_t>(&out, f.last_time_ns);
  Put<uint64_t>(&out, f.logical_bytes);
  Put<uint64_t>(&out, f.stored_bytes);
  Put<uint64_t>(&out, f.last_batch);
  Put<uint64_t>(&out, f.last_record_offset);
  Put<uint32_t>(&out, f.first_continues ? 1u : 0u);
  Put<uint32_t>(&out, static_cast<uint32_t>(f.entries.size()));
  for (const auto& e : f.entries) {
    Put<uint64_t>(&out, e.seq);
    Put<uint64_t>(&out, e.offset);
  }
  Put<uint32_t>(&out, crc32c::Value(out.data(), out.size()));
  return out;
}

Status DecodeSegmentIndex(const std::string& in, SegmentIndexFile* f) {
  auto bad = [](const std::string& why) { return Status(Errc::kCorruption, "segment index: " + why); };
  if (in.size() < kFixedBytes + 4) return bad("too short");
  if (std::memcmp(in.data(), kIndexMagic, sizeof kIndexMagic) != 0) return bad("bad magic");
  size_t pos = in.size() - 4;
  if (Get<uint32_t>(in, &pos) != crc32c::Value(in.data(), in.size() - 4)) return bad("bad CRC");
  pos = sizeof kIndexMagic;
  if (Get<uint32_t>(in, &pos) != kIndexVersion) return bad("unknown version");
  SegmentIndexFile r;
  const uint32_t kind = Get<uint32_t>(in, &pos);
  if (kind != static_cast<uint32_t>(SegmentKind::kWal) &&
      kind != static_cast<uint32_t>(SegmentKind::kUndo))
    return bad("unknown kind");
  r.kind = static_cast<SegmentKind>(kind);
  r.stream = Get<uint64_t>(in, &pos);
  r.number = Get<uint64_t>(in, &pos);
  r.created_ns = Get<int64_t>(in, &pos);
  r.bytes = Get<uint64_t>(in, &pos);
  r.records = Get<uint64_t>(in, &pos);
  r.first_seq = Get<uint64_t>(in, &pos);
  r.last_seq = Get<uint64_t>(in, &pos);
  r.first_time_ns = Get<int64_t>(in, &pos);
  r.last_time_ns = Get<int64_t>(in, &pos);
  r.logical_bytes = Get<uint64_t>(in, &pos);
  r.stored_bytes = Get<uint64_t>(in, &pos);
  r.last_batch = Get<uint64_t>(in, &pos);
  r.last_record_offset = Get<uint64_t>(in, &pos);
  r.first_continues = (Get<uint32_t>(in, &pos) & 1u) != 0;
  const uint32_t n = Get<uint32_t>(in, &pos);
  if (n > kMaxEntries || in.size() != kFixedBytes + size_t{n} * kEntryBytes + 4)
    return bad("entry count does not match the size");
  r.entries.resize(n);
  for (auto& e : r.entries) {
    e.seq = Get<uint64_t>(in, &pos);
    e.offset = Get<uint64_t>(in, &pos);
  }
  // Consistency a reader relies on: entries ascending inside [header, bytes),
  // the first one at the first record, records <=> a last record.
  const bool has_records = r.records > 0;
  if (has_records != (r.last_record_offset != 0) || has_records != !r.entries.empty() ||
      r.bytes < kSegmentHeaderSize || (has_records && r.last_record_offset >= r.bytes))
    return bad("inconsistent summary");
  for (size_t i = 0; i < r.entries.size(); ++i) {
    const IndexEntry& e = r.entries[i];
    const bool first_ok = i > 0 || (e.offset == kSegmentHeaderSize && e.seq == r.first_seq);
    const bool order_ok = i == 0 || (e.offset > r.entries[i - 1].offset &&
                                     e.seq >= r.entries[i - 1].seq);
    if (!first_ok || !order_ok || e.offset > r.last_record_offset || e.seq > r.last_seq)
      return bad("entries out of order");
  }
  *f = std::move(r);
  return Status::Ok();
}

std::optional<SegmentIndexFile> ReadSegmentIndex(shim::FileSystem& fs,
                                                 const std::string& segment_path) {
  const std::string path = SegmentIndexPath(segment_path);
  if (!fs.Exists(path)) return std::nullopt;
  auto bytes = shim::ReadSmallFile(fs, path, kFixedBytes + uint64_t{kMaxEntries} * kEntryBytes + 4);
  if (!bytes.ok()) return std::nullopt;
  SegmentIndexFile f;
  if (!DecodeSegmentIndex(*bytes, &f).ok()) return std::nullopt;
  return f;
}

Status WriteSegmentIndex(shim::FileSystem& fs, const std::string& segment_path,
                         const SegmentIndexFile& f) {
  return shim::WriteFileAtomically(fs, SegmentIndexPath(segment_path), EncodeSegmentIndex(f));
}

Status RemoveSegmentFiles(shim::FileSystem& fs, const std::string& segment_path) {
  const std::string idx = SegmentIndexPath(segment_path);
  if (fs.Exists(idx)) MT_RETURN_IF_ERROR(fs.Remove(idx));
  return fs.Remove(segment_path);
}

}  // namespace mt::retention
