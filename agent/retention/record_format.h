// Journal record and segment formats (WAL and undo journal). Prose spec:
// docs/formats/journal.md. Every multi-byte integer is little-endian.
//
// Segment file = 4096-byte segment header, then records back to back, each
// record = 64-byte record header + stored payload, padded with zeroes to a
// multiple of 8 bytes. The end of the valid log is the first position whose
// 8 bytes are zero (clean end), or a torn record (see SegmentReader).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "mt/shim/status.h"

namespace mt::retention {

inline constexpr uint32_t kRecordMagic = 0x4A52544D;  // "MTRJ"
inline constexpr uint16_t kRecordVersion = 1;
inline constexpr size_t kRecordHeaderSize = 64;
inline constexpr size_t kRecordAlignment = 8;
// Hard limit on a stored payload, and on the length of every record but a
// discard (which stores nothing: its range may be as long as the disk); a
// header declaring more is corruption.
inline constexpr uint32_t kMaxPayload = 64u << 20;

inline constexpr size_t kSegmentHeaderSize = 4096;
inline constexpr char kSegmentMagic[8] = {'M', 'T', 'S', 'E', 'G', '0', '0', '1'};
inline constexpr uint32_t kSegmentVersion = 1;

enum class RecordType : uint16_t {
  kWrite = 1,           // a block write: payload = the data (after- or before-image)
  kTag = 2,             // a recovery point marker: payload = encoded TagPayload
  kResyncData = 3,      // resync block: like kWrite but carries no undo
  kResyncComplete = 4,  // the disk's resync finished at this seq
};

enum RecordFlags : uint32_t {
  kFlagZstd = 1u << 0,      // stored payload is zstd-compressed; `length` bytes when expanded
  kFlagZero = 1u << 1,      // the `length` bytes are all zero; nothing stored
  kFlagFlush = 1u << 2,     // source write carried REQ_PREFLUSH
  kFlagFua = 1u << 3,       // source write carried REQ_FUA
  kFlagDiscard = 1u << 4,   // source discarded the range (data reads as zero)
  // Undo journal: this record is a further piece of the before-image of the
  // item whose seq it shares with the record just before it (a long discard's
  // before-image is kept in pieces of bounded size, in ascending offsets).
  kFlagContinued = 1u << 5,
  // WAL, kResyncData only: the data was written straight to the target
  // before this record was appended, and the target is flushed before the
  // batch holding the record is written (Journal::SetBeforeWrite), so the
  // record is durable only after its data is. Nothing is stored; `length`
  // is the bytes written. Applying it writes nothing.
  kFlagInPlace = 1u << 6,
  // kTag only: the tag arrived while a disk of the stream was being resynced
  // (it had resync data and no completion yet, or was asked to resync again:
  // its target a mix of old and new blocks), so it is no recovery point.
  // Applying it records no point; it is kept so that the seq stays recorded.
  kFlagNoPoint = 1u << 7,
};
inline constexpr uint32_t kKnownRecordFlags = kFlagZstd | kFlagZero | kFlagFlush | kFlagFua |
                                              kFlagDiscard | kFlagContinued | kFlagInPlace |
                                              kFlagNoPoint;

enum class SegmentKind : uint32_t { kWal = 1, kUndo = 2 };
const char* SegmentKindName(SegmentKind k);

struct RecordHeader {
  RecordType type = RecordType::kWrite;
  uint64_t seq = 0;             // stream sequence number (write order)
  int64_t source_time_ns = 0;   // time the source issued the write
  uint32_t disk = 0;            // disk index inside the stream
  uint32_t flags = 0;
  uint64_t offset = 0;          // byte offset on the disk (kWrite/kResyncData)
  // Bytes on the disk the record covers (expanded size): at most kMaxPayload,
  // except for a discard (kFlagDiscard), whose range is only bounded by the
  // disk: on disk its length takes 8 bytes (see docs/formats/journal.md).
  uint64_t length = 0;
  uint32_t stored_length = 0;   // payload bytes in the segment
  uint32_t payload_crc = 0;     // CRC32C of the stored payload
  // Group-commit batch the record was written in (per journal, increasing).
  // Recovery uses it to tell a torn tail from corruption: see SegmentReader.
  uint64_t batch = 0;

  bool operator==(const RecordHeader& o) const;
};

// Seq order inside a journal: a record continues (kFlagContinued) the seq
// of the record before it, every other record has a greater seq.
inline bool SeqFollows(uint64_t prev_seq, const RecordHeader& h) {
  return (h.flags & kFlagContinued) != 0 ? h.seq == prev_seq : h.seq > prev_seq;
}

// Bytes a record with `stored_length` payload bytes occupies in a segment.
inline size_t EncodedRecordSize(uint32_t stored_length) {
  return (kRecordHeaderSize + stored_length + kRecordAlignment - 1) / kRecordAlignment *
         kRecordAlignment;
}

// Writes header + payload + padding into out[0..EncodedRecordSize). Computes
// both CRCs (h.payload_crc is ignored and recomputed). REQUIRES:
// payload_len == h.stored_length and out has room.
void EncodeRecord(const RecordHeader& h, const void* payload, size_t payload_len, uint8_t* out);
// As EncodeRecord, but stores h.payload_crc as the payload's CRC32C instead of
// computing it: for a payload whose CRC the caller has just verified against
// h.payload_crc (a stream write: the sender's checksum, checked on arrival,
// goes into the journal unchanged — end to end, and one pass less over the
// data). A wrong h.payload_crc makes a record that VerifyPayload rejects.
void EncodeRecordWithVerifiedCrc(const RecordHeader& h, const void* payload, size_t payload_len,
                                 uint8_t* out);

// Parses and checks a 64-byte header: magic, version, header CRC, known type,
// sane lengths. kCorruption with the reason on failure.
Status DecodeRecordHeader(const uint8_t* in, RecordHeader* h);
// Checks the stored payload against the header's CRC.
Status VerifyPayload(const RecordHeader& h, const void* payload);
// True if the 8 bytes at p are zero: the clean end of a segment's records.
bool IsEndOfRecords(const uint8_t* p);

struct SegmentHeader {
  SegmentKind kind = SegmentKind::kWal;
  uint64_t stream = 0;        // stream id (catalog)
  uint64_t number = 0;        // segment number inside the stream's journal, from 1
  uint64_t first_seq = 0;     // seq the first record was expected to have
  uint64_t first_batch = 0;   // group-commit batch of its first record
  int64_t created_ns = 0;
};
void EncodeSegmentHeader(const SegmentHeader& h, uint8_t* out /* kSegmentHeaderSize */);
Status DecodeSegmentHeader(const uint8_t* in, SegmentHeader* h);

// A tag (recovery point marker) as stored in a kTag record's payload.
enum class TagKind : uint8_t { kCrash = 0, kApp = 1, kUser = 2 };
const char* TagKindName(TagKind k);
Result<TagKind> ParseTagKind(const std::string& s);
struct TagPayload {
  TagKind kind = TagKind::kApp;
  std::string name;          // unique per stream, 1..255 bytes
  std::string group_tag_id;  // shared by the streams of a replication group; may be empty
};
std::string EncodeTag(const TagPayload& t);
Status DecodeTag(const void* data, size_t len, TagPayload* t);

}  // namespace mt::retention
