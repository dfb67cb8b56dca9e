#include "stream/validator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <limits>

#include "stream/messages.h"
#include "test_frames.h"

namespace mt::stream {
namespace {

using testing::FrameSpec;
using ::testing::HasSubstr;
using testing::ValueOf;
using testing::WriteBatchFrame;

constexpr uint64_t kDisk0Size = 1ull << 20;  // 1 MiB, 512-byte blocks
constexpr uint64_t kDisk1Size = 4ull << 20;  // 4 MiB, 4096-byte blocks

// A stream durable up to seq 100 with disk 0 in sync and disk 1 resyncing.
StreamValidator MakeValidator() {
  StreamValidator v(100);
  EXPECT_TRUE(v.AddDisk(0, {kDisk0Size, 512, proto::RESYNC_STATE_COMPLETE}).ok());
  EXPECT_TRUE(v.AddDisk(1, {kDisk1Size, 4096, proto::RESYNC_STATE_PENDING}).ok());
  return v;
}

struct Snapshot {
  uint64_t next_seq, last_durable;
  std::map<uint32_t, DiskState> disks;
  explicit Snapshot(const StreamValidator& v)
      : next_seq(v.next_seq()), last_durable(v.last_durable_seq()), disks(v.disks()) {}
  bool operator==(const Snapshot& o) const {
    return next_seq == o.next_seq && last_durable == o.last_durable && disks == o.disks;
  }
};

// Runs `admit` and expects a rejection with `code` whose message contains
// `text`, and the validator's state exactly as before.
void ExpectRejected(StreamValidator& v, const std::function<Result<Verdict>()>& admit, Errc code,
                    const std::string& text) {
  const Snapshot before(v);
  Result<Verdict> r = admit();
  ASSERT_FALSE(r.ok()) << "accepted, expected " << ErrcName(code) << ": " << text;
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr(text));
  EXPECT_TRUE(Snapshot(v) == before) << "state changed by a rejected item";
}

Result<Verdict> AdmitBatch(StreamValidator& v, const FrameSpec& f) {
  return v.AdmitWriteBatch(f.header.write_batch(), f.payload.data(), f.payload.size());
}

// Recomputes the CRC of write i after its data was changed on purpose.
void FixCrc(FrameSpec* f, int i) {
  uint64_t pos = 0;
  auto* b = f->header.mutable_write_batch();
  for (int k = 0; k < i; ++k) pos += WritePayloadBytes(b->writes(k));
  proto::Write* w = b->mutable_writes(i);
  w->set_crc32c(crc32c::Value(f->payload.data() + pos, WritePayloadBytes(*w)));
}

TEST(StreamValidator, ValidBatchIsStoredAndAdvancesTheSequence) {
  StreamValidator v = MakeValidator();
  Result<Verdict> r = AdmitBatch(v, WriteBatchFrame(101, 3));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, Verdict::kStore);
  EXPECT_EQ(v.next_seq(), 104u);
  EXPECT_EQ(v.last_durable_seq(), 100u);
  ASSERT_EQ(ValueOf(AdmitBatch(v, WriteBatchFrame(104, 1, 4096, 1, 8192))), Verdict::kStore);
  EXPECT_EQ(v.next_seq(), 105u);
}

TEST(StreamValidator, BadPayloadCrcIsRejected) {
  StreamValidator v = MakeValidator();
  FrameSpec f = WriteBatchFrame(101, 3);
  f.payload[700] ^= 0x01;  // inside the second write
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kCorruption,
      "write seq 102: data CRC mismatch: declared 0x");
}

TEST(StreamValidator, PayloadLengthMismatchIsRejected) {
  StreamValidator v = MakeValidator();
  FrameSpec f = WriteBatchFrame(101, 2);
  f.payload.push_back(0);
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kProtocol,
      "writes cover 1024 payload bytes, the frame carries 1025");
  f.payload.resize(1000);
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kProtocol,
      "writes cover 1024 payload bytes, the frame carries 1000");
}

