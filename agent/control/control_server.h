// ControlServer: the daemon's local control socket (architecture §6). A Unix
// stream socket, root only: the peer's credentials (SO_PEERCRED) are checked
// before anything is read; another uid gets one error response and the
// connection is closed. Framing: framing.h; messages: proto/mt/control.proto.
// One request per connection: read the request, call the handler, write the
// response, close.
//
//   accept ─▶ peer check ─┬─ not allowed ─▶ write error(permission-denied) ─▶ close
//                         └─ read frame (deadline) ─▶ parse ─▶ handler ─▶ write response ─▶ close
//
// Threads: one thread runs an Asio io_context (accept, read, write); each
// request's handler runs on a thread of its own, so a slow or waiting
// request does not hold up the next one. At most 8 requests are handled at
// once; one more is answered busy. The handler must therefore be safe to
// call from several threads at once. The io deadline covers only reading
// the request and writing the response. Stop() returns once no handler
// runs. No exception leaves this module.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "mt/control.pb.h"
#include "mt/shim/status.h"

namespace mt::control {

struct PeerCredentials {
  int32_t pid = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// Ok when the peer runs as `allowed_uid`; otherwise kPermissionDenied naming
// the peer's pid and uid.
Status CheckPeer(const PeerCredentials& peer, uint32_t allowed_uid);

// The error response for a failed request.
proto::ControlResponse ErrorResponse(const Status& status);
// The Status a response carries (ok when it has no error). Unknown code
// names become kInternal.
Status ResponseStatus(const proto::ControlResponse& response);

class ControlServer {
 public:
  using Handler = std::function<proto::ControlResponse(const proto::ControlRequest&)>;

  struct Options {
    std::string socket_path;
    uint32_t allowed_uid = 0;  // root; tests use their own uid
    // To receive the whole request and to send the whole response.
    std::chrono::milliseconds io_timeout{10'000};
  };

  // Creates the socket's directory if missing, replaces a stale socket file
  // (kBusy if another process is serving on it), binds (mode 0600), listens
  // and starts the thread. REQUIRES: handler is callable until Stop().
  static Result<std::unique_ptr<ControlServer>> Start(const Options& options, Handler handler);
  ~ControlServer();  // Stop()

  // Stops accepting, closes open connections, joins the thread, waits for
  // running handlers to finish and removes the socket file. Idempotent.
  void Stop();

  const std::string& path() const;

 private:
  struct Impl;
  explicit ControlServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mt::control
