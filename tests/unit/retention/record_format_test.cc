#include "retention/record_format.h"

#include <gtest/gtest.h>

#include <vector>

namespace mt::retention {
namespace {

RecordHeader SampleHeader(uint32_t len) {
  RecordHeader h;
  h.type = RecordType::kWrite;
  h.seq = 42;
  h.source_time_ns = 1'700'000'000'123'456'789;
  h.disk = 3;
  h.flags = kFlagFua;
  h.offset = 1 << 20;
  h.length = len;
  h.stored_length = len;
  h.batch = 7;
  return h;
}

TEST(RecordFormat, EncodeDecodeRoundTrip) {
  std::vector<uint8_t> payload(4096);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i);
  RecordHeader h = SampleHeader(4096);
  std::vector<uint8_t> rec(EncodedRecordSize(4096));
  EncodeRecord(h, payload.data(), payload.size(), rec.data());
  RecordHeader d;
  ASSERT_TRUE(DecodeRecordHeader(rec.data(), &d).ok());
  h.payload_crc = d.payload_crc;
  EXPECT_EQ(d, h);
  EXPECT_TRUE(VerifyPayload(d, rec.data() + kRecordHeaderSize).ok());
  EXPECT_EQ(rec.size() % kRecordAlignment, 0u);
}

// A discard stores nothing and may cover a whole disk: its length takes the
// 8 bytes 40..47 (the stored length, 0, is their high half).
TEST(RecordFormat, DiscardLengthTakesSixtyFourBits) {
  RecordHeader h = SampleHeader(0);
  h.flags = kFlagDiscard | kFlagZero | kFlagFlush;
  h.length = 100ull << 30;  // 100 GiB
  h.stored_length = 0;
  std::vector<uint8_t> rec(EncodedRecordSize(0));
  EncodeRecord(h, nullptr, 0, rec.data());
  RecordHeader d;
  ASSERT_TRUE(DecodeRecordHeader(rec.data(), &d).ok());
  h.payload_crc = d.payload_crc;
  EXPECT_EQ(d, h);
  // A discard under 4 GiB is encoded as before (u32 length, stored length 0).
  h.length = 512u << 20;
  EncodeRecord(h, nullptr, 0, rec.data());
  EXPECT_EQ(rec[40] | rec[41] << 8 | rec[42] << 16 | static_cast<uint32_t>(rec[43]) << 24,
            512u << 20);
  for (int i = 44; i < 48; ++i) EXPECT_EQ(rec[i], 0) << i;
  ASSERT_TRUE(DecodeRecordHeader(rec.data(), &d).ok());
  EXPECT_EQ(d.length, 512u << 20);
  // Any other record keeps the 64 MiB limit.
  RecordHeader w = SampleHeader(4096);
  w.length = (64u << 20) + 4096;
  EncodeRecord(w, nullptr, 0, rec.data());
  EXPECT_EQ(DecodeRecordHeader(rec.data(), &d).code(), Errc::kCorruption);
}

TEST(RecordFormat, UnknownFlagsAndMisplacedContinuationAreCorruption) {
  std::vector<uint8_t> rec(EncodedRecordSize(0));
  RecordHeader h = SampleHeader(0);
  h.type = RecordType::kResyncComplete;
  h.flags = kFlagContinued;
  EncodeRecord(h, nullptr, 0, rec.data());
  RecordHeader d;
  EXPECT_EQ(DecodeRecordHeader(rec.data(), &d).code(), Errc::kCorruption);
  h.type = RecordType::kWrite;
  h.flags = kFlagZero | 1u << 9;
  EncodeRecord(h, nullptr, 0, rec.data());
  EXPECT_EQ(DecodeRecordHeader(rec.data(), &d).message(), "unknown record flags 512");
  h.flags = kFlagZero | kFlagContinued;
  EncodeRecord(h, nullptr, 0, rec.data());
  EXPECT_TRUE(DecodeRecordHeader(rec.data(), &d).ok());
}

TEST(RecordFormat, NoPointFlagBelongsToTagsOnly) {
  std::vector<uint8_t> rec(EncodedRecordSize(0));
  RecordHeader h = SampleHeader(0);
  h.type = RecordType::kTag;
  h.flags = kFlagNoPoint;
  EncodeRecord(h, nullptr, 0, rec.data());
  RecordHeader d;
  ASSERT_TRUE(DecodeRecordHeader(rec.data(), &d).ok());
  EXPECT_EQ(d.flags, kFlagNoPoint);
  h.type = RecordType::kWrite;
  h.flags = kFlagNoPoint | kFlagZero;
  EncodeRecord(h, nullptr, 0, rec.data());
  EXPECT_EQ(DecodeRecordHeader(rec.data(), &d).message(), "no-point flag on a record that is no tag");
}

TEST(RecordFormat, ContinuedRecordsShareTheSeqOfTheRecordBefore) {
  RecordHeader h = SampleHeader(512);
  h.seq = 7;
  EXPECT_TRUE(SeqFollows(6, h));
  EXPECT_FALSE(SeqFollows(7, h));
  h.flags |= kFlagContinued;
  EXPECT_TRUE(SeqFollows(7, h));
  EXPECT_FALSE(SeqFollows(6, h));
}

TEST(RecordFormat, HeaderChecksumMismatchIsCorruption) {
  std::vector<uint8_t> payload(512, 1), rec(EncodedRecordSize(512));
  EncodeRecord(SampleHeader(512), payload.data(), payload.size(), rec.data());
  rec[9] ^= 0x01;  // inside seq
  RecordHeader d;
  Status s = DecodeRecordHeader(rec.data(), &d);
  EXPECT_EQ(s.code(), Errc::kCorruption);
  EXPECT_EQ(s.message(), "record header checksum mismatch");
}

TEST(RecordFormat, PayloadChecksumMismatchIsCorruption) {
  std::vector<uint8_t> payload(512, 1), rec(EncodedRecordSize(512));
  EncodeRecord(SampleHeader(512), payload.data(), payload.size(), rec.data());
  rec[kRecordHeaderSize + 100] ^= 0x80;
  RecordHeader d;
  ASSERT_TRUE(DecodeRecordHeader(rec.data(), &d).ok());
  EXPECT_EQ(VerifyPayload(d, rec.data() + kRecordHeaderSize).code(), Errc::kCorruption);
}

TEST(RecordFormat, VerifiedCrcIsStoredAsGivenAndStillChecked) {
  std::vector<uint8_t> payload(4096);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 7);
  std::vector<uint8_t> computed(EncodedRecordSize(4096)), given(computed.size());
  RecordHeader h = SampleHeader(4096);
  EncodeRecord(h, payload.data(), payload.size(), computed.data());
  RecordHeader d;
  ASSERT_TRUE(DecodeRecordHeader(computed.data(), &d).ok());
  // The right CRC given: the same bytes as when it is computed.
  h.payload_crc = d.payload_crc;
  EncodeRecordWithVerifiedCrc(h, payload.data(), payload.size(), given.data());
  EXPECT_EQ(given, computed);
  // A wrong CRC given is stored as is, and the record fails its check: a
  // payload changed after its CRC was verified cannot pass as intact.
  h.payload_crc ^= 1;
  EncodeRecordWithVerifiedCrc(h, payload.data(), payload.size(), given.data());
  ASSERT_TRUE(DecodeRecordHeader(given.data(), &d).ok());
  EXPECT_EQ(d.payload_crc, h.payload_crc);
  EXPECT_EQ(VerifyPayload(d, given.data() + kRecordHeaderSize).code(), Errc::kCorruption);
}

