#include "daemon/session.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>

#include "stream/auth.h"
#include "stream/messages.h"

namespace mt::daemon {

namespace asio = boost::asio;
using boost::system::error_code;
using stream::Frame;
using stream::FrameHeader;
using stream::FrameType;

namespace {

// Largest plaintext of one TLS record (RFC 8446 §5.1, and TLS 1.2 alike).
constexpr size_t kTlsRecordPlaintextBytes = 16384;
// Non-blocking reads after an asynchronous one completes, before going back
// to the reactor (bounds the time one session holds its thread): 1 MiB, four
// of the channel's receive chunks.
constexpr int kReadsPerWakeup = 64;

std::string Ms(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

// The peer ended the TLS stream (close_notify, or TCP EOF without it).
bool IsEof(const error_code& ec) {
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) return true;
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
  if (ec.category() == asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
    return true;
#endif
  return false;
}

}  // namespace

Session::Session(asio::io_context& ioc, asio::ssl::context& ssl, StreamDirectory& directory,
                 asio::thread_pool& workers, const SessionOptions& options, ClosedFn on_closed)
    : strand_(ioc.get_executor()),
      tls_(net::TlsChannel::Create(ioc, strand_, ssl)),
      directory_(directory),
      workers_(workers),
      o_(options),
      on_closed_(std::move(on_closed)),
      decoder_(kHandshakeMaxHeaderBytes, 0),
      read_timer_(ioc),
      write_timer_(ioc),
      budget_timer_(ioc),
      keepalive_timer_(ioc),
      close_timer_(ioc) {
  // Until the welcome: small headers, no payload (docs/formats/stream.md),
  // and one TLS record's worth of ciphertext per receive.
  decoder_.SetLimits(kHandshakeMaxHeaderBytes, 0, "before authentication");
  tls_->SetReceiveChunk(0);
}

Session::~Session() {
  if (attached_ && port_) port_->Detach(id_);
}

void Session::Start(std::string id) {
  id_ = std::move(id);
  auto self = shared_from_this();
  asio::post(strand_, [self] {
    self->handshake_deadline_ = std::chrono::steady_clock::now() + self->o_.handshake_timeout;
    self->WatchReads(self->handshake_deadline_);
    self->tls_->AsyncHandshake(true, [self](const error_code& ec) { self->OnTlsHandshake(ec); });
  });
}

void Session::Stop() {
  auto self = shared_from_this();
  asio::post(strand_, [self] {
    if (self->state_ < State::kClosing) self->close_reason_ = Status(Errc::kAborted, "receiver stopping");
    self->HardClose();
  });
}

void Session::OnTlsHandshake(const error_code& ec) {
  // The watchdog stays armed: hello and auth have the same deadline.
  if (state_ != State::kTls) return;
  if (ec) {
    Close(Status(Errc::kProtocol, "TLS handshake failed: " + ec.message()));
    return;
  }
  state_ = State::kHello;  // the channel made the socket non-blocking (ReadSome)
  MaybeRead();
}

// ---------------------------------------------------------------------------
// Reading

void Session::MaybeRead() {
  if (reading_ || state_ == State::kTls || state_ >= State::kClosing) return;
  if (throttled_ || hash_in_flight_ >= o_.max_hash_in_flight) return;
  if (state_ == State::kStreaming && port_->Throttled()) {
    EnterThrottle();
    return;
  }
  if (decoder_.waiting_for_budget()) {
    WaitForBudget();
    return;
  }
  WatchReads(state_ == State::kStreaming ? std::chrono::steady_clock::now() + o_.idle_timeout
                                          : handshake_deadline_);
  reading_ = true;
  auto self = shared_from_this();
  // Payload bytes are read straight into the frame's payload (one copy
  // less per byte); everything else through read_buf_. A TLS read returns at
  // most one record, so the slice asked for is one record's plaintext.
  const stream::MutableSlice direct = decoder_.PrepareInput(kTlsRecordPlaintextBytes);
  direct_read_ = direct.size > 0;
  tls_->AsyncReadSome(direct_read_ ? asio::buffer(direct.data, direct.size) : ReadBuffer(),
                      [self](const error_code& ec, size_t n) { self->OnRead(ec, n); });
}

asio::mutable_buffer Session::ReadBuffer() {
  if (read_buf_.empty()) read_buf_.resize(std::max<size_t>(o_.read_chunk, 1));
  return asio::buffer(read_buf_);
}

void Session::WatchReads(std::chrono::steady_clock::time_point deadline) {
  read_deadline_ = deadline;
  // Armed for this deadline or an earlier one: it fires then and re-arms.
  if (watchdog_armed_ && watchdog_expiry_ <= deadline) return;
  watchdog_armed_ = true;
  watchdog_expiry_ = deadline;
  const uint64_t gen = ++watchdog_gen_;
  auto self = shared_from_this();
  read_timer_.expires_at(deadline);
  read_timer_.async_wait(asio::bind_executor(
      strand_, [self, gen](const error_code& ec) { self->OnReadWatchdog(gen, ec); }));
}

void Session::OnReadWatchdog(uint64_t gen, const error_code& ec) {
  if (ec || gen != watchdog_gen_) return;  // cancelled, or armed again since
  watchdog_armed_ = false;
  if (state_ >= State::kClosing) return;
  // Nothing to watch while the session does not read (throttled, hash
  // replies pending): the next read arms the watchdog again.
  if (!reading_ && state_ != State::kTls) return;
  if (std::chrono::steady_clock::now() < read_deadline_) {  // reads came in since it was armed
    WatchReads(read_deadline_);
    return;
  }
  if (state_ == State::kTls) {
    Close(Status(Errc::kAborted,
                 "TLS handshake not finished within " + Ms(o_.handshake_timeout)));
  } else if (state_ != State::kStreaming) {
    Fail(Status(Errc::kAborted, "handshake (hello, auth) not finished within " +
                                    Ms(o_.handshake_timeout)));
  } else {
    Fail(Status(Errc::kAborted, "nothing received for " + Ms(o_.idle_timeout)));
  }
}

void Session::OnRead(const error_code& ec, size_t n) {
  reading_ = false;
  // n bytes went into the decoder's payload (direct) or into read_buf_.
  const bool direct = direct_read_;
  direct_read_ = false;
  if (direct) decoder_.CommitInput(ec ? 0 : n);
  if (state_ == State::kClosed) return;
  if (state_ == State::kClosing) {  // draining after our last frame
    if (ec) {
      if (lingering_) HardClose();
    } else if (lingering_) {
      DrainRead();
    }
    return;
  }
  if (!Consume(ec, direct, n)) return;
  // Take what the socket already holds without a trip through the reactor
  // and the strand per TLS record (16 KiB): a few non-blocking reads (the
  // socket is in non-blocking mode since the TLS handshake).
  for (int i = 0; i < kReadsPerWakeup && ReadAllowed(); ++i) {
    const stream::MutableSlice slice = decoder_.PrepareInput(kTlsRecordPlaintextBytes);
    const bool d = slice.size > 0;
    error_code rec;
    const size_t m =
        tls_->ReadSome(d ? asio::buffer(slice.data, slice.size) : ReadBuffer(), rec);
    if (d) decoder_.CommitInput(rec ? 0 : m);
    if (rec == asio::error::would_block || rec == asio::error::try_again) break;
    if (!Consume(rec, d, m)) return;
  }
  MaybeRead();
}

bool Session::ReadAllowed() const {
  // A write in flight is no obstacle: output a read produces (a TLS 1.3
  // KeyUpdate answer) queues behind it in the channel.
  return !reading_ && state_ != State::kTls && state_ < State::kClosing && !throttled_ &&
         hash_in_flight_ < o_.max_hash_in_flight && !decoder_.waiting_for_budget() &&
         !(state_ == State::kStreaming && port_->Throttled());
}

bool Session::Consume(const error_code& ec, bool direct, size_t n) {
  if (ec) {
    if (IsEof(ec)) {
      Status s = decoder_.Finish();
      if (!s.ok()) {
        Fail(s);
      } else {
        Close(Status());
      }
    } else {
      Close(Status(Errc::kIoError, "read: " + ec.message()));
    }
    return false;
  }
  size_t off = direct ? n : 0;
  for (;;) {
    const size_t took = off < n ? decoder_.Put(read_buf_.data() + off, n - off) : 0;
    off += took;
    bool progressed = took > 0;
    for (;;) {
      Frame frame;
      Result<bool> next = decoder_.Next(&frame);
      if (!next.ok()) {
        Fail(next.status());
        return false;
      }
      if (!*next) break;
      progressed = true;
      Status s = HandleFrame(std::move(frame));
      if (!s.ok()) {
        Fail(s);
        return false;
      }
      if (state_ >= State::kClosing) return false;
    }
    if (off >= n) break;
    if (!progressed) {  // cannot happen (FrameDecoder contract); never spin
      Fail(Status(Errc::kInternal, "frame decoder made no progress"));
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// Frames

Status Session::HandleFrame(Frame&& frame) {
  const FrameType type = frame.type();
  if (type == FrameHeader::kError) {
    Close(Status(Errc::kAborted, "the sender reported " +
                                     stream::StatusFromError(frame.header.error()).ToString()));
    return Status::Ok();
  }
  switch (state_) {
    case State::kHello:
      if (type != FrameHeader::kHello) {
        return Status(Errc::kProtocol, std::string("expected a hello frame first, got a ") +
                                           stream::FrameTypeName(type) + " frame");
      }
      return OnHello(frame.header.hello());
    case State::kAuth:
      if (type != FrameHeader::kAuthResponse) {
        return Status(Errc::kProtocol, std::string("expected an auth-response frame, got a ") +
                                           stream::FrameTypeName(type) + " frame");
      }
      return OnAuthResponse(frame.header.auth_response());
    case State::kStreaming:
      return OnStreamFrame(std::move(frame));
    default:
      return Status::Ok();
  }
}

Status Session::OnHello(const proto::Hello& hello) {
  MT_ASSIGN_OR_RETURN(version_, stream::NegotiateVersion(hello));
  stream_name_ = hello.stream_name();
  MT_ASSIGN_OR_RETURN(stream::Nonce nonce, stream::RandomNonce());
  server_nonce_.assign(reinterpret_cast<const char*>(nonce.data()), nonce.size());
  FrameHeader h;
  h.mutable_auth_challenge()->set_server_nonce(server_nonce_);
  Send(h);
  state_ = State::kAuth;
  return Status::Ok();
}

Status Session::OnAuthResponse(const proto::AuthResponse& response) {
  stream::Nonce nonce;
  std::copy(server_nonce_.begin(), server_nonce_.end(), nonce.begin());
  const Status auth_failed(Errc::kAuth,
                           "authentication failed for stream '" + stream_name_ + "'");
  Result<StreamEntry> entry = directory_.Find(stream_name_);
  // An unknown stream answers exactly like a wrong MAC (no probing for names);
  // only a malformed response is a protocol error either way.
  const std::string key = entry.ok() ? entry->credential : std::string("unknown stream");
  Status v = stream::VerifyAuthResponse(key, nonce, stream_name_, response);
  if (!v.ok()) return v.code() == Errc::kProtocol ? v : auth_failed;
  if (!entry.ok() || entry->credential.empty()) return auth_failed;
  // The peer proved the credential: it may learn that the stream is not
  // being applied right now (paused for an export or a vsnap, or stopping);
  // kUnavailable, which a sender retries.
  if (!entry->port)
    return Status(Errc::kUnavailable, "stream '" + stream_name_ +
                                          "' is paused or stopping on this master target");

  // kBusy while another sender holds the stream: "stream 'x' is already
  // connected (...)"; the sender retries once that connection is gone.
  // port_ before the attach: a refusal of a failed stream says so (Fail).
  port_ = entry->port;
  MT_RETURN_IF_ERROR(port_->Attach(id_));
  attached_ = true;
  // Authenticated: the stream's limits from the next frame on (this one was
  // the last before authentication).
  decoder_.SetLimits(o_.max_header_bytes, o_.max_payload_bytes);
  decoder_.set_budget(o_.budget);
  FrameHeader h;
  *h.mutable_welcome() = port_->Welcome(version_);
  Send(h);
  state_ = State::kStreaming;
  tls_->SetReceiveChunk(net::TlsChannel::kDefaultReceiveChunk);  // authenticated: bulk reads
  ArmKeepalive();
  return Status::Ok();
}

Status Session::OnStreamFrame(Frame&& frame) {
  switch (frame.type()) {
    case FrameHeader::kWriteBatch:
    case FrameHeader::kTag:
    case FrameHeader::kResyncData:
    case FrameHeader::kResyncComplete: {
      std::weak_ptr<Session> weak = shared_from_this();
      auto shared = std::make_shared<const Frame>(std::move(frame));
      return port_->Ingest(std::move(shared), [weak](const Status& s, uint64_t seq) {
        if (auto self = weak.lock()) {
          asio::post(self->strand_, [self, s, seq] { self->OnDurable(s, seq); });
        }
      });
    }
    case FrameHeader::kResyncHashRequest:
      StartHash(frame.header.resync_hash_request());
      return Status::Ok();
    case FrameHeader::kPing: {
      FrameHeader h;
      h.mutable_pong()->set_id(frame.header.ping().id());
      Send(h);
      return Status::Ok();
    }
    case FrameHeader::kPong:
      return Status::Ok();
    default:
      return Status(Errc::kProtocol, std::string("unexpected ") +
                                         stream::FrameTypeName(frame.type()) +
                                         " frame after the welcome");
  }
}

void Session::OnDurable(const Status& s, uint64_t seq) {
  if (state_ >= State::kClosing) return;
  if (!s.ok()) {
    Fail(s);
    return;
  }
  ack_wanted_ = std::max(ack_wanted_, seq);
  DoWrite();
}

void Session::StartHash(const proto::ResyncHashRequest& request) {
  ++hash_in_flight_;
  auto self = shared_from_this();
  std::shared_ptr<StreamPort> port = port_;
  asio::post(workers_, [self, port, request] {
    auto hashes = std::make_shared<std::vector<uint8_t>>();
    Status s = port->HashBlocks(request, hashes.get());
    asio::post(self->strand_,
               [self, request, s, hashes] { self->OnHashDone(request, s, *hashes); });
  });
}

void Session::OnHashDone(const proto::ResyncHashRequest& request, const Status& s,
                         const std::vector<uint8_t>& hashes) {
  --hash_in_flight_;
  if (state_ >= State::kClosing) return;
  if (!s.ok()) {
    Fail(s);
    return;
  }
  FrameHeader h;
  proto::ResyncHashReply* r = h.mutable_resync_hash_reply();
  r->set_request_id(request.request_id());
  r->set_disk(request.disk());
  r->set_offset(request.offset());
  r->set_length(request.length());
  r->set_block_size(request.block_size());
  Send(h, hashes);
  MaybeRead();
}

// ---------------------------------------------------------------------------
// Flow control and keepalive

void Session::EnterThrottle() {
  throttled_ = true;
  TellSenderIfThrottled();
  WatchThrottle();
}

// A throttle frame only for what lasts (ThrottleTellsSender); a WAL writer a
// moment behind only stops the reading.
void Session::TellSenderIfThrottled() {
  if (told_throttle_ || !port_->ThrottleTellsSender()) return;
  told_throttle_ = true;
  FrameHeader h;
  h.mutable_throttle()->set_on(true);
  h.mutable_throttle()->set_reason("wal-quota");
  Send(h);
}

// The stream wakes the session (from the WAL committer or the apply thread)
// when the throttle may have cleared; the wake is posted to the strand.
void Session::WatchThrottle() {
  std::weak_ptr<Session> weak = shared_from_this();
  port_->WatchThrottle([weak] {
    if (auto self = weak.lock()) asio::post(self->strand_, [self] { self->OnThrottleWake(); });
  });
}

void Session::WaitForBudget() {
  if (budget_wait_) return;
  budget_wait_ = true;
  auto self = shared_from_this();
  budget_timer_.expires_after(o_.throttle_poll);
  budget_timer_.async_wait(asio::bind_executor(strand_, [self](const error_code& ec) {
    self->budget_wait_ = false;
    if (ec || self->state_ != State::kStreaming) return;
    // Next() retries the budget; frames it completes are handled as usual.
    if (self->Consume(error_code(), false, 0)) self->MaybeRead();
  }));
}

void Session::OnThrottleWake() {
  if (state_ != State::kStreaming || !throttled_) return;
  if (port_->Throttled()) {  // cleared and set again meanwhile, or only in part
    TellSenderIfThrottled();
    WatchThrottle();
    return;
  }
  throttled_ = false;
  if (told_throttle_) {
    told_throttle_ = false;
    FrameHeader h;
    h.mutable_throttle()->set_on(false);
    Send(h);
  }
  MaybeRead();
}

void Session::ArmKeepalive() {
  auto self = shared_from_this();
  keepalive_timer_.expires_after(o_.keepalive);
  keepalive_timer_.async_wait(asio::bind_executor(strand_, [self](const error_code& ec) {
    if (ec || self->state_ != State::kStreaming) return;
    if (!self->wrote_since_keepalive_ && !self->writing_) {
      FrameHeader h;
      h.mutable_ping()->set_id(++self->ping_id_);
      self->Send(h);
    }
    self->wrote_since_keepalive_ = false;
    self->ArmKeepalive();
  }));
}

// ---------------------------------------------------------------------------
// Writing

void Session::Send(const FrameHeader& header, const std::vector<uint8_t>& payload) {
  if (state_ >= State::kClosed) return;
  std::vector<uint8_t> bytes;
  Status s = stream::FrameEncoder(o_.max_header_bytes, o_.max_payload_bytes)
                 .Encode(header, payload.data(), payload.size(), &bytes);
  if (!s.ok()) {
    if (header.body_case() != FrameHeader::kError) Fail(s.WithContext("encoding a reply"));
    return;
  }
  queue_.push_back(std::move(bytes));
  DoWrite();
}

void Session::DoWrite() {
  if (writing_ || state_ == State::kClosed || state_ == State::kTls) return;
  if (state_ != State::kClosing && ack_wanted_ > ack_sent_) {
    // Coalesced ack: written ahead of the queue, carrying the newest seq.
    FrameHeader h;
    h.mutable_ack()->set_durable_seq(ack_wanted_);
    std::vector<uint8_t> bytes;
    if (stream::FrameEncoder().Encode(h, &bytes).ok()) queue_.push_front(std::move(bytes));
    ack_sent_ = ack_wanted_;
  }
  if (queue_.empty()) {
    if (state_ == State::kClosing) Linger();
    return;
  }
  write_buf_ = std::move(queue_.front());
  queue_.pop_front();
  writing_ = true;
  wrote_since_keepalive_ = true;
  const uint64_t gen = ++write_gen_;
  auto self = shared_from_this();
  write_timer_.expires_after(o_.write_timeout);
  write_timer_.async_wait(asio::bind_executor(strand_, [self, gen](const error_code& ec) {
    if (ec || gen != self->write_gen_ || !self->writing_) return;
    if (self->state_ < State::kClosing) {
      self->close_reason_ =
          Status(Errc::kAborted, "the peer did not read for " + Ms(self->o_.write_timeout));
    }
    self->HardClose();
  }));
  tls_->AsyncWrite(asio::buffer(write_buf_),
                   [self, gen](const error_code& ec, size_t) { self->OnWrite(gen, ec); });
}

void Session::OnWrite(uint64_t gen, const error_code& ec) {
  writing_ = false;
  if (gen == write_gen_) {
    ++write_gen_;
    write_timer_.cancel();
  }
  if (state_ == State::kClosed) return;
  if (ec) {
    if (state_ < State::kClosing) close_reason_ = Status(Errc::kIoError, "write: " + ec.message());
    HardClose();
    return;
  }
  DoWrite();
}

// ---------------------------------------------------------------------------
// Closing

void Session::Fail(const Status& s) {
  if (state_ >= State::kClosing) return;
  queue_.clear();
  FrameHeader h = stream::ErrorFrame(s);
  // A failed stream refuses until an operator resumes it: the sender is told
  // so, and stops instead of retrying (docs/formats/stream.md).
  if (port_ != nullptr && !port_->Failure().ok())
    h.mutable_error()->set_condition(proto::ERROR_CONDITION_STREAM_FAILED);
  if (state_ != State::kTls) Send(h);  // before BeginClose: Send refuses nothing while closing
  BeginClose(s);
}

void Session::Close(const Status& reason) {
  if (state_ >= State::kClosing) return;
  queue_.clear();
  BeginClose(reason);
}

void Session::BeginClose(const Status& reason) {
  close_reason_ = reason;
  state_ = State::kClosing;
  if (attached_) {
    port_->Detach(id_);
    attached_ = false;
  }
  budget_timer_.cancel();
  keepalive_timer_.cancel();
  auto self = shared_from_this();
  close_timer_.expires_after(o_.close_timeout);
  close_timer_.async_wait(asio::bind_executor(strand_, [self](const error_code& ec) {
    if (!ec) self->HardClose();
  }));
  DoWrite();  // flushes the error frame, then Linger()
}

// Every frame is written: send FIN after it and read (discarding) until the
// peer closes too, so our last frame is not lost to a reset from unread data.
void Session::Linger() {
  if (lingering_ || state_ != State::kClosing) return;
  lingering_ = true;
  error_code ignored;
  tls_->socket().shutdown(Tcp::socket::shutdown_send, ignored);
  DrainRead();
}

void Session::DrainRead() {
  if (reading_ || state_ != State::kClosing) return;
  reading_ = true;
  auto self = shared_from_this();
  tls_->AsyncReadSome(ReadBuffer(), [self](const error_code& ec, size_t n) { self->OnRead(ec, n); });
}

void Session::HardClose() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  if (attached_) {
    port_->Detach(id_);
    attached_ = false;
  }
  read_timer_.cancel();
  write_timer_.cancel();
  budget_timer_.cancel();
  keepalive_timer_.cancel();
  close_timer_.cancel();
  // The budget and the frame in progress go back now (the rest when the last
  // handler lets go of the session); not under a read that may still fill it.
  if (!reading_) decoder_.Reset();
  error_code ignored;
  tls_->socket().shutdown(Tcp::socket::shutdown_both, ignored);
  tls_->socket().close(ignored);
  Finish();
}

void Session::Finish() {
  if (on_closed_) {
    ClosedFn fn = std::move(on_closed_);
    on_closed_ = nullptr;
    fn(this, close_reason_);
  }
}

}  // namespace mt::daemon
