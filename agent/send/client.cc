#include "send/client.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/connect.hpp>

#include "stream/auth.h"
#include "stream/messages.h"
#include "config/tls_identity.h"

namespace mt::send {

namespace asio = boost::asio;
using boost::system::error_code;
using stream::Frame;
using stream::FrameHeader;

namespace {

// Codes worth retrying (within --retry-for): the stream is busy, paused
// for a moment (export, vsnap create) or the agent is starting or stopping
// (kUnavailable), the receiver hit an I/O error or a full retention volume
// (it resumes by itself once there is room). A refusal marked STREAM_FAILED
// is never retried, whatever its code (Refusal).
bool Transient(Errc c) {
  return c == Errc::kBusy || c == Errc::kAborted || c == Errc::kIoError || c == Errc::kNoSpace ||
         c == Errc::kUnavailable;
}

// The receiver's error frame as a close reason.
CloseReason Refusal(const proto::Error& e) {
  const Status s = stream::StatusFromError(e);
  if (e.condition() == proto::ERROR_CONDITION_STREAM_FAILED) {
    return {Status(s.code(), "the receiver refused: " + s.ToString() +
                                 " (the stream has failed on the master target; retrying "
                                 "cannot help until it is repaired and resumed there)"),
            true};
  }
  return {Status(s.code(), "the receiver refused: " + s.ToString()), !Transient(s.code())};
}

}  // namespace

std::unique_ptr<asio::ssl::context> MakeClientContext() {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::sslv23_client);
  SSL_CTX* h = ctx->native_handle();
  SSL_CTX_set_options(h, SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 |
                             SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION);
  return ctx;
}

Connection::Connection(asio::io_context& ioc, asio::ssl::context& ssl, ConnectOptions options,
                       Callbacks callbacks)
    : tls_(net::TlsChannel::Create(ioc, ioc.get_executor(), ssl)),
      resolver_(ioc),
      timer_(ioc),
      keepalive_(ioc),
      o_(std::move(options)),
      cb_(std::move(callbacks)),
      read_buf_(256u << 10) {}

Connection::~Connection() = default;

void Connection::ArmTimer(std::chrono::milliseconds d, const char* what) {
  const uint64_t gen = ++timer_gen_;
  std::weak_ptr<Connection> weak = shared_from_this();
  const std::string msg = std::string(what) + " within " + std::to_string(d.count()) + " ms";
  timer_.expires_after(d);
  timer_.async_wait([weak, gen, msg](const error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || gen != self->timer_gen_) return;
    if (self->state_ == State::kClosing) {
      self->Fail({Status(Errc::kAborted, "closed by the sender"), false});
      return;
    }
    self->Fail({Status(Errc::kAborted, "no answer from the receiver: " + msg), false});
  });
}

void Connection::Start() {
  auto self = shared_from_this();
  ArmTimer(o_.connect_timeout, "connect and handshake");
  const std::string where = o_.host + ":" + std::to_string(o_.port);
  resolver_.async_resolve(
      o_.host, std::to_string(o_.port),
      [self, where](const error_code& ec, asio::ip::tcp::resolver::results_type results) {
        if (self->state_ != State::kConnecting) return;
        if (ec) {
          self->Fail({Status(Errc::kNotFound, "cannot resolve " + where + ": " + ec.message()), false});
          return;
        }
        asio::async_connect(self->tls_->socket(), results,
                            [self, where](const error_code& e, const asio::ip::tcp::endpoint&) {
                              if (self->state_ != State::kConnecting) return;
                              if (e) {
                                self->Fail({Status(Errc::kUnavailable,
                                                   "cannot connect to " + where + ": " + e.message()),
                                            false});
                                return;
                              }
                              self->OnConnected();
                            });
      });
}

void Connection::OnConnected() {
  error_code ignored;
  tls_->socket().set_option(asio::ip::tcp::no_delay(true), ignored);
  std::weak_ptr<Connection> weak = shared_from_this();
  // Trust is the pinned fingerprint, not a CA: the certificate is self-signed.
  tls_->SetVerify([weak](bool, X509_STORE_CTX* store) {
    auto self = weak.lock();
    if (!self) return false;
    const auto fp = daemon::VerifiedLeafFingerprint(store);
    if (!fp) return true;
    if (fp->empty()) return false;
    self->seen_fingerprint_ = *fp;
    return self->seen_fingerprint_ == self->o_.fingerprint;
  });
  auto self = shared_from_this();
  tls_->AsyncHandshake(false, [self](const error_code& ec) { self->OnHandshake(ec); });
}

