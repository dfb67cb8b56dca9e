#include "cslink/link_channel.h"

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "control/asio_util.h"

namespace mt::cslink {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;

namespace {

void CommonOptions(SSL_CTX* h) {
  uint64_t opts = SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 |
                  SSL_OP_NO_COMPRESSION;
#ifdef SSL_OP_NO_RENEGOTIATION
  opts |= SSL_OP_NO_RENEGOTIATION;
#endif
  SSL_CTX_set_options(h, opts);
  SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION);
}

std::string Endpoint(const tcp::socket& s) {
  error_code ec;
  const auto ep = s.remote_endpoint(ec);
  if (ec) return "?";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace

Result<std::unique_ptr<asio::ssl::context>> LinkServerContext(const daemon::TlsIdentity& id) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::sslv23_server);
  SSL_CTX* h = ctx->native_handle();
  CommonOptions(h);
  if (SSL_CTX_set_cipher_list(h, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1") != 1) {
    return Status(Errc::kInternal, "configuring the TLS context failed (OpenSSL)");
  }
  error_code ec;
  ctx->use_certificate_chain(asio::buffer(id.cert_pem), ec);
  if (!ec) ctx->use_private_key(asio::buffer(id.key_pem), asio::ssl::context::pem, ec);
  if (ec || SSL_CTX_check_private_key(h) != 1) {
    return Status(Errc::kCorruption, "the TLS identity does not load: " + ec.message());
  }
  return ctx;
}

Status ParseHostPort(const std::string& text, std::string* host, uint16_t* port) {
  *port = kDefaultCsPort;
  std::string h = text, p;
  if (!h.empty() && h[0] == '[') {
    const auto close = h.find(']');
    if (close == std::string::npos) return Status(Errc::kInvalidArgument, "'" + text + "': no ']'");
    if (close + 1 < h.size()) {
      if (h[close + 1] != ':') return Status(Errc::kInvalidArgument, "'" + text + "': not [host]:port");
      p = h.substr(close + 2);
    }
    h = h.substr(1, close - 1);
  } else if (std::count(h.begin(), h.end(), ':') == 1) {
    p = h.substr(h.find(':') + 1);
    h = h.substr(0, h.find(':'));
  }
  if (h.empty()) return Status(Errc::kInvalidArgument, "'" + text + "': no host");
  if (!p.empty() || text.back() == ':') {
    char* end = nullptr;
    const unsigned long v = std::strtoul(p.c_str(), &end, 10);
    if (p.empty() || *end != '\0' || v == 0 || v > 65535) {
      return Status(Errc::kInvalidArgument, "'" + text + "': the port must be 1..65535");
    }
    *port = static_cast<uint16_t>(v);
  }
  *host = h;
  return Status::Ok();
}

LinkChannel::LinkChannel(std::unique_ptr<asio::ssl::context> own_ctx, asio::ssl::context& ctx)
    : own_ctx_(std::move(own_ctx)), stream_(ioc_, ctx), read_buf_(64 * 1024) {}

LinkChannel::~LinkChannel() {
  error_code ignored;
  stream_.lowest_layer().close(ignored);
}

Status LinkChannel::RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                             const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      error_code ignored;
      stream_.lowest_layer().close(ignored);
      ioc_.restart();
      ioc_.poll();  // let the cancelled handlers run
      return Status(Errc::kBusy, what + ": timed out after " +
                                     std::to_string(timeout.count()) + " ms");
    }
    ioc_.restart();
    ioc_.run_one_for(deadline - now);
  }
  return Status::Ok();
}