TEST(StreamValidator, OffsetBeyondDiskEndIsRejected) {
  StreamValidator v = MakeValidator();
  FrameSpec f = WriteBatchFrame(101, 1, 512, 0, kDisk0Size);
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kOutOfRange,
      "write seq 101 on disk 0: range at 1048576 of 512 bytes ends beyond the disk "
      "(1048576 bytes)");
}

TEST(StreamValidator, RangeCrossingDiskEndIsRejected) {
  StreamValidator v = MakeValidator();
  FrameSpec f = WriteBatchFrame(101, 2, 512, 0, kDisk0Size - 512);  // second write crosses
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kOutOfRange,
      "write seq 102 on disk 0: range at 1048576");
  // An offset so large that offset + length wraps around.
  f = WriteBatchFrame(101, 1, 512, 0, std::numeric_limits<uint64_t>::max() - 511);
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kOutOfRange, "ends beyond the disk");
}

TEST(StreamValidator, WriteEndingExactlyAtDiskEndIsAccepted) {
  StreamValidator v = MakeValidator();
  EXPECT_EQ(ValueOf(AdmitBatch(v, WriteBatchFrame(101, 1, 512, 0, kDisk0Size - 512))),
            Verdict::kStore);
}

TEST(StreamValidator, MisalignedOffsetIsRejected) {
  StreamValidator v = MakeValidator();
  FrameSpec f = WriteBatchFrame(101, 1, 4096, 1, 512);  // disk 1 has 4096-byte blocks
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kMisaligned,
      "write seq 101 on disk 1: offset 512 or length 4096 is not a multiple of the "
      "logical block size 4096");
}

TEST(StreamValidator, MisalignedLengthIsRejected) {
  StreamValidator v = MakeValidator();
  FrameSpec f = WriteBatchFrame(101, 1, 1000, 0, 0);
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kMisaligned,
      "length 1000 is not a multiple of the logical block size 512");
}

TEST(StreamValidator, ZeroLengthWriteIsRejected) {
  StreamValidator v = MakeValidator();
  FrameSpec f = WriteBatchFrame(101, 1, 0, 0, 0);
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kOutOfRange,
      "write seq 101 on disk 0: zero length");
}

TEST(StreamValidator, WriteOverTheJournalRecordLimitIsRejected) {
  StreamValidator v(0);
  ASSERT_TRUE(v.AddDisk(0, {1ull << 30, 512, proto::RESYNC_STATE_COMPLETE}).ok());
  FrameSpec f;
  auto* w = f.header.mutable_write_batch()->add_writes();
  f.header.mutable_write_batch()->set_first_seq(1);
  w->set_seq(1);
  w->set_length((64ull << 20) + 512);  // the range is checked before the payload
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kOutOfRange,
      "write seq 1 on disk 0: length 67109376 over the limit of 67108864 bytes");
}

// A discard carries a range, not data: the 64 MiB limit of a write's data
// does not apply; the disk bounds it.
FrameSpec DiscardFrame(uint64_t seq, uint64_t offset, uint64_t length) {
  FrameSpec f;
  f.header.mutable_write_batch()->set_first_seq(seq);
  auto* w = f.header.mutable_write_batch()->add_writes();
  w->set_seq(seq);
  w->set_offset(offset);
  w->set_length(length);
  w->set_flags(proto::WRITE_FLAG_DISCARD);
  return f;
}

TEST(StreamValidator, DiscardOfTheWholeDiskIsAcceptedWhateverItsSize) {
  StreamValidator v(0);
  const uint64_t size = 100ull << 30;  // 100 GiB: more than a record's 32-bit length too
  ASSERT_TRUE(v.AddDisk(0, {size, 512, proto::RESYNC_STATE_COMPLETE}).ok());
  EXPECT_EQ(ValueOf(AdmitBatch(v, DiscardFrame(1, 0, size))), Verdict::kStore);
  EXPECT_EQ(ValueOf(AdmitBatch(v, DiscardFrame(2, 512, size - 512))), Verdict::kStore);
  EXPECT_EQ(v.next_seq(), 3u);
}