void Connection::OnHandshake(const error_code& ec) {
  if (state_ != State::kConnecting) return;
  if (ec) {
    if (!seen_fingerprint_.empty() && seen_fingerprint_ != o_.fingerprint) {
      Fail({Status(Errc::kAuth, "the receiver's certificate fingerprint is " + seen_fingerprint_ +
                                    ", but --fingerprint pins " + o_.fingerprint +
                                    ": refusing to connect (another server, or its identity was "
                                    "recreated)"),
            true});
    } else {
      Fail({Status(Errc::kUnavailable, "TLS handshake with " + o_.host + ":" +
                                           std::to_string(o_.port) + " failed: " + ec.message()),
            false});
    }
    return;
  }
  state_ = State::kHello;
  FrameHeader h;
  proto::Hello* hello = h.mutable_hello();
  hello->set_min_version(stream::kMinProtocolVersion);
  hello->set_max_version(stream::kMaxProtocolVersion);
  hello->set_stream_name(o_.stream);
  hello->set_sender_id(o_.sender_id);
  Status s = Write(h, {});
  if (!s.ok()) {
    Fail({s, true});
    return;
  }
  Read();
}

void Connection::Read() {
  if (state_ == State::kClosed) return;
  if (state_ == State::kStreaming) ArmTimer(o_.idle_timeout, "a frame");
  auto self = shared_from_this();
  tls_->AsyncReadSome(asio::buffer(read_buf_), [self](const error_code& ec, size_t n) {
    self->OnRead(ec, n);
  });
}

void Connection::OnRead(const error_code& ec, size_t n) {
  if (state_ == State::kClosed) return;
  if (ec) {
    if (state_ == State::kClosing) {
      Fail({Status(Errc::kAborted, "closed by the sender"), false});
    } else {
      Fail({Status(Errc::kUnavailable, "the receiver closed the connection (" + ec.message() + ")"),
            false});
    }
    return;
  }
  size_t off = 0;
  while (off < n || decoder_.buffered_bytes() > 0) {
    off += decoder_.Put(read_buf_.data() + off, n - off);
    bool any = false;
    for (;;) {
      Frame f;
      Result<bool> next = decoder_.Next(&f);
      if (!next.ok()) {
        Fail({next.status().WithContext("from the receiver"), true});
        return;
      }
      if (!*next) break;
      any = true;
      if (f.type() == FrameHeader::kError) {
        Fail(Refusal(f.header.error()));
        return;
      }
      Status s = OnFrame(std::move(f));
      if (state_ == State::kClosed) return;
      if (!s.ok()) {
        Fail({s, !Transient(s.code())});
        return;
      }
    }
    if (off >= n || !any) break;
  }
  Read();
}

Status Connection::OnFrame(Frame&& f) {
  switch (state_) {
    case State::kHello: {
      if (f.type() != FrameHeader::kAuthChallenge)
        return Status(Errc::kProtocol, std::string("expected auth-challenge, got ") +
                                           stream::FrameTypeName(f.type()));
      MT_ASSIGN_OR_RETURN(proto::AuthResponse r,
                          stream::AnswerChallenge(o_.key, f.header.auth_challenge(), o_.stream));
      FrameHeader h;
      *h.mutable_auth_response() = r;
      MT_RETURN_IF_ERROR(Write(h, {}));
      state_ = State::kAuth;
      return Status::Ok();
    }
    case State::kAuth:
      if (f.type() != FrameHeader::kWelcome)
        return Status(Errc::kProtocol,
                      std::string("expected welcome, got ") + stream::FrameTypeName(f.type()));
      state_ = State::kStreaming;
      ArmKeepalive();
      if (cb_.on_welcome) cb_.on_welcome(f.header.welcome());
      return Status::Ok();
    case State::kStreaming:
    case State::kClosing:
      if (f.type() == FrameHeader::kPing) {
        if (state_ == State::kClosing) return Status::Ok();
        FrameHeader h;
        h.mutable_pong()->set_id(f.header.ping().id());
        return Send(h);
      }
      if (f.type() == FrameHeader::kPong) return Status::Ok();
      if (cb_.on_frame) cb_.on_frame(std::move(f));
      return Status::Ok();
    default:
      return Status::Ok();
  }
}

