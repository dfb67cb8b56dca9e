// Helpers over the change-stream messages (proto/mt/stream.proto): protocol
// versions, hello checks, error frames, write flags and resync hash sizes.
// Pure functions, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "stream/frame_codec.h"
#include "mt/shim/status.h"
#include "mt/stream.pb.h"

namespace mt::stream {

// Protocol versions this build speaks, inclusive.
inline constexpr uint32_t kMinProtocolVersion = 1;
inline constexpr uint32_t kMaxProtocolVersion = 1;

// Sizes of the authentication nonces and MAC, and of one resync block hash.
inline constexpr size_t kNonceBytes = 32;
inline constexpr size_t kMacBytes = 32;        // HMAC-SHA256
inline constexpr size_t kBlockHashBytes = 32;  // SHA-256

// Names (stream, sender id, tag names, group tag ids) are at most 255 bytes.
inline constexpr size_t kMaxNameBytes = 255;

// The write flags a sender may set; any other bit is a protocol error.
inline constexpr uint32_t kWireWriteFlags =
    proto::WRITE_FLAG_FLUSH | proto::WRITE_FLAG_FUA | proto::WRITE_FLAG_DISCARD;

// True if s is min_len..max_len bytes of printable ASCII (0x20..0x7e).
bool IsPrintableName(std::string_view s, size_t min_len, size_t max_len);

// Checks a Hello (names well formed, min <= max) and picks the protocol
// version: the highest one both sides speak. kProtocol naming the problem,
// e.g. "no common protocol version: sender speaks 2..3, receiver 1..1".
Result<uint32_t> NegotiateVersion(const proto::Hello& hello, uint32_t our_min = kMinProtocolVersion,
                                  uint32_t our_max = kMaxProtocolVersion);

// A frame header carrying an Error with s's code name (mt::ErrcName) and
// message. REQUIRES: !s.ok().
FrameHeader ErrorFrame(const Status& s);
// The Status an Error frame stands for. A code name this build does not know
// becomes kProtocol with the name kept in the message.
Status StatusFromError(const proto::Error& e);

// Payload bytes a write occupies in its batch: 0 for a discard, else length.
inline uint64_t WritePayloadBytes(const proto::Write& w) {
  return (w.flags() & proto::WRITE_FLAG_DISCARD) != 0 ? 0 : w.length();
}

// Blocks a resync hash request of `length` bytes covers: ceil(length /
// block_size); the reply's payload is that many kBlockHashBytes digests.
// REQUIRES: block_size > 0.
inline uint64_t HashBlockCount(uint64_t length, uint64_t block_size) {
  return length / block_size + (length % block_size != 0 ? 1 : 0);
}

}  // namespace mt::stream