TEST(StreamValidator, DiscardCrossingTheDiskEndIsRejected) {
  StreamValidator v(0);
  const uint64_t size = 1ull << 30;
  ASSERT_TRUE(v.AddDisk(0, {size, 512, proto::RESYNC_STATE_COMPLETE}).ok());
  FrameSpec f = DiscardFrame(1, 512, size);
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kOutOfRange,
      "discard seq 1 on disk 0: range at 512 of 1073741824 bytes ends beyond the disk "
      "(1073741824 bytes)");
  f = DiscardFrame(1, 0, size + 512);
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kOutOfRange, "ends beyond the disk");
  f = DiscardFrame(1, 512, std::numeric_limits<uint64_t>::max() - 511);  // wraps around
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kOutOfRange, "ends beyond the disk");
  f = DiscardFrame(1, 0, size - 100);
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kMisaligned, "discard seq 1");
}

TEST(StreamValidator, UnknownDiskIsRejected) {
  StreamValidator v = MakeValidator();
  FrameSpec f = WriteBatchFrame(101, 1, 512, 7, 0);
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kNotFound,
      "write seq 101: unknown disk 7 (the stream has disks 0, 1)");
}

TEST(StreamValidator, UnknownWriteFlagIsRejected) {
  StreamValidator v = MakeValidator();
  FrameSpec f = WriteBatchFrame(101, 1);
  f.header.mutable_write_batch()->mutable_writes(0)->set_flags(proto::WRITE_FLAG_FUA | 1);
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kProtocol,
      "write seq 101: unknown flags 0x00000001");
}

TEST(StreamValidator, EmptyBatchIsRejected) {
  StreamValidator v = MakeValidator();
  FrameSpec f;
  f.header.mutable_write_batch()->set_first_seq(101);
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kProtocol, "empty write batch");
}

TEST(StreamValidator, BatchWithNonConsecutiveSeqsIsRejected) {
  StreamValidator v = MakeValidator();
  FrameSpec f = WriteBatchFrame(101, 3);
  f.header.mutable_write_batch()->mutable_writes(2)->set_seq(104);
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kProtocol,
      "write batch starting at seq 101: write 2 has seq 104, expected 103");
  f = WriteBatchFrame(101, 2);
  f.header.mutable_write_batch()->set_first_seq(100);
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kProtocol, "write 0 has seq 101, expected 100");
}

TEST(StreamValidator, SequenceGapIsRejected) {
  StreamValidator v = MakeValidator();
  FrameSpec f = WriteBatchFrame(102, 2);
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kProtocol,
      "sequence gap: expected seq 101, got write seqs 102..103");
}

TEST(StreamValidator, ReplayedBatchIsRecognisedAsDurable) {
  StreamValidator v = MakeValidator();
  const Snapshot before(v);
  Result<Verdict> r = AdmitBatch(v, WriteBatchFrame(98, 3));  // 98..100, all durable
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, Verdict::kAlreadyDurable);
  EXPECT_TRUE(Snapshot(v) == before);
  EXPECT_EQ(ValueOf(AdmitBatch(v, WriteBatchFrame(101, 1))), Verdict::kStore);
}

TEST(StreamValidator, ReplayedBatchIsStillCheckedForCorruption) {
  StreamValidator v = MakeValidator();
  FrameSpec f = WriteBatchFrame(98, 3);
  f.payload[0] ^= 0xff;
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kCorruption, "data CRC mismatch");
}

TEST(StreamValidator, PartlyReplayedBatchIsRejected) {
  StreamValidator v = MakeValidator();
  FrameSpec f = WriteBatchFrame(99, 4);  // 99..102: 99 and 100 durable, 101 and 102 new
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kProtocol,
      "write seqs 99..102 overlap items already received: durable up to 100, next "
      "expected 101");
}

