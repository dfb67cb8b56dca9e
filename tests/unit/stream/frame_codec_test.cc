#include "stream/frame_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>

#include "test_frames.h"

namespace mt::stream {
namespace {

using testing::EncodeAll;
using testing::FrameSpec;
using ::testing::HasSubstr;
using testing::OneFrameOfEveryType;
using testing::SameFrame;
using testing::ValueOf;

// Zero-copy input for DecodeInChunks: payload bytes go through
// PrepareInput/CommitInput whenever the decoder offers a slice (as the
// agent's session reads them), `short_by` bytes fewer than the slice's size
// placed when possible (a read that returns less than asked).
struct ZeroCopy {
  size_t short_by = 0;
  size_t direct_bytes = 0;  // out: bytes placed through slices
};

// Feeds `bytes` in chunks of the sizes `chunk` returns and collects frames;
// stops at the first error, which it returns. With `zc`, see ZeroCopy.
template <typename ChunkFn>
Status DecodeInChunks(FrameDecoder* dec, const std::vector<uint8_t>& bytes, ChunkFn chunk,
                      std::vector<Frame>* frames, ZeroCopy* zc = nullptr) {
  size_t pos = 0;
  for (;;) {
    Frame f;
    Result<bool> r = dec->Next(&f);
    if (!r.ok()) return r.status();
    if (*r) {
      frames->push_back(std::move(f));
      continue;
    }
    if (pos == bytes.size()) return dec->Finish();
    const size_t n = std::min(chunk(), bytes.size() - pos);
    const MutableSlice slice = zc != nullptr ? dec->PrepareInput(n) : MutableSlice{};
    if (slice.size == 0) {
      pos += dec->Put(bytes.data() + pos, n);
      continue;
    }
    EXPECT_LE(slice.size, n);
    const size_t placed = slice.size > zc->short_by ? slice.size - zc->short_by : slice.size;
    std::copy(bytes.begin() + static_cast<ptrdiff_t>(pos),
              bytes.begin() + static_cast<ptrdiff_t>(pos + placed), slice.data);
    dec->CommitInput(placed);
    pos += placed;
    zc->direct_bytes += placed;
  }
}

// n frames of random types; write batches of 1..5 writes of write_len bytes.
std::vector<FrameSpec> MixedFrames(std::mt19937* rng, int n, uint64_t write_len) {
  const std::vector<FrameSpec> kinds = OneFrameOfEveryType();
  std::vector<FrameSpec> specs;
  for (int i = 0; i < n; ++i) {
    FrameSpec f = kinds[(*rng)() % kinds.size()];
    if (f.header.has_write_batch())
      f = testing::WriteBatchFrame(i + 1, 1 + static_cast<int>((*rng)() % 5), write_len);
    specs.push_back(f);
  }
  return specs;
}

Status DecodeAll(const std::vector<uint8_t>& bytes, std::vector<Frame>* frames,
                 FrameDecoder dec = FrameDecoder()) {
  return DecodeInChunks(
      &dec, bytes, [&] { return bytes.size() + 1; }, frames);
}

// The bytes of a frame whose header is given as raw protobuf bytes.
std::vector<uint8_t> RawFrame(const std::string& header, const std::vector<uint8_t>& payload = {}) {
  std::vector<uint8_t> out;
  uint64_t n = header.size();
  do {
    out.push_back(static_cast<uint8_t>((n & 0x7f) | (n >= 0x80 ? 0x80 : 0)));
    n >>= 7;
  } while (n != 0);
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

TEST(FrameCodec, EveryFrameTypeRoundTrips) {
  const std::vector<FrameSpec> specs = OneFrameOfEveryType();
  // The samples cover every member of FrameHeader's body oneof.
  ASSERT_EQ(static_cast<int>(specs.size()),
            FrameHeader::descriptor()->FindOneofByName("body")->field_count());
  for (const FrameSpec& spec : specs) {
    SCOPED_TRACE(FrameTypeName(spec.header.body_case()));
    std::vector<Frame> frames;
    ASSERT_TRUE(DecodeAll(EncodeAll({spec}), &frames).ok());
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].type(), spec.header.body_case());
    EXPECT_TRUE(SameFrame(frames[0], spec));
  }
}

TEST(FrameCodec, EncoderAppendsAndSetsPayloadFields) {
  FrameSpec spec = testing::WriteBatchFrame(5, 3);
  std::vector<uint8_t> out = {0xaa};
  FrameEncoder enc;
  // Given in two slices: the CRC covers their concatenation.
  const size_t half = spec.payload.size() / 2;
  ASSERT_TRUE(enc.Encode(spec.header,
                         {{spec.payload.data(), half},
                          {spec.payload.data() + half, spec.payload.size() - half}},
                         &out)
                  .ok());
  ASSERT_EQ(out[0], 0xaa);
  out.erase(out.begin());
  std::vector<Frame> frames;
  ASSERT_TRUE(DecodeAll(out, &frames).ok());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].header.payload_length(), spec.payload.size());
  EXPECT_EQ(frames[0].header.payload_crc32c(),
            crc32c::Value(spec.payload.data(), spec.payload.size()));
  EXPECT_TRUE(SameFrame(frames[0], spec));
}

