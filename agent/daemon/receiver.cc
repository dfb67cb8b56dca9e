#include "daemon/receiver.h"

#include <atomic>
#include <chrono>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <exception>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "mt/shim/memory.h"
#include "mt/shim/thread_annotations.h"
#include "stream/payload_budget.h"

namespace mt::daemon {

namespace asio = boost::asio;
using boost::system::error_code;
using Tcp = asio::ip::tcp;

namespace {

Status ErrorStatus(const error_code& ec, const std::string& what) {
  if (ec.category() == boost::system::system_category() ||
      ec.category() == boost::system::generic_category()) {
    return Status::FromErrno(ec.value(), what);
  }
  return Status(Errc::kInternal, what + ": " + ec.message());
}

// Delay between a session closing and giving free heap back to the kernel
// (sessions tend to close in bursts; one trim for the burst).
constexpr std::chrono::milliseconds kTrimDelay{1000};

Status ConfigureTls(asio::ssl::context& ctx, const TlsIdentity& id) {
  SSL_CTX* h = ctx.native_handle();
  uint64_t opts = SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 |
                  SSL_OP_NO_COMPRESSION | SSL_OP_SINGLE_DH_USE | SSL_OP_SINGLE_ECDH_USE |
                  SSL_OP_CIPHER_SERVER_PREFERENCE;
#ifdef SSL_OP_NO_RENEGOTIATION
  opts |= SSL_OP_NO_RENEGOTIATION;
#endif
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
  opts |= SSL_OP_IGNORE_UNEXPECTED_EOF;  // a TCP EOF is an EOF; the decoder tells truncation
#endif
  SSL_CTX_set_options(h, opts);
  if (SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(h, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1") != 1) {
    return Status(Errc::kInternal, "configuring the TLS context failed (OpenSSL)");
  }
  error_code ec;
  ctx.use_certificate_chain(asio::buffer(id.cert_pem), ec);
  if (!ec) ctx.use_private_key(asio::buffer(id.key_pem), asio::ssl::context::pem, ec);
  if (ec || SSL_CTX_check_private_key(h) != 1) {
    return Status(Errc::kCorruption, "the TLS identity does not load: " + ec.message());
  }
  return Status::Ok();
}

}  // namespace

struct Receiver::Impl {
  Impl(StreamDirectory& dir, const ReceiverOptions& o)
      : options(o),
        directory(dir),
        budget(std::max(o.max_receiving_bytes, o.session.max_payload_bytes)),
        session_options(o.session),
        ssl(asio::ssl::context::sslv23_server),
        acceptor(ioc),
        trim_timer(ioc),
        work(asio::make_work_guard(ioc)),
        workers(static_cast<size_t>(std::max(1, o.workers))) {
    session_options.budget = &budget;
  }

  void Accept() {
    auto session = std::make_shared<Session>(
        ioc, ssl, directory, workers, session_options,
        [this](Session* s, const Status& reason) { OnClosed(s, reason); });
    acceptor.async_accept(session->socket(), [this, session](const error_code& ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (ec) {
        spdlog::warn("data port: accept failed: {}", ec.message());
      } else {
        error_code ignored;
        const Tcp::endpoint peer = session->socket().remote_endpoint(ignored);
        const std::string id =
            peer.address().to_string() + ":" + std::to_string(peer.port()) + "#" +
            std::to_string(++next_id);
        bool admit;
        {
          MutexLock l(mu);
          admit = !stopping && sessions.size() < options.max_sessions;
          if (admit) sessions.insert(session);
        }
        if (admit) {
          session->Start(id);
        } else {
          spdlog::warn("data port: refusing {}: {} sessions already", id, options.max_sessions);
          session->socket().close(ignored);
        }
      }
      Accept();
    });
  }

  void OnClosed(Session* s, const Status& reason) {
    if (reason.ok()) {
      spdlog::info("data port: session {} closed", s->id());
    } else {
      spdlog::info("data port: session {} closed: {}", s->id(), reason.ToString());
    }
    MutexLock l(mu);
    for (auto it = sessions.begin(); it != sessions.end(); ++it) {
      if (it->get() == s) {
        sessions.erase(it);
        break;
      }
    }
    ScheduleTrim();
  }

  // One trim kTrimDelay after the first of a burst of closes (the sessions
  // are destroyed by then; their memory is free).
  void ScheduleTrim() MT_REQUIRES(mu) {
    if (trim_scheduled || stopping) return;
    trim_scheduled = true;
    trim_timer.expires_after(kTrimDelay);
    trim_timer.async_wait([this](const error_code& ec) {
      {
        MutexLock l(mu);
        trim_scheduled = false;
      }
      if (!ec) asio::post(workers, [] { shim::ReleaseFreeMemory(); });
    });
  }

