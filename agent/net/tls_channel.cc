#include "net/tls_channel.h"

#include <openssl/bio.h>
#include <openssl/err.h>

#include <algorithm>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <climits>
#include <cstring>
#include <utility>

namespace mt::net {

namespace asio = boost::asio;
using ErrorCode = TlsChannel::ErrorCode;

namespace {

// OpenSSL writes at most this much per SSL_write call here (int lengths).
constexpr size_t kMaxWriteCall = size_t{1} << 30;
// A TLS record's ciphertext: 16 KiB of plaintext plus header, tag, padding.
constexpr size_t kRecordOverhead = 64;
constexpr size_t kRecordPlaintext = 16384;
// Ciphertext to send is kept in blocks of at most kOutBlock (sent together
// with gathering sendmsg calls): sizes shim::BlockCache keeps, so a bulk sender reuses
// the same memory instead of faulting in fresh pages, and nothing is copied
// as the queue grows. A write smaller than a block gets a block of its size
// (at least kSmallBlock).
constexpr size_t kOutBlock = 1u << 20;
constexpr size_t kSmallBlock = 16 * 1024;

TlsChannel* ChannelOf(BIO* bio) { return static_cast<TlsChannel*>(BIO_get_data(bio)); }

}  // namespace

// The BIO OpenSSL writes ciphertext to (out_) and reads it from (the socket,
// straight into OpenSSL's read buffer: with read-ahead on, one recv() fills
// as much of it as the socket holds).
int TlsChannel::BioWrite(BIO* bio, const char* data, int len) {
  BIO_clear_retry_flags(bio);
  if (len <= 0) return 0;
  TlsChannel* ch = ChannelOf(bio);
  size_t left = static_cast<size_t>(len);
  while (left > 0) {
    if (ch->out_.empty() || ch->out_.back().size() == ch->out_.back().capacity()) {
      ch->out_.emplace_back();
      ch->out_.back().reserve(std::clamp(ch->write_hint_, kSmallBlock, kOutBlock));
    }
    Bytes& b = ch->out_.back();
    const size_t n = std::min(left, b.capacity() - b.size());
    const size_t at = b.size();
    b.resize(at + n);  // not zero-filled
    std::memcpy(b.data() + at, data, n);
    data += n;
    left -= n;
  }
  ch->encrypted_ += static_cast<size_t>(len);
  return len;
}

int TlsChannel::BioRead(BIO* bio, char* data, int len) {
  BIO_clear_retry_flags(bio);
  if (len <= 0) return 0;
  TlsChannel* ch = ChannelOf(bio);
  if (ch->peer_eof_) return 0;
  // The socket is non-blocking (AsyncHandshake): nothing there is would_block.
  ErrorCode ec;
  const size_t n = ch->socket_.read_some(asio::buffer(data, static_cast<size_t>(len)), ec);
  if (!ec) {
    ++ch->receive_calls_;
    return static_cast<int>(n);
  }
  if (ec == asio::error::eof) {
    ch->peer_eof_ = true;
    return 0;
  }
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    BIO_set_retry_read(bio);
  } else {
    ch->receive_error_ = ec;
  }
  return -1;
}

long TlsChannel::BioCtrl(BIO* bio, int cmd, long, void*) {  // NOLINT
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;  // Flush() sends; nothing is buffered inside the BIO
    case BIO_CTRL_EOF:
      return ChannelOf(bio)->peer_eof_ ? 1 : 0;
    default:
      return 0;
  }
}

BIO_METHOD* TlsChannel::Method() {
  // Created once, never freed (process lifetime), as OpenSSL's own methods.
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mt-tls-channel");
    BIO_meth_set_write(m, &TlsChannel::BioWrite);
    BIO_meth_set_read(m, &TlsChannel::BioRead);
    BIO_meth_set_ctrl(m, &TlsChannel::BioCtrl);
    return m;
  }();
  return method;
}

std::shared_ptr<TlsChannel> TlsChannel::Create(asio::io_context& ioc, Executor handlers,
                                               asio::ssl::context& ssl) {
  return std::shared_ptr<TlsChannel>(new TlsChannel(ioc, std::move(handlers), ssl));
}

TlsChannel::TlsChannel(asio::io_context& ioc, Executor handlers, asio::ssl::context& ssl)
    : socket_(ioc), handlers_(std::move(handlers)), ssl_(SSL_new(ssl.native_handle())) {
  if (ssl_ == nullptr) return;  // AsyncHandshake reports it
  BIO* bio = BIO_new(Method());
  BIO_set_data(bio, this);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl_, bio, bio);  // one BIO both ways; the SSL owns it
  // Records are read ahead, as many as the read buffer holds
  // (SetReceiveChunk).
  SSL_set_read_ahead(ssl_, 1);
  SetReceiveChunk(kDefaultReceiveChunk);
  SSL_set_app_data(ssl_, this);
}

