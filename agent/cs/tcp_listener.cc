#include "cs/tcp_listener.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace mt::cs {

namespace {

Result<int> Listen(const std::string& host, uint16_t port, uint16_t* bound) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), std::to_string(port).c_str(),
                               &hints, &res);
  if (rc != 0) {
    return Status(Errc::kInvalidArgument, "cannot listen on '" + host + "': " + gai_strerror(rc));
  }
  Status last(Errc::kUnavailable, "no address to listen on for '" + host + "'");
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 64) == 0) {
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
      *bound = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
      ::freeaddrinfo(res);
      return fd;
    }
    last = Status::FromErrno(errno, "bind " + host + ":" + std::to_string(port));
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return last;
}

}  // namespace

Result<std::unique_ptr<TcpListener>> TcpListener::Start(const std::string& host, uint16_t port,
                                                        size_t max_connections,
                                                        std::function<void(int fd)> serve) {
  std::unique_ptr<TcpListener> l(new TcpListener());
  MT_ASSIGN_OR_RETURN(l->fd_, Listen(host, port, &l->port_));
  l->max_connections_ = max_connections;
  l->serve_ = std::move(serve);
  l->acceptor_ = std::thread([p = l.get()] { p->AcceptLoop(); });
  return l;
}

TcpListener::~TcpListener() { Stop(); }

void TcpListener::Stop() {
  stop_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<Connection> connections;
  {
    std::lock_guard<std::mutex> lock(mu_);
    connections.swap(connections_);
  }
  for (auto& c : connections) c.thread.join();
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void TcpListener::AcceptLoop() {
  while (!stop_) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    // Connections that ended are joined here, so a long-running server does
    // not keep a thread per connection it ever had.
    for (auto it = connections_.begin(); it != connections_.end();) {
      if (it->done->load()) {
        it->thread.join();
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
    if (connections_.size() >= max_connections_) {
      ::close(fd);
      continue;
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    connections_.push_back({std::thread([this, fd, done] {
                              serve_(fd);
                              done->store(true);
                            }),
                            done});
  }
}

}  // namespace mt::cs
