// LinkChannel: one TLS connection of the configuration-server link, carrying
// length-prefixed protobuf messages (docs/formats/cs-link.md, "Framing"). Each
// channel owns its io_context and is driven by the one thread that calls
// Poll/Receive/Send; Post is the only call other threads may make (it runs a
// function on the driving thread and wakes a Poll).
//
// Trust is the pinned SHA-256 fingerprint of the CS certificate (self-signed,
// like the data port's): Dial with an expected fingerprint refuses any other
// certificate; Dial without one (first contact, registration) accepts the
// certificate and reports its fingerprint for the operator to confirm.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/message_lite.h>

#include "config/tls_identity.h"
#include "control/framing.h"
#include "mt/shim/status.h"

namespace mt::cslink {

// The largest message either side accepts; a larger declared length ends the
// connection (kProtocol) before its body is read.
inline constexpr uint32_t kMaxLinkMessageBytes = 4u << 20;
inline constexpr uint16_t kDefaultCsPort = 443;

// A server context for the CS's identity (TLS 1.2+, ECDHE AEAD suites only).
Result<std::unique_ptr<boost::asio::ssl::context>> LinkServerContext(const daemon::TlsIdentity& id);

// "host", "host:port", "[v6]:port" -> host and port (default kDefaultCsPort).
Status ParseHostPort(const std::string& text, std::string* host, uint16_t* port);

class LinkChannel {
 public:
  // Connects to host:port and completes TLS within `timeout`. With a
  // non-empty `pinned` (64 hex digits) any other certificate is refused:
  // kAuth naming both fingerprints. kUnavailable when nobody answers.
  static Result<std::unique_ptr<LinkChannel>> Dial(const std::string& host, uint16_t port,
                                                   const std::string& pinned,
                                                   std::chrono::milliseconds timeout);
  // Takes an accepted TCP socket (its descriptor) and completes the server
  // side of TLS within `timeout`.
  static Result<std::unique_ptr<LinkChannel>> Accept(int fd, boost::asio::ssl::context& ctx,
                                                     std::chrono::milliseconds timeout);
  ~LinkChannel();

  // The peer certificate's fingerprint (client side; "" on the server side).
  const std::string& peer_fingerprint() const { return peer_fingerprint_; }
  const std::string& peer_address() const { return peer_address_; }

  // Queues a message; it is written while the driving thread polls.
  // kAborted once the channel has ended.
  Status Send(const google::protobuf::MessageLite& message);
  // Queues bytes as they are, no framing (tests: what a broken or hostile
  // peer sends).
  Status SendRaw(std::string bytes);
  // Runs the connection's I/O for at most `wait` (less when a message arrives
  // or a posted function runs) and returns the messages received so far.
  // Once the connection has ended and every message was returned: the reason.
  Result<std::vector<std::string>> Poll(std::chrono::milliseconds wait);
  // The next message within `timeout` (kBusy "timed out" if none came).
  Result<std::string> Receive(std::chrono::milliseconds timeout);
  // Writes what is queued (at most `timeout`), then closes.
  void Close(std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));
  // From any thread: runs `fn` on the driving thread during a Poll.
  void Post(std::function<void()> fn);
  bool ended() const { return !ended_.ok(); }

 private:
  explicit LinkChannel(std::unique_ptr<boost::asio::ssl::context> own_ctx,
                       boost::asio::ssl::context& ctx);
  Status RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                  const std::string& what);
  void StartRead();
  void StartWrite();
  void End(Status why);

  boost::asio::io_context ioc_;
  std::unique_ptr<boost::asio::ssl::context> own_ctx_;
  boost::asio::ssl::stream<boost::asio::ip::tcp::socket> stream_;
  control::ControlFrameDecoder decoder_{kMaxLinkMessageBytes};
  std::vector<char> read_buf_;
  std::deque<std::string> inbox_;
  std::deque<std::string> outbox_;
  bool writing_ = false;
  bool reading_ = false;
  Status ended_;
  std::string peer_fingerprint_;
  std::string peer_address_;
};

}  // namespace mt::cslink
