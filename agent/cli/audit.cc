#include "cli/audit.h"

namespace mt::cli {

namespace {
std::string WhoText(const shim::Requester& who) {
  std::string s = (who.user.empty() ? "uid " + std::to_string(who.uid) : who.user);
  if (!who.sudo_user.empty()) s += " (sudo from " + who.sudo_user + ")";
  return s;
}
}  // namespace

std::string AuditMessage(const AuditedOp& what, const shim::Requester& who,
                         const std::string& outcome) {
  std::string target;
  if (!what.group.empty()) target += " group " + what.group;
  if (!what.stream.empty()) target += " stream " + what.stream;
  if (!what.disk.empty()) target += " disk " + what.disk;
  if (!what.vsnap.empty()) target += " vsnap " + what.vsnap;
  if (!what.point.empty()) target += " at " + what.point;
  if (!what.out.empty()) target += " to " + what.out;
  return "mtctl " + what.op + target + ": " + outcome + " by " + WhoText(who);
}

shim::JournalFields AuditFields(const AuditedOp& what, const shim::Requester& who,
                                const std::string& outcome, int exit_status) {
  shim::JournalFields f;
  auto add = [&f](const char* k, const std::string& v) {
    if (!v.empty()) f.emplace_back(k, v);
  };
  add("SYSLOG_IDENTIFIER", "mtctl");
  add("OP", what.op);
  add("STREAM", what.stream);
  add("GROUP", what.group);
  add("DISK", what.disk);
  add("POINT", what.point);
  add("OUT", what.out);
  add("VSNAP", what.vsnap);
  add("OUTCOME", outcome);
  if (outcome != "requested") add("EXIT_STATUS", std::to_string(exit_status));
  add("REQUESTED_BY", who.user);
  add("REQUESTED_UID", std::to_string(who.uid));
  add("SUDO_USER", who.sudo_user);
  if (who.login_uid >= 0) add("LOGIN_UID", std::to_string(who.login_uid));
  return f;
}

int Audited(const AuditedOp& what, const std::function<int()>& run) {
  const shim::Requester who = shim::CurrentRequester();
  constexpr int kNotice = 5, kWarning = 4;
  shim::SendToJournal(kNotice, AuditMessage(what, who, "requested"),
                      AuditFields(what, who, "requested", 0));
  const int code = run();
  const std::string outcome = code == 0 ? "done" : "refused";
  shim::SendToJournal(code == 0 ? kNotice : kWarning, AuditMessage(what, who, outcome),
                      AuditFields(what, who, outcome, code));
  return code;
}

}  // namespace mt::cli
