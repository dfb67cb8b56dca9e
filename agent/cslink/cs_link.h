// CsLink: the agent's persistent connection to its configuration server
// (docs/formats/cs-link.md). One thread:
//
//   ┌─▶ registered? (<cs_dir>/registration; checked every second until it is)
//   │     └─▶ dial (pinned certificate) ─▶ challenge/hello/welcome (agent key)
//   │           └─▶ inventory, every job, heartbeat ─▶ loop:
//   │                 request in  ─▶ seq check ─▶ handle ─▶ response out
//   │                 every heartbeat: status; inventory if it changed
//   │                 every job_poll: jobs whose state or progress moved
//   └── link ends or fails: wait (1 s doubling to 60 s), dial again
//
// Requests run on this thread, one at a time (the CS sends one and waits), so
// a GetJob's wait is dropped: job progress reaches the CS as CsJobUpdate.
// Refused with nothing done and an audit line (log, "audit:"): a request at
// or below the highest seq accepted that is not the last one delivered again,
// a message over the size limit (the link ends), a request that is no
// control command. What the agent refuses on its own (a job for a disk that
// is not a target, ...) is answered with the agent's error, as on the
// control socket.
// Thread safety: Start/Stop from one thread; the hooks are called on the
// link's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "cslink/registration.h"
#include "mt/control.pb.h"
#include "mt/cs_link.pb.h"
#include "mt/inventory.pb.h"
#include "mt/shim/file_system.h"
#include "mt/shim/status.h"

namespace mt::cslink {

struct CsLinkHooks {
  std::function<proto::ControlResponse(const proto::ControlRequest&)> handle;
  std::function<Result<proto::AgentStatus>()> status;
  std::function<Result<proto::Inventory>()> inventory;
  std::function<Result<proto::JobList>()> jobs;
};

// Registration by the daemon itself ([cs] address and passphrase_file in
// agent.toml): tried, with the link's back-off, while it is not registered.
struct AutoRegister {
  std::string cs;               // "" = none
  std::string passphrase_file;
  std::string fingerprint;      // "" = trust on first use (logged)
};

struct CsLinkOptions {
  shim::FileSystem* fs = nullptr;  // null: PosixFileSystem()
  std::string cs_dir;              // holds `registration`
  std::string hostname;
  std::string version;
  std::chrono::milliseconds heartbeat{30'000};  // unless the CS asks for another
  std::chrono::milliseconds job_poll{1'000};
  std::chrono::milliseconds connect_timeout{15'000};
  std::chrono::milliseconds max_backoff{60'000};
  AutoRegister auto_register;
};

class CsLink {
 public:
  CsLink(CsLinkOptions options, CsLinkHooks hooks);
  ~CsLink();  // Stop()

  void Start();
  void Stop();

  // For `mtctl status` and tests: "unregistered", "connecting",
  // "connected", or "down: <why>".
  std::string State() const;

 private:
  void Run();
  // auto_register: registers and saves the registration.
  Status RegisterItself();
  // One connection's life; returns why it ended.
  Status Serve(CsRegistration& reg);
  // The seq rule; on acceptance the registration file records it first.
  Status Accept(CsRegistration& reg, const proto::CsRequest& request, const std::string& bytes);
  void SetState(std::string s);
  // Sleeps up to `d`, less when Stop is called. False once stopping.
  bool Sleep(std::chrono::milliseconds d);

  CsLinkOptions o_;
  CsLinkHooks hooks_;
  shim::FileSystem& fs_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string state_ = "unregistered";
};

}  // namespace mt::cslink
