// TcpListener: a listening TCP socket whose connections are each served on a
// thread of their own: mt-cs's agent links (cs_server.h) and its dashboard
// (web_server.h). At most max_connections at once; a connection past that
// is closed at once. Threads that returned are joined at the next accept;
// Stop() stops accepting and joins the rest (`serve` must return once
// stopping() is true, within its own timeouts).
// Thread safety: Start/Stop from one thread; stopping() from any.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mt/shim/status.h"

namespace mt::cs {

class TcpListener {
 public:
  // Binds host:port (port 0: any free port; see port()). serve(fd) owns fd.
  static Result<std::unique_ptr<TcpListener>> Start(const std::string& host, uint16_t port,
                                                    size_t max_connections,
                                                    std::function<void(int fd)> serve);
  ~TcpListener();  // Stop()
  void Stop();
  uint16_t port() const { return port_; }
  bool stopping() const { return stop_; }

 private:
  TcpListener() = default;
  void AcceptLoop();

  int fd_ = -1;
  uint16_t port_ = 0;
  size_t max_connections_ = 0;
  std::function<void(int)> serve_;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mu_;
  struct Connection {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Connection> connections_;  // guarded by mu_
};

}  // namespace mt::cs
