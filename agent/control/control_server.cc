#include "control/control_server.h"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio.hpp>
#include <condition_variable>
#include <filesystem>
#include <set>
#include <thread>

#include "control/asio_util.h"
#include "control/framing.h"
#include "mt/shim/thread_annotations.h"

namespace mt::control {

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;

Status CheckPeer(const PeerCredentials& peer, uint32_t allowed_uid) {
  if (peer.uid == allowed_uid) return Status::Ok();
  return Status(Errc::kPermissionDenied,
                "control socket: peer pid " + std::to_string(peer.pid) + " runs as uid " +
                    std::to_string(peer.uid) + "; only " +
                    (allowed_uid == 0 ? std::string("root") : "uid " + std::to_string(allowed_uid)) +
                    " may control mt-agent");
}

proto::ControlResponse ErrorResponse(const Status& status) {
  proto::ControlResponse r;
  r.mutable_error()->set_code(ErrcName(status.code()));
  r.mutable_error()->set_message(status.message());
  return r;
}

Status ResponseStatus(const proto::ControlResponse& response) {
  if (!response.has_error()) return Status::Ok();
  const auto& e = response.error();
  for (int c = static_cast<int>(Errc::kIoError); c <= static_cast<int>(Errc::kInternal); ++c)
    if (e.code() == ErrcName(static_cast<Errc>(c))) return Status(static_cast<Errc>(c), e.message());
  return Status(Errc::kInternal, e.message().empty() ? "error " + e.code() : e.message());
}

struct ControlServer::Impl {
  Options o;
  Handler handler;
  asio::io_context io;
  Local::acceptor acceptor{io};
  std::thread thread;
  bool stopped = false;
  class Connection;
  std::set<std::shared_ptr<Connection>> connections;  // touched on the io thread only

  // Requests being handled, each on a thread of its own (at most
  // kMaxServing; Stop waits for them).
  static constexpr int kMaxServing = 8;
  Mutex serving_mu;
  std::condition_variable serving_cv;
  int serving MT_GUARDED_BY(serving_mu) = 0;

  void Accept();
  void Serve(const std::string& body, std::string* out);
  bool TakeServingSlot() {
    MutexLock l(serving_mu);
    if (serving >= kMaxServing) return false;
    ++serving;
    return true;
  }
  void GiveServingSlotBack() {
    MutexLock l(serving_mu);
    --serving;
    serving_cv.notify_all();
  }
};

// One accepted connection: peer check, one request, one response.
class ControlServer::Impl::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Impl& server, Local::socket socket)
      : server_(server), socket_(std::move(socket)), timer_(server.io) {}

  void Start() {
    SetCloseOnExec(socket_);
    Arm();
    PeerCredOption opt;
    boost::system::error_code ec;
    socket_.get_option(opt, ec);
    if (ec || !opt.size_ok()) {
      spdlog::warn("control socket: cannot read the peer's credentials ({}); closing",
                   ec ? ec.message() : "short SO_PEERCRED");
      Close();
      return;
    }
    PeerCredentials peer{opt.cred().pid, opt.cred().uid, opt.cred().gid};
    Status s = CheckPeer(peer, server_.o.allowed_uid);
    if (!s.ok()) {
      spdlog::warn("{}", s.message());
      Reply(ErrorResponse(s));
      return;
    }
    Read();
  }

  void Close() {
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.shutdown(Local::socket::shutdown_both, ignored);
    socket_.close(ignored);
    server_.connections.erase(shared_from_this());
  }

 private:
  void Arm() {
    timer_.expires_after(server_.o.io_timeout);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled
      spdlog::debug("control socket: connection timed out");
      self->Close();
    });
  }

  void Read() {
    const size_t want = std::min(buf_.size(), std::max<size_t>(decoder_.BytesNeeded(), 1));
    socket_.async_read_some(
        asio::buffer(buf_.data(), want),
        [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
          self->OnRead(ec, n);
        });
  }

  void OnRead(const boost::system::error_code& ec, size_t n) {
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      Status s = ec == asio::error::eof ? decoder_.Eof() : FromAsio(ec, "control socket read");
      if (s.ok()) s = Status(Errc::kProtocol, "connection closed before a request arrived");
      spdlog::debug("control socket: {}", s.message());
      Close();
      return;
    }
    Status s = decoder_.Put(buf_.data(), n);
    if (!s.ok()) {
      Reply(ErrorResponse(s));
      return;
    }
    if (auto body = decoder_.Next()) {
      timer_.cancel();
      if (!server_.TakeServingSlot()) {
        Reply(ErrorResponse(Status(Errc::kBusy, "mt-agent is serving " +
                                                    std::to_string(Impl::kMaxServing) +
                                                    " control requests: try again")));
        return;
      }
      // The handler runs on a thread of its own, so a request that waits
      // (a GetJob waiting for progress, a command waiting for another) does
      // not hold up the others; the response is written on the io thread.
      std::thread([self = shared_from_this(), body = std::move(*body)]() mutable {
        Impl& server = self->server_;
        std::string out;
        server.Serve(body, &out);
        asio::post(server.io, [self, out = std::move(out)]() mutable { self->Write(std::move(out)); });
        self.reset();  // the posted write holds the connection now
        server.GiveServingSlotBack();  // last: Stop may then return
      }).detach();
      return;
    }
    Read();
  }

  void Reply(const proto::ControlResponse& r) {
    auto frame = EncodeControlFrame(r);
    if (!frame.ok()) frame = EncodeControlFrame(ErrorResponse(frame.status()));
    Write(frame.ok() ? std::move(frame).value() : std::string());
  }

  void Write(std::string frame) {
    out_ = std::move(frame);
    Arm();
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                        if (ec == asio::error::operation_aborted) return;
                        if (ec) spdlog::debug("control socket: write: {}", ec.message());
                        self->Close();
                      });
  }

  Impl& server_;
  Local::socket socket_;
  asio::steady_timer timer_;
  ControlFrameDecoder decoder_;
  std::array<char, 64 * 1024> buf_{};
  std::string out_;
};

