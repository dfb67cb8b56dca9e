// CsServer: mt-cs's end of the configuration-server link
// (docs/formats/cs-link.md). A TLS listener; each agent's connection is
// served on its own thread:
//
//   accept ─▶ TLS ─▶ Challenge ─▶ Hello
//     agent_id ""  : the passphrase's MAC? ─▶ new agent, Welcome{id, cs_mac}, close
//     agent_id set : known, the agent key's MAC? ─▶ Welcome ─▶ session:
//        heartbeat / inventory / job  ─▶ stored (CsStore)
//        the oldest unanswered request of the agent ─▶ sent; its response ─▶ stored
//   refusals (unknown agent, wrong passphrase or key, a malformed hello) get
//   CsRefused, an audit line, and the connection closes.
//
// One session per agent: a newer connection of the same agent ends the older.
// Thread safety: Start/Stop from one thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/tls_identity.h"
#include "cs/cs_store.h"
#include "cs/tcp_listener.h"
#include "mt/shim/status.h"

namespace mt::cs {

struct CsServerOptions {
  std::string listen_host = "0.0.0.0";
  uint16_t port = 443;              // 0: any free port (tests; see port())
  std::string tls_dir;              // the CS identity (created at first start)
  std::string passphrase;           // registrations must prove it
  std::chrono::milliseconds heartbeat{30'000};  // asked of the agents
  std::chrono::milliseconds poll{200};          // how often the request queue is looked at
  std::chrono::milliseconds handshake_timeout{10'000};
};

class CsServer {
 public:
  // Binds the port and starts serving. kInvalidArgument for an empty
  // passphrase; the bind's error when the port is taken.
  static Result<std::unique_ptr<CsServer>> Start(CsServerOptions options, CsStore& store);
  ~CsServer();  // Stop()
  void Stop();

  uint16_t port() const { return port_; }
  const std::string& fingerprint() const { return identity_.fingerprint; }

 private:
  static constexpr size_t kMaxLinks = 4096;  // connections at once (agents, registrations)
  CsServer(CsServerOptions options, CsStore& store);
  void Serve(int fd);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  CsServerOptions o_;
  CsStore& store_;
  daemon::TlsIdentity identity_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::unique_ptr<TcpListener> listener_;
  std::mutex mu_;
  std::map<std::string, uint64_t> generation_;    // agent id -> its newest session; GUARDED_BY(mu_)
  uint64_t next_generation_ = 0;                  // GUARDED_BY(mu_)
};

}  // namespace mt::cs