// Many frames of every type and payload size, fed all at once, byte by byte
// and in random chunks: the same frames every time.
TEST(FrameCodec, ChunkingDoesNotChangeTheFrames) {
  std::mt19937 rng(20240601);
  const std::vector<FrameSpec> specs = MixedFrames(&rng, 300, 512);
  const std::vector<uint8_t> bytes = EncodeAll(specs);

  std::vector<Frame> at_once, bytewise, random_chunks;
  FrameDecoder d1, d2, d3;
  ASSERT_TRUE(DecodeInChunks(
                  &d1, bytes, [&] { return bytes.size(); }, &at_once)
                  .ok());
  ASSERT_TRUE(DecodeInChunks(
                  &d2, bytes, [] { return size_t{1}; }, &bytewise)
                  .ok());
  ASSERT_TRUE(DecodeInChunks(
                  &d3, bytes, [&] { return size_t{1} + rng() % 3000; }, &random_chunks)
                  .ok());
  ASSERT_EQ(at_once.size(), specs.size());
  ASSERT_EQ(bytewise.size(), specs.size());
  ASSERT_EQ(random_chunks.size(), specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    ASSERT_TRUE(SameFrame(at_once[i], specs[i])) << i;
    ASSERT_TRUE(SameFrame(bytewise[i], specs[i])) << i;
    ASSERT_TRUE(SameFrame(random_chunks[i], specs[i])) << i;
  }
}

TEST(FrameCodec, HeaderOverTheLimitIsRejectedBeforeItArrives) {
  FrameSpec spec = OneFrameOfEveryType()[0];  // hello
  std::vector<uint8_t> bytes = EncodeAll({spec});
  const uint64_t header_len = bytes[0];
  FrameDecoder dec(/*max_header_bytes=*/header_len - 1);
  ASSERT_EQ(dec.Put(bytes.data(), 1), 1u);  // only the length varint
  Frame f;
  Result<bool> r = dec.Next(&f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::kProtocol);
  EXPECT_EQ(r.status().message(), "frame header of " + std::to_string(header_len) +
                                      " bytes over the limit of " + std::to_string(header_len - 1) +
                                      " bytes");
}

TEST(FrameCodec, HeaderAtTheLimitIsAccepted) {
  std::vector<uint8_t> bytes = EncodeAll({OneFrameOfEveryType()[0]});
  std::vector<Frame> frames;
  EXPECT_TRUE(DecodeAll(bytes, &frames, FrameDecoder(bytes[0])).ok());
  EXPECT_EQ(frames.size(), 1u);
}

