// mtctl pair add | pairs | pause | resume: protected streams ("pairs": a
// source machine's disks → target disks of this master target).
//
//   mtctl pair add --stream NAME --disk INDEX:TARGET[:SOURCE_ID] ... [--group G]
//                  [--window 24h] [--rpo 15m] [--app-frequency 60m]
//                  [--full-action prune|stop] [--blank] [--json]
//       TARGET: a WWID in any spelling (naa.6000c29..., 36000c29..., wwn-0x...)
//       or a device path (/dev/sdc; non-SCSI devices only when allowed by
//       allow_non_scsi). Prints the stream's credential once, for the sender.
//       --blank: the targets are new, blank disks; the sender's first resync
//       copies every block instead of comparing (speed only: a full copy
//       makes a target equal to its source whatever it held).
//   mtctl pairs [--json]
//   mtctl pause --stream NAME    /    mtctl resume --stream NAME
//   mtctl resync --stream NAME [--disk INDEX]... [--json]
//       A resync on demand (through the daemon only): the disks' resync
//       becomes pending again, so the sender's resync runs once more.
//
// Through the daemon's control socket when mt-agent runs; otherwise offline,
// against the retention catalog (the output says which). Offline, the pair is
// recorded and mt-agent starts it when it starts.
#include <iomanip>
#include <sstream>

#include "cli/agent_link.h"
#include "cli/audit.h"
#include "cli/commands.h"
#include "control/pairs.h"
#include "config/credential_store.h"
#include "inventory/inventory.h"
#include "mt/shim/clock.h"
#include "mt/shim/disk_system.h"
#include "mt/shim/file_system.h"

