// WebServer: HTTPS for mt-cs's dashboard (web_api.h holds what it serves).
// HTTP/1.1 with keep-alive over TLS 1.2+ (the same OpenSSL context settings
// as the agent links), a thread per connection (at most kMaxConnections),
// Boost.Beast for the HTTP parsing. Limits: request headers 16 KiB, body
// 64 KiB, TLS handshake 10 s, a request 30 s, an idle connection 30 s. Every
// response carries the security headers (CSP 'self' only, nosniff, no
// framing, HSTS, no-store for the API).
// Its certificate: <tls_dir>/{key,cert}.pem, self-signed at first start
// (tls_identity.h); an operator may put a CA-issued pair there instead.
// Thread safety: Start/Stop from one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "config/tls_identity.h"
#include "cs/tcp_listener.h"
#include "cs/web_api.h"
#include "mt/shim/status.h"

namespace mt::cs {

struct WebServerOptions {
  std::string listen_host = "0.0.0.0";
  uint16_t port = 8443;  // 0: any free port (tests; see port())
  std::string tls_dir;
};

class WebServer {
 public:
  static constexpr size_t kMaxConnections = 64;
  static Result<std::unique_ptr<WebServer>> Start(WebServerOptions options, WebApi& api);
  ~WebServer();  // Stop()
  // Stops accepting, ends the open connections and joins their threads.
  void Stop();
  uint16_t port() const { return port_; }
  const std::string& fingerprint() const { return identity_.fingerprint; }

 private:
  WebServer(WebServerOptions options, WebApi& api);
  void Serve(int fd);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  WebServerOptions o_;
  WebApi& api_;
  daemon::TlsIdentity identity_;
  uint16_t port_ = 0;
  std::unique_ptr<TcpListener> listener_;
  // How to end each open connection now (Stop): posts a close to its I/O.
  std::mutex mu_;
  uint64_t next_connection_ = 0;                         // guarded by mu_
  std::map<uint64_t, std::function<void()>> closers_;    // guarded by mu_
  std::atomic<bool> stop_{false};
};

}  // namespace mt::cs
