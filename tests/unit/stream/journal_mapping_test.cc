#include "stream/journal_mapping.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <vector>

#include "test_frames.h"

namespace mt::stream {
namespace {

using google::protobuf::util::MessageDifferencer;
using retention::RecordHeader;

// Encodes the record as the journal would and decodes its header again.
RecordHeader ThroughTheJournal(const RecordHeader& h, const void* payload, size_t len) {
  std::vector<uint8_t> rec(retention::EncodedRecordSize(static_cast<uint32_t>(len)));
  retention::EncodeRecord(h, payload, len, rec.data());
  RecordHeader d;
  Status s = retention::DecodeRecordHeader(rec.data(), &d);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(retention::VerifyPayload(d, rec.data() + retention::kRecordHeaderSize).ok());
  return d;
}

TEST(JournalMapping, EveryWriteFieldSurvivesTheJournal) {
  testing::FrameSpec f = testing::WriteBatchFrame(77, 2, 4096, 3, 1 << 20);
  uint64_t pos = 0;
  for (const proto::Write& w : f.header.write_batch().writes()) {
    RecordHeader h = WriteRecord(w);
    EXPECT_EQ(h.type, retention::RecordType::kWrite);
    RecordHeader d = ThroughTheJournal(h, f.payload.data() + pos, w.length());
    EXPECT_EQ(d, h);
    EXPECT_TRUE(MessageDifferencer::Equals(WriteFromRecord(d), w)) << w.ShortDebugString();
    pos += w.length();
  }
}

TEST(JournalMapping, FlagsAreTheJournalsBits) {
  proto::Write w;
  w.set_length(512);
  w.set_flags(proto::WRITE_FLAG_FLUSH | proto::WRITE_FLAG_FUA);
  EXPECT_EQ(WriteRecord(w).flags, uint32_t{retention::kFlagFlush | retention::kFlagFua});
}

TEST(JournalMapping, DiscardIsAZeroRecordWithNothingStored) {
  proto::Write w;
  w.set_seq(5);
  w.set_disk(1);
  w.set_offset(8192);
  w.set_length(1 << 20);
  w.set_flags(proto::WRITE_FLAG_DISCARD);
  RecordHeader h = WriteRecord(w);
  EXPECT_EQ(h.flags, uint32_t{retention::kFlagDiscard | retention::kFlagZero});
  EXPECT_EQ(h.stored_length, 0u);
  EXPECT_EQ(h.length, 1u << 20);
  RecordHeader d = ThroughTheJournal(h, nullptr, 0);
  EXPECT_TRUE(MessageDifferencer::Equals(WriteFromRecord(d), w))
      << WriteFromRecord(d).ShortDebugString();
}

TEST(JournalMapping, ResyncItemsMapOntoTheirRecordTypes) {
  proto::ResyncData rd;
  rd.set_seq(9);
  rd.set_disk(2);
  rd.set_offset(65536);
  rd.set_length(4096);
  std::vector<uint8_t> data = testing::Pattern(4096, 9);
  rd.set_crc32c(crc32c::Value(data.data(), data.size()));
  rd.set_source_time_ns(123);
  RecordHeader h = ResyncDataRecord(rd);
  EXPECT_EQ(h.type, retention::RecordType::kResyncData);
  EXPECT_EQ(ThroughTheJournal(h, data.data(), data.size()), h);
  EXPECT_EQ(h.seq, 9u);
  EXPECT_EQ(h.disk, 2u);
  EXPECT_EQ(h.offset, 65536u);
  EXPECT_EQ(h.length, 4096u);
  EXPECT_EQ(h.source_time_ns, 123);

  proto::ResyncComplete c;
  c.set_seq(10);
  c.set_disk(2);
  c.set_source_time_ns(456);
  h = ResyncCompleteRecord(c);
  EXPECT_EQ(h.type, retention::RecordType::kResyncComplete);
  EXPECT_EQ(ThroughTheJournal(h, nullptr, 0), h);
  EXPECT_EQ(h.seq, 10u);
  EXPECT_EQ(h.disk, 2u);
  EXPECT_EQ(h.source_time_ns, 456);
}

TEST(JournalMapping, TagsRoundTripThroughTheTagPayload) {
  for (proto::TagKind k : {proto::TAG_KIND_CRASH, proto::TAG_KIND_APP, proto::TAG_KIND_USER}) {
    proto::Tag t;
    t.set_seq(11);
    t.set_name(std::string(255, 'n'));
    t.set_kind(k);
    t.set_group_tag_id(std::string(255, 'g'));
    t.set_source_time_ns(-7);
    retention::TagPayload p;
    RecordHeader h = TagRecord(t, &p);
    const std::string encoded = retention::EncodeTag(p);
    RecordHeader d = ThroughTheJournal(h, encoded.data(), encoded.size());
    EXPECT_EQ(d, h);
    retention::TagPayload back;
    ASSERT_TRUE(retention::DecodeTag(encoded.data(), encoded.size(), &back).ok());
    EXPECT_TRUE(MessageDifferencer::Equals(TagFromRecord(d, back), t)) << t.ShortDebugString();
  }
}

TEST(JournalMapping, TagKindsMapOneToOne) {
  EXPECT_EQ(testing::ValueOf(ToJournalTagKind(proto::TAG_KIND_CRASH)), retention::TagKind::kCrash);
  EXPECT_EQ(testing::ValueOf(ToJournalTagKind(proto::TAG_KIND_APP)), retention::TagKind::kApp);
  EXPECT_EQ(testing::ValueOf(ToJournalTagKind(proto::TAG_KIND_USER)), retention::TagKind::kUser);
  for (auto k : {retention::TagKind::kCrash, retention::TagKind::kApp, retention::TagKind::kUser}) {
    EXPECT_EQ(testing::ValueOf(ToJournalTagKind(ToWireTagKind(k))), k);
  }
  EXPECT_EQ(ToJournalTagKind(proto::TAG_KIND_UNSPECIFIED).status().code(), Errc::kProtocol);
}

}  // namespace
}  // namespace mt::stream
