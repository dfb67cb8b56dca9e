// Receiver: the agent's data port — a TLS server (Boost.Asio + OpenSSL) that
// accepts process-server connections and runs one Session per connection
// (session.h). docs/formats/stream.md describes what travels inside.
//
// TLS: 1.2 minimum (SSLv3, TLS 1.0 and 1.1 refused), no compression, no
// renegotiation, ECDHE key exchange only (AES-GCM / ChaCha20-Poly1305 for
// 1.2; OpenSSL's default TLS 1.3 suites); the server identity is the
// TlsIdentity (tls_identity.h) whose fingerprint senders pin.
// Memory (docs/operations.md): sessions before authentication take no
// payload (session.h); payloads being received across all sessions are
// bounded by max_receiving_bytes (a PayloadBudget: a frame that does not fit
// waits, its session not reading); a second after sessions close, the C
// library's free heap is given back to the kernel (shim::ReleaseFreeMemory).
// Threads: `threads` network threads run the io_context (sessions are each on
// their own strand); `workers` threads run blocking work (resync hashing).
// No exception leaves this module: Asio's are caught at the edges.
// The daemon owns signal handling (a signal_set calling Stop()).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "mt/shim/status.h"
#include "daemon/session.h"
#include "daemon/stream_port.h"
#include "config/tls_identity.h"

namespace mt::daemon {

inline constexpr uint16_t kDefaultDataPort = 9443;

struct ReceiverOptions {
  std::string address = "0.0.0.0";  // IPv4 or IPv6 literal ("::" for every address)
  uint16_t port = kDefaultDataPort;  // 0: any free port (tests); see Receiver::port()
  int threads = 2;
  int workers = 2;
  size_t max_sessions = 1024;        // more connections are closed at once
  // Payload bytes being received at once across sessions; raised to
  // session.max_payload_bytes if lower (one maximal frame must fit).
  uint64_t max_receiving_bytes = 256u << 20;
  SessionOptions session;
};

class Receiver {
 public:
  // Binds, listens and starts serving. kInvalidArgument for a bad address,
  // kBusy/kPermissionDenied/... naming "address:port" when it cannot bind,
  // kCorruption if the identity does not load into OpenSSL.
  // REQUIRES: directory outlives the receiver.
  static Result<std::unique_ptr<Receiver>> Start(const TlsIdentity& identity,
                                                 StreamDirectory& directory,
                                                 const ReceiverOptions& options);
  ~Receiver();  // Stop()

  // Stops accepting, closes every session (each detaches its stream) and
  // joins the threads. Idempotent; not from a receiver thread.
  void Stop();

  uint16_t port() const { return port_; }
  const std::string& fingerprint() const { return fingerprint_; }
  size_t sessions() const;
  // Liveness (the systemd watchdog): posts a no-op to the network threads,
  // unless one is still pending, and returns how long the pending one has
  // waited (0 when the previous probe ran). A network thread that never
  // returns to its reactor shows here.
  int64_t ProbeNetworkThreadsNs();

 private:
  struct Impl;
  explicit Receiver(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
  std::string fingerprint_;
};

}  // namespace mt::daemon
