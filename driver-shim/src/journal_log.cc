#include "mt/shim/journal_log.h"

#include <pwd.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace mt::shim {

bool SendToJournal(int priority, const std::string& message, const JournalFields& fields) {
  std::vector<std::string> lines;
  lines.reserve(fields.size() + 2);
  lines.push_back("MESSAGE=" + message);
  lines.push_back("PRIORITY=" + std::to_string(priority));
  for (const auto& [k, v] : fields) lines.push_back(k + "=" + v);
  std::vector<iovec> iov;
  iov.reserve(lines.size());
  for (std::string& l : lines) iov.push_back(iovec{l.data(), l.size()});
  return sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) == 0;
}

Requester CurrentRequester() {
  Requester r;
  r.uid = getuid();
  passwd pw{};
  passwd* found = nullptr;
  char buf[4096];
  if (getpwuid_r(r.uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr)
    r.user = found->pw_name;
  if (const char* s = std::getenv("SUDO_USER")) r.sudo_user = s;
  std::ifstream in("/proc/self/loginuid");
  int64_t login = -1;
  // 4294967295 ((uid_t)-1): no login session (a service, a boot script).
  if (in >> login && login >= 0 && login != 4294967295LL) r.login_uid = login;
  return r;
}

}  // namespace mt::shim