TEST(RecordFormat, ZeroWordMarksTheEnd) {
  std::vector<uint8_t> zero(kRecordHeaderSize, 0);
  EXPECT_TRUE(IsEndOfRecords(zero.data()));
  RecordHeader d;
  EXPECT_EQ(DecodeRecordHeader(zero.data(), &d).code(), Errc::kCorruption);
}

TEST(RecordFormat, SegmentHeaderRoundTripAndDamage) {
  SegmentHeader h;
  h.kind = SegmentKind::kUndo;
  h.stream = 9;
  h.number = 12;
  h.first_seq = 1000;
  h.first_batch = 55;
  h.created_ns = 123;
  std::vector<uint8_t> b(kSegmentHeaderSize);
  EncodeSegmentHeader(h, b.data());
  SegmentHeader d;
  ASSERT_TRUE(DecodeSegmentHeader(b.data(), &d).ok());
  EXPECT_EQ(d.kind, SegmentKind::kUndo);
  EXPECT_EQ(d.stream, 9u);
  EXPECT_EQ(d.number, 12u);
  EXPECT_EQ(d.first_seq, 1000u);
  EXPECT_EQ(d.first_batch, 55u);
  b[20] ^= 1;
  EXPECT_EQ(DecodeSegmentHeader(b.data(), &d).code(), Errc::kCorruption);
}

TEST(RecordFormat, TagRoundTripAndBadTags) {
  TagPayload t{TagKind::kApp, "app-consistent-0001", "grp-77"};
  std::string enc = EncodeTag(t);
  TagPayload d;
  ASSERT_TRUE(DecodeTag(enc.data(), enc.size(), &d).ok());
  EXPECT_EQ(d.name, t.name);
  EXPECT_EQ(d.group_tag_id, t.group_tag_id);
  EXPECT_EQ(d.kind, TagKind::kApp);
  EXPECT_EQ(DecodeTag(enc.data(), enc.size() - 1, &d).code(), Errc::kCorruption);
  std::string bad_kind = enc;
  bad_kind[0] = 9;
  EXPECT_EQ(DecodeTag(bad_kind.data(), bad_kind.size(), &d).code(), Errc::kCorruption);
}

}  // namespace
}  // namespace mt::retention