TlsChannel::~TlsChannel() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

void TlsChannel::SetVerify(VerifyFn fn) {
  verify_ = std::move(fn);
  if (ssl_ == nullptr) return;
  SSL_set_verify(ssl_, SSL_VERIFY_PEER, [](int preverified, X509_STORE_CTX* store) -> int {
    SSL* ssl = static_cast<SSL*>(
        X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    auto* ch = ssl ? static_cast<TlsChannel*>(SSL_get_app_data(ssl)) : nullptr;
    if (ch == nullptr || !ch->verify_) return 0;
    return ch->verify_(preverified != 0, store) ? 1 : 0;
  });
}

void TlsChannel::SetReceiveChunk(size_t bytes) {
  if (ssl_ == nullptr) return;
  // OpenSSL's read buffer, taken at this size when next needed. A large one
  // is kept for the connection's life: given back whenever it is empty
  // (SSL_MODE_RELEASE_BUFFERS), it was allocated and page-faulted in afresh
  // for nearly every receive under load. The small default is given back.
  SSL_set_default_read_buffer_len(ssl_, bytes);
  if (bytes > kRecordPlaintext + kRecordOverhead) {
    SSL_clear_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
  } else {
    SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
  }
}

size_t TlsChannel::buffer_bytes() const {
  size_t n = 0;
  for (const Bytes& b : out_) n += b.capacity();
  for (const Bytes& b : sending_) n += b.capacity();
  return n;
}

ErrorCode TlsChannel::LastSslError(int ssl_error) const {
  // A TCP EOF in the middle of the stream (OpenSSL 3 reports it as
  // SSL_R_UNEXPECTED_EOF_WHILE_READING, 1.1 as SSL_ERROR_SYSCALL).
  if (peer_eof_ && (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_SSL)) {
    ERR_clear_error();
    return asio::ssl::error::stream_truncated;
  }
  if (ssl_error == SSL_ERROR_SYSCALL && receive_error_) {
    ERR_clear_error();
    return receive_error_;
  }
  const unsigned long e = ERR_get_error();  // NOLINT: OpenSSL's type
  ERR_clear_error();
  if (e != 0) return ErrorCode(static_cast<int>(e), asio::error::get_ssl_category());
  return asio::ssl::error::unspecified_system_error;
}

// ---------------------------------------------------------------------------
// Handshake

void TlsChannel::AsyncHandshake(bool server, DoneHandler done) {
  if (ssl_ == nullptr) {
    asio::post(handlers_, [done] { done(asio::error::no_memory); });
    return;
  }
  ErrorCode ignored;
  socket_.non_blocking(true, ignored);
  if (server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
  handshake_done_ = std::move(done);
  StepHandshake();
}

void TlsChannel::StepHandshake() {
  auto finish = [this](const ErrorCode& ec) {
    DoneHandler done = std::move(handshake_done_);
    handshake_done_ = nullptr;
    // Our last flight (or the alert) goes out before the handler runs.
    Flush([done, ec](const ErrorCode& sent) { done(ec ? ec : sent); });
  };
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    finish(ErrorCode());
    return;
  }
  const int e = SSL_get_error(ssl_, r);
  if (e != SSL_ERROR_WANT_READ) {
    finish(LastSslError(e));
    return;
  }
  Flush();  // our flight, then wait for the peer's
  auto self = shared_from_this();
  socket_.async_wait(asio::ip::tcp::socket::wait_read,
                     asio::bind_executor(handlers_, [self](const ErrorCode& wec) {
                       if (!self->handshake_done_) return;
                       if (wec) {
                         DoneHandler done = std::move(self->handshake_done_);
                         self->handshake_done_ = nullptr;
                         done(wec);
                         return;
                       }
                       self->StepHandshake();
                     }));
}

// ---------------------------------------------------------------------------
// Reading

size_t TlsChannel::ReadSome(asio::mutable_buffer into, ErrorCode& ec) {
  ec = ErrorCode();
  if (into.size() == 0) return 0;
  const int want = static_cast<int>(std::min<size_t>(into.size(), INT_MAX));
  ERR_clear_error();
  const int r = SSL_read(ssl_, into.data(), want);
  const int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
  if (!out_.empty()) Flush();  // a post-handshake answer (KeyUpdate, ...)
  if (r > 0) return static_cast<size_t>(r);
  if (e == SSL_ERROR_ZERO_RETURN) {
    ec = asio::error::eof;
  } else if (e == SSL_ERROR_WANT_READ) {
    ec = asio::error::would_block;  // the socket is empty (BioRead)
  } else {
    ec = LastSslError(e);
  }
  return 0;
}

void TlsChannel::AsyncReadSome(asio::mutable_buffer into, IoHandler done) {
  ErrorCode ec;
  const size_t n = ReadSome(into, ec);
  if (ec != asio::error::would_block && ec != asio::error::try_again) {
    asio::post(handlers_, [done = std::move(done), ec, n] { done(ec, n); });
    return;
  }
  auto self = shared_from_this();
  socket_.async_wait(asio::ip::tcp::socket::wait_read,
                     asio::bind_executor(handlers_, [self, into, done = std::move(done)](
                                                        const ErrorCode& wec) mutable {
                       if (wec) {
                         done(wec, 0);
                         return;
                       }
                       ErrorCode rec;
                       const size_t m = self->ReadSome(into, rec);
                       if (rec == asio::error::would_block || rec == asio::error::try_again) {
                         self->AsyncReadSome(into, std::move(done));  // woken without a record
                         return;
                       }
                       done(rec, m);
                     }));
}

// ---------------------------------------------------------------------------
// Writing

void TlsChannel::AsyncWrite(asio::const_buffer from, IoHandler done) {
  AsyncWrite(std::vector<asio::const_buffer>{from}, std::move(done));
}

bool TlsChannel::Encrypt(const uint8_t* p, size_t n, ErrorCode& ec) {
  while (n > 0) {
    const int chunk = static_cast<int>(std::min(n, kMaxWriteCall));
    ERR_clear_error();
    const int r = SSL_write(ssl_, p, chunk);
    if (r <= 0) {
      ec = LastSslError(SSL_get_error(ssl_, r));
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

void TlsChannel::AsyncWrite(const std::vector<asio::const_buffer>& pieces, IoHandler done) {
  size_t total = 0;
  for (const auto& b : pieces) total += b.size();
  ErrorCode ec = send_error_;
  if (!ec) {
    write_hint_ = total + (total / kRecordPlaintext + pieces.size()) * kRecordOverhead;
    for (const auto& b : pieces)
      if (!Encrypt(static_cast<const uint8_t*>(b.data()), b.size(), ec)) break;
    write_hint_ = 0;
  }
  if (ec) {  // the connection is unusable now: nothing more is sent
    send_error_ = ec;
    asio::post(handlers_, [done = std::move(done), ec] { done(ec, 0); });
    return;
  }
  Flush([done = std::move(done), total](const ErrorCode& e) { done(e, e ? 0 : total); });
}

void TlsChannel::Flush(DoneHandler then) {
  if (then) {
    if (send_error_) {
      asio::post(handlers_, [then = std::move(then), ec = send_error_] { then(ec); });
      return;
    }
    if (sent_ == encrypted_) {
      asio::post(handlers_, [then = std::move(then)] { then(ErrorCode()); });
      return;
    }
    on_sent_.push_back(Waiter{encrypted_, std::move(then)});
  }
  if (send_in_flight_ || out_.empty() || send_error_) return;
  std::swap(out_, sending_);
  send_in_flight_ = true;
  ++sends_;
  std::vector<asio::const_buffer> bufs;
  bufs.reserve(sending_.size());
  for (const Bytes& b : sending_) bufs.push_back(asio::buffer(b));
  auto self = shared_from_this();
  asio::async_write(socket_, bufs,
                    asio::bind_executor(handlers_, [self](const ErrorCode& ec, size_t) {
                      self->OnSent(ec);
                    }));
}

void TlsChannel::OnSent(const ErrorCode& ec) {
  send_in_flight_ = false;
  if (ec) {
    send_error_ = ec;
  } else {
    for (const Bytes& b : sending_) sent_ += b.size();
  }
  sending_.clear();  // the blocks go back (to shim::BlockCache when large)
  if (!send_error_ && !out_.empty()) Flush();  // before the handlers: the socket stays busy
  // Handlers may write more (and call Flush): take the ready ones first.
  std::vector<DoneHandler> ready;
  while (!on_sent_.empty() && (send_error_ || on_sent_.front().until <= sent_)) {
    ready.push_back(std::move(on_sent_.front().fn));
    on_sent_.pop_front();
  }
  for (auto& fn : ready) fn(send_error_);
}

}  // namespace mt::net