TEST(FrameCodec, PayloadOverTheLimitIsRejectedBeforeItArrives) {
  FrameSpec spec = testing::WriteBatchFrame(1, 2, 512);  // 1024 bytes of payload
  std::vector<uint8_t> bytes = EncodeAll({spec});
  FrameDecoder dec(kDefaultMaxHeaderBytes, /*max_payload_bytes=*/1023);
  const size_t header_end = bytes.size() - spec.payload.size();
  ASSERT_EQ(dec.Put(bytes.data(), header_end), header_end);
  Frame f;
  Result<bool> r = dec.Next(&f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::kProtocol);
  EXPECT_EQ(r.status().message(),
            "write-batch frame payload of 1024 bytes over the limit of 1023 bytes");
}

TEST(FrameCodec, EncoderRefusesFramesOverItsLimits) {
  FrameSpec spec = testing::WriteBatchFrame(1, 2, 512);
  std::vector<uint8_t> out;
  Status s = FrameEncoder(kDefaultMaxHeaderBytes, 1023)
                 .Encode(spec.header, spec.payload.data(), spec.payload.size(), &out);
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_EQ(s.message(), "payload of 1024 bytes over the limit of 1023 bytes");
  s = FrameEncoder(8).Encode(spec.header, spec.payload.data(), spec.payload.size(), &out);
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("bytes over the limit of 8 bytes"));
  EXPECT_TRUE(out.empty());
}

TEST(FrameCodec, EncoderRefusesHeaderWithoutBodyOrStrayPayload) {
  std::vector<uint8_t> out;
  FrameEncoder enc;
  EXPECT_EQ(enc.Encode(FrameHeader(), &out).message(), "frame header has no body");
  FrameHeader ping;
  ping.mutable_ping()->set_id(1);
  const uint8_t b[3] = {1, 2, 3};
  Status s = enc.Encode(ping, b, sizeof b, &out);
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_EQ(s.message(), "a ping frame carries no payload, given 3 bytes");
  EXPECT_TRUE(out.empty());
}

TEST(FrameCodec, ZeroCopyInputGivesTheSameFrames) {
  std::mt19937 rng(20261127);
  const std::vector<FrameSpec> specs = MixedFrames(&rng, 200, 4096);
  const std::vector<uint8_t> bytes = EncodeAll(specs);
  for (size_t short_by : {size_t{0}, size_t{7}}) {
    std::vector<Frame> frames;
    FrameDecoder dec;
    ZeroCopy zc{short_by};
    ASSERT_TRUE(DecodeInChunks(
                    &dec, bytes, [&] { return size_t{1} + rng() % 2000; }, &frames, &zc)
                    .ok());
    ASSERT_EQ(frames.size(), specs.size());
    for (size_t i = 0; i < specs.size(); ++i) ASSERT_TRUE(SameFrame(frames[i], specs[i])) << i;
    // Most payload bytes went straight into the frames' payloads.
    EXPECT_GT(zc.direct_bytes, bytes.size() / 2) << "short_by " << short_by;
  }
}

TEST(FrameCodec, ZeroCopyInputChecksTheCrcAndTruncation) {
  std::vector<uint8_t> bytes = EncodeAll({testing::WriteBatchFrame(1, 2, 4096)});
  std::vector<uint8_t> bad = bytes;
  bad[bad.size() - 100] ^= 0x10;
  std::vector<Frame> frames;
  ZeroCopy zc;
  FrameDecoder d1;
  Status s = DecodeInChunks(
      &d1, bad, [] { return size_t{1000}; }, &frames, &zc);
  EXPECT_EQ(s.code(), Errc::kCorruption);
  EXPECT_THAT(s.message(), HasSubstr("payload CRC mismatch in write-batch frame"));
  EXPECT_TRUE(frames.empty());
  EXPECT_GT(zc.direct_bytes, 0u);
  EXPECT_EQ(d1.PrepareInput(100).size, 0u) << "a failed decoder offers no slice";

  bytes.resize(bytes.size() - 12);
  FrameDecoder d2;
  s = DecodeInChunks(
      &d2, bytes, [] { return size_t{1000}; }, &frames, &zc);
  EXPECT_EQ(s.message(),
            "stream ended inside a frame: truncated payload of write-batch frame, 8180 of 8192 "
            "bytes");
}

