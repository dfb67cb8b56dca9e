// Structured entries in the systemd journal, and who is asking: for the audit
// trail of operations that destroy or expose data (mtctl rollback, export,
// commit, release, vsnap ...).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mt::shim {

// FIELD=value pairs of a journal entry; FIELD is upper-case ASCII, digits and
// '_' (journald's rule), e.g. {"OP", "rollback"}.
using JournalFields = std::vector<std::pair<std::string, std::string>>;

// Sends one entry (MESSAGE, PRIORITY and `fields`) to the journal. False when
// there is no journal to send to (no systemd on this host): the caller's own
// output is then the only record. `priority` is syslog's (5: notice).
bool SendToJournal(int priority, const std::string& message, const JournalFields& fields);

// Who runs this process: the real uid and its user name, the user sudo ran
// it for (SUDO_USER, "" if none) and the login uid of the session
// (/proc/self/loginuid; -1 when unset), which survives su and sudo.
struct Requester {
  uint32_t uid = 0;
  std::string user;       // "root"; "" when the uid has no name
  std::string sudo_user;  // "alice"
  int64_t login_uid = -1;
};
Requester CurrentRequester();

}  // namespace mt::shim
