// How mtctl reaches the agent: the daemon's control socket when mt-agent
// runs, the retention store's catalog directly when it does not ("offline").
// The socket, retention and credential paths come from the agent's
// configuration (--config, default /etc/mt-agent/agent.toml; a missing
// default file means the documented defaults), --socket overrides the socket.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "config/agent_config.h"
#include "retention/catalog.h"
#include "cli/commands.h"
#include "mt/control.pb.h"
#include "mt/shim/file_lock.h"

namespace mt::cli {

// The agent configuration mtctl works with (see above).
Result<daemon::AgentConfig> LoadAgentConfigForCli(const Context& ctx);

// The socket mtctl talks to.
std::string ControlSocketPath(const Context& ctx, const daemon::AgentConfig& config);

// Sends the request to the daemon. kUnavailable when mt-agent is not running
// (callers then work offline); the daemon's own error when it refused the
// request; other errors of the call itself.
Result<proto::ControlResponse> CallAgent(const Context& ctx, const daemon::AgentConfig& config,
                                         const proto::ControlRequest& request,
                                         std::chrono::milliseconds timeout);

// The retention catalog for offline use; kNotFound with an actionable
// message when the retention directory or its catalog is missing
// (`create`: make the catalog when the directory exists).
Result<std::unique_ptr<retention::Catalog>> OpenOfflineCatalog(const daemon::AgentConfig& config,
                                                               bool writable);

// One operation that pauses streams or rewrites targets or retention at a
// time per retention volume (rollback, export, commit, vsnap create or
// remove, release, attach, resync): a second one gets one clear error
// (kBusy) and changes nothing — two rollbacks, an export resuming a stream
// a rollback paused, or a resync starting it, would otherwise interleave.
Result<std::unique_ptr<shim::FileLock>> LockOperations(const daemon::AgentConfig& config);

// Prints a message as protobuf JSON (pretty) on ctx.out; 0 or a failure.
int PrintJson(Context& ctx, const google::protobuf::Message& message);

}  // namespace mt::cli