TEST(FrameCodec, ZeroCopySliceEndsWithThePayload) {
  const std::vector<uint8_t> bytes =
      EncodeAll({testing::WriteBatchFrame(1, 1, 512), testing::WriteBatchFrame(2, 1, 512)});
  FrameDecoder dec;
  EXPECT_EQ(dec.PrepareInput(4096).size, 0u) << "no slice before a payload";
  const size_t first = EncodeAll({testing::WriteBatchFrame(1, 1, 512)}).size();
  const size_t header = first - 512;
  ASSERT_EQ(dec.Put(bytes.data(), header + 100), header + 100);
  Frame f;
  ASSERT_FALSE(ValueOf(dec.Next(&f)));
  MutableSlice slice = dec.PrepareInput(4096);
  ASSERT_EQ(slice.size, 412u) << "never past the payload's end";
  std::copy(bytes.begin() + static_cast<ptrdiff_t>(header + 100),
            bytes.begin() + static_cast<ptrdiff_t>(first), slice.data);
  dec.CommitInput(412);
  EXPECT_EQ(dec.PrepareInput(4096).size, 0u) << "payload complete: no slice";
  dec.CommitInput(0);
  ASSERT_TRUE(ValueOf(dec.Next(&f)));
  EXPECT_EQ(f.payload.size(), 512u);
  EXPECT_EQ(dec.buffered_bytes(), 0u);
}

TEST(FrameCodec, DecodedPayloadsArePageAligned) {
  // The applier writes a batch's data to O_DIRECT targets straight from the
  // payload when it is aligned (no bounce copy).
  const std::vector<uint8_t> bytes = EncodeAll({testing::WriteBatchFrame(1, 3, 4096),
                                                testing::WriteBatchFrame(4, 1, 512)});
  for (size_t chunk : {size_t{1}, size_t{700}, bytes.size()}) {
    std::vector<Frame> frames;
    FrameDecoder dec;
    ASSERT_TRUE(DecodeInChunks(
                    &dec, bytes, [&] { return chunk; }, &frames)
                    .ok());
    ASSERT_EQ(frames.size(), 2u);
    for (const Frame& f : frames) EXPECT_TRUE(IsAligned(f.payload.data(), kDirectIoAlignment));
  }
}

TEST(FrameCodec, PayloadCrcMismatchIsCorruption) {
  FrameSpec spec = testing::WriteBatchFrame(1, 2, 512);
  std::vector<uint8_t> bytes = EncodeAll({spec});
  bytes[bytes.size() - 100] ^= 0x10;
  std::vector<Frame> frames;
  Status s = DecodeAll(bytes, &frames);
  EXPECT_EQ(s.code(), Errc::kCorruption);
  EXPECT_THAT(s.message(),
              HasSubstr("payload CRC mismatch in write-batch frame: header declares 0x"));
  EXPECT_TRUE(frames.empty());
}

TEST(FrameCodec, StreamEndingInsideTheLengthIsTruncatedVarint) {
  FrameDecoder dec;
  const uint8_t b = 0x80;  // continuation bit set, more bytes expected
  dec.Put(&b, 1);
  Frame f;
  ASSERT_FALSE(ValueOf(dec.Next(&f)));
  Status s = dec.Finish();
  EXPECT_EQ(s.code(), Errc::kProtocol);
  EXPECT_EQ(s.message(),
            "stream ended inside a frame: truncated varint (1 bytes of the header length)");
}

