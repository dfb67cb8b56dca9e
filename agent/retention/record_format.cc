#include "retention/record_format.h"

#include <cstring>

#include "mt/shim/crc32c.h"

namespace mt::retention {
namespace {

// Little-endian field access. x86 and aarch64 are little-endian; memcpy keeps
// unaligned access defined.
template <typename T>
void Put(uint8_t* p, T v) {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian host required");
  std::memcpy(p, &v, sizeof v);
}
template <typename T>
T Get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Record header layout (offsets in bytes).
enum : size_t {
  kOffMagic = 0,    // u32
  kOffVersion = 4,  // u16
  kOffType = 6,     // u16
  kOffSeq = 8,      // u64
  kOffTime = 16,    // i64
  kOffDisk = 24,    // u32
  kOffFlags = 28,   // u32
  kOffOffset = 32,  // u64
  kOffLength = 40,  // u32; u64 (40..47) for a discard, whose stored length is 0
  kOffStored = 44,  // u32
  kOffPayloadCrc = 48,  // u32
  kOffBatch = 52,   // u64
  kOffHeaderCrc = 60,  // u32: CRC32C of bytes [0, 60)
};

// Segment header layout.
enum : size_t {
  kSegOffMagic = 0,     // 8 bytes
  kSegOffVersion = 8,   // u32
  kSegOffKind = 12,     // u32
  kSegOffStream = 16,   // u64
  kSegOffNumber = 24,   // u64
  kSegOffFirstSeq = 32, // u64
  kSegOffCreated = 40,  // i64
  kSegOffFirstBatch = 48,  // u64
  kSegOffCrc = 56,      // u32: CRC32C of bytes [0, 56)
};

Status Corrupt(const std::string& what) { return Status(Errc::kCorruption, what); }

}  // namespace

const char* SegmentKindName(SegmentKind k) { return k == SegmentKind::kWal ? "wal" : "undo"; }

bool RecordHeader::operator==(const RecordHeader& o) const {
  return type == o.type && seq == o.seq && source_time_ns == o.source_time_ns && disk == o.disk &&
         flags == o.flags && offset == o.offset && length == o.length &&
         stored_length == o.stored_length && payload_crc == o.payload_crc && batch == o.batch;
}

namespace {
void EncodeWithCrc(const RecordHeader& h, const void* payload, size_t payload_len,
                   uint32_t payload_crc, uint8_t* out) {
  const size_t total = EncodedRecordSize(static_cast<uint32_t>(payload_len));
  std::memset(out, 0, kRecordHeaderSize);
  Put<uint32_t>(out + kOffMagic, kRecordMagic);
  Put<uint16_t>(out + kOffVersion, kRecordVersion);
  Put<uint16_t>(out + kOffType, static_cast<uint16_t>(h.type));
  Put<uint64_t>(out + kOffSeq, h.seq);
  Put<int64_t>(out + kOffTime, h.source_time_ns);
  Put<uint32_t>(out + kOffDisk, h.disk);
  Put<uint32_t>(out + kOffFlags, h.flags);
  Put<uint64_t>(out + kOffOffset, h.offset);
  if ((h.flags & kFlagDiscard) != 0) {  // REQUIRES payload_len == 0 (Journal::Append)
    Put<uint64_t>(out + kOffLength, h.length);  // the high half lies where stored length (0) is
  } else {
    Put<uint32_t>(out + kOffLength, static_cast<uint32_t>(h.length));
    Put<uint32_t>(out + kOffStored, static_cast<uint32_t>(payload_len));
  }
  Put<uint32_t>(out + kOffPayloadCrc, payload_crc);
  Put<uint64_t>(out + kOffBatch, h.batch);
  Put<uint32_t>(out + kOffHeaderCrc, crc32c::Value(out, kOffHeaderCrc));
  if (payload_len > 0) std::memcpy(out + kRecordHeaderSize, payload, payload_len);
  std::memset(out + kRecordHeaderSize + payload_len, 0, total - kRecordHeaderSize - payload_len);
}
}  // namespace

void EncodeRecord(const RecordHeader& h, const void* payload, size_t payload_len, uint8_t* out) {
  EncodeWithCrc(h, payload, payload_len, crc32c::Value(payload, payload_len), out);
}

void EncodeRecordWithVerifiedCrc(const RecordHeader& h, const void* payload, size_t payload_len,
                                 uint8_t* out) {
  EncodeWithCrc(h, payload, payload_len, h.payload_crc, out);
}

bool IsEndOfRecords(const uint8_t* p) { return Get<uint64_t>(p) == 0; }

Status DecodeRecordHeader(const uint8_t* in, RecordHeader* h) {
  if (Get<uint32_t>(in + kOffMagic) != kRecordMagic) return Corrupt("bad record magic");
  if (Get<uint32_t>(in + kOffHeaderCrc) != crc32c::Value(in, kOffHeaderCrc))
    return Corrupt("record header checksum mismatch");
  const uint16_t version = Get<uint16_t>(in + kOffVersion);
  if (version != kRecordVersion)
    return Corrupt("unsupported record version " + std::to_string(version));
  const uint16_t type = Get<uint16_t>(in + kOffType);
  if (type < 1 || type > 4) return Corrupt("unknown record type " + std::to_string(type));
  h->type = static_cast<RecordType>(type);
  h->seq = Get<uint64_t>(in + kOffSeq);
  h->source_time_ns = Get<int64_t>(in + kOffTime);
  h->disk = Get<uint32_t>(in + kOffDisk);
  h->flags = Get<uint32_t>(in + kOffFlags);
  h->offset = Get<uint64_t>(in + kOffOffset);
  h->payload_crc = Get<uint32_t>(in + kOffPayloadCrc);
  h->batch = Get<uint64_t>(in + kOffBatch);
  const bool data = h->type == RecordType::kWrite || h->type == RecordType::kResyncData;
  if ((h->flags & ~kKnownRecordFlags) != 0)
    return Corrupt("unknown record flags " + std::to_string(h->flags & ~kKnownRecordFlags));
  if ((h->flags & kFlagDiscard) != 0) {
    // A discard stores nothing; its length is the u64 at 40 (stored length 0).
    if (h->type != RecordType::kWrite) return Corrupt("discard flag on a record that is no write");
    h->length = Get<uint64_t>(in + kOffLength);
    h->stored_length = 0;
    return Status::Ok();
  }
  h->length = Get<uint32_t>(in + kOffLength);
  h->stored_length = Get<uint32_t>(in + kOffStored);
  if (h->stored_length > kMaxPayload || h->length > kMaxPayload)
    return Corrupt("record length " + std::to_string(h->stored_length) + " over the limit");
  if ((h->flags & kFlagZero) != 0 && h->stored_length != 0)
    return Corrupt("zero record with a stored payload");
  if ((h->flags & kFlagContinued) != 0 && h->type != RecordType::kWrite)
    return Corrupt("continued flag on a record that is no write");
  if ((h->flags & kFlagInPlace) != 0 &&
      (h->type != RecordType::kResyncData || h->stored_length != 0 || h->flags != kFlagInPlace))
    return Corrupt("in-place flag on a record that is no payload-less resync data");
  if ((h->flags & kFlagNoPoint) != 0 && h->type != RecordType::kTag)
    return Corrupt("no-point flag on a record that is no tag");
  if (data && (h->flags & (kFlagZstd | kFlagZero | kFlagDiscard | kFlagInPlace)) == 0 &&
      h->stored_length != h->length)
    return Corrupt("uncompressed record whose stored length differs from its length");
  return Status::Ok();
}

Status VerifyPayload(const RecordHeader& h, const void* payload) {
  if (crc32c::Value(payload, h.stored_length) != h.payload_crc)
    return Corrupt("record payload checksum mismatch (seq " + std::to_string(h.seq) + ")");
  return Status::Ok();
}

void EncodeSegmentHeader(const SegmentHeader& h, uint8_t* out) {
  std::memset(out, 0, kSegmentHeaderSize);
  std::memcpy(out + kSegOffMagic, kSegmentMagic, sizeof kSegmentMagic);
  Put<uint32_t>(out + kSegOffVersion, kSegmentVersion);
  Put<uint32_t>(out + kSegOffKind, static_cast<uint32_t>(h.kind));
  Put<uint64_t>(out + kSegOffStream, h.stream);
  Put<uint64_t>(out + kSegOffNumber, h.number);
  Put<uint64_t>(out + kSegOffFirstSeq, h.first_seq);
  Put<int64_t>(out + kSegOffCreated, h.created_ns);
  Put<uint64_t>(out + kSegOffFirstBatch, h.first_batch);
  Put<uint32_t>(out + kSegOffCrc, crc32c::Value(out, kSegOffCrc));
}

Status DecodeSegmentHeader(const uint8_t* in, SegmentHeader* h) {
  if (std::memcmp(in + kSegOffMagic, kSegmentMagic, sizeof kSegmentMagic) != 0)
    return Corrupt("not a journal segment (bad magic)");
  if (Get<uint32_t>(in + kSegOffCrc) != crc32c::Value(in, kSegOffCrc))
    return Corrupt("segment header checksum mismatch");
  const uint32_t version = Get<uint32_t>(in + kSegOffVersion);
  if (version != kSegmentVersion)
    return Corrupt("unsupported segment version " + std::to_string(version));
  const uint32_t kind = Get<uint32_t>(in + kSegOffKind);
  if (kind != 1 && kind != 2) return Corrupt("unknown segment kind " + std::to_string(kind));
  h->kind = static_cast<SegmentKind>(kind);
  h->stream = Get<uint64_t>(in + kSegOffStream);
  h->number = Get<uint64_t>(in + kSegOffNumber);
  h->first_seq = Get<uint64_t>(in + kSegOffFirstSeq);
  h->created_ns = Get<int64_t>(in + kSegOffCreated);
  h->first_batch = Get<uint64_t>(in + kSegOffFirstBatch);
  return Status::Ok();
}

const char* TagKindName(TagKind k) {
  switch (k) {
    case TagKind::kCrash: return "crash";
    case TagKind::kApp: return "app";
    case TagKind::kUser: return "user";
  }
  return "unknown";
}

Result<TagKind> ParseTagKind(const std::string& s) {
  if (s == "crash") return TagKind::kCrash;
  if (s == "app") return TagKind::kApp;
  if (s == "user") return TagKind::kUser;
  return Status(Errc::kInvalidArgument, "unknown tag kind '" + s + "' (crash, app or user)");
}

// Tag payload: kind u8, name length u8, name, group id length u8, group id.
std::string EncodeTag(const TagPayload& t) {
  std::string out;
  out.push_back(static_cast<char>(t.kind));
  out.push_back(static_cast<char>(t.name.size()));
  out += t.name;
  out.push_back(static_cast<char>(t.group_tag_id.size()));
  out += t.group_tag_id;
  return out;
}

Status DecodeTag(const void* data, size_t len, TagPayload* t) {
  const auto* p = static_cast<const uint8_t*>(data);
  if (len < 3) return Corrupt("tag payload too short");
  if (p[0] > 2) return Corrupt("unknown tag kind " + std::to_string(p[0]));
  t->kind = static_cast<TagKind>(p[0]);
  const size_t nlen = p[1];
  if (nlen == 0 || 2 + nlen + 1 > len) return Corrupt("bad tag name length");
  t->name.assign(reinterpret_cast<const char*>(p + 2), nlen);
  const size_t glen = p[2 + nlen];
  if (3 + nlen + glen != len) return Corrupt("bad tag group id length");
  t->group_tag_id.assign(reinterpret_cast<const char*>(p + 3 + nlen), glen);
  return Status::Ok();
}

}  // namespace mt::retention