TEST(StreamValidator, ResendOfAReceivedButNotDurableBatchIsRejected) {
  StreamValidator v = MakeValidator();
  ASSERT_EQ(ValueOf(AdmitBatch(v, WriteBatchFrame(101, 2))), Verdict::kStore);
  FrameSpec again = WriteBatchFrame(101, 2);
  ExpectRejected(
      v, [&] { return AdmitBatch(v, again); }, Errc::kProtocol,
      "write seqs 101..102 overlap items already received");
  v.MarkDurable(102);
  EXPECT_EQ(ValueOf(AdmitBatch(v, again)), Verdict::kAlreadyDurable);
}

TEST(StreamValidator, MarkDurableOnlyMovesForwardWithinWhatWasReceived) {
  StreamValidator v = MakeValidator();
  ASSERT_EQ(ValueOf(AdmitBatch(v, WriteBatchFrame(101, 3))), Verdict::kStore);
  v.MarkDurable(102);
  EXPECT_EQ(v.last_durable_seq(), 102u);
  v.MarkDurable(101);
  EXPECT_EQ(v.last_durable_seq(), 102u);
  v.MarkDurable(200);  // never received: ignored
  EXPECT_EQ(v.last_durable_seq(), 102u);
}

TEST(StreamValidator, DiscardCarriesNoPayload) {
  StreamValidator v = MakeValidator();
  FrameSpec f = WriteBatchFrame(101, 3);
  // Make the middle write a discard: its 512 bytes leave the payload.
  auto* w = f.header.mutable_write_batch()->mutable_writes(1);
  w->set_flags(proto::WRITE_FLAG_DISCARD);
  f.payload.erase(f.payload.begin() + 512, f.payload.begin() + 1024);
  w->set_crc32c(0);
  EXPECT_EQ(ValueOf(AdmitBatch(v, f)), Verdict::kStore);
}

TEST(StreamValidator, DiscardWithANonZeroCrcIsRejected) {
  StreamValidator v = MakeValidator();
  FrameSpec f = WriteBatchFrame(101, 1);
  auto* w = f.header.mutable_write_batch()->mutable_writes(0);
  w->set_flags(proto::WRITE_FLAG_DISCARD);
  f.payload.clear();
  ExpectRejected(
      v, [&] { return AdmitBatch(v, f); }, Errc::kCorruption, "write seq 101: data CRC mismatch");
  FixCrc(&f, 0);
  EXPECT_EQ(ValueOf(AdmitBatch(v, f)), Verdict::kStore);
}

proto::Tag GoodTag(uint64_t seq) {
  proto::Tag t;
  t.set_seq(seq);
  t.set_name("app-consistent 2024-06-01 12:00");
  t.set_kind(proto::TAG_KIND_APP);
  t.set_group_tag_id("grp-1");
  return t;
}

TEST(StreamValidator, WellFormedTagIsStored) {
  StreamValidator v = MakeValidator();
  EXPECT_EQ(ValueOf(v.AdmitTag(GoodTag(101))), Verdict::kStore);
  EXPECT_EQ(v.next_seq(), 102u);
  proto::Tag t = GoodTag(102);
  t.set_name(std::string(255, 'x'));
  t.clear_group_tag_id();
  t.set_kind(proto::TAG_KIND_CRASH);
  EXPECT_EQ(ValueOf(v.AdmitTag(t)), Verdict::kStore);
  EXPECT_EQ(ValueOf(v.AdmitTag(GoodTag(50))), Verdict::kAlreadyDurable);
}

