// The audit trail of mtctl's operations that rewrite, drop or expose data
// (rollback, export, commit, release, attach, vsnap create/remove, resync): one
// journal entry when asked, one with the outcome, each with structured
// fields an operator can select on:
//
//   journalctl SYSLOG_IDENTIFIER=mtctl OP=rollback
//
// Fields: OP, STREAM, GROUP, DISK, POINT, OUT (export), VSNAP (its name),
// OUTCOME (requested | done | refused), EXIT_STATUS, and who asked:
// REQUESTED_BY (user name), REQUESTED_UID, SUDO_USER, LOGIN_UID. Empty
// values are left out.
#pragma once

#include <functional>
#include <string>

#include "mt/shim/journal_log.h"

namespace mt::cli {

struct AuditedOp {
  std::string op;  // "rollback"
  std::string stream, group, disk, point, out, vsnap;
};

// The entry's message and fields (pure: tests check it).
std::string AuditMessage(const AuditedOp& what, const shim::Requester& who,
                         const std::string& outcome);
shim::JournalFields AuditFields(const AuditedOp& what, const shim::Requester& who,
                                const std::string& outcome, int exit_status);

// Records the request, runs `run`, records its outcome; returns its exit
// status. Without a journal (no systemd) nothing is recorded beyond mtctl's
// own output.
int Audited(const AuditedOp& what, const std::function<int()>& run);

}  // namespace mt::cli
