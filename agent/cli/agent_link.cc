#include "cli/agent_link.h"

#include "control/control_client.h"
#include "control/control_server.h"
#include "mt/shim/file_system.h"

namespace mt::cli {

Result<daemon::AgentConfig> LoadAgentConfigForCli(const Context& ctx) {
  const bool explicit_path = !ctx.global.config.empty();
  const std::string path = explicit_path ? ctx.global.config : daemon::kDefaultConfigPath;
  auto c = daemon::LoadAgentConfig(path);
  if (c.ok()) return c;
  if (c.status().code() == Errc::kNotFound && !explicit_path) return daemon::AgentConfig{};
  return c.status();
}

std::string ControlSocketPath(const Context& ctx, const daemon::AgentConfig& config) {
  return ctx.global.socket.empty() ? config.control_socket : ctx.global.socket;
}

Result<proto::ControlResponse> CallAgent(const Context& ctx, const daemon::AgentConfig& config,
                                         const proto::ControlRequest& request,
                                         std::chrono::milliseconds timeout) {
  MT_ASSIGN_OR_RETURN(proto::ControlResponse r,
                      control::CallControl(ControlSocketPath(ctx, config), request, timeout));
  Status s = control::ResponseStatus(r);
  if (!s.ok()) {
    // "Starting"/"stopping" is the daemon's kUnavailable: not "not running".
    if (s.code() == Errc::kUnavailable) return Status(Errc::kBusy, s.message());
    return s;
  }
  return r;
}

Result<std::unique_ptr<retention::Catalog>> OpenOfflineCatalog(const daemon::AgentConfig& config,
                                                               bool writable) {
  const std::string& dir = config.retention_dir;
  if (!shim::PosixFileSystem().Exists(dir))
    return Status(Errc::kNotFound, "mt-agent is not running and the retention directory " + dir +
                                       " does not exist (mtctl retention prepare DEVICE --force)");
  const std::string path = shim::JoinPath(dir, "catalog.db");
  if (writable) return retention::Catalog::Open(path);
  auto c = retention::Catalog::OpenReadOnly(path);
  if (!c.ok() && c.status().code() == Errc::kNotFound)
    return Status(Errc::kNotFound, "mt-agent is not running and " + dir +
                                       " holds no retention store yet (no catalog.db)");
  return c;
}

int PrintJson(Context& ctx, const google::protobuf::Message& message) {
  auto j = ToJson(message, /*pretty=*/true);
  if (!j.ok()) return ctx.Fail(j.status());
  ctx.out << *j;
  return 0;
}

Result<std::unique_ptr<shim::FileLock>> LockOperations(const daemon::AgentConfig& config) {
  const std::string path = config.retention_dir + "/.mtctl.lock";
  auto lock = shim::TryLockFile(path);
  if (lock.ok() || lock.status().code() != Errc::kBusy) return lock;
  return Status(Errc::kBusy, "another mtctl operation (rollback, export, commit, vsnap create or "
                             "remove, release, attach, resync) is running on " +
                             config.retention_dir + ": wait for it to finish and run this again");
}

}  // namespace mt::cli