Status Connection::Send(const FrameHeader& header, const std::vector<stream::ConstSlice>& payload) {
  if (state_ != State::kStreaming) return Status(Errc::kAborted, "the connection is not open");
  return Write(header, payload);
}

Status Connection::Write(const FrameHeader& header, const std::vector<stream::ConstSlice>& payload) {
  // Frames up to this size are gathered into one buffer (one TLS record);
  // larger payloads are encrypted straight from the caller's slices.
  constexpr size_t kGatherBytes = 64 * 1024;
  prefix_.clear();
  MT_RETURN_IF_ERROR(stream::FrameEncoder().EncodePrefix(header, payload, &prefix_));
  uint64_t total = prefix_.size();
  for (const auto& s : payload) total += s.size;
  std::vector<asio::const_buffer> pieces;
  if (total <= kGatherBytes) {
    small_.assign(prefix_.begin(), prefix_.end());
    for (const auto& s : payload) small_.insert(small_.end(), s.data, s.data + s.size);
    pieces.push_back(asio::buffer(small_));
  } else {
    pieces.reserve(payload.size() + 1);
    pieces.push_back(asio::buffer(prefix_));
    for (const auto& s : payload)
      if (s.size > 0) pieces.push_back(asio::buffer(s.data, s.size));
  }
  queued_bytes_ += total;
  ++writes_in_flight_;
  wrote_ = true;
  auto self = shared_from_this();
  // Encrypted now: the slices may be reused as soon as this returns.
  tls_->AsyncWrite(pieces, [self, total](const error_code& ec, size_t) { self->OnWritten(ec, total); });
  return Status::Ok();
}

void Connection::OnWritten(const error_code& ec, uint64_t bytes) {
  --writes_in_flight_;
  if (state_ == State::kClosed) return;
  queued_bytes_ -= std::min(queued_bytes_, bytes);
  if (ec) {
    Fail({Status(Errc::kUnavailable, "write to the receiver failed: " + ec.message()), false});
    return;
  }
  if (state_ == State::kClosing) {
    if (writes_in_flight_ == 0) SendFin();
  } else if (state_ == State::kStreaming && cb_.on_sent) {
    cb_.on_sent();
  }
}

void Connection::SendFin() {
  error_code ignored;  // FIN after our last frame; read until the receiver closes
  tls_->socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  ArmTimer(std::chrono::milliseconds(2000), "close");
}

void Connection::ArmKeepalive() {
  std::weak_ptr<Connection> weak = shared_from_this();
  keepalive_.expires_after(o_.keepalive);
  keepalive_.async_wait([weak](const error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->state_ != State::kStreaming) return;
    if (!self->wrote_ && self->writes_in_flight_ == 0) {
      FrameHeader h;
      h.mutable_ping()->set_id(1);
      (void)self->Send(h);
    }
    self->wrote_ = false;
    self->ArmKeepalive();
  });
}

void Connection::Close() {
  if (state_ == State::kClosed || state_ == State::kClosing) return;
  if (state_ != State::kStreaming) {
    Fail({Status(Errc::kAborted, "closed by the sender"), false});
    return;
  }
  state_ = State::kClosing;
  keepalive_.cancel();
  if (writes_in_flight_ == 0) {
    SendFin();
  }
}

void Connection::Fail(CloseReason reason) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  ++timer_gen_;
  timer_.cancel();
  keepalive_.cancel();
  resolver_.cancel();
  error_code ignored;
  tls_->socket().close(ignored);
  queued_bytes_ = 0;
  if (cb_.on_closed) {
    auto fn = std::move(cb_.on_closed);
    cb_.on_closed = nullptr;
    fn(reason);
  }
}

}  // namespace mt::send
