// Connection: the sender's end of one change-stream connection (mtsend), on a
// single-threaded io_context: TCP connect, TLS with the receiver's certificate
// pinned by its SHA-256 fingerprint, hello -> auth -> welcome, then frames
// both ways. One write in flight with a queue behind it; a timeout before
// every read (the receiver pings an idle connection); pings answered here.
//
//   Start ─▶ resolve ─▶ connect ─▶ TLS (pin) ─▶ hello ─▶ challenge ─▶ auth response
//         ─▶ welcome: on_welcome ─▶ frames: on_frame (ack, throttle, hash replies, ...)
//   error frame / EOF / timeout / I/O error ─▶ on_closed(reason), once
//
// Every callback runs on the io_context's thread. Not thread-safe: call it
// from that thread only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/tls_channel.h"
#include "stream/frame_codec.h"
#include "mt/shim/status.h"

namespace mt::send {

struct ConnectOptions {
  std::string host;
  uint16_t port = 9443;
  std::string stream;
  std::string key;          // raw credential bytes
  std::string fingerprint;  // 64 lowercase hex digits
  std::string sender_id = "mtsend";
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds keepalive{15'000};
};

// Why a connection ended, and whether trying again can help.
struct CloseReason {
  Status status;
  // Auth, protocol, fingerprint and validation errors, and every refusal
  // marked ERROR_CONDITION_STREAM_FAILED (the stream failed on the master
  // target); false for closes, timeouts and refusals a retry may get past
  // (busy, paused, starting, a full retention volume, ...).
  bool permanent = false;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  struct Callbacks {
    std::function<void(const proto::Welcome&)> on_welcome;
    std::function<void(stream::Frame&&)> on_frame;  // after the welcome; pings are answered here
    std::function<void()> on_sent;  // frames left the queue: queued_bytes() fell
    std::function<void(const CloseReason&)> on_closed;
  };

  Connection(boost::asio::io_context& ioc, boost::asio::ssl::context& ssl, ConnectOptions options,
             Callbacks callbacks);
  ~Connection();

  void Start();
  // Queues one frame. REQUIRES: after on_welcome, before on_closed.
  Status Send(const stream::FrameHeader& header, const std::vector<stream::ConstSlice>& payload = {});
  uint64_t queued_bytes() const { return queued_bytes_; }
  // Ends the connection (close_notify after the queue is written); on_closed
  // follows with kAborted "closed by the sender".
  void Close();

 private:
  void Fail(CloseReason reason);
  void OnConnected();
  void OnHandshake(const boost::system::error_code& ec);
  void Read();
  void OnRead(const boost::system::error_code& ec, size_t n);
  // Every frame but an error frame (a refusal ends the connection in OnRead).
  Status OnFrame(stream::Frame&& frame);
  // Encodes one frame and hands it to the channel (encrypted at once, sent
  // behind the frames before it).
  Status Write(const stream::FrameHeader& header, const std::vector<stream::ConstSlice>& payload);
  void OnWritten(const boost::system::error_code& ec, uint64_t bytes);
  void SendFin();  // closing, every frame sent
  void ArmTimer(std::chrono::milliseconds d, const char* what);
  void ArmKeepalive();

  // TLS through our own BIO: a frame goes out in a few send() calls, not one
  // per 16 KiB record (net/tls_channel.h).
  std::shared_ptr<net::TlsChannel> tls_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer timer_, keepalive_;
  const ConnectOptions o_;
  Callbacks cb_;
  enum class State { kConnecting, kHello, kAuth, kStreaming, kClosing, kClosed } state_ = State::kConnecting;
  std::string seen_fingerprint_;
  stream::FrameDecoder decoder_;
  std::vector<uint8_t> read_buf_;
  // A frame's prefix (length and header), and a small frame gathered whole:
  // large payloads go to the channel as the caller's slices, uncopied.
  std::vector<uint8_t> prefix_, small_;
  uint64_t writes_in_flight_ = 0;  // frames handed to the channel, not yet sent
  bool wrote_ = false;
  uint64_t queued_bytes_ = 0;
  uint64_t timer_gen_ = 0;
};

// A TLS client context: TLS 1.2+, peer verification by fingerprint only.
std::unique_ptr<boost::asio::ssl::context> MakeClientContext();

}  // namespace mt::send