  void Run() {
    for (;;) {
      try {
        ioc.run();
        return;
      } catch (const std::exception& e) {  // the edge: nothing of Asio's escapes
        spdlog::error("data port: network thread: {}", e.what());
      }
    }
  }

  const ReceiverOptions options;
  StreamDirectory& directory;
  stream::PayloadBudget budget;     // shared by every session's decoder
  SessionOptions session_options;   // options.session with the budget
  asio::io_context ioc;
  asio::ssl::context ssl;
  Tcp::acceptor acceptor;
  asio::steady_timer trim_timer MT_GUARDED_BY(mu);
  bool trim_scheduled MT_GUARDED_BY(mu) = false;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  asio::thread_pool workers;
  std::vector<std::thread> threads;
  Mutex mu;
  std::set<std::shared_ptr<Session>> sessions MT_GUARDED_BY(mu);
  bool stopping MT_GUARDED_BY(mu) = false;
  uint64_t next_id = 0;                         // acceptor handler only
  std::atomic<bool> probe_pending{false};       // ProbeNetworkThreadsNs
  // Written before probe_pending is set and read while it is set, by the
  // one thread that probes (the watchdog's); the post clears the flag.
  std::chrono::steady_clock::time_point probe_posted;
};

Receiver::Receiver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Receiver::~Receiver() { Stop(); }

Result<std::unique_ptr<Receiver>> Receiver::Start(const TlsIdentity& identity,
                                                  StreamDirectory& directory,
                                                  const ReceiverOptions& options) {
  try {
    auto impl = std::make_unique<Impl>(directory, options);
    MT_RETURN_IF_ERROR(ConfigureTls(impl->ssl, identity));

    error_code ec;
    const asio::ip::address addr = asio::ip::make_address(options.address, ec);
    if (ec) {
      return Status(Errc::kInvalidArgument,
                    "data port address '" + options.address + "' is not an IP address");
    }
    const Tcp::endpoint ep(addr, options.port);
    const std::string where = options.address + ":" + std::to_string(options.port);
    impl->acceptor.open(ep.protocol(), ec);
    if (!ec) impl->acceptor.set_option(Tcp::acceptor::reuse_address(true), ec);
    if (!ec) impl->acceptor.bind(ep, ec);
    if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return ErrorStatus(ec, "data port: listen on " + where);
    const uint16_t port = impl->acceptor.local_endpoint(ec).port();
    if (ec) return ErrorStatus(ec, "data port: local address");

    impl->Accept();
    Impl* raw = impl.get();
    for (int i = 0; i < std::max(1, options.threads); ++i) {
      impl->threads.emplace_back([raw] { raw->Run(); });
    }
    std::unique_ptr<Receiver> r(new Receiver(std::move(impl)));
    r->port_ = port;
    r->fingerprint_ = identity.fingerprint;
    spdlog::info("data port: listening on {}:{} (TLS 1.2+, certificate SHA-256 {})",
                 options.address, port, identity.fingerprint);
    return r;
  } catch (const std::exception& e) {
    return Status(Errc::kInternal, std::string("data port: ") + e.what());
  }
}

void Receiver::Stop() {
  if (!impl_) return;
  std::vector<std::shared_ptr<Session>> open;
  {
    MutexLock l(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
    open.assign(impl_->sessions.begin(), impl_->sessions.end());
  }
  asio::post(impl_->ioc, [impl = impl_.get()] {
    error_code ignored;
    impl->acceptor.close(ignored);
    MutexLock l(impl->mu);
    impl->trim_timer.cancel();
  });
  for (auto& s : open) s->Stop();
  open.clear();
  impl_->work.reset();
  for (std::thread& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  impl_->workers.join();
  MutexLock l(impl_->mu);
  impl_->sessions.clear();
}

int64_t Receiver::ProbeNetworkThreadsNs() {
  if (!impl_) return 0;
  const auto now = std::chrono::steady_clock::now();
  if (impl_->probe_pending.load()) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(now - impl_->probe_posted).count();
  }
  impl_->probe_posted = now;
  impl_->probe_pending = true;
  asio::post(impl_->ioc, [impl = impl_.get()] { impl->probe_pending = false; });
  return 0;
}

size_t Receiver::sessions() const {
  if (!impl_) return 0;
  MutexLock l(impl_->mu);
  return impl_->sessions.size();
}

}  // namespace mt::daemon