Result<std::unique_ptr<LinkChannel>> LinkChannel::Dial(const std::string& host, uint16_t port,
                                                       const std::string& pinned,
                                                       std::chrono::milliseconds timeout) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::sslv23_client);
  CommonOptions(ctx->native_handle());
  asio::ssl::context& ref = *ctx;
  std::unique_ptr<LinkChannel> ch(new LinkChannel(std::move(ctx), ref));
  const std::string where = host + ":" + std::to_string(port);

  tcp::resolver resolver(ch->ioc_);
  bool resolved = false;
  error_code rec;
  tcp::resolver::results_type endpoints;
  resolver.async_resolve(host, std::to_string(port),
                         [&](const error_code& ec, tcp::resolver::results_type r) {
                           rec = ec;
                           endpoints = std::move(r);
                           resolved = true;
                         });
  MT_RETURN_IF_ERROR(ch->RunUntil([&] { return resolved; }, timeout, "resolving " + host));
  if (rec) return Status(Errc::kUnavailable, "cannot resolve '" + host + "': " + rec.message());

  bool connected = false;
  error_code cec;
  asio::async_connect(ch->stream_.lowest_layer(), endpoints,
                      [&](const error_code& ec, const tcp::endpoint&) {
                        cec = ec;
                        connected = true;
                      });
  MT_RETURN_IF_ERROR(ch->RunUntil([&] { return connected; }, timeout, "connecting to " + where));
  if (cec) return Status(Errc::kUnavailable, "cannot connect to " + where + ": " + cec.message());
  control::SetCloseOnExec(ch->stream_.lowest_layer());
  error_code ignored;
  ch->stream_.lowest_layer().set_option(tcp::no_delay(true), ignored);
  ch->peer_address_ = Endpoint(ch->stream_.next_layer());

  // Trust is the pinned fingerprint, not a CA: the certificate is self-signed.
  LinkChannel* self = ch.get();
  ch->stream_.set_verify_mode(asio::ssl::verify_peer);
  ch->stream_.set_verify_callback([self, pinned](bool, asio::ssl::verify_context& vc) {
    const auto fp = daemon::VerifiedLeafFingerprint(vc.native_handle());
    if (!fp) return true;
    if (fp->empty()) return false;
    self->peer_fingerprint_ = *fp;
    return pinned.empty() || self->peer_fingerprint_ == pinned;
  });
  bool shaken = false;
  error_code hec;
  ch->stream_.async_handshake(asio::ssl::stream_base::client, [&](const error_code& ec) {
    hec = ec;
    shaken = true;
  });
  MT_RETURN_IF_ERROR(ch->RunUntil([&] { return shaken; }, timeout, "TLS with " + where));
  if (hec) {
    if (!pinned.empty() && !ch->peer_fingerprint_.empty() && ch->peer_fingerprint_ != pinned) {
      return Status(Errc::kAuth, "the configuration server at " + where +
                                     " presents certificate fingerprint " + ch->peer_fingerprint_ +
                                     ", but " + pinned +
                                     " is pinned: refusing it (another server, or its identity "
                                     "was recreated: register again to pin the new one)");
    }
    return Status(Errc::kUnavailable, "TLS with " + where + " failed: " + hec.message());
  }
  ch->StartRead();
  return ch;
}

Result<std::unique_ptr<LinkChannel>> LinkChannel::Accept(int fd, asio::ssl::context& ctx,
                                                         std::chrono::milliseconds timeout) {
  std::unique_ptr<LinkChannel> ch(new LinkChannel(nullptr, ctx));
  error_code ec;
  ch->stream_.next_layer().assign(tcp::v6(), fd, ec);
  if (ec) ch->stream_.next_layer().assign(tcp::v4(), fd, ec);
  if (ec) return control::FromAsio(ec, "taking the accepted socket");
  ch->peer_address_ = Endpoint(ch->stream_.next_layer());
  bool shaken = false;
  error_code hec;
  ch->stream_.async_handshake(asio::ssl::stream_base::server, [&](const error_code& e) {
    hec = e;
    shaken = true;
  });
  MT_RETURN_IF_ERROR(
      ch->RunUntil([&] { return shaken; }, timeout, "TLS with " + ch->peer_address_));
  if (hec) return Status(Errc::kProtocol, "TLS with " + ch->peer_address_ + " failed: " + hec.message());
  ch->StartRead();
  return ch;
}

