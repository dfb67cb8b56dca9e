// Session: one TLS connection of the data port (the receiver side of the
// change stream, docs/formats/stream.md), Boost.Beast style: kept alive by
// shared_from_this, every handler on the session's own strand, a timeout
// before every read, one write in flight with a queue behind it.
//
//   accept ─▶ [tls] ──TLS handshake──▶ [hello] ──hello──▶ send auth_challenge
//                                                          │
//             ┌────────────────────────────────────────────┘
//             ▼
//           [auth] ──auth_response, MAC ok, Attach ok──▶ send welcome ─▶ [streaming]
//                                                                          │  ▲
//   write_batch / tag / resync_* ─▶ port.Ingest ─ on_durable(seq) ─▶ ack ──┘  │
//   resync_hash_request ─▶ worker pool: port.HashBlocks ─▶ hash reply ────────┘
//     (replies carry the request id and may come in any order)
//   ping ─▶ pong      port.Throttled() ─▶ stop reading (and throttle{on} if
//                     port.ThrottleTellsSender()), port.WatchThrottle() wake-up,
//                     not throttled ─▶ throttle{off} if on was sent, read
//
//   any violation (decoder, version, auth, busy, Ingest, hash) ─▶ [closing]:
//       send error(code = ErrcName, message), FIN, drain briefly, close, Detach.
//       While the stream's port reports a Failure() (after a good proof), the
//       error carries condition STREAM_FAILED: the sender stops.
//   peer EOF on a frame boundary, timeout, I/O error ─▶ [closing] without a frame
//   (a timeout still sends its error frame best effort).
//
// Timeouts: the TLS handshake plus hello and auth must finish within
// handshake_timeout; in streaming every read waits at most idle_timeout (the
// sender pings when it has nothing to send); a write that takes longer than
// write_timeout closes the connection; closing takes at most close_timeout.
// Acks are coalesced: at most one ack frame is queued or in flight, and it
// carries the newest durable seq when it is written.
// Flow control: while port.Throttled() the session does not read (TCP
// backpressure) until the stream wakes it (WatchThrottle: an event, no poll;
// nothing in the session waits on the stream's WAL or apply threads); at most max_hash_in_flight hash requests are outstanding,
// more pause reading too; a frame whose payload does not fit the receiver's
// PayloadBudget (shared by all sessions) waits, the session not reading,
// polling the budget every throttle_poll.
// Memory: until the welcome is sent the decoder's limits are
// kHandshakeMaxHeaderBytes of header and no payload at all (a limit error
// names "before authentication"), so an unauthenticated peer costs the
// TLS state, one read chunk (allocated at the first read, after the TLS
// handshake) and a few KiB, whatever it sends. After the welcome: the
// FrameDecoder limits (payloads within the budget) plus one read chunk plus
// the write queue (control frames and hash replies, bounded by
// max_hash_in_flight). Everything is released when the session closes.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/tls_channel.h"
#include "stream/frame_codec.h"
#include "mt/shim/status.h"
#include "daemon/stream_port.h"

