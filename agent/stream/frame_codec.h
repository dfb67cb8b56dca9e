// Frame codec of the change stream: encoder and a decoder that does no I/O.
// Format: docs/formats/stream.md. A frame on the wire is
//
//     varint(header length) || FrameHeader (protobuf) || payload
//
// The header declares the payload's length and CRC32C and carries exactly one
// small message (the frame type). Both sizes have hard limits, constructor
// parameters of the encoder and decoder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mt/shim/aligned_buffer.h"
#include "mt/shim/status.h"
#include "mt/stream.pb.h"
#include "stream/payload_budget.h"

namespace mt::stream {

inline constexpr uint64_t kDefaultMaxHeaderBytes = 64u << 10;   // 64 KiB
inline constexpr uint64_t kDefaultMaxPayloadBytes = 64u << 20;  // 64 MiB
// A varint of a 64-bit value is at most 10 bytes.
inline constexpr uint64_t kMaxVarintBytes = 10;
// Protobuf parses at most INT_MAX bytes; a header limit above is clamped.
inline constexpr uint64_t kMaxHeaderLimit = 0x7fffffff;

using proto::FrameHeader;
using FrameType = proto::FrameHeader::BodyCase;

// Short stable name of a frame type: "hello", "write-batch", ... ("none" for
// a header without a body).
const char* FrameTypeName(FrameType t);
// True for the frame types that carry a payload (write-batch, resync-data,
// resync-hash-reply); every other type has payload_length 0.
bool FrameTypeHasPayload(FrameType t);

// A frame's payload: page-aligned memory, so that the applier can write a
// write-batch's data to O_DIRECT targets straight from the frame (no bounce
// copy) where a write's place in the payload is aligned too.
using PayloadBytes = std::vector<uint8_t, PageAlignedAllocator<uint8_t>>;

struct Frame {
  FrameHeader header;  // payload_length/payload_crc32c describe `payload`
  PayloadBytes payload;  // the raw payload (CRC already verified)

  FrameType type() const { return header.body_case(); }
};

// A contiguous run of payload bytes (a payload may be given in pieces).
struct ConstSlice {
  const uint8_t* data = nullptr;
  size_t size = 0;
};
// A writable run of bytes (FrameDecoder::PrepareInput).
struct MutableSlice {
  uint8_t* data = nullptr;
  size_t size = 0;
};

// Produces frames. Stateless apart from its limits; thread-compatible.
class FrameEncoder {
 public:
  explicit FrameEncoder(uint64_t max_header_bytes = kDefaultMaxHeaderBytes,
                        uint64_t max_payload_bytes = kDefaultMaxPayloadBytes);

  // Appends one frame to *out: `header` with payload_length and
  // payload_crc32c set from the concatenation of `payload` slices, then the
  // payload. kInvalidArgument (and *out unchanged) when the header has no
  // body, when a type without payload is given bytes, or when the header or
  // payload would exceed the limits.
  Status Encode(FrameHeader header, const std::vector<ConstSlice>& payload,
                std::vector<uint8_t>* out) const;
  // Appends only the frame's length prefix and header (payload_length and
  // payload_crc32c set from `payload`, same checks as Encode): the frame is
  // these bytes followed by the slices as they are, for a writer that sends
  // them without gathering them into one buffer first.
  Status EncodePrefix(FrameHeader header, const std::vector<ConstSlice>& payload,
                      std::vector<uint8_t>* out) const;
  Status Encode(FrameHeader header, std::vector<uint8_t>* out) const {
    return Encode(std::move(header), {}, out);
  }
  Status Encode(FrameHeader header, const void* payload, size_t len,
                std::vector<uint8_t>* out) const {
    return Encode(std::move(header), {ConstSlice{static_cast<const uint8_t*>(payload), len}}, out);
  }

 private:
  template <typename Bytes>
  Status EncodePrefixInto(FrameHeader header, const std::vector<ConstSlice>& payload,
                          size_t room_after, Bytes* out) const;
  template <typename Bytes>
  Status EncodeInto(FrameHeader header, const std::vector<ConstSlice>& payload, Bytes* out) const;
  uint64_t max_header_;
  uint64_t max_payload_;
};

// Turns a byte stream into frames, without I/O (Boost.Beast parser style):
// the caller Put()s the bytes it read and takes frames out with Next().
//
// Memory is bounded: the decoder never holds more than BufferLimit() =
// varint + header limit + payload limit bytes. Put() takes only what fits;
// a full buffer always holds a complete frame or an error, so calling Next()
// until it returns false always makes room again. Memory for a payload is
// reserved only once its header is accepted (and, with a PayloadBudget, once
// the budget granted it); it leaves the decoder with the frame.
//
// Limits may change between frames (SetLimits): a receiver keeps them tiny
// until the peer has authenticated (no payload, small headers), and a limit
// error then names the phase ("... before authentication").
//
// Errors (Status): kProtocol for framing violations (malformed varint, header
// or payload over its limit, a header that does not parse, unknown frame
// type, payload on a type that carries none, stream ending inside a frame);
// kCorruption for a payload whose CRC32C is not the declared one. After an
// error the decoder stays failed: Next() and Finish() return that error.
// Thread-compatible.
class FrameDecoder {
 public:
  explicit FrameDecoder(uint64_t max_header_bytes = kDefaultMaxHeaderBytes,
                        uint64_t max_payload_bytes = kDefaultMaxPayloadBytes);
  FrameDecoder(FrameDecoder&&) = default;
  FrameDecoder& operator=(FrameDecoder&&) = default;