namespace mt::cli {

namespace {

constexpr auto kPairAddTimeout = std::chrono::seconds(120);
constexpr auto kQueryTimeout = std::chrono::seconds(30);

struct PairOptions {
  std::string stream;
  std::string group;
  std::vector<std::string> disks;
  std::vector<uint32_t> resync_disks;
  std::string window, rpo, app_frequency, full_action;
  bool blank = false;  // pair add: every target is new and blank
  bool json = false;
};

// "INDEX:TARGET[:SOURCE_ID]". TARGET ends at the next ':' (WWIDs and device
// paths have none).
Result<proto::PairDiskSpec> ParseDiskSpec(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Status(Errc::kInvalidArgument,
                  "--disk " + text + ": " + why + " (expected INDEX:TARGET[:SOURCE_ID])");
  };
  const size_t c1 = text.find(':');
  if (c1 == std::string::npos || c1 == 0) return bad("no disk index");
  const std::string index = text.substr(0, c1);
  if (index.size() > 9 || index.find_first_not_of("0123456789") != std::string::npos)
    return bad("disk index '" + index + "' is not a number");
  const size_t c2 = text.find(':', c1 + 1);
  proto::PairDiskSpec s;
  s.set_disk(static_cast<uint32_t>(std::stoul(index)));
  s.set_target(text.substr(c1 + 1, c2 == std::string::npos ? std::string::npos : c2 - c1 - 1));
  if (c2 != std::string::npos) s.set_source_disk_id(text.substr(c2 + 1));
  if (s.target().empty()) return bad("no target");
  return s;
}

Result<proto::PairAdd> BuildRequest(const PairOptions& o) {
  proto::PairAdd r;
  r.set_stream(o.stream);
  r.set_group(o.group);
  for (const auto& d : o.disks) {
    MT_ASSIGN_OR_RETURN(proto::PairDiskSpec s, ParseDiskSpec(d));
    s.set_blank(o.blank);
    *r.add_disks() = s;
  }
  auto duration = [](const std::string& flag, const std::string& v) -> Result<int64_t> {
    if (v.empty()) return int64_t{0};
    auto d = daemon::ParseDuration(v);
    if (!d.ok()) return Status(Errc::kInvalidArgument, flag + ": " + d.status().message());
    return *d;
  };
  auto* p = r.mutable_policy();
  MT_ASSIGN_OR_RETURN(int64_t window, duration("--window", o.window));
  MT_ASSIGN_OR_RETURN(int64_t rpo, duration("--rpo", o.rpo));
  MT_ASSIGN_OR_RETURN(int64_t app, duration("--app-frequency", o.app_frequency));
  p->set_window_ns(window);
  p->set_rpo_threshold_ns(rpo);
  p->set_app_frequency_ns(app);
  p->set_full_action(o.full_action);
  return r;
}

std::string Size(uint64_t b) {
  std::ostringstream s;
  if (b >= (1ull << 30))
    s << std::fixed << std::setprecision(1) << static_cast<double>(b) / (1ull << 30) << " GiB";
  else
    s << std::fixed << std::setprecision(1) << static_cast<double>(b) / (1ull << 20) << " MiB";
  return s.str();
}

std::string Rpo(const proto::Pair& p) {
  return p.rpo_ns() < 0 ? "-" : control::HumanDuration(p.rpo_ns());
}

Result<proto::PairAddResult> AddOffline(Context& ctx, const daemon::AgentConfig& config,
                                        const proto::PairAdd& request) {
  MT_ASSIGN_OR_RETURN(auto catalog, OpenOfflineCatalog(config, /*writable=*/true));
  daemon::CredentialStore credentials(shim::PosixFileSystem(), config.credentials_dir);
  shim::HostDiskSystemOptions ho;
  ho.sysroot = ctx.global.sysroot;
  MT_ASSIGN_OR_RETURN(auto sys, shim::OpenHostDiskSystem(ho));
  control::PairEnvironment env;
  env.catalog = catalog.get();
  env.credentials = &credentials;
  env.disks = sys.get();
  env.clock = &shim::SystemClock();
  MT_ASSIGN_OR_RETURN(env.inventory,
                      control::AgentInventoryConfig(*catalog, *sys, config.retention_dir,
                                                    config.allow_non_scsi));
  env.default_policy = config.policy;
  MT_ASSIGN_OR_RETURN(proto::PairAddResult r, control::AddPair(request, env));
  r.set_source("catalog");
  return r;
}

// " 43% (1.7 GiB of 4.0 GiB, 230 MiB/s, ETA 10 s)" for a resync under way
// that the daemon has seen progress of; "" otherwise.
std::string ResyncProgressText(const proto::PairDisk& d) {
  if (d.resync_state() == "complete" || d.resync_bytes() == 0 || d.size_bytes() == 0) return "";
  std::ostringstream o;
  o << " " << 100 * d.resync_bytes() / d.size_bytes() << "% (" << Size(d.resync_bytes()) << " of "
    << Size(d.size_bytes());
  if (d.resync_bytes_per_second() > 0) {
    o << ", " << d.resync_bytes_per_second() / (1 << 20) << " MiB/s, ETA "
      << (d.size_bytes() - d.resync_bytes()) / d.resync_bytes_per_second() << " s";
  }
  o << ")";
  return o.str();
}

void PrintPairLine(std::ostream& out, const proto::Pair& p) {
  out << "stream " << p.name() << " (id " << p.stream_id() << ")"
      << (p.group().empty() ? "" : ", group " + p.group()) << ": " << p.state();
  if (!p.error().empty()) out << " (" << p.error() << ")";
  out << "\n";
  for (const auto& d : p.disks())
    out << "  disk " << d.disk() << "  " << d.target_id() << "  "
        << (d.target_device().empty() ? "-" : d.target_device()) << "  " << Size(d.size_bytes())
        << "  block " << d.block_size() << "  resync " << d.resync_state() << ResyncProgressText(d)
        << (d.target_blank() && d.resync_complete_seq() == 0 ? "  (declared blank: full copy)" : "")
        << (d.source_disk_id().empty() ? "" : "  source " + d.source_disk_id()) << "\n";
}

int RunPairAdd(Context& ctx, const PairOptions& o) {
  auto request = BuildRequest(o);
  if (!request.ok()) return ctx.Fail(request.status(), 2);
  auto config = LoadAgentConfigForCli(ctx);
  if (!config.ok()) return ctx.Fail(config.status());
  // One rule offline and through the daemon: the configuration alone allows
  // non-SCSI targets, since mt-agent checks every target against it at each
  // start (a pair added with the flag would fail there every time).
  if (!ctx.global.allow_non_scsi.empty())
    return ctx.Fail("--allow-non-scsi does not apply to pair add: list the device in "
                    "[targets] allow_non_scsi of " +
                        (ctx.global.config.empty() ? std::string(daemon::kDefaultConfigPath)
                                                   : ctx.global.config) +
                        " (mt-agent reads it when it starts)",
                    2);
  proto::ControlRequest req;
  *req.mutable_pair_add() = *request;
  proto::PairAddResult result;
  auto online = CallAgent(ctx, *config, req, kPairAddTimeout);
  if (online.ok()) {
    result = online->pair_add();
  } else if (online.status().code() == Errc::kUnavailable) {
    auto offline = AddOffline(ctx, *config, *request);
    if (!offline.ok()) return ctx.Fail(offline.status());
    result = *offline;
  } else {
    return ctx.Fail(online.status());
  }
  if (o.json) return PrintJson(ctx, result);
  const bool daemon = result.source() == "daemon";
  ctx.out << (daemon ? "pair added through mt-agent (running)"
                     : "pair added offline to the catalog in " + config->retention_dir +
                           " (mt-agent is not running; it starts the stream when it starts)")
          << "\n";
  PrintPairLine(ctx.out, result.pair());
  ctx.out << "credential for the sender (shown only now): " << result.credential_hex() << "\n"
          << "  kept in " << result.credential_file() << "\n";
  return 0;
}

Result<proto::PairList> GetPairs(Context& ctx, const daemon::AgentConfig& config) {
  proto::ControlRequest req;
  req.mutable_list_pairs();
  auto online = CallAgent(ctx, config, req, kQueryTimeout);
  if (online.ok()) return online->pairs();
  if (online.status().code() != Errc::kUnavailable) return online.status();
  MT_ASSIGN_OR_RETURN(auto catalog, OpenOfflineCatalog(config, /*writable=*/false));
  return control::ListPairsFromCatalog(*catalog, shim::SystemClock().NowNs());
}

int RunPairs(Context& ctx, const PairOptions& o) {
  auto config = LoadAgentConfigForCli(ctx);
  if (!config.ok()) return ctx.Fail(config.status());
  auto list = GetPairs(ctx, *config);
  if (!list.ok()) return ctx.Fail(list.status());
  if (o.json) return PrintJson(ctx, *list);
  if (list->source() == "catalog")
    ctx.out << "mt-agent is not running; pairs as the catalog in " << config->retention_dir
            << " records them\n";
  if (list->pairs().empty()) {
    ctx.out << "no pairs\n";
    return 0;
  }
  for (const auto& p : list->pairs()) {
    PrintPairLine(ctx.out, p);
    ctx.out << "  applied seq " << p.applied_seq();
    if (p.running())
      ctx.out << ", durable seq " << p.durable_seq() << ", backlog " << p.backlog_records()
              << " records (" << Size(p.wal_bytes()) << ")" << (p.throttled() ? ", THROTTLED" : "")
              << (p.attached() ? ", sender connected" : ", no sender");
    ctx.out << ", RPO " << Rpo(p) << " (threshold "
            << control::HumanDuration(p.policy().rpo_threshold_ns()) << ")\n";
  }
  return 0;
}

// Pause / resume: the daemon stops or starts the stream; offline, only the
// catalog state changes (mt-agent honours it when it starts).
int RunPauseResume(Context& ctx, const PairOptions& o, bool pause) {
  if (o.stream.empty()) return ctx.Fail("--stream is required", 2);
  auto config = LoadAgentConfigForCli(ctx);
  if (!config.ok()) return ctx.Fail(config.status());
  proto::ControlRequest req;
  if (pause)
    req.mutable_pause()->set_stream(o.stream);
  else
    req.mutable_resume()->set_stream(o.stream);
  proto::Pair pair;
  std::string how = "through mt-agent";
  auto online = CallAgent(ctx, *config, req, kPairAddTimeout);
  if (online.ok()) {
    pair = online->pair();
  } else if (online.status().code() == Errc::kUnavailable) {
    auto catalog = OpenOfflineCatalog(*config, /*writable=*/true);
    if (!catalog.ok()) return ctx.Fail(catalog.status());
    auto row = (*catalog)->FindStream(o.stream);
    if (!row.ok()) return ctx.Fail(row.status());
    if (!*row) return ctx.Fail("no stream '" + o.stream + "'");
    if ((*row)->state == retention::StreamState::kCommitted)
      return ctx.Fail("stream '" + o.stream + "' is committed");
    const retention::StreamState to =
        pause ? retention::StreamState::kPaused : retention::StreamState::kProtected;
    Status s = (*catalog)->SetStreamState((**row).id, to, "");
    if (!s.ok()) return ctx.Fail(s);
    (*row)->state = to;
    (*row)->error.clear();
    auto p = control::PairFromCatalog(**catalog, **row, shim::SystemClock().NowNs());
    if (!p.ok()) return ctx.Fail(p.status());
    pair = *p;
    how = "offline (mt-agent is not running; it applies this when it starts)";
  } else {
    return ctx.Fail(online.status());
  }
  if (o.json) return PrintJson(ctx, pair);
  ctx.out << "stream " << pair.name() << " " << (pause ? "paused" : "resumed") << " " << how
          << ": " << pair.state() << "\n";
  return 0;
}

// Resync on demand: only through the daemon. Offline, a WAL the daemon has
// not applied yet could hold a resync completion that would undo the
// request when it is applied; and a resync needs the stream running anyway.
int RunResync(Context& ctx, const PairOptions& o) {
  if (o.stream.empty()) return ctx.Fail("--stream is required", 2);
  auto config = LoadAgentConfigForCli(ctx);
  if (!config.ok()) return ctx.Fail(config.status());
  auto lock = LockOperations(*config);  // not while a rollback works on the stream's files
  if (!lock.ok()) return ctx.Fail(lock.status());
  proto::ControlRequest req;
  req.mutable_resync()->set_stream(o.stream);
  for (uint32_t d : o.resync_disks) req.mutable_resync()->add_disks(d);
  auto online = CallAgent(ctx, *config, req, kPairAddTimeout);
  if (!online.ok()) {
    if (online.status().code() == Errc::kUnavailable)
      return ctx.Fail(online.status().message() +
                      "; a resync runs in mt-agent: start it (systemctl start mt-agent) and ask again");
    return ctx.Fail(online.status());
  }
  const proto::Pair& pair = online->pair();
  if (o.json) return PrintJson(ctx, pair);
  std::string which;
  for (const auto& d : pair.disks())
    if (d.resync_state() != "complete")
      which += (which.empty() ? "" : ", ") + std::to_string(d.disk());
  ctx.out << "stream " << pair.name() << ": resync of disk(s) " << which << " required; the stream is "
          << pair.state() << (pair.running() ? " and running" : " (not running: see mtctl pairs)")
          << ".\nStart the sender's resync (mtsend resync, or the source's agent). Until it completes "
             "the stream has no recovery point; the points from before stay valid.\n";
  return 0;
}

}  // namespace