void LinkChannel::End(Status why) {
  if (!ended_.ok()) return;
  ended_ = std::move(why);
  error_code ignored;
  stream_.lowest_layer().close(ignored);
}

void LinkChannel::StartRead() {
  if (reading_ || !ended_.ok()) return;
  reading_ = true;
  stream_.async_read_some(asio::buffer(read_buf_), [this](const error_code& ec, size_t n) {
    reading_ = false;
    if (ec) {
      const Status eof = decoder_.Eof();
      End(ec == asio::error::eof || ec == asio::ssl::error::stream_truncated
              ? (eof.ok() ? Status(Errc::kAborted, "the peer closed the link") : eof)
              : control::FromAsio(ec, "link read"));
      ioc_.stop();
      return;
    }
    const Status put = decoder_.Put(read_buf_.data(), n);
    if (!put.ok()) {
      End(put);
      ioc_.stop();
      return;
    }
    bool got = false;
    while (auto body = decoder_.Next()) {
      inbox_.push_back(std::move(*body));
      got = true;
    }
    if (got) ioc_.stop();
    StartRead();
  });
}

void LinkChannel::StartWrite() {
  if (writing_ || outbox_.empty() || !ended_.ok()) return;
  writing_ = true;
  asio::async_write(stream_, asio::buffer(outbox_.front()), [this](const error_code& ec, size_t) {
    writing_ = false;
    if (ec) {
      End(control::FromAsio(ec, "link write"));
      ioc_.stop();
      return;
    }
    outbox_.pop_front();
    StartWrite();
  });
}

Status LinkChannel::Send(const google::protobuf::MessageLite& message) {
  if (!ended_.ok()) return Status(Errc::kAborted, "the link has ended: " + ended_.ToString());
  MT_ASSIGN_OR_RETURN(std::string frame, control::EncodeControlFrame(message));
  if (frame.size() - control::kFrameHeaderBytes > kMaxLinkMessageBytes) {
    return Status(Errc::kInvalidArgument, "a link message of " + std::to_string(frame.size()) +
                                              " bytes is over the limit");
  }
  outbox_.push_back(std::move(frame));
  StartWrite();
  return Status::Ok();
}

Status LinkChannel::SendRaw(std::string bytes) {
  if (!ended_.ok()) return Status(Errc::kAborted, "the link has ended: " + ended_.ToString());
  outbox_.push_back(std::move(bytes));
  StartWrite();
  return Status::Ok();
}

Result<std::vector<std::string>> LinkChannel::Poll(std::chrono::milliseconds wait) {
  if (inbox_.empty() && ended_.ok()) {
    ioc_.restart();
    ioc_.run_for(wait);
  } else {
    ioc_.restart();
    ioc_.poll();
  }
  if (inbox_.empty() && !ended_.ok()) return ended_;
  std::vector<std::string> out(std::make_move_iterator(inbox_.begin()),
                               std::make_move_iterator(inbox_.end()));
  inbox_.clear();
  return out;
}

Result<std::string> LinkChannel::Receive(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (inbox_.empty()) {
    if (!ended_.ok()) return ended_;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return Status(Errc::kBusy, "no message from the peer: timed out");
    ioc_.restart();
    ioc_.run_for(deadline - now);
  }
  std::string body = std::move(inbox_.front());
  inbox_.pop_front();
  return body;
}

void LinkChannel::Close(std::chrono::milliseconds timeout) {
  if (ended_.ok()) {
    (void)RunUntil([this] { return outbox_.empty() || !ended_.ok(); }, timeout, "flushing the link");
  }
  End(Status(Errc::kAborted, "closed"));
  ioc_.restart();
  ioc_.poll();
}

void LinkChannel::Post(std::function<void()> fn) {
  asio::post(ioc_, [this, fn = std::move(fn)] {
    fn();
    ioc_.stop();
  });
}

}  // namespace mt::cslink
