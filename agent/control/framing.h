// Control-socket framing: each message is a little-endian u32 byte count and
// that many bytes of a serialized protobuf (ControlRequest / ControlResponse,
// proto/mt/control.proto). No I/O here: the decoder takes bytes as they come
// (Beast's put()/put_eof() idea), so framing is tested without sockets.
#pragma once

#include <google/protobuf/message_lite.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "mt/shim/status.h"

namespace mt::control {

inline constexpr size_t kFrameHeaderBytes = 4;
// The largest message either side accepts; a larger declared length is
// kProtocol before a byte of the body is buffered.
inline constexpr uint32_t kMaxControlMessageBytes = 16u << 20;

// Header + serialized message. kInvalidArgument if it does not fit the limit.
Result<std::string> EncodeControlFrame(const google::protobuf::MessageLite& message);

class ControlFrameDecoder {
 public:
  explicit ControlFrameDecoder(uint32_t max_message_bytes = kMaxControlMessageBytes)
      : max_(max_message_bytes) {}

  // Appends received bytes. kProtocol once a header declares more than the
  // limit (the decoder then stays failed).
  Status Put(const void* data, size_t len);
  // The next complete message body, or nullopt until more bytes arrive.
  std::optional<std::string> Next();
  // At end of stream: ok when no partial frame is buffered, else kProtocol
  // saying how much is missing.
  Status Eof() const;
  // Bytes still needed to complete the frame being received (header first).
  size_t BytesNeeded() const;

 private:
  uint32_t max_;
  std::string buf_;
  Status failed_;
};

// Parses a body into `message`; kProtocol naming the type if it is not one.
Status ParseControlMessage(const std::string& body, google::protobuf::MessageLite* message);

}  // namespace mt::control
