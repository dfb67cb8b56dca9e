// Fuzzes the stream FrameDecoder (agent/stream/frame_codec.h).
//
// Input byte 0 picks the mode, the next bytes the limits; then
//   even: the rest is a raw byte stream;
//   odd:  the rest describes frames (type and field values through protobuf
//         reflection, payloads), which FrameEncoder turns into a stream.
// The stream is decoded all at once and in arbitrary chunks (sizes taken
// from the input; each chunk through Put or, inside a payload, through
// PrepareInput/CommitInput as the input says). Checked: no crash, over-read or hang; the buffer never
// exceeds its limit; every frame is well formed (known type, payload length
// and CRC as declared, no payload on types that carry none); both chunkings
// give the same frames and the same final status; a failed decoder stays
// failed; encoded frames come back exactly.
#include <fuzzer/FuzzedDataProvider.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "stream/frame_codec.h"
#include "mt/shim/crc32c.h"

using namespace mt;
using namespace mt::stream;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::util::MessageDifferencer;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Decoded {
  std::vector<Frame> frames;
  Status end;
};

void CheckFrame(const Frame& f, uint64_t max_payload) {
  Check(f.type() != FrameHeader::BODY_NOT_SET);
  Check(f.header.payload_length() == f.payload.size());
  Check(f.payload.size() <= max_payload);
  Check(f.header.payload_crc32c() == crc32c::Value(f.payload.data(), f.payload.size()));
  Check(f.payload.empty() || FrameTypeHasPayload(f.type()));
}

// Decodes `bytes`; chunk sizes come from `chunks` (all at once when null or
// exhausted).
Decoded Decode(const std::vector<uint8_t>& bytes, uint64_t max_header, uint64_t max_payload,
               FuzzedDataProvider* chunks) {
  FrameDecoder dec(max_header, max_payload);
  Decoded out;
  size_t pos = 0;
  bool starved = false;  // the last Put took nothing
  for (;;) {
    Frame f;
    Result<bool> r = dec.Next(&f);
    if (!r.ok()) {
      out.end = r.status();
      Check(dec.failed());
      Check(out.end.code() == Errc::kProtocol || out.end.code() == Errc::kCorruption);
      Frame g;
      Result<bool> again = dec.Next(&g);
      Check(!again.ok() && again.status().message() == out.end.message());
      Check(dec.Finish().message() == out.end.message());
      return out;
    }
    if (*r) {
      CheckFrame(f, max_payload);
      out.frames.push_back(std::move(f));
      starved = false;
      continue;
    }
    // Next wants more bytes: a full buffer that yields nothing is a bug.
    Check(!starved);
    if (pos == bytes.size()) {
      out.end = dec.Finish();
      return out;
    }
    size_t n = bytes.size() - pos;
    bool zero_copy = false;
    if (chunks != nullptr && chunks->remaining_bytes() > 0) {
      n = std::min(n, chunks->ConsumeIntegralInRange<size_t>(1, 512));
      zero_copy = chunks->ConsumeBool();
    }
    if (zero_copy) {  // as the agent's session reads payloads
      const MutableSlice slice = dec.PrepareInput(n);
      Check(slice.size <= n);
      if (slice.size > 0) {
        std::memcpy(slice.data, bytes.data() + pos, slice.size);
        dec.CommitInput(slice.size);
        Check(dec.buffered_bytes() <= dec.BufferLimit());
        pos += slice.size;
        starved = false;
        continue;
      }
    }
    const size_t took = dec.Put(bytes.data() + pos, n);
    Check(took <= n);
    Check(dec.buffered_bytes() <= dec.BufferLimit());
    starved = took == 0;
    pos += took;
  }
}

