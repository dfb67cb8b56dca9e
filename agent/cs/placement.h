// Where mt-cs places a new protection when the operator names no agent
// (`mt-cs protect` without --agent): on a connected agent that sees every
// requested target as a free disk that can be a target there (its last
// inventory: role "free", can_be_target — a non-SCSI disk only where
// allow_non_scsi lists it), the least loaded of
// them — the fewest protected disks (its last heartbeat), then the most free
// retention space. A site outgrows one master target (ASR caps one at 60
// disks) by adding more; this is what spreads the work over them.
#pragma once

#include <string>
#include <vector>

#include "cs/cs_store.h"
#include "mt/shim/status.h"

namespace mt::cs {

// One agent's load, from its last heartbeat (mt-cs agents shows it).
struct AgentLoad {
  int streams = 0;
  int protected_disks = 0;
  uint64_t retention_free_bytes = 0;
  uint64_t retention_capacity_bytes = 0;
};
AgentLoad LoadOf(const proto::AgentStatus& status);

// Whether `disk` is the target an operator named: its WWID (any spelling
// the agent would accept is not re-normalised here: give it as the
// inventory shows it), its identity or its device path.
bool DiskMatches(const proto::Disk& disk, const std::string& target);

// The agent to protect `targets` on. kNotFound naming, for each agent, why
// it cannot take them (down, a target not seen, a target not free).
Result<AgentRow> PlaceProtection(CsStore& store, const std::vector<std::string>& targets);

}  // namespace mt::cs
