#include "stream/messages.h"

#include <algorithm>

namespace mt::stream {

bool IsPrintableName(std::string_view s, size_t min_len, size_t max_len) {
  if (s.size() < min_len || s.size() > max_len) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u <= 0x7e;
  });
}

Result<uint32_t> NegotiateVersion(const proto::Hello& hello, uint32_t our_min, uint32_t our_max) {
  if (!IsPrintableName(hello.stream_name(), 1, kMaxNameBytes)) {
    return Status(Errc::kProtocol, "hello: stream name must be 1..255 bytes of printable ASCII");
  }
  if (!IsPrintableName(hello.sender_id(), 0, kMaxNameBytes)) {
    return Status(Errc::kProtocol, "hello: sender id must be 0..255 bytes of printable ASCII");
  }
  const uint32_t peer_min = hello.min_version();
  const uint32_t peer_max = hello.max_version();
  if (peer_min == 0 || peer_min > peer_max) {
    return Status(Errc::kProtocol, "hello: bad version range " + std::to_string(peer_min) + ".." +
                                       std::to_string(peer_max));
  }
  const uint32_t chosen = std::min(peer_max, our_max);
  if (chosen < std::max(peer_min, our_min)) {
    return Status(Errc::kProtocol, "no common protocol version: sender speaks " +
                                       std::to_string(peer_min) + ".." + std::to_string(peer_max) +
                                       ", receiver " + std::to_string(our_min) + ".." +
                                       std::to_string(our_max));
  }
  return chosen;
}

FrameHeader ErrorFrame(const Status& s) {
  FrameHeader h;
  h.mutable_error()->set_code(ErrcName(s.code()));
  h.mutable_error()->set_message(s.message());
  return h;
}

Status StatusFromError(const proto::Error& e) {
  for (int c = static_cast<int>(Errc::kOk) + 1; c <= static_cast<int>(Errc::kInternal); ++c) {
    const auto code = static_cast<Errc>(c);
    if (e.code() == ErrcName(code)) return Status(code, e.message());
  }
  return Status(Errc::kProtocol, "peer error '" + e.code() + "': " + e.message());
}

}  // namespace mt::stream
