#include "cs/agent_calls.h"

#include <openssl/rand.h>

#include <iomanip>
#include <sstream>
#include <thread>

#include "mt/shim/clock.h"

namespace mt::cs {

namespace {
int64_t Now() { return shim::SystemClock().NowNs(); }
}  // namespace

std::string NewJobId() {
  unsigned char r[4];
  RAND_bytes(r, sizeof r);
  std::ostringstream id;
  id << "cs-" << Now() / 1'000'000 << "-" << std::hex << std::setfill('0');
  for (unsigned char c : r) id << std::setw(2) << static_cast<int>(c);
  return id.str();
}

Result<proto::ControlResponse> CallAgent(CsStore& store, const AgentRow& agent,
                                         const proto::ControlRequest& r, const CallOptions& o) {
  MT_ASSIGN_OR_RETURN(const uint64_t seq, store.QueueRequest(agent.id, r, Now()));
  const auto deadline = std::chrono::steady_clock::now() + o.timeout;
  bool said = false;
  while (o.stop == nullptr || !*o.stop) {
    MT_ASSIGN_OR_RETURN(auto row, store.GetRequest(agent.id, seq));
    if (row && row->state == "answered") {
      proto::ControlResponse resp;
      if (!resp.ParseFromString(row->response)) {
        return Status(Errc::kCorruption, "the stored answer to request " + std::to_string(seq) + " does not parse");
      }
      return resp;
    }
    if (!said) {
      MT_ASSIGN_OR_RETURN(auto a, store.GetAgent(agent.id));
      if (a && !a->connected && o.on_waiting) o.on_waiting(seq);
      said = true;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return Status(Errc::kBusy, "agent " + agent.id + " did not answer request " + std::to_string(seq) +
                                     " in time (it stays queued; is mt-cs serve running and the agent "
                                     "connected?)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status(Errc::kAborted, "interrupted");
}

Result<proto::Job> StartAgentJob(CsStore& store, const AgentRow& agent, const proto::JobSpec& spec,
                                 const CallOptions& o) {
  proto::ControlRequest r;
  r.mutable_start_job()->set_id(NewJobId());
  *r.mutable_start_job()->mutable_spec() = spec;
  MT_ASSIGN_OR_RETURN(const proto::ControlResponse resp, CallAgent(store, agent, r, o));
  if (resp.has_error()) return Status(Errc::kAborted, resp.error().message());
  return resp.job();
}

}  // namespace mt::cs