void ControlServer::Impl::Accept() {
  acceptor.async_accept([this](const boost::system::error_code& ec, Local::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      spdlog::warn("control socket: accept: {}", ec.message());
    } else {
      auto c = std::make_shared<Connection>(*this, std::move(socket));
      connections.insert(c);
      c->Start();
    }
    Accept();
  });
}

void ControlServer::Impl::Serve(const std::string& body, std::string* out) {
  proto::ControlRequest request;
  proto::ControlResponse response;
  Status s = ParseControlMessage(body, &request);
  if (!s.ok()) {
    response = ErrorResponse(s);
  } else if (request.command_case() == proto::ControlRequest::COMMAND_NOT_SET) {
    response = ErrorResponse(Status(Errc::kProtocol, "control request without a command (a newer "
                                                     "mtctl than this mt-agent?)"));
  } else {
    try {
      response = handler(request);
    } catch (const std::exception& e) {
      response = ErrorResponse(Status(Errc::kInternal, std::string("request failed: ") + e.what()));
    }
  }
  auto frame = EncodeControlFrame(response);
  if (!frame.ok()) frame = EncodeControlFrame(ErrorResponse(frame.status()));
  *out = frame.ok() ? std::move(frame).value() : std::string();
}

ControlServer::ControlServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ControlServer::~ControlServer() { Stop(); }

const std::string& ControlServer::path() const { return impl_->o.socket_path; }

Result<std::unique_ptr<ControlServer>> ControlServer::Start(const Options& options,
                                                            Handler handler) {
  namespace fs = std::filesystem;
  auto impl = std::make_unique<Impl>();
  impl->o = options;
  impl->handler = std::move(handler);
  const std::string& path = options.socket_path;
  if (path.empty() || path.size() > 107)
    return Status(Errc::kInvalidArgument, "control socket path \"" + path +
                                              "\" is empty or longer than 107 bytes");
  try {
    std::error_code fec;
    const fs::path dir = fs::path(path).parent_path();
    if (!dir.empty() && !fs::exists(dir, fec)) {
      fs::create_directories(dir, fec);
      if (fec)
        return Status::FromErrno(fec.value(), "create control socket directory " + dir.string());
    }
    boost::system::error_code ec;
    const Local::endpoint ep(path);
    if (fs::exists(fs::symlink_status(path, fec))) {
      if (!fs::is_socket(fs::symlink_status(path, fec)))
        return Status(Errc::kAlreadyExists,
                      path + " exists and is not a socket; refusing to replace it");
      Local::socket probe(impl->io);
      probe.connect(ep, ec);
      if (!ec)
        return Status(Errc::kBusy, "another process serves the control socket " + path +
                                       " (is mt-agent already running?)");
      fs::remove(path, fec);  // stale: left by a process that is gone
      if (fec) return Status::FromErrno(fec.value(), "remove stale control socket " + path);
    }
    impl->acceptor.open(Local(), ec);
    if (ec) return FromAsio(ec, "control socket " + path);
    SetCloseOnExec(impl->acceptor);
    impl->acceptor.bind(ep, ec);
    if (ec) return FromAsio(ec, "bind control socket " + path);
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write, fec);
    if (fec) return Status::FromErrno(fec.value(), "chmod 0600 " + path);
    impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return FromAsio(ec, "listen on control socket " + path);
    impl->Accept();
    Impl* p = impl.get();
    impl->thread = std::thread([p] {
      try {
        p->io.run();
      } catch (const std::exception& e) {
        spdlog::error("control socket: stopped: {}", e.what());
      }
    });
  } catch (const std::exception& e) {
    return Status(Errc::kInternal, "control socket " + path + ": " + e.what());
  }
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

void ControlServer::Stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  Impl* p = impl_.get();
  asio::post(p->io, [p] {
    boost::system::error_code ignored;
    p->acceptor.close(ignored);
    auto open = p->connections;  // Close() erases from the set
    for (const auto& c : open) c->Close();
  });
  // Let the closes run, then end the loop.
  asio::post(p->io, [p] { p->io.stop(); });
  if (p->thread.joinable()) p->thread.join();
  {
    // The handler may not be called once Stop returns: wait for the running ones.
    UniqueLock l(p->serving_mu);
    p->serving_cv.wait(l.native(), [p]() MT_REQUIRES(p->serving_mu) { return p->serving == 0; });
  }
  std::error_code fec;
  std::filesystem::remove(p->o.socket_path, fec);
}

}  // namespace mt::control