// Fills every field of m (and nested messages, to `depth`) from the input.
void Fill(Message* m, FuzzedDataProvider* in, int depth) {
  const auto* d = m->GetDescriptor();
  const auto* r = m->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->containing_oneof() != nullptr) continue;
    if (!in->ConsumeBool()) continue;
    const int count = f->is_repeated() ? in->ConsumeIntegralInRange(0, 3) : 1;
    for (int k = 0; k < count; ++k) {
      const bool rep = f->is_repeated();
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_UINT32: {
          const uint32_t v = in->ConsumeIntegral<uint32_t>();
          rep ? r->AddUInt32(m, f, v) : r->SetUInt32(m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_UINT64: {
          const uint64_t v = in->ConsumeIntegral<uint64_t>();
          rep ? r->AddUInt64(m, f, v) : r->SetUInt64(m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_INT64: {
          const int64_t v = in->ConsumeIntegral<int64_t>();
          rep ? r->AddInt64(m, f, v) : r->SetInt64(m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_BOOL: {
          const bool v = in->ConsumeBool();
          rep ? r->AddBool(m, f, v) : r->SetBool(m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_STRING: {
          // proto3 `string` fields must be UTF-8 (parsing refuses others):
          // printable ASCII for those, any bytes for `bytes` fields.
          std::string v = in->ConsumeRandomLengthString(64);
          if (f->type() == FieldDescriptor::TYPE_STRING) {
            for (char& c : v) c = static_cast<char>(0x20 + static_cast<unsigned char>(c) % 95);
          }
          rep ? r->AddString(m, f, std::move(v)) : r->SetString(m, f, std::move(v));
          break;
        }
        case FieldDescriptor::CPPTYPE_ENUM: {
          const auto* e = f->enum_type();
          const int v = e->value(in->ConsumeIntegralInRange(0, e->value_count() - 1))->number();
          rep ? r->AddEnumValue(m, f, v) : r->SetEnumValue(m, f, v);
          break;
        }
        case FieldDescriptor::CPPTYPE_MESSAGE:
          if (depth > 0) Fill(rep ? r->AddMessage(m, f) : r->MutableMessage(m, f), in, depth - 1);
          break;
        default:
          break;
      }
    }
  }
}

// Frames described by the input, encoded; `expected` gets what must come back.
std::vector<uint8_t> MakeStream(FuzzedDataProvider* in, uint64_t max_header, uint64_t max_payload,
                                std::vector<Frame>* expected) {
  const auto* body = FrameHeader::descriptor()->FindOneofByName("body");
  FrameEncoder enc(max_header, max_payload);
  std::vector<uint8_t> out;
  const int frames = in->ConsumeIntegralInRange(0, 16);
  for (int i = 0; i < frames && in->remaining_bytes() > 0; ++i) {
    Frame f;
    const FieldDescriptor* type =
        body->field(in->ConsumeIntegralInRange(0, body->field_count() - 1));
    Fill(f.header.GetReflection()->MutableMessage(&f.header, type), in, 2);
    if (FrameTypeHasPayload(f.type())) {
      const size_t n = in->ConsumeIntegralInRange<size_t>(0, 2048);
      f.payload.resize(n);
      for (size_t k = 0; k < n; ++k) f.payload[k] = static_cast<uint8_t>(k * 31 + i);
    }
    const size_t before = out.size();
    if (!enc.Encode(f.header, f.payload.data(), f.payload.size(), &out).ok()) {
      Check(out.size() == before);  // a refused frame leaves nothing behind
      continue;
    }
    f.header.set_payload_length(f.payload.size());
    f.header.set_payload_crc32c(crc32c::Value(f.payload.data(), f.payload.size()));
    expected->push_back(std::move(f));
  }
  return out;
}

bool SameFrames(const std::vector<Frame>& a, const std::vector<Frame>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!MessageDifferencer::Equals(a[i].header, b[i].header)) return false;
    if (a[i].payload != b[i].payload) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  FuzzedDataProvider in(data, size);
  const bool structured = (in.ConsumeIntegral<uint8_t>() & 1) != 0;
  const uint64_t max_header = in.ConsumeIntegralInRange<uint64_t>(0, 512);
  const uint64_t max_payload = in.ConsumeIntegralInRange<uint64_t>(0, 4096);
  // The chunk sizes come from a separate slice of the input so both modes
  // can be chunked arbitrarily.
  std::vector<uint8_t> chunk_bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange(0, 64));
  FuzzedDataProvider chunks(chunk_bytes.data(), chunk_bytes.size());

  std::vector<Frame> expected;
  std::vector<uint8_t> bytes;
  if (structured) {
    bytes = MakeStream(&in, max_header, max_payload, &expected);
  } else {
    bytes = in.ConsumeRemainingBytes<uint8_t>();
  }

  const Decoded whole = Decode(bytes, max_header, max_payload, nullptr);
  const Decoded chunked = Decode(bytes, max_header, max_payload, &chunks);
  Check(SameFrames(whole.frames, chunked.frames));
  Check(whole.end.code() == chunked.end.code());
  Check(whole.end.message() == chunked.end.message());
  if (structured) {
    Check(whole.end.ok());
    Check(SameFrames(whole.frames, expected));
  }
  return 0;
}