  // New limits from the next frame on; `phase` (may be empty) ends every
  // limit error message ("... over the limit of 0 bytes before
  // authentication"). REQUIRES: between frames — no header of the current
  // frame parsed yet (before any Put, or after Next() handed out a frame);
  // bytes already buffered are judged by the new limits.
  void SetLimits(uint64_t max_header_bytes, uint64_t max_payload_bytes, std::string phase = "");

  // Payload memory comes from `budget` (null: no budget) from the next frame
  // on: a frame whose payload does not fit waits in waiting_for_budget(),
  // Next() retrying, until other frames give bytes back. Bytes Put while
  // waiting are buffered (the caller should stop reading). REQUIRES: between
  // frames; budget outlives the decoder or the next set_budget.
  void set_budget(PayloadBudget* budget) { budget_ = budget; }
  bool waiting_for_budget() const { return stage_ == Stage::kBudget; }

  // Drops everything buffered and the frame in progress, gives the budget
  // back, releases the memory; the decoder starts over at a frame boundary
  // (an error stays). For a session that is closing.
  void Reset();

  // Buffers up to n bytes; returns how many it took (0 when the buffer is
  // full: call Next()). A failed decoder takes and discards everything.
  // Payload bytes go straight into the payload of the frame being decoded
  // (one copy per byte, none more when Next() hands the frame out).
  size_t Put(const uint8_t* data, size_t n);

  // Zero-copy input, an alternative to Put() for large payloads: while a
  // payload is being received, PrepareInput(max) returns where the caller
  // may place up to `size` (<= max) next bytes of the stream — the frame's
  // own payload buffer — and CommitInput(n) says how many it placed there
  // (n <= size). Outside a payload (or when the payload is complete) the
  // slice is empty: use Put(). Nothing may be Put between the two calls.
  MutableSlice PrepareInput(size_t max);
  void CommitInput(size_t n);

  // true: *frame holds the next frame. false: more bytes are needed.
  // Error: see the class comment.
  Result<bool> Next(Frame* frame);

  // The peer closed the stream: ok when it ended on a frame boundary with
  // nothing buffered, else kProtocol naming what was cut off ("truncated
  // varint", "truncated header: 3 of 17 bytes", "truncated payload: ...").
  Status Finish();

  bool failed() const { return !error_.ok(); }
  const Status& error() const { return error_; }
  // Bytes taken and not yet handed out in a frame (header bytes and the
  // payload received so far included).
  uint64_t buffered_bytes() const { return buf_.size() - pos_ + payload_have_; }
  uint64_t BufferLimit() const { return kMaxVarintBytes + max_header_ + max_payload_; }

 private:
  // kBudget: the header is accepted, its payload waits for the budget.
  enum class Stage { kLength, kHeader, kBudget, kPayload };
  Status Fail(Status s);
  // " before authentication" for phase "before authentication", "" for none.
  std::string PhaseSuffix() const { return phase_.empty() ? "" : " " + phase_; }
  // Tries to complete the current stage; false when more bytes are needed.
  Result<bool> ParseLength();
  Result<bool> ParseHeader();
  // Stage kPayload begins: reserve the payload (address space only; pages
  // are touched as bytes arrive) and move the bytes already buffered.
  void StartPayload();
  size_t PayloadMissing() const { return header_.payload_length() - payload_have_; }

  uint64_t max_header_;
  uint64_t max_payload_;
  std::string phase_;
  PayloadBudget* budget_ = nullptr;
  PayloadBudget::Grant grant_;  // stage kPayload: the current payload's bytes
  std::vector<uint8_t> buf_;  // bytes [pos_, size) are not yet consumed
  size_t pos_ = 0;
  Stage stage_ = Stage::kLength;
  uint64_t header_len_ = 0;
  FrameHeader header_;  // valid in stage kPayload
  // Stage kPayload: the payload received so far, payload_[0, payload_have_).
  PayloadBytes payload_;
  size_t payload_have_ = 0;
  size_t prepared_ = 0;  // size of the slice PrepareInput last gave out
  Status error_;
};

}  // namespace mt::stream