TEST(FrameCodec, StreamEndingInsideTheHeaderIsTruncatedHeader) {
  std::vector<uint8_t> bytes = EncodeAll({OneFrameOfEveryType()[0]});
  FrameDecoder dec;
  dec.Put(bytes.data(), 4);
  Frame f;
  ASSERT_FALSE(ValueOf(dec.Next(&f)));
  EXPECT_EQ(dec.Finish().message(), "stream ended inside a frame: truncated header, 3 of " +
                                        std::to_string(bytes[0]) + " bytes");
}

TEST(FrameCodec, StreamEndingInsideThePayloadIsTruncatedPayload) {
  std::vector<uint8_t> bytes = EncodeAll({testing::WriteBatchFrame(1, 1, 512)});
  FrameDecoder dec;
  dec.Put(bytes.data(), bytes.size() - 12);
  Frame f;
  ASSERT_FALSE(ValueOf(dec.Next(&f)));
  EXPECT_EQ(
      dec.Finish().message(),
      "stream ended inside a frame: truncated payload of write-batch frame, 500 of 512 bytes");
}

TEST(FrameCodec, CleanEndOfStreamIsOk) {
  FrameDecoder dec;
  EXPECT_TRUE(dec.Finish().ok());
  std::vector<Frame> frames;
  EXPECT_TRUE(DecodeAll(EncodeAll(OneFrameOfEveryType()), &frames).ok());
}

TEST(FrameCodec, VarintLongerThanTenBytesIsRejected) {
  std::vector<uint8_t> bytes(11, 0x80);
  std::vector<Frame> frames;
  Status s = DecodeAll(bytes, &frames);
  EXPECT_EQ(s.code(), Errc::kProtocol);
  EXPECT_EQ(s.message(), "malformed header length varint: longer than 10 bytes");
}

TEST(FrameCodec, VarintOverflowingSixtyFourBitsIsRejected) {
  std::vector<uint8_t> bytes(9, 0xff);
  bytes.push_back(0x02);
  std::vector<Frame> frames;
  EXPECT_EQ(DecodeAll(bytes, &frames).message(),
            "malformed header length varint: overflows 64 bits");
}

TEST(FrameCodec, NonMinimalVarintIsAccepted) {
  // Length 2 written as 0x82 0x80 0x00 (protobuf parsers accept padded varints).
  FrameHeader h;
  h.mutable_ack()->set_durable_seq(0);
  const std::string hb = h.SerializeAsString();
  ASSERT_EQ(hb.size(), 2u);
  std::vector<uint8_t> bytes = {0x82, 0x80, 0x00};
  bytes.insert(bytes.end(), hb.begin(), hb.end());
  std::vector<Frame> frames;
  ASSERT_TRUE(DecodeAll(bytes, &frames).ok());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_TRUE(frames[0].header.has_ack());
}

TEST(FrameCodec, UnparsableHeaderIsRejected) {
  std::vector<Frame> frames;
  Status s = DecodeAll(RawFrame("\xff\xff"), &frames);
  EXPECT_EQ(s.code(), Errc::kProtocol);
  EXPECT_EQ(s.message(), "frame header of 2 bytes does not parse as a FrameHeader");
}

TEST(FrameCodec, UnknownFrameTypeIsRejected) {
  // Field 99, length-delimited, empty: a body member from some future version.
  std::vector<Frame> frames;
  Status s = DecodeAll(RawFrame(std::string("\x9a\x06\x00", 3)), &frames);
  EXPECT_EQ(s.code(), Errc::kProtocol);
  EXPECT_EQ(s.message(), "unknown frame type (header field 99)");
}

TEST(FrameCodec, HeaderWithoutBodyIsRejected) {
  std::vector<Frame> frames;
  Status s = DecodeAll(RawFrame(""), &frames);
  EXPECT_EQ(s.code(), Errc::kProtocol);
  EXPECT_EQ(s.message(), "unknown frame type: header has no body");
}

