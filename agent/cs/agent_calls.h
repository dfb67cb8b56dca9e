// How mt-cs's commands and its web dashboard talk to an agent: through the
// request queue of cs.db (cs_store.h), which the serving process drains onto
// the agent's link (cs_server.h). Shared by the CLI (cs_cli.cc) and the
// dashboard's API (web_api.cc), so both start the same jobs the same way.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "cs/cs_store.h"
#include "mt/control.pb.h"
#include "mt/shim/status.h"

namespace mt::cs {

// A job id for a job this CS starts: "cs-<ms since epoch>-<8 random hex>".
std::string NewJobId();

struct CallOptions {
  std::chrono::milliseconds timeout{10'000};
  const std::atomic<bool>* stop = nullptr;  // set: give up (kAborted "interrupted")
  // Called once when the agent is not connected and the request waits.
  std::function<void(uint64_t seq)> on_waiting;
};

// Queues `r` for the agent and waits for its answer. kBusy when none came
// within the timeout (the request stays queued and goes once the agent is
// back); kCorruption when the stored answer does not parse.
Result<proto::ControlResponse> CallAgent(CsStore& store, const AgentRow& agent,
                                         const proto::ControlRequest& r, const CallOptions& o);

// Starts `spec` as a job of the agent with a new id: the agent's answer to
// StartJob (the job queued or running). kAborted with the agent's message
// when it refused.
Result<proto::Job> StartAgentJob(CsStore& store, const AgentRow& agent, const proto::JobSpec& spec,
                                 const CallOptions& o);

}  // namespace mt::cs
