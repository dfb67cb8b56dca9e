// Test helpers for the stream protocol: sample frames of every type, frame
// comparison, write batches with real data, and a decode-everything helper.
#pragma once

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "stream/frame_codec.h"
#include "mt/shim/crc32c.h"

namespace mt::stream::testing {

// The value of a Result, or a test failure (and T()) when it holds an error.
template <typename T>
T ValueOf(Result<T> r) {
  if (!r.ok()) {
    ADD_FAILURE() << "unexpected error: " << r.status().ToString();
    return T();
  }
  return std::move(r).value();
}

// A frame before encoding: a header with its body, and the payload.
struct FrameSpec {
  FrameHeader header;
  std::vector<uint8_t> payload;
};

inline std::vector<uint8_t> Pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<uint8_t>(x);
  }
  return v;
}

// A write batch of `count` writes of `len` bytes each on `disk`, from seq
// `first`, at consecutive offsets from `offset`; the payload is their data.
inline FrameSpec WriteBatchFrame(uint64_t first, int count, uint64_t len = 512, uint32_t disk = 0,
                                 uint64_t offset = 0) {
  FrameSpec f;
  proto::WriteBatch* b = f.header.mutable_write_batch();
  b->set_first_seq(first);
  for (int i = 0; i < count; ++i) {
    std::vector<uint8_t> data = Pattern(len, static_cast<uint32_t>(first + i));
    proto::Write* w = b->add_writes();
    w->set_seq(first + i);
    w->set_disk(disk);
    w->set_offset(offset + i * len);
    w->set_length(len);
    w->set_source_time_ns(1'700'000'000'000'000'000 + static_cast<int64_t>(first + i));
    w->set_flags(i % 2 ? proto::WRITE_FLAG_FUA : 0);
    w->set_crc32c(crc32c::Value(data.data(), data.size()));
    f.payload.insert(f.payload.end(), data.begin(), data.end());
  }
  return f;
}

// One frame of every type (the order of FrameHeader's body fields).
inline std::vector<FrameSpec> OneFrameOfEveryType() {
  std::vector<FrameSpec> v;
  FrameSpec f;

  f = {};
  auto* hello = f.header.mutable_hello();
  hello->set_min_version(1);
  hello->set_max_version(3);
  hello->set_stream_name("vm-0042");
  hello->set_sender_id("ps-east-1");
  hello->mutable_software()->set_major(2);
  v.push_back(f);

  f = {};
  f.header.mutable_auth_challenge()->set_server_nonce(std::string(32, '\x5a'));
  v.push_back(f);

  f = {};
  f.header.mutable_auth_response()->set_sender_nonce(std::string(32, '\x01'));
  f.header.mutable_auth_response()->set_mac(std::string(32, '\xee'));
  v.push_back(f);

  f = {};
  auto* welcome = f.header.mutable_welcome();
  welcome->set_protocol_version(1);
  welcome->set_resume_seq(1234567);
  for (uint32_t d = 0; d < 3; ++d) {
    auto* di = welcome->add_disks();
    di->set_disk(d);
    di->set_size_bytes((10ull << 30) + d * 4096);
    di->set_logical_block_size(d == 2 ? 4096 : 512);
    di->set_resync_state(static_cast<proto::ResyncState>(1 + d));
  }
  v.push_back(f);

  v.push_back(WriteBatchFrame(1000, 4, 4096, 1, 8192));

  f = {};
  f.header.mutable_ack()->set_durable_seq(1003);
  v.push_back(f);

  f = {};
  auto* tag = f.header.mutable_tag();
  tag->set_seq(1004);
  tag->set_name("sql-vss-2024-01-01T00:00:00Z");
  tag->set_kind(proto::TAG_KIND_APP);
  tag->set_group_tag_id("group-7:42");
  tag->set_source_time_ns(-5);
  v.push_back(f);

  f = {};
  auto* hreq = f.header.mutable_resync_hash_request();
  hreq->set_request_id(9);
  hreq->set_disk(2);
  hreq->set_offset(1 << 20);
  hreq->set_length(3 << 16);
  hreq->set_block_size(1 << 16);
  v.push_back(f);

  f = {};
  auto* hrep = f.header.mutable_resync_hash_reply();
  hrep->set_request_id(9);
  hrep->set_disk(2);
  hrep->set_offset(1 << 20);
  hrep->set_length(3 << 16);
  hrep->set_block_size(1 << 16);
  f.payload = Pattern(3 * 32, 77);
  v.push_back(f);

  f = {};
  auto* rd = f.header.mutable_resync_data();
  rd->set_seq(1005);
  rd->set_disk(2);
  rd->set_offset(1 << 20);
  rd->set_length(8192);
  f.payload = Pattern(8192, 1005);
  rd->set_crc32c(crc32c::Value(f.payload.data(), f.payload.size()));
  v.push_back(f);

  f = {};
  f.header.mutable_resync_complete()->set_seq(1006);
  f.header.mutable_resync_complete()->set_disk(2);
  v.push_back(f);

  f = {};
  f.header.mutable_throttle()->set_on(true);
  f.header.mutable_throttle()->set_reason("wal-quota");
  v.push_back(f);

  f = {};
  f.header.mutable_error()->set_code("out-of-range");
  f.header.mutable_error()->set_message("write seq 7 on disk 1: beyond the disk");
  v.push_back(f);

  f = {};
  f.header.mutable_ping()->set_id(0xfeedface);
  v.push_back(f);

  f = {};
  f.header.mutable_pong()->set_id(0xfeedface);
  v.push_back(f);
  return v;
}

// True if the decoded frame is the spec: same body and payload, and the
// header's payload fields describe the payload.
inline ::testing::AssertionResult SameFrame(const Frame& got, const FrameSpec& want) {
  FrameHeader g = got.header;
  if (g.payload_length() != got.payload.size()) {
    return ::testing::AssertionFailure()
           << "payload_length " << g.payload_length() << " but " << got.payload.size() << " bytes";
  }
  if (g.payload_crc32c() != crc32c::Value(got.payload.data(), got.payload.size())) {
    return ::testing::AssertionFailure() << "payload crc does not match";
  }
  g.clear_payload_length();
  g.clear_payload_crc32c();
  FrameHeader w = want.header;
  w.clear_payload_length();
  w.clear_payload_crc32c();
  std::string diff;
  google::protobuf::util::MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  if (!d.Compare(w, g)) return ::testing::AssertionFailure() << "headers differ: " << diff;
  if (!std::equal(got.payload.begin(), got.payload.end(), want.payload.begin(), want.payload.end()))
    return ::testing::AssertionFailure() << "payloads differ";
  return ::testing::AssertionSuccess();
}

inline std::vector<uint8_t> EncodeAll(const std::vector<FrameSpec>& specs) {
  FrameEncoder enc;
  std::vector<uint8_t> out;
  for (const FrameSpec& f : specs) {
    Status s = enc.Encode(f.header, f.payload.data(), f.payload.size(), &out);
    if (!s.ok()) ADD_FAILURE() << s.ToString();
  }
  return out;
}

}  // namespace mt::stream::testing