TEST(FrameCodec, UnknownFieldsNextToAKnownBodyAreIgnored) {
  FrameHeader h;
  h.mutable_ping()->set_id(7);
  // Field 200, varint 1: added by a newer sender, ignored by this one.
  const std::string hb = h.SerializeAsString() + std::string("\xc0\x0c\x01", 3);
  std::vector<Frame> frames;
  ASSERT_TRUE(DecodeAll(RawFrame(hb), &frames).ok());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].header.ping().id(), 7u);
}

TEST(FrameCodec, PayloadOnATypeWithoutPayloadIsRejected) {
  FrameHeader h;
  h.mutable_ping()->set_id(1);
  h.set_payload_length(4);
  h.set_payload_crc32c(crc32c::Value("abcd", 4));
  std::vector<Frame> frames;
  Status s = DecodeAll(RawFrame(h.SerializeAsString(), {'a', 'b', 'c', 'd'}), &frames);
  EXPECT_EQ(s.code(), Errc::kProtocol);
  EXPECT_EQ(s.message(), "a ping frame carries no payload, header declares 4 bytes");
}

TEST(FrameCodec, DecoderStaysFailedAfterAnError) {
  FrameDecoder dec;
  std::vector<uint8_t> bad = RawFrame("\xff\xff");
  dec.Put(bad.data(), bad.size());
  Frame f;
  Result<bool> first = dec.Next(&f);
  ASSERT_FALSE(first.ok());
  std::vector<uint8_t> good = EncodeAll(OneFrameOfEveryType());
  EXPECT_EQ(dec.Put(good.data(), good.size()), good.size());  // taken and dropped
  EXPECT_EQ(dec.buffered_bytes(), 0u);
  Result<bool> again = dec.Next(&f);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().message(), first.status().message());
  EXPECT_EQ(dec.Finish().message(), first.status().message());
  EXPECT_TRUE(dec.failed());
}

TEST(FrameCodec, BufferNeverExceedsItsLimit) {
  // Small limits; a long stream of frames offered all at once.
  FrameDecoder dec(/*max_header_bytes=*/128, /*max_payload_bytes=*/2048);
  ASSERT_EQ(dec.BufferLimit(), 10u + 128u + 2048u);
  std::vector<FrameSpec> specs;
  for (int i = 0; i < 100; ++i) specs.push_back(testing::WriteBatchFrame(i + 1, 1 + i % 4, 512));
  const std::vector<uint8_t> bytes = EncodeAll(specs);
  size_t pos = 0, got = 0;
  while (pos < bytes.size() || got < specs.size()) {
    const size_t taken = dec.Put(bytes.data() + pos, bytes.size() - pos);
    pos += taken;
    ASSERT_LE(dec.buffered_bytes(), dec.BufferLimit());
    Frame f;
    bool progressed = taken > 0;
    for (;;) {
      Result<bool> r = dec.Next(&f);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      if (!*r) break;
      ASSERT_TRUE(SameFrame(f, specs[got])) << got;
      ++got;
      progressed = true;
    }
    ASSERT_TRUE(progressed) << "a full buffer must always yield a frame";
  }
  EXPECT_EQ(got, specs.size());
  EXPECT_TRUE(dec.Finish().ok());
}

TEST(FrameCodec, FullBufferOfGarbageYieldsAnError) {
  FrameDecoder dec(16, 16);
  std::vector<uint8_t> garbage(1000, 0x05);  // header length 5, then unparsable bytes?
  garbage[0] = 0x0f;                         // header of 15 bytes: 0x05 0x05 ...
  size_t taken = dec.Put(garbage.data(), garbage.size());
  EXPECT_EQ(taken, dec.BufferLimit());
  Frame f;
  EXPECT_FALSE(dec.Next(&f).ok());
}

// --- limits by phase (SetLimits) and the payload budget --------------------