void AddPairsCommand(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<PairOptions>();

  CLI::App* pair = app.add_subcommand("pair", "Create protected pairs (streams)");
  pair->require_subcommand(1);
  CLI::App* add = pair->add_subcommand(
      "add", "Protect a stream: its disks onto target disks, and a credential for the sender");
  add->add_option("--stream", o->stream, "Stream name (the source machine)")->required();
  add->add_option("--disk", o->disks,
                  "INDEX:TARGET[:SOURCE_ID]; TARGET is a WWID or a device path; repeatable")
      ->required()
      ->type_name("SPEC");
  add->add_option("--group", o->group, "Replication group");
  add->add_option("--window", o->window, "Retention window (default from agent.toml: 24h)")
      ->type_name("DURATION");
  add->add_option("--rpo", o->rpo, "RPO alert threshold (default 15m)")->type_name("DURATION");
  add->add_option("--app-frequency", o->app_frequency,
                  "Expected app-consistent point interval (default 60m)")
      ->type_name("DURATION");
  add->add_option("--full-action", o->full_action,
                  "When retention is full: prune (drop oldest points) or stop")
      ->check(CLI::IsMember({"prune", "stop"}));
  add->add_flag("--blank", o->blank,
                "The targets are new, blank disks (all zeros): the sender's first resync copies "
                "every block without comparing (mtsend resync takes --full by itself)");
  add->add_flag("--json", o->json, "Protobuf JSON (PairAddResult)");
  add->callback([&ctx, o] { ctx.exit_code = RunPairAdd(ctx, *o); });

  CLI::App* pairs = app.add_subcommand("pairs", "List the protected pairs with their health");
  pairs->add_flag("--json", o->json, "Protobuf JSON (PairList)");
  pairs->callback([&ctx, o] { ctx.exit_code = RunPairs(ctx, *o); });

  CLI::App* pause = app.add_subcommand("pause", "Stop applying and receiving a stream");
  pause->add_option("--stream", o->stream, "Stream name")->required();
  pause->add_flag("--json", o->json, "Protobuf JSON (Pair)");
  pause->callback([&ctx, o] { ctx.exit_code = RunPauseResume(ctx, *o, true); });

  CLI::App* resume = app.add_subcommand("resume", "Start a paused (or failed) stream again");
  resume->add_option("--stream", o->stream, "Stream name")->required();
  resume->add_flag("--json", o->json, "Protobuf JSON (Pair)");
  resume->callback([&ctx, o] { ctx.exit_code = RunPauseResume(ctx, *o, false); });

  CLI::App* resync = app.add_subcommand(
      "resync", "Resync a stream's disks again (a source that lost track of its changes)");
  resync->add_option("--stream", o->stream, "Stream name")->required();
  resync->add_option("--disk", o->resync_disks, "Disk index; repeatable (default: every disk)")
      ->type_name("INDEX");
  resync->add_flag("--json", o->json, "Protobuf JSON (Pair)");
  resync->callback([&ctx, o] {
    std::string disks;
    for (uint32_t d : o->resync_disks) disks += (disks.empty() ? "" : ",") + std::to_string(d);
    ctx.exit_code = Audited({"resync", o->stream, "", disks, "", "", ""},
                            [&ctx, o] { return RunResync(ctx, *o); });
  });
}

}  // namespace mt::cli
