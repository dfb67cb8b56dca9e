// CsStore: what mt-cs knows, in <dir>/cs.db (SQLite, WAL mode, so that the
// serving process and the CLI's processes share it). Tables (docs/formats/cs-link.md,
// "mt-cs's store"):
//
//   agents     id, hostname, version, key (the derived agent key), address,
//              registered_ns, last_seen_ns, connected
//   health     the last heartbeat of each agent (AgentStatus)
//   inventory  the last disk inventory of each agent
//   jobs       every job of every agent as it last reported it
//   requests   control requests for an agent: seq (per agent, from 1),
//              request, state queued -> sent -> answered, response
//   audit      one line per refusal and per request
//   samples    figures of each heartbeat, at most one set per agent every
//              kSampleEveryNs, kept kSampleKeepNs (the dashboard's charts):
//              per stream RPO, backlog, WAL bytes, byte counters; per agent
//              (stream "") retention capacity and free space
//
// The request queue is how the CLI drives agents: it adds a request; the
// serving process sends it when the agent is connected and stores the answer.
// Thread safety: one connection behind a mutex; every call is one
// statement or one transaction.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mt/control.pb.h"
#include "mt/inventory.pb.h"
#include "mt/shim/status.h"
#include "mt/shim/thread_annotations.h"

struct sqlite3;

namespace mt::cs {

struct AgentRow {
  std::string id;
  std::string hostname;
  std::string version;
  std::string key;  // raw
  std::string address;
  int64_t registered_ns = 0;
  int64_t last_seen_ns = 0;
  bool connected = false;
};

struct RequestRow {
  std::string agent_id;
  uint64_t seq = 0;
  std::string request;  // serialized ControlRequest
  std::string state;    // queued | sent | answered
  std::string response; // serialized ControlResponse once answered
  int64_t created_ns = 0;
  int64_t answered_ns = 0;
};

// One sample: a stream's figures at one heartbeat (stream "": the agent's
// row, only the retention figures set; rpo_ns -1 there).
struct SampleRow {
  std::string agent_id;
  std::string stream;
  int64_t ns = 0;
  int64_t rpo_ns = -1;
  uint64_t backlog_records = 0;
  uint64_t wal_bytes = 0;
  uint64_t bytes_ingested = 0;
  uint64_t bytes_applied = 0;
  uint64_t retention_capacity_bytes = 0;
  uint64_t retention_available_bytes = 0;
};

class CsStore {
 public:
  static constexpr int64_t kSampleEveryNs = 10'000'000'000;         // 10 s
  static constexpr int64_t kSampleKeepNs = 25ll * 3600 * 1'000'000'000;  // 25 h

  static Result<std::unique_ptr<CsStore>> Open(const std::string& path);
  ~CsStore();

  // A new agent, named "agent-<n>".
  Result<std::string> AddAgent(const AgentRow& row);
  // The key derived at registration (it depends on the new id).
  Status SetAgentKey(const std::string& id, const std::string& key);
  Result<std::optional<AgentRow>> GetAgent(const std::string& id);
  // By id, or by hostname when exactly one agent has it (the CLI's --agent).
  Result<AgentRow> FindAgent(const std::string& id_or_hostname);
  Result<std::vector<AgentRow>> ListAgents();
  Status SetConnected(const std::string& id, bool connected, const std::string& address,
                      int64_t now_ns);
  // Clears every agent's connected flag (mt-cs serve at start: nobody is yet).
  Status ClearConnected();

  // Keeps the heartbeat, and its figures as samples (at most one set every
  // kSampleEveryNs per agent; older than kSampleKeepNs pruned).
  Status SaveHealth(const std::string& id, const proto::AgentStatus& status, int64_t now_ns);
  // Samples since `since_ns`, of one agent or ("") of all, oldest first.
  Result<std::vector<SampleRow>> Samples(const std::string& agent_id, int64_t since_ns);
  Result<std::optional<proto::AgentStatus>> GetHealth(const std::string& id);
  Status SaveInventory(const std::string& id, const proto::Inventory& inv, int64_t now_ns);
  Result<std::optional<proto::Inventory>> GetInventory(const std::string& id);
  Status SaveJob(const std::string& id, const proto::Job& job, int64_t now_ns);
  Result<std::optional<proto::Job>> GetJob(const std::string& agent_id, const std::string& job_id);
  // Newest first.
  Result<std::vector<std::pair<std::string, proto::Job>>> ListJobs(const std::string& agent_id);

  // Queues a request for the agent; its seq.
  Result<uint64_t> QueueRequest(const std::string& agent_id, const proto::ControlRequest& r,
                                int64_t now_ns);
  // The oldest request not yet answered (a "sent" one first: it was in
  // flight when a link ended and goes again, same seq, same bytes).
  Result<std::optional<RequestRow>> NextRequest(const std::string& agent_id);
  Status MarkSent(const std::string& agent_id, uint64_t seq);
  Status Answer(const std::string& agent_id, uint64_t seq, const proto::ControlResponse& response,
                int64_t now_ns);
  Result<std::optional<RequestRow>> GetRequest(const std::string& agent_id, uint64_t seq);

  Status Audit(const std::string& agent_id, const std::string& line, int64_t now_ns);
  Result<std::vector<std::string>> AuditLines(size_t limit);

 private:
  explicit CsStore(sqlite3* db) : db_(db) {}
  Status AddSamplesLocked(const std::string& id, const proto::AgentStatus& status, int64_t now_ns);
  std::mutex mu_;
  sqlite3* db_;
};

// What needs an operator, of every agent: `agent-down` for each agent whose
// link is down ("the link of agent-1 (host) is down since 42 s ago"), then
// the alerts of its last heartbeat; each with its agent's id.
Result<std::vector<std::pair<std::string, proto::Alert>>> AgentAlerts(CsStore& store, int64_t now_ns);

}  // namespace mt::cs