TEST(FrameCodec, PayloadBeforeAuthenticationIsRefusedAtItsHeader) {
  FrameSpec spec = testing::WriteBatchFrame(1, 2, 512);
  std::vector<uint8_t> bytes = EncodeAll({spec});
  FrameDecoder dec;
  dec.SetLimits(4096, 0, "before authentication");
  const size_t header_end = bytes.size() - spec.payload.size();
  ASSERT_LT(header_end, bytes.size());
  ASSERT_EQ(dec.Put(bytes.data(), bytes.size()), bytes.size());  // within the 4 KiB header room
  Frame f;
  Result<bool> r = dec.Next(&f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::kProtocol);
  EXPECT_EQ(r.status().message(),
            "write-batch frame payload of 1024 bytes over the limit of 0 bytes before "
            "authentication");
}

TEST(FrameCodec, LargeHeaderBeforeAuthenticationIsRefusedAtItsLength) {
  FrameDecoder dec;
  dec.SetLimits(4096, 0, "before authentication");
  const uint8_t varint[] = {0x81, 0x40};  // 8193
  ASSERT_EQ(dec.Put(varint, sizeof varint), 2u);
  Frame f;
  Result<bool> r = dec.Next(&f);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "frame header of 8193 bytes over the limit of 4096 bytes before authentication");
}

TEST(FrameCodec, LimitsRaisedBetweenFramesApplyFromTheNextFrame) {
  // A hello and a write batch arrive together; the limits are raised once the
  // hello is out (as a receiver does after authentication).
  std::vector<FrameSpec> specs = {OneFrameOfEveryType()[0], testing::WriteBatchFrame(1, 2, 512)};
  const std::vector<uint8_t> bytes = EncodeAll(specs);
  FrameDecoder dec;
  dec.SetLimits(4096, 0, "before authentication");
  size_t pos = dec.Put(bytes.data(), bytes.size());
  Frame f;
  ASSERT_TRUE(*dec.Next(&f));
  ASSERT_TRUE(SameFrame(f, specs[0]));
  dec.SetLimits(kDefaultMaxHeaderBytes, kDefaultMaxPayloadBytes);
  while (pos < bytes.size()) pos += dec.Put(bytes.data() + pos, bytes.size() - pos);
  Result<bool> r = dec.Next(&f);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(*r);
  EXPECT_TRUE(SameFrame(f, specs[1]));
  EXPECT_TRUE(dec.Finish().ok());
}

TEST(FrameCodec, PayloadWaitsForTheBudgetAndGivesItBackWhenHandedOut) {
  PayloadBudget budget(1500);
  FrameSpec a = testing::WriteBatchFrame(1, 2, 512), b = testing::WriteBatchFrame(3, 2, 512);
  const std::vector<uint8_t> ba = EncodeAll({a}), bb = EncodeAll({b});
  FrameDecoder da, db;
  da.set_budget(&budget);
  db.set_budget(&budget);
  // a: header and half its payload; it holds its 1024 bytes of the budget.
  const size_t half = ba.size() - 512;
  ASSERT_EQ(da.Put(ba.data(), half), half);
  Frame f;
  ASSERT_FALSE(*da.Next(&f));
  EXPECT_FALSE(da.waiting_for_budget());
  EXPECT_EQ(budget.in_use(), 1024u);
  // b does not fit beside it: it waits, its bytes buffered, nothing reserved.
  ASSERT_EQ(db.Put(bb.data(), bb.size()), bb.size());
  ASSERT_FALSE(*db.Next(&f));
  EXPECT_TRUE(db.waiting_for_budget());
  EXPECT_EQ(budget.in_use(), 1024u);
  // a completes and is handed out: its bytes go back, b gets them.
  ASSERT_EQ(da.Put(ba.data() + half, 512), 512u);
  ASSERT_TRUE(*da.Next(&f));
  EXPECT_TRUE(SameFrame(f, a));
  EXPECT_EQ(budget.in_use(), 0u);
  ASSERT_TRUE(*db.Next(&f));
  EXPECT_TRUE(SameFrame(f, b));
  EXPECT_FALSE(db.waiting_for_budget());
  EXPECT_EQ(budget.in_use(), 0u);
}

