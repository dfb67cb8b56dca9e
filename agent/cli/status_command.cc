// mtctl status [--json]: the agent at a glance — version, uptime, data port
// and TLS fingerprint, retention space, every stream's health, and alerts
// (RPO over threshold, no app-consistent point within twice the app
// frequency, stream failed, retention low on space).
//
// From the daemon when it runs; otherwise from the catalog (daemon_running is
// false, live figures absent, alerts from what the catalog records plus an
// `agent-down` alert). Exit status: 0 when the daemon answered; 3 when it is
// not running (the catalog's status is still printed, the reason goes to
// stderr as the one failure line), so monitoring never takes a stopped agent
// for a healthy one; 1 when nothing could be read.
#include <ctime>

#include "cli/agent_link.h"
#include "cli/commands.h"
#include "control/pairs.h"
#include "mt/shim/clock.h"
#include "mt/shim/file_system.h"
#include "retention/policy.h"

namespace mt::cli {

namespace {

struct StatusOptions {
  bool json = false;
};

std::string GiB(uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(b) / (1ull << 30));
  return buf;
}

Result<proto::AgentStatus> OfflineStatus(const daemon::AgentConfig& config) {
  proto::AgentStatus st;
  st.set_daemon_running(false);
  st.set_source("catalog");
  const int64_t now = shim::SystemClock().NowNs();
  st.set_now_ns(now);
  st.set_listen(config.ListenAddress());
  st.set_retention_dir(config.retention_dir);
  MT_ASSIGN_OR_RETURN(auto catalog, OpenOfflineCatalog(config, /*writable=*/false));
  control::RetentionSpace space;
  space.dir = config.retention_dir;
  auto info = shim::PosixFileSystem().Space(config.retention_dir);
  if (info.ok()) {
    retention::SpacePolicy sp;
    sp.low_space_percent = config.low_space_percent;
    sp.low_space_min_bytes = config.low_space_min_bytes;
    sp.low_space_max_bytes = config.low_space_max_bytes;
    st.set_retention_capacity_bytes(info->capacity);
    st.set_retention_available_bytes(info->available);
    space.available_bytes = info->available;
    space.threshold_bytes = retention::LowSpaceThreshold(sp, info->capacity);
    space.low_space = info->available < space.threshold_bytes;
    st.set_retention_low_space(space.low_space);
  }
  MT_ASSIGN_OR_RETURN(proto::PairList list, control::ListPairsFromCatalog(*catalog, now));
  *st.mutable_pairs() = list.pairs();
  for (auto& a : control::ComputeAlerts({list.pairs().begin(), list.pairs().end()}, now, space))
    *st.add_alerts() = std::move(a);
  return st;
}

// The exit status when mt-agent is not running (LSB, systemctl status: 3).
constexpr int kExitNotRunning = 3;

int PrintText(Context& ctx, const proto::AgentStatus& st) {
  if (st.daemon_running()) {
    ctx.out << "mt-agent " << st.version() << ": running for "
            << control::HumanDuration(st.uptime_s() * 1'000'000'000) << " (since "
            << UtcTime(st.started_ns(), "-") << ")\n";
    ctx.out << "data port: " << (st.listen().empty() ? "not listening" : st.listen());
    if (!st.tls_fingerprint().empty()) ctx.out << ", TLS fingerprint " << st.tls_fingerprint();
    ctx.out << "\n";
    if (!st.cs_link().empty()) ctx.out << "configuration server link: " << st.cs_link() << "\n";
  } else {
    ctx.out << "mt-agent: not running (status from the catalog in " << st.retention_dir()
            << ")\n";
  }
  ctx.out << "retention " << st.retention_dir() << ": " << GiB(st.retention_available_bytes())
          << " free of " << GiB(st.retention_capacity_bytes())
          << (st.retention_low_space() ? "  LOW ON SPACE" : "") << "\n";
  ctx.out << "streams: " << st.pairs_size() << "\n";
  for (const auto& p : st.pairs()) {
    ctx.out << "  " << p.name() << "  " << p.state() << "  disks " << p.disks_size()
            << "  applied seq " << p.applied_seq() << "  RPO "
            << (p.rpo_ns() < 0 ? "-" : control::HumanDuration(p.rpo_ns()));
    if (st.daemon_running())
      ctx.out << "  backlog " << p.backlog_records() << (p.throttled() ? "  THROTTLED" : "")
              << (p.attached() ? "  sender connected" : "");
    ctx.out << "\n";
  }
  if (st.alerts().empty()) {
    ctx.out << "alerts: none\n";
  } else {
    ctx.out << "alerts: " << st.alerts_size() << "\n";
    for (const auto& a : st.alerts()) ctx.out << "  [" << a.kind() << "] " << a.message() << "\n";
  }
  return 0;
}

int RunStatus(Context& ctx, const StatusOptions& o) {
  auto config = LoadAgentConfigForCli(ctx);
  if (!config.ok()) return ctx.Fail(config.status());
  proto::ControlRequest req;
  req.mutable_get_status();
  proto::AgentStatus st;
  auto online = CallAgent(ctx, *config, req, std::chrono::seconds(30));
  std::string down;  // why the daemon did not answer; "" when it did
  if (online.ok()) {
    st = online->status();
  } else if (online.status().code() == Errc::kUnavailable) {
    auto offline = OfflineStatus(*config);
    if (!offline.ok()) return ctx.Fail(offline.status());
    st = *offline;
    down = online.status().message();
    proto::Alert* a = st.add_alerts();
    a->set_kind("agent-down");
    a->set_message(down);
    for (int i = st.alerts_size() - 1; i > 0; --i) st.mutable_alerts()->SwapElements(i, i - 1);
  } else {
    return ctx.Fail(online.status());
  }
  const int printed = o.json ? PrintJson(ctx, st) : PrintText(ctx, st);
  if (printed != 0) return printed;
  return down.empty() ? 0 : ctx.Fail(down, kExitNotRunning);
}

}  // namespace

void AddStatusCommand(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<StatusOptions>();
  CLI::App* cmd = app.add_subcommand("status", "The agent's health: streams, RPO, alerts");
  cmd->add_flag("--json", o->json, "Protobuf JSON (AgentStatus)");
  cmd->callback([&ctx, o] { ctx.exit_code = RunStatus(ctx, *o); });
}

}  // namespace mt::cli
