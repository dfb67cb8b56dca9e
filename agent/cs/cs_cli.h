// mt-cs: the reference configuration server (docs/operations.md,
// "Configuration server"). `mt-cs serve` runs the server; every other
// command works on the same store (<dir>/cs.db) from its own process: the
// listings read it, and commands for an agent queue a request there that the
// serving process delivers over the agent's link, then wait for the answer
// (and for a job, for its outcome).
//
// Contract as mtctl's: exit 0 on success; otherwise one line "mt-cs: ..." on
// stderr. Every listing also as --json (protobuf JSON, proto field names).
#pragma once

#include <ostream>

namespace mt::cs {

int RunMtCs(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace mt::cs
