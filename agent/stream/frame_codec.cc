#include "stream/frame_codec.h"

#include <google/protobuf/io/coded_stream.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "mt/shim/crc32c.h"

namespace mt::stream {

namespace {

std::string Hex32(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}

Status Protocol(std::string m) {
  return Status(Errc::kProtocol, std::move(m));
}

}  // namespace

const char* FrameTypeName(FrameType t) {
  switch (t) {
    case FrameHeader::kHello:
      return "hello";
    case FrameHeader::kAuthChallenge:
      return "auth-challenge";
    case FrameHeader::kAuthResponse:
      return "auth-response";
    case FrameHeader::kWelcome:
      return "welcome";
    case FrameHeader::kWriteBatch:
      return "write-batch";
    case FrameHeader::kAck:
      return "ack";
    case FrameHeader::kTag:
      return "tag";
    case FrameHeader::kResyncHashRequest:
      return "resync-hash-request";
    case FrameHeader::kResyncHashReply:
      return "resync-hash-reply";
    case FrameHeader::kResyncData:
      return "resync-data";
    case FrameHeader::kResyncComplete:
      return "resync-complete";
    case FrameHeader::kThrottle:
      return "throttle";
    case FrameHeader::kError:
      return "error";
    case FrameHeader::kPing:
      return "ping";
    case FrameHeader::kPong:
      return "pong";
    case FrameHeader::BODY_NOT_SET:
      return "none";
  }
  return "unknown";
}

bool FrameTypeHasPayload(FrameType t) {
  return t == FrameHeader::kWriteBatch || t == FrameHeader::kResyncData ||
         t == FrameHeader::kResyncHashReply;
}

// ---------------------------------------------------------------------------

FrameEncoder::FrameEncoder(uint64_t max_header_bytes, uint64_t max_payload_bytes)
    : max_header_(std::min(max_header_bytes, kMaxHeaderLimit)), max_payload_(max_payload_bytes) {}

template <typename Bytes>
Status FrameEncoder::EncodePrefixInto(FrameHeader header, const std::vector<ConstSlice>& payload,
                                      size_t room_after, Bytes* out) const {
  const FrameType type = header.body_case();
  if (type == FrameHeader::BODY_NOT_SET) {
    return Status(Errc::kInvalidArgument, "frame header has no body");
  }
  uint64_t total = 0;
  uint32_t crc = 0;
  for (const ConstSlice& s : payload) {
    total += s.size;
    crc = crc32c::Extend(crc, s.data, s.size);
  }
  if (total > 0 && !FrameTypeHasPayload(type)) {
    return Status(Errc::kInvalidArgument, std::string("a ") + FrameTypeName(type) +
                                              " frame carries no payload, given " +
                                              std::to_string(total) + " bytes");
  }
  if (total > max_payload_) {
    return Status(Errc::kInvalidArgument, "payload of " + std::to_string(total) +
                                              " bytes over the limit of " +
                                              std::to_string(max_payload_) + " bytes");
  }
  header.set_payload_length(total);
  header.set_payload_crc32c(crc);
  const uint64_t header_len = header.ByteSizeLong();
  if (header_len > max_header_) {
    return Status(Errc::kInvalidArgument, "frame header of " + std::to_string(header_len) +
                                              " bytes over the limit of " +
                                              std::to_string(max_header_) + " bytes");
  }
  using google::protobuf::io::CodedOutputStream;
  const size_t varint_len = CodedOutputStream::VarintSize64(header_len);
  const size_t start = out->size();
  out->reserve(start + varint_len + header_len + room_after);
  out->resize(start + varint_len + header_len);
  uint8_t* p = out->data() + start;
  p = CodedOutputStream::WriteVarint64ToArray(header_len, p);
  if (!header.SerializeToArray(p, static_cast<int>(header_len))) {
    out->resize(start);
    return Status(Errc::kInternal, "frame header does not serialize");
  }
  return Status::Ok();
}

template <typename Bytes>
Status FrameEncoder::EncodeInto(FrameHeader header, const std::vector<ConstSlice>& payload,
                                Bytes* out) const {
  uint64_t total = 0;
  for (const ConstSlice& s : payload) total += s.size;
  MT_RETURN_IF_ERROR(EncodePrefixInto(std::move(header), payload,
                                      static_cast<size_t>(std::min(total, max_payload_)), out));
  size_t at = out->size();
  out->resize(at + total);
  for (const ConstSlice& s : payload) {
    if (s.size == 0) continue;
    std::memcpy(out->data() + at, s.data, s.size);
    at += s.size;
  }
  return Status::Ok();
}

Status FrameEncoder::Encode(FrameHeader header, const std::vector<ConstSlice>& payload,
                            std::vector<uint8_t>* out) const {
  return EncodeInto(std::move(header), payload, out);
}

Status FrameEncoder::EncodePrefix(FrameHeader header, const std::vector<ConstSlice>& payload,
                                  std::vector<uint8_t>* out) const {
  return EncodePrefixInto(std::move(header), payload, 0, out);
}

// ---------------------------------------------------------------------------

FrameDecoder::FrameDecoder(uint64_t max_header_bytes, uint64_t max_payload_bytes)
    : max_header_(std::min(max_header_bytes, kMaxHeaderLimit)), max_payload_(max_payload_bytes) {}

void FrameDecoder::SetLimits(uint64_t max_header_bytes, uint64_t max_payload_bytes,
                             std::string phase) {
  max_header_ = std::min(max_header_bytes, kMaxHeaderLimit);
  max_payload_ = max_payload_bytes;
  phase_ = std::move(phase);
}

void FrameDecoder::Reset() {
  buf_.clear();
  buf_.shrink_to_fit();
  pos_ = 0;
  payload_ = PayloadBytes();
  payload_have_ = 0;
  prepared_ = 0;
  grant_.Reset();
  header_.Clear();
  header_len_ = 0;
  stage_ = Stage::kLength;
}

size_t FrameDecoder::Put(const uint8_t* data, size_t n) {
  if (failed()) return n;
  size_t took = 0;
  if (stage_ == Stage::kPayload) {  // straight into the frame's payload
    took = std::min(n, PayloadMissing());
    payload_.resize(payload_have_ + took);  // not zeroed (PageAlignedAllocator)
    if (took > 0) std::memcpy(payload_.data() + payload_have_, data, took);
    payload_have_ += took;
    data += took;
    n -= took;
    if (n == 0) return took;
  }
  const uint64_t limit = BufferLimit(), have = buffered_bytes();
  const uint64_t room = have < limit ? limit - have : 0;  // limits may have shrunk
  const size_t take = static_cast<size_t>(std::min<uint64_t>(n, room));
  if (take == 0) return took;
  if (pos_ > 0) {  // drop consumed bytes so the buffer never exceeds the limit
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buf_.insert(buf_.end(), data, data + take);
  return took + take;
}

MutableSlice FrameDecoder::PrepareInput(size_t max) {
  prepared_ = 0;
  if (failed() || stage_ != Stage::kPayload) return {};
  prepared_ = std::min(max, PayloadMissing());
  if (prepared_ == 0) return {};
  payload_.resize(payload_have_ + prepared_);
  return {payload_.data() + payload_have_, prepared_};
}

void FrameDecoder::CommitInput(size_t n) {
  if (n > prepared_) n = prepared_;  // contract violation: never count bytes not given out
  payload_have_ += n;
  payload_.resize(payload_have_);
  prepared_ = 0;
}

void FrameDecoder::StartPayload() {
  const size_t len = static_cast<size_t>(header_.payload_length());
  payload_.clear();
  payload_.reserve(len);
  const size_t from_buf = std::min<size_t>(len, buf_.size() - pos_);
  payload_.resize(from_buf);  // not zeroed (PageAlignedAllocator)
  if (from_buf > 0) std::memcpy(payload_.data(), buf_.data() + pos_, from_buf);
  payload_have_ = from_buf;
  pos_ += from_buf;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
}

Status FrameDecoder::Fail(Status s) {
  Reset();
  error_ = std::move(s);
  return error_;
}

Result<bool> FrameDecoder::ParseLength() {
  const uint8_t* p = buf_.data() + pos_;
  const uint64_t avail = buffered_bytes();
  uint64_t value = 0;
  for (uint64_t i = 0; i < kMaxVarintBytes; ++i) {
    if (i == avail) return false;
    const uint8_t b = p[i];
    if (i == kMaxVarintBytes - 1 && (b & 0x80) != 0) break;
    if (i == kMaxVarintBytes - 1 && b > 1) {
      return Protocol("malformed header length varint: overflows 64 bits");
    }
    value |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      if (value > max_header_) {
        return Protocol("frame header of " + std::to_string(value) + " bytes over the limit of " +
                        std::to_string(max_header_) + " bytes" + PhaseSuffix());
      }
      header_len_ = value;
      pos_ += i + 1;
      return true;
    }
  }
  return Protocol("malformed header length varint: longer than 10 bytes");
}

Result<bool> FrameDecoder::ParseHeader() {
  if (buffered_bytes() < header_len_) return false;
  header_.Clear();
  if (!header_.ParseFromArray(buf_.data() + pos_, static_cast<int>(header_len_))) {
    return Protocol("frame header of " + std::to_string(header_len_) +
                    " bytes does not parse as a FrameHeader");
  }
  const FrameType type = header_.body_case();
  if (type == FrameHeader::BODY_NOT_SET) {
    const auto& unknown = header_.GetReflection()->GetUnknownFields(header_);
    std::string fields;
    for (int i = 0; i < unknown.field_count(); ++i) {
      fields +=
          (fields.empty() ? " (header field " : ", ") + std::to_string(unknown.field(i).number());
    }
    if (!fields.empty()) fields += ")";
    return Protocol("unknown frame type" +
                    (fields.empty() ? std::string(": header has no body") : fields));
  }
  const uint64_t len = header_.payload_length();
  if (len > max_payload_) {
    return Protocol(std::string(FrameTypeName(type)) + " frame payload of " + std::to_string(len) +
                    " bytes over the limit of " + std::to_string(max_payload_) + " bytes" +
                    PhaseSuffix());
  }
  if (len > 0 && !FrameTypeHasPayload(type)) {
    return Protocol(std::string("a ") + FrameTypeName(type) +
                    " frame carries no payload, header declares " + std::to_string(len) + " bytes");
  }
  pos_ += header_len_;
  return true;
}

Result<bool> FrameDecoder::Next(Frame* frame) {
  if (failed()) return error_;
  for (;;) {
    switch (stage_) {
      case Stage::kLength: {
        Result<bool> r = ParseLength();
        if (!r.ok()) return Fail(r.status());
        if (!*r) return false;
        stage_ = Stage::kHeader;
        break;
      }
      case Stage::kHeader: {
        Result<bool> r = ParseHeader();
        if (!r.ok()) return Fail(r.status());
        if (!*r) return false;
        stage_ = Stage::kBudget;
        break;
      }
      case Stage::kBudget: {
        const uint64_t len = header_.payload_length();
        if (budget_ != nullptr && len > 0 && !budget_->TryAcquire(len, &grant_)) return false;
        stage_ = Stage::kPayload;
        StartPayload();
        break;
      }
      case Stage::kPayload: {
        const uint64_t len = header_.payload_length();
        if (payload_have_ < len) return false;
        const uint32_t crc = crc32c::Value(payload_.data(), static_cast<size_t>(len));
        if (crc != header_.payload_crc32c()) {
          return Fail(Status(Errc::kCorruption,
                             std::string("payload CRC mismatch in ") +
                                 FrameTypeName(header_.body_case()) + " frame: header declares " +
                                 Hex32(header_.payload_crc32c()) + ", the " + std::to_string(len) +
                                 " payload bytes have " + Hex32(crc)));
        }
        frame->payload = std::move(payload_);
        payload_ = PayloadBytes();
        payload_have_ = 0;
        grant_.Reset();  // the frame is received: its bytes are the caller's now
        frame->header.Swap(&header_);
        header_.Clear();
        stage_ = Stage::kLength;
        return true;
      }
    }
  }
}

Status FrameDecoder::Finish() {
  if (failed()) return error_;
  const uint64_t have = buffered_bytes();
  switch (stage_) {
    case Stage::kLength:
      if (have == 0) return Status::Ok();
      return Fail(Protocol("stream ended inside a frame: truncated varint (" +
                           std::to_string(have) + " bytes of the header length)"));
    case Stage::kHeader:
      return Fail(Protocol("stream ended inside a frame: truncated header, " +
                           std::to_string(have) + " of " + std::to_string(header_len_) + " bytes"));
    case Stage::kBudget:
    case Stage::kPayload:
      return Fail(Protocol(std::string("stream ended inside a frame: truncated payload of ") +
                           FrameTypeName(header_.body_case()) + " frame, " + std::to_string(have) +
                           " of " + std::to_string(header_.payload_length()) + " bytes"));
  }
  return Status::Ok();
}

}  // namespace mt::stream