namespace mt::daemon {

// Header limit before authentication: hello and auth-response are far smaller
// (names of at most 255 bytes, a nonce and a MAC); docs/formats/stream.md.
inline constexpr uint64_t kHandshakeMaxHeaderBytes = 4096;

struct SessionOptions {
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds write_timeout{30'000};
  std::chrono::milliseconds close_timeout{2'000};
  std::chrono::milliseconds throttle_poll{20};  // the payload budget's poll (not the throttle's)
  std::chrono::milliseconds keepalive{15'000};  // ping when nothing was written for this long
  // One TLS read returns at most one record (16 KiB of plaintext): a larger
  // chunk would never be filled.
  size_t read_chunk = 16u << 10;
  uint64_t max_header_bytes = stream::kDefaultMaxHeaderBytes;
  uint64_t max_payload_bytes = stream::kDefaultMaxPayloadBytes;
  // Hash requests queued for the workers or being hashed: a queued one
  // costs its few header bytes, a running one a 4 MiB read buffer on its
  // worker. Above mtsend's default of 4, so that the receiver reads the
  // resync data sent between requests while they wait for a worker.
  int max_hash_in_flight = 8;
  // Payload bytes being received across sessions (null: no bound); the
  // Receiver sets its own. Must hold at least max_payload_bytes.
  stream::PayloadBudget* budget = nullptr;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  using Tcp = boost::asio::ip::tcp;
  // Called once, on the strand, when the session has closed (reason: ok for
  // a clean end).
  using ClosedFn = std::function<void(Session*, const Status& reason)>;

  // REQUIRES: ioc, ssl, directory and workers outlive the session.
  Session(boost::asio::io_context& ioc, boost::asio::ssl::context& ssl, StreamDirectory& directory,
          boost::asio::thread_pool& workers, const SessionOptions& options, ClosedFn on_closed);
  ~Session();

  // The TCP socket to accept into, before Start().
  Tcp::socket& socket() { return tls_->socket(); }
  // Starts the TLS handshake. `id` names the session in logs and in Attach.
  void Start(std::string id);
  // Closes at once (shutdown): from any thread.
  void Stop();

  const std::string& id() const { return id_; }

 private:
  enum class State { kTls, kHello, kAuth, kStreaming, kClosing, kClosed };

  void OnTlsHandshake(const boost::system::error_code& ec);
  void MaybeRead();
  void OnRead(const boost::system::error_code& ec, size_t n);
  // Handles a read's outcome: n bytes in the decoder's payload (direct) or
  // read_buf_, frames handled. false: the session is closing (or closed).
  bool Consume(const boost::system::error_code& ec, bool direct, size_t n);
  // May a non-blocking read run now? MaybeRead's conditions, and no write
  // in flight (see the definition).
  bool ReadAllowed() const;
  // Read timeouts: every read must complete by read_deadline_ (moved at each
  // read start). One timer watches it, re-armed lazily when it fires early —
  // not set and cancelled per read (a TLS read returns one 16 KiB record).
  void WatchReads(std::chrono::steady_clock::time_point deadline);
  void OnReadWatchdog(uint64_t gen, const boost::system::error_code& ec);
  Status HandleFrame(stream::Frame&& frame);
  Status OnHello(const proto::Hello& hello);
  Status OnAuthResponse(const proto::AuthResponse& response);
  Status OnStreamFrame(stream::Frame&& frame);
  void StartHash(const proto::ResyncHashRequest& request);
  void OnHashDone(const proto::ResyncHashRequest& request, const Status& s,
                  const std::vector<uint8_t>& hashes);
  void OnDurable(const Status& s, uint64_t seq);
  // The decoder waits for the payload budget: poll it, not reading.
  void WaitForBudget();
  // read_buf_, allocated at the first read that needs it.
  boost::asio::mutable_buffer ReadBuffer();
  void EnterThrottle();
  void TellSenderIfThrottled();
  void WatchThrottle();
  void OnThrottleWake();
  void ArmKeepalive();

  void Send(const stream::FrameHeader& header, const std::vector<uint8_t>& payload = {});
  void DoWrite();
  void OnWrite(uint64_t gen, const boost::system::error_code& ec);

  // Closing: Fail sends the error frame first; Close does not.
  void Fail(const Status& s);
  void Close(const Status& reason);
  void BeginClose(const Status& reason);
  void Linger();
  void DrainRead();
  void HardClose();
  void Finish();

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  // TLS through our own BIO: up to 256 KiB of records per recv() once the
  // peer is authenticated, one record's worth before (net/tls_channel.h).
  std::shared_ptr<net::TlsChannel> tls_;
  StreamDirectory& directory_;
  boost::asio::thread_pool& workers_;
  const SessionOptions o_;
  ClosedFn on_closed_;
  std::string id_;

  State state_ = State::kTls;
  Status close_reason_;
  std::chrono::steady_clock::time_point handshake_deadline_;
  stream::FrameDecoder decoder_;
  std::vector<uint8_t> read_buf_;
  bool direct_read_ = false;  // the read in flight fills the decoder's payload
  bool reading_ = false;
  boost::asio::steady_timer read_timer_;  // the read watchdog
  std::chrono::steady_clock::time_point read_deadline_, watchdog_expiry_;
  bool watchdog_armed_ = false;
  uint64_t watchdog_gen_ = 0;

  std::deque<std::vector<uint8_t>> queue_;
  std::vector<uint8_t> write_buf_;
  bool writing_ = false;
  bool wrote_since_keepalive_ = false;
  uint64_t write_gen_ = 0;
  boost::asio::steady_timer write_timer_;
  uint64_t ack_wanted_ = 0, ack_sent_ = 0;

  // Handshake / stream.
  std::string stream_name_;
  uint32_t version_ = 0;
  std::string server_nonce_;  // kNonceBytes
  std::shared_ptr<StreamPort> port_;
  bool attached_ = false;
  bool throttled_ = false;       // not reading: the stream is throttled
  bool told_throttle_ = false;   // and the sender was sent throttle{on}
  bool budget_wait_ = false;  // the budget timer is armed
  int hash_in_flight_ = 0;
  uint64_t ping_id_ = 0;
  boost::asio::steady_timer budget_timer_;
  boost::asio::steady_timer keepalive_timer_;
  boost::asio::steady_timer close_timer_;
  bool lingering_ = false;
};

}  // namespace mt::daemon
