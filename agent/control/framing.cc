#include "control/framing.h"

namespace mt::control {

namespace {

uint32_t LoadLe32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(u[0]) | static_cast<uint32_t>(u[1]) << 8 |
         static_cast<uint32_t>(u[2]) << 16 | static_cast<uint32_t>(u[3]) << 24;
}

}  // namespace

Result<std::string> EncodeControlFrame(const google::protobuf::MessageLite& message) {
  const size_t n = message.ByteSizeLong();
  if (n > kMaxControlMessageBytes)
    return Status(Errc::kInvalidArgument, message.GetTypeName() + " of " + std::to_string(n) +
                                              " bytes exceeds the control message limit");
  std::string out(kFrameHeaderBytes, '\0');
  for (size_t i = 0; i < kFrameHeaderBytes; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  if (!message.AppendToString(&out))
    return Status(Errc::kInternal, "serializing " + message.GetTypeName() + " failed");
  return out;
}

Status ControlFrameDecoder::Put(const void* data, size_t len) {
  if (!failed_.ok()) return failed_;
  buf_.append(static_cast<const char*>(data), len);
  if (buf_.size() >= kFrameHeaderBytes) {
    const uint32_t n = LoadLe32(buf_.data());
    if (n > max_)
      failed_ = Status(Errc::kProtocol, "control message of " + std::to_string(n) +
                                            " bytes declared; the limit is " +
                                            std::to_string(max_));
  }
  return failed_;
}

std::optional<std::string> ControlFrameDecoder::Next() {
  if (!failed_.ok() || buf_.size() < kFrameHeaderBytes) return std::nullopt;
  const uint32_t n = LoadLe32(buf_.data());
  if (buf_.size() < kFrameHeaderBytes + n) return std::nullopt;
  std::string body = buf_.substr(kFrameHeaderBytes, n);
  buf_.erase(0, kFrameHeaderBytes + n);
  // The next frame's header may already be here: check its limit now.
  if (buf_.size() >= kFrameHeaderBytes && LoadLe32(buf_.data()) > max_)
    failed_ = Status(Errc::kProtocol, "control message of " +
                                          std::to_string(LoadLe32(buf_.data())) +
                                          " bytes declared; the limit is " + std::to_string(max_));
  return body;
}

size_t ControlFrameDecoder::BytesNeeded() const {
  if (buf_.size() < kFrameHeaderBytes) return kFrameHeaderBytes - buf_.size();
  const size_t total = kFrameHeaderBytes + LoadLe32(buf_.data());
  return buf_.size() >= total ? 0 : total - buf_.size();
}

Status ControlFrameDecoder::Eof() const {
  if (!failed_.ok()) return failed_;
  if (buf_.empty()) return Status::Ok();
  return Status(Errc::kProtocol, "connection closed inside a control message (" +
                                     std::to_string(BytesNeeded()) + " more bytes expected)");
}

Status ParseControlMessage(const std::string& body, google::protobuf::MessageLite* message) {
  if (!message->ParseFromString(body))
    return Status(Errc::kProtocol,
                  "control message is not a valid " + message->GetTypeName() + " (" +
                      std::to_string(body.size()) + " bytes)");
  return Status::Ok();
}

}  // namespace mt::control