TEST(StreamValidator, MalformedTagIsRejected) {
  StreamValidator v = MakeValidator();
  proto::Tag t = GoodTag(101);
  t.clear_name();
  ExpectRejected(
      v, [&] { return v.AdmitTag(t); }, Errc::kProtocol,
      "tag seq 101: name must be 1..255 bytes of printable ASCII (has 0 bytes)");
  t.set_name(std::string(256, 'x'));
  ExpectRejected(
      v, [&] { return v.AdmitTag(t); }, Errc::kProtocol, "(has 256 bytes)");
  t.set_name("bad\nname");
  ExpectRejected(
      v, [&] { return v.AdmitTag(t); }, Errc::kProtocol, "printable ASCII");
  t.set_name(std::string("nul\0", 4));
  ExpectRejected(
      v, [&] { return v.AdmitTag(t); }, Errc::kProtocol, "printable ASCII");
  t = GoodTag(101);
  t.set_kind(proto::TAG_KIND_UNSPECIFIED);
  ExpectRejected(
      v, [&] { return v.AdmitTag(t); }, Errc::kProtocol, "invalid kind 0");
  t.set_kind(static_cast<proto::TagKind>(9));
  ExpectRejected(
      v, [&] { return v.AdmitTag(t); }, Errc::kProtocol, "invalid kind 9");
  t = GoodTag(101);
  t.set_group_tag_id(std::string(256, 'g'));
  ExpectRejected(
      v, [&] { return v.AdmitTag(t); }, Errc::kProtocol, "group tag id must be 0..255 bytes");
  t = GoodTag(0);
  ExpectRejected(
      v, [&] { return v.AdmitTag(t); }, Errc::kProtocol, "seq 0 is not a stream seq");
  t = GoodTag(105);
  ExpectRejected(
      v, [&] { return v.AdmitTag(t); }, Errc::kProtocol,
      "sequence gap: expected seq 101, got tag seq 105");
}

FrameSpec ResyncBlock(uint64_t seq, uint32_t disk, uint64_t offset, uint64_t len) {
  FrameSpec f;
  f.payload = testing::Pattern(len, static_cast<uint32_t>(seq));
  auto* d = f.header.mutable_resync_data();
  d->set_seq(seq);
  d->set_disk(disk);
  d->set_offset(offset);
  d->set_length(len);
  d->set_crc32c(crc32c::Value(f.payload.data(), f.payload.size()));
  return f;
}

Result<Verdict> AdmitResync(StreamValidator& v, const FrameSpec& f) {
  return v.AdmitResyncData(f.header.resync_data(), f.payload.data(), f.payload.size());
}

proto::ResyncComplete Done(uint64_t seq, uint32_t disk) {
  proto::ResyncComplete c;
  c.set_seq(seq);
  c.set_disk(disk);
  return c;
}

TEST(StreamValidator, ResyncDataMovesThePendingDiskToRunning) {
  StreamValidator v = MakeValidator();
  EXPECT_EQ(ValueOf(AdmitResync(v, ResyncBlock(101, 1, 65536, 65536))), Verdict::kStore);
  EXPECT_EQ(v.disks().at(1).resync, proto::RESYNC_STATE_RUNNING);
  // Changes to the disk during its resync are ordinary writes.
  EXPECT_EQ(ValueOf(AdmitBatch(v, WriteBatchFrame(102, 1, 4096, 1, 0))), Verdict::kStore);
  EXPECT_EQ(ValueOf(v.AdmitResyncComplete(Done(103, 1))), Verdict::kStore);
  EXPECT_EQ(v.disks().at(1).resync, proto::RESYNC_STATE_COMPLETE);
  EXPECT_EQ(v.next_seq(), 104u);
}

TEST(StreamValidator, ResyncDataForADiskNotResyncingIsRejected) {
  StreamValidator v = MakeValidator();
  FrameSpec f = ResyncBlock(101, 0, 0, 4096);
  ExpectRejected(
      v, [&] { return AdmitResync(v, f); }, Errc::kProtocol,
      "resync data seq 101: disk 0 is not resyncing");
}

