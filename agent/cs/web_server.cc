#include "cs/web_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstring>

#include "cslink/link_channel.h"

namespace mt::cs {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct WebServer::Impl {
  std::unique_ptr<asio::ssl::context> ssl;
};

namespace {

constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
constexpr auto kRequestTimeout = std::chrono::seconds(30);

// Runs one asynchronous operation of `io` to its end: the stream's expiry
// (tcp_stream::expires_after) bounds it. Returns its error.
template <typename Start>
beast::error_code RunOne(asio::io_context& io, Start start) {
  beast::error_code result = asio::error::would_block;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  io.restart();
  io.run();
  return result;
}

std::string Peer(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  tcp::endpoint ep;
  ep.resize(len);
  std::memcpy(ep.data(), &ss, len);
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace

Result<std::unique_ptr<WebServer>> WebServer::Start(WebServerOptions options, WebApi& api) {
  std::unique_ptr<WebServer> s(new WebServer(std::move(options), api));
  s->impl_ = std::make_unique<Impl>();
  MT_ASSIGN_OR_RETURN(s->identity_, daemon::LoadOrCreateTlsIdentity(shim::PosixFileSystem(), s->o_.tls_dir, "mt-cs"));
  MT_ASSIGN_OR_RETURN(s->impl_->ssl, cslink::LinkServerContext(s->identity_));
  MT_ASSIGN_OR_RETURN(s->listener_, TcpListener::Start(s->o_.listen_host, s->o_.port, kMaxConnections,
                                                       [p = s.get()](int fd) { p->Serve(fd); }));
  s->port_ = s->listener_->port();
  return s;
}

WebServer::WebServer(WebServerOptions options, WebApi& api) : o_(std::move(options)), api_(api) {}

WebServer::~WebServer() { Stop(); }

void WebServer::Stop() {
  stop_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, close] : closers_) close();
  }
  if (listener_) listener_->Stop();
}

void WebServer::Serve(int fd) {
  const std::string remote = Peer(fd);
  asio::io_context io;
  beast::ssl_stream<beast::tcp_stream> stream(io, *impl_->ssl);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  beast::error_code ec;
  beast::get_lowest_layer(stream).socket().assign(ss.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
  if (ec) {
    ::close(fd);
    return;
  }
  uint64_t me;
  {
    std::lock_guard<std::mutex> lock(mu_);
    me = next_connection_++;
    closers_[me] = [&io, &stream] {
      asio::post(io, [&stream] { beast::get_lowest_layer(stream).cancel(); });
    };
  }
  auto& lowest = beast::get_lowest_layer(stream);
  // Stop() may have run its closers before this one was registered.
  if (stop_) ec = asio::error::operation_aborted;
  lowest.expires_after(kHandshakeTimeout);
  if (!ec) ec = RunOne(io, [&](auto h) { stream.async_handshake(asio::ssl::stream_base::server, h); });
  beast::flat_buffer buffer;
  while (!ec && !stop_) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(64 * 1024);
    lowest.expires_after(kRequestTimeout);
    ec = RunOne(io, [&](auto h) { http::async_read(stream, buffer, parser, h); });
    if (ec == http::error::body_limit || ec == http::error::header_limit) {
      // Said once, then the connection ends (the rest of the request is unread).
      http::response<http::string_body> res{http::status::payload_too_large, 11};
      res.set(http::field::content_type, "application/json");
      res.body() = ec == http::error::body_limit ? "{\"error\":\"the body is over 64 KiB\"}"
                                                 : "{\"error\":\"the headers are over 16 KiB\"}";
      res.keep_alive(false);
      res.prepare_payload();
      lowest.expires_after(kRequestTimeout);
      (void)RunOne(io, [&](auto h) { http::async_write(stream, res, h); });
      // A lingering close: what the client still sends (at most 1 MiB, for
      // 1 s) is read and dropped, so that closing with it unread does not
      // reset the connection before the client has read the answer.
      lowest.expires_after(std::chrono::seconds(1));
      char scratch[16 * 1024];
      for (int i = 0; i < 64; ++i) {
        if (RunOne(io, [&](auto h) { stream.async_read_some(asio::buffer(scratch), h); })) break;
      }
      break;
    }
    if (ec) break;
    const auto& req = parser.get();
    WebRequest wr;
    wr.method = std::string(req.method_string());
    wr.target = std::string(req.target());
    for (const auto& f : req) {
      std::string name(f.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      wr.headers[name] = std::string(f.value());
    }
    wr.body = req.body();
    wr.remote = remote;
    const WebResponse out = api_.Handle(wr);
    http::response<http::string_body> res{static_cast<http::status>(out.status), req.version()};
    res.set(http::field::server, "mt-cs");
    res.set(http::field::content_type, out.content_type);
    res.set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("X-Frame-Options", "DENY");
    res.set("Referrer-Policy", "no-referrer");
    res.set("Strict-Transport-Security", "max-age=31536000");
    res.set(http::field::cache_control, "no-store");
    for (const auto& [name, value] : out.headers) res.insert(name, value);
    res.keep_alive(req.keep_alive());
    if (req.method() != http::verb::head) res.body() = out.body;
    res.prepare_payload();
    lowest.expires_after(kRequestTimeout);
    ec = RunOne(io, [&](auto h) { http::async_write(stream, res, h); });
    if (!res.keep_alive()) break;
  }
  lowest.expires_after(std::chrono::seconds(2));
  (void)RunOne(io, [&](auto h) { stream.async_shutdown(h); });
  {
    std::lock_guard<std::mutex> lock(mu_);
    closers_.erase(me);
  }
  beast::error_code ignored;
  lowest.socket().close(ignored);
}

}  // namespace mt::cs