TEST(FrameCodec, FailedResetOrDestroyedDecoderGivesItsBudgetBack) {
  PayloadBudget budget(4096);
  FrameSpec spec = testing::WriteBatchFrame(1, 2, 512);
  std::vector<uint8_t> bytes = EncodeAll({spec});
  const size_t part = bytes.size() - 100;
  Frame f;
  {
    FrameDecoder dec;
    dec.set_budget(&budget);
    dec.Put(bytes.data(), part);
    ASSERT_FALSE(*dec.Next(&f));
    EXPECT_EQ(budget.in_use(), 1024u);
    EXPECT_FALSE(dec.Finish().ok());  // truncated payload: failed
    EXPECT_EQ(budget.in_use(), 0u);
  }
  {
    FrameDecoder dec;
    dec.set_budget(&budget);
    dec.Put(bytes.data(), part);
    ASSERT_FALSE(*dec.Next(&f));
    dec.Reset();
    EXPECT_EQ(budget.in_use(), 0u);
    EXPECT_EQ(dec.buffered_bytes(), 0u);
    // It starts over at a frame boundary.
    ASSERT_EQ(dec.Put(bytes.data(), bytes.size()), bytes.size());
    ASSERT_TRUE(*dec.Next(&f));
    EXPECT_TRUE(SameFrame(f, spec));
  }
  {
    FrameDecoder dec;
    dec.set_budget(&budget);
    dec.Put(bytes.data(), part);
    ASSERT_FALSE(*dec.Next(&f));
    EXPECT_EQ(budget.in_use(), 1024u);
  }
  EXPECT_EQ(budget.in_use(), 0u);
}

TEST(FrameCodec, BudgetIsAllOrNothing) {
  PayloadBudget budget(1000);
  PayloadBudget::Grant g1, g2;
  EXPECT_TRUE(budget.TryAcquire(600, &g1));
  EXPECT_FALSE(budget.TryAcquire(401, &g2));
  EXPECT_EQ(g2.bytes(), 0u);
  EXPECT_EQ(budget.in_use(), 600u);
  EXPECT_TRUE(budget.TryAcquire(400, &g2));
  EXPECT_FALSE(budget.TryAcquire(1001, &g1)) << "more than the limit never fits";
  PayloadBudget::Grant moved = std::move(g2);
  EXPECT_EQ(budget.in_use(), 1000u);
  moved.Reset();
  g1.Reset();
  EXPECT_EQ(budget.in_use(), 0u);
}

// The example in docs/formats/stream.md ("A small frame") is this encoder's
// output: keep them in step.
TEST(FrameCodec, DocumentedExampleFrame) {
  FrameHeader h;
  proto::WriteBatch* b = h.mutable_write_batch();
  b->set_first_seq(7);
  proto::Write* w = b->add_writes();
  w->set_seq(7);
  w->set_disk(1);
  w->set_offset(4096);
  w->set_length(8);
  w->set_source_time_ns(1700000000000000000);
  w->set_flags(proto::WRITE_FLAG_FUA);
  const std::string data = "mt-agent";
  w->set_crc32c(crc32c::Value(data.data(), data.size()));
  std::vector<uint8_t> out;
  ASSERT_TRUE(FrameEncoder().Encode(h, data.data(), data.size(), &out).ok());
  std::string hex;
  char b2[3];
  for (uint8_t c : out) {
    std::snprintf(b2, sizeof b2, "%02x", c);
    hex += b2;
  }
  EXPECT_EQ(hex,
            "270808153974c2d93a1e0807121a080710011880202008288080a8b1e39fe7cb1730083d3974c2d9"
            "6d742d6167656e74");
}

}  // namespace
}  // namespace mt::stream