TEST(StreamValidator, ResyncDataChecksLikeAWrite) {
  StreamValidator v = MakeValidator();
  FrameSpec f = ResyncBlock(101, 1, 0, 4096);
  f.payload[5] ^= 1;
  ExpectRejected(
      v, [&] { return AdmitResync(v, f); }, Errc::kCorruption,
      "resync data seq 101: data CRC mismatch");
  f = ResyncBlock(101, 1, kDisk1Size, 4096);
  ExpectRejected(
      v, [&] { return AdmitResync(v, f); }, Errc::kOutOfRange, "ends beyond the disk");
  f = ResyncBlock(101, 1, 512, 4096);
  ExpectRejected(
      v, [&] { return AdmitResync(v, f); }, Errc::kMisaligned, "logical block size 4096");
  f = ResyncBlock(101, 5, 0, 4096);
  ExpectRejected(
      v, [&] { return AdmitResync(v, f); }, Errc::kNotFound, "unknown disk 5");
  f = ResyncBlock(101, 1, 0, 4096);
  f.payload.resize(2048);
  ExpectRejected(
      v, [&] { return AdmitResync(v, f); }, Errc::kProtocol,
      "length 4096, the frame carries 2048 payload bytes");
  f = ResyncBlock(102, 1, 0, 4096);
  ExpectRejected(
      v, [&] { return AdmitResync(v, f); }, Errc::kProtocol, "sequence gap");
}

TEST(StreamValidator, ResyncCompleteTwiceIsRejected) {
  StreamValidator v = MakeValidator();
  ASSERT_EQ(ValueOf(v.AdmitResyncComplete(Done(101, 1))), Verdict::kStore);  // nothing differed
  ExpectRejected(
      v, [&] { return v.AdmitResyncComplete(Done(102, 1)); }, Errc::kProtocol,
      "resync complete seq 102: disk 1 is not resyncing");
  ExpectRejected(
      v, [&] { return v.AdmitResyncComplete(Done(102, 4)); }, Errc::kNotFound, "unknown disk 4");
}

TEST(StreamValidator, ReplayedResyncItemsAreDurableEvenAfterTheResyncCompleted) {
  StreamValidator v(100);
  ASSERT_TRUE(v.AddDisk(1, {kDisk1Size, 4096, proto::RESYNC_STATE_COMPLETE}).ok());
  EXPECT_EQ(ValueOf(AdmitResync(v, ResyncBlock(90, 1, 0, 4096))), Verdict::kAlreadyDurable);
  EXPECT_EQ(ValueOf(v.AdmitResyncComplete(Done(95, 1))), Verdict::kAlreadyDurable);
}

TEST(StreamValidator, AdmitDispatchesOnFrameType) {
  StreamValidator v = MakeValidator();
  Frame f;
  FrameSpec spec = WriteBatchFrame(101, 2);
  f.header = spec.header;
  f.payload.assign(spec.payload.begin(), spec.payload.end());
  EXPECT_EQ(ValueOf(v.Admit(f)), Verdict::kStore);
  f = Frame();
  *f.header.mutable_tag() = GoodTag(103);
  EXPECT_EQ(ValueOf(v.Admit(f)), Verdict::kStore);
  f = Frame();
  f.header.mutable_ping();
  ExpectRejected(
      v, [&] { return v.Admit(f); }, Errc::kProtocol, "a ping frame is not a stream item");
}

TEST(StreamValidator, HashRequestsAreChecked) {
  const StreamValidator v = MakeValidator();
  proto::ResyncHashRequest r;
  r.set_request_id(3);
  r.set_disk(1);
  r.set_offset(0);
  r.set_length(kDisk1Size);
  r.set_block_size(65536);
  EXPECT_TRUE(v.CheckHashRequest(r).ok());
  r.set_length(kDisk1Size - 4096);  // last block shorter: fine
  EXPECT_TRUE(v.CheckHashRequest(r).ok());

  proto::ResyncHashRequest bad = r;
  bad.set_disk(9);
  EXPECT_EQ(v.CheckHashRequest(bad).code(), Errc::kNotFound);
  bad = r;
  bad.set_block_size(3 * 4096);
  EXPECT_THAT(v.CheckHashRequest(bad).message(),
              HasSubstr("block size 12288 is not a power of two"));
  bad.set_block_size(512);  // below disk 1's logical block size
  EXPECT_EQ(v.CheckHashRequest(bad).code(), Errc::kProtocol);
  bad = r;
  bad.set_offset(4096);
  bad.set_length(kDisk1Size);
  EXPECT_EQ(v.CheckHashRequest(bad).code(), Errc::kOutOfRange);
  bad = r;
  bad.set_offset(100);
  EXPECT_EQ(v.CheckHashRequest(bad).code(), Errc::kMisaligned);
  bad = r;
  bad.set_length(0);
  EXPECT_EQ(v.CheckHashRequest(bad).code(), Errc::kOutOfRange);
  // 4 MiB in 4 KiB blocks = 1024 hashes = 32 KiB: too big for a 16 KiB payload limit.
  bad = r;
  bad.set_length(kDisk1Size);
  bad.set_block_size(4096);
  Status s = v.CheckHashRequest(bad, 16 << 10);
  EXPECT_EQ(s.code(), Errc::kOutOfRange);
  EXPECT_THAT(s.message(), HasSubstr("1024 block hashes would not fit"));
}

TEST(StreamValidator, HashReplyMustAnswerTheRequest) {
  proto::ResyncHashRequest req;
  req.set_request_id(3);
  req.set_disk(1);
  req.set_offset(0);
  req.set_length(3 * 65536 + 4096);
  req.set_block_size(65536);
  proto::ResyncHashReply rep;
  rep.set_request_id(3);
  rep.set_disk(1);
  rep.set_offset(0);
  rep.set_length(req.length());
  rep.set_block_size(65536);
  EXPECT_TRUE(CheckHashReply(req, rep, 4 * 32).ok());
  EXPECT_EQ(CheckHashReply(req, rep, 3 * 32).code(), Errc::kProtocol);
  rep.set_request_id(4);
  EXPECT_EQ(CheckHashReply(req, rep, 4 * 32).code(), Errc::kProtocol);
}

TEST(StreamValidator, DisksAreCheckedWhenAdded) {
  StreamValidator v;
  EXPECT_EQ(v.AddDisk(0, {1 << 20, 1000, proto::RESYNC_STATE_COMPLETE}).code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(v.AddDisk(0, {1 << 20, 256, proto::RESYNC_STATE_COMPLETE}).code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(v.AddDisk(0, {0, 512, proto::RESYNC_STATE_COMPLETE}).code(), Errc::kInvalidArgument);
  EXPECT_EQ(v.AddDisk(0, {1000, 512, proto::RESYNC_STATE_COMPLETE}).code(), Errc::kInvalidArgument);
  EXPECT_EQ(v.AddDisk(0, {1 << 20, 512, proto::RESYNC_STATE_UNSPECIFIED}).code(),
            Errc::kInvalidArgument);
  ASSERT_TRUE(v.AddDisk(0, {1 << 20, 512, proto::RESYNC_STATE_COMPLETE}).ok());
  EXPECT_EQ(v.AddDisk(0, {1 << 20, 512, proto::RESYNC_STATE_COMPLETE}).code(),
            Errc::kAlreadyExists);
}

TEST(StreamValidator, FromWelcomeTakesTheResumePointAndDisks) {
  proto::Welcome w;
  w.set_resume_seq(41);
  auto* d = w.add_disks();
  d->set_disk(3);
  d->set_size_bytes(1 << 20);
  d->set_logical_block_size(4096);
  d->set_resync_state(proto::RESYNC_STATE_RUNNING);
  Result<StreamValidator> v = StreamValidator::FromWelcome(w);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->next_seq(), 42u);
  EXPECT_EQ(v->last_durable_seq(), 41u);
  EXPECT_TRUE(v->disks().at(3) == (DiskState{1 << 20, 4096, proto::RESYNC_STATE_RUNNING}));
  *w.add_disks() = *d;  // listed twice
  Result<StreamValidator> dup = StreamValidator::FromWelcome(w);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), Errc::kProtocol);
  EXPECT_THAT(dup.status().message(), HasSubstr("welcome: disk 3 is listed twice"));
}

}  // namespace
}  // namespace mt::stream
