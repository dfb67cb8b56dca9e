#include "cs/cs_cli.h"

#include <google/protobuf/util/json_util.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <csignal>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "config/agent_config.h"
#include "config/credential_store.h"
#include "config/tls_identity.h"
#include "control/pairs.h"
#include "cs/agent_calls.h"
#include "cs/cs_server.h"
#include "cs/cs_store.h"
#include "cs/placement.h"
#include "cs/web_api.h"
#include "cs/web_auth.h"
#include "cs/web_server.h"
#include "cslink/link_channel.h"
#include "cslink/registration.h"
#include "mt/shim/clock.h"
#include "mt/shim/file_system.h"

namespace mt::cs {

namespace {

using std::chrono::milliseconds;

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

int64_t Now() { return shim::SystemClock().NowNs(); }

struct Options {
  std::string dir = "/var/lib/mt-cs";
  std::string agent;
  bool json = false;
  std::string timeout = "10m";
};

class Cli {
 public:
  Cli(std::ostream& out, std::ostream& err) : out_(out), err_(err) {}

  int Fail(const std::string& message, int code = 1) {
    std::string line = message;
    for (char& c : line)
      if (c == '\n') c = ' ';
    err_ << "mt-cs: " << line << std::endl;
    exit_ = code;
    return code;
  }
  int Fail(const Status& s) { return Fail(s.message()); }
  int exit() const { return exit_; }

  Result<std::unique_ptr<CsStore>> OpenStore(const Options& o) {
    MT_RETURN_IF_ERROR(shim::PosixFileSystem().CreateDir(o.dir));
    return CsStore::Open(shim::JoinPath(o.dir, "cs.db"));
  }

  // The store, the agent --agent names and --timeout: what every command
  // for one agent needs.
  struct ForOneAgent {
    std::unique_ptr<CsStore> store;
    AgentRow agent;
    milliseconds timeout{0};
  };
  Result<ForOneAgent> ForAgent(const Options& o) {
    ForOneAgent f;
    MT_ASSIGN_OR_RETURN(f.store, OpenStore(o));
    MT_ASSIGN_OR_RETURN(f.agent, f.store->FindAgent(o.agent));
    MT_ASSIGN_OR_RETURN(f.timeout, Timeout(o));
    return f;
  }

  Result<milliseconds> Timeout(const Options& o) {
    MT_ASSIGN_OR_RETURN(const int64_t ns, daemon::ParseDuration(o.timeout));
    return milliseconds(ns / 1'000'000);
  }

  void PrintJson(const google::protobuf::Message& m) {
    auto j = cli::ToJson(m, true);
    out_ << (j.ok() ? *j : "{}\n");
  }

  // Queues `r` for the agent and waits for the answer (agent_calls.h),
  // saying once when the agent is not connected.
  Result<proto::ControlResponse> Call(CsStore& store, const AgentRow& agent,
                                      const proto::ControlRequest& r, milliseconds timeout) {
    return CallAgent(store, agent, r, CallOpts(agent, timeout));
  }
  CallOptions CallOpts(const AgentRow& agent, milliseconds timeout) {
    CallOptions co;
    co.timeout = timeout;
    co.stop = &g_stop;
    co.on_waiting = [this, id = agent.id](uint64_t seq) {
      err_ << "mt-cs: agent " << id << " is not connected: request " << seq << " waits for it" << std::endl;
    };
    return co;
  }

  // Starts a job on the agent and follows it to its end through the job
  // updates the agent pushes. kFailed... the job's message when it failed.
  Result<proto::Job> RunJob(CsStore& store, const AgentRow& agent, const proto::JobSpec& spec,
                            milliseconds timeout, bool quiet) {
    MT_ASSIGN_OR_RETURN(const proto::Job started, StartAgentJob(store, agent, spec, CallOpts(agent, timeout)));
    const std::string id = started.id();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string last;
    while (!g_stop) {
      MT_ASSIGN_OR_RETURN(auto job, store.GetJob(agent.id, id));
      if (job) {
        std::string line = job->kind() + " " + job->state();
        if (!job->message().empty()) line += ": " + job->message();
        if (job->total_bytes() > 0) {
          line += " (" + std::to_string(job->done_bytes() * 100 / job->total_bytes()) + "%)";
        }
        if (line != last && !quiet) err_ << "mt-cs: job " << id << ": " << line << std::endl;
        last = line;
        if (job->state() == "succeeded") return *job;
        if (job->state() == "failed" || job->state() == "interrupted") {
          return Status(Errc::kAborted, "job " + id + " " + job->state() + ": " + job->message());
        }
      }
      if (std::chrono::steady_clock::now() > deadline) {
        return Status(Errc::kBusy, "job " + id + " did not finish in time (it goes on: mt-cs jobs)");
      }
      std::this_thread::sleep_for(milliseconds(100));
    }
    return Status(Errc::kAborted, "interrupted");
  }

  std::ostream& out_;
  std::ostream& err_;

 private:
  int exit_ = 0;
};

// The host part of HOST:PORT as given ("0.0.0.0:8443" -> "0.0.0.0").
std::string HostOf(const std::string& host_port) {
  const auto colon = host_port.rfind(':');
  return colon == std::string::npos ? host_port : host_port.substr(0, colon);
}

std::string Age(int64_t ns) {
  if (ns <= 0) return "never";
  const int64_t s = (Now() - ns) / 1'000'000'000;
  return std::to_string(s < 0 ? 0 : s) + " s ago";
}

void AddCommon(CLI::App* c, Options& o, bool agent, bool json) {
  c->add_option("--dir", o.dir, "mt-cs's directory: cs.db, its TLS identity (default /var/lib/mt-cs)")
      ->type_name("DIR");
  if (agent) c->add_option("--agent", o.agent, "The agent: its id or its host name")->type_name("AGENT");
  if (json) c->add_flag("--json", o.json, "Print JSON (protobuf JSON, proto field names)");
}

// Protects `stream` (disk specs INDEX=TARGET) on o.agent, or where
// PlaceProtection puts it when o.agent is empty; keeps the sender's
// credential in <dir>/credentials/<agent>/<stream>.key (0600). `blank`: the
// targets are new, blank disks (the first resync copies in full). On failure
// cli.Fail has said why; returns whether it worked.
bool ProtectStream(Cli& cli, Options& o, const std::string& stream, const std::string& group,
                   const std::vector<std::string>& disk_specs, bool blank) {
  std::ostream& out = cli.out_;
  std::ostream& err = cli.err_;
  proto::ControlRequest r;
  auto* add = r.mutable_pair_add();
  add->set_stream(stream);
  add->set_group(group);
  for (const auto& spec : disk_specs) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos) return cli.Fail("--disk " + spec + ": expected INDEX=TARGET"), false;
    auto* d = add->add_disks();
    d->set_disk(static_cast<uint32_t>(std::strtoul(spec.substr(0, eq).c_str(), nullptr, 10)));
    d->set_target(spec.substr(eq + 1));
    d->set_blank(blank);
  }
  // No --agent: placed on the agent with room (cs/placement.h).
  std::vector<std::string> targets;
  for (const auto& d : add->disks()) targets.push_back(d.target());
  const std::string named = o.agent;
  if (named.empty()) {
    auto store = cli.OpenStore(o);
    if (!store.ok()) return cli.Fail(store.status()), false;
    auto placed = PlaceProtection(**store, targets);
    if (!placed.ok()) return cli.Fail(placed.status()), false;
    o.agent = placed->id;
    err << "mt-cs: placing stream '" << stream << "' on " << placed->id << " ("
        << placed->hostname << "): it sees every target free and has the fewest protected disks"
        << std::endl;
  }
  auto target = cli.ForAgent(o);
  o.agent = named;
  if (!target.ok()) return cli.Fail(target.status()), false;
  auto resp = cli.Call(*target->store, target->agent, r, target->timeout);
  if (!resp.ok()) return cli.Fail(resp.status()), false;
  if (resp->has_error()) return cli.Fail(resp->error().message()), false;
  // The sender's credential, kept like the agent keeps it (0600).
  const AgentRow& agent = target->agent;
  const std::string dir = shim::JoinPath(shim::JoinPath(o.dir, "credentials"), agent.id);
  auto raw = daemon::FromHex(resp->pair_add().credential_hex());
  if (!raw.ok()) return cli.Fail(raw.status()), false;
  daemon::CredentialStore creds(shim::PosixFileSystem(), dir);
  (void)creds.Remove(stream);
  const Status saved = shim::PosixFileSystem().CreateDir(dir).ok()
                           ? shim::WriteFileAtomically(shim::PosixFileSystem(), creds.PathOf(stream),
                                                       resp->pair_add().credential_hex() + "\n")
                           : Status(Errc::kIoError, "cannot create " + dir);
  if (!saved.ok()) return cli.Fail(saved), false;
  if (o.json) {
    cli.PrintJson(resp->pair_add());
  } else {
    out << "stream '" << stream << "' protected on " << agent.id << "; the sender's key: "
        << creds.PathOf(stream) << std::endl;
  }
  return true;
}

}  // namespace

int RunMtCs(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  // Logs go to stderr (the journal under systemd); stdout carries results.
  auto logger = std::make_shared<spdlog::logger>("mt-cs", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("mt-cs: %l: %v");
  spdlog::set_default_logger(std::move(logger));
  Cli cli(out, err);
  Options o;
  CLI::App app{"mt-cs: the reference configuration server of mt-agent master targets", "mt-cs"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");

  // serve
  std::string listen = "0.0.0.0:443", passphrase_file, heartbeat = "30s";
  auto* serve = app.add_subcommand("serve", "Serve agents: registrations, their links, the request queue");
  AddCommon(serve, o, false, false);
  serve->add_option("--listen", listen, "Address to listen on (default 0.0.0.0:443)")->type_name("HOST:PORT");
  serve->add_option("--passphrase-file", passphrase_file, "The passphrase agents register with")
      ->type_name("FILE")->required();
  serve->add_option("--heartbeat", heartbeat, "How often agents report (default 30s)")->type_name("DURATION");
  std::string web_listen = "0.0.0.0:8443", web_token_file;
  serve->add_option("--web-token-file", web_token_file,
                    "Serve the web dashboard, logged into with the token in this file (16+ characters)")
      ->type_name("FILE");
  serve->add_option("--web-listen", web_listen, "Where the dashboard listens (default 0.0.0.0:8443; :0 any port)")
      ->type_name("HOST:PORT");
  serve->callback([&] {
    auto pass = cslink::ReadPassphrase(shim::PosixFileSystem(), passphrase_file);
    if (!pass.ok()) return (void)cli.Fail(pass.status());
    const std::string& p = *pass;
    if (p.size() < 8) return (void)cli.Fail("the passphrase in " + passphrase_file + " is shorter than 8 characters");
    auto beat = daemon::ParseDuration(heartbeat);
    if (!beat.ok()) return (void)cli.Fail(beat.status());
    CsServerOptions so;
    // ":0" = any free port (tests; the port is printed).
    const bool any_port = listen.size() > 2 && listen.substr(listen.size() - 2) == ":0";
    const Status hp = cslink::ParseHostPort(any_port ? listen.substr(0, listen.size() - 2) : listen,
                                            &so.listen_host, &so.port);
    if (!hp.ok()) return (void)cli.Fail(hp);
    if (any_port) so.port = 0;
    so.tls_dir = shim::JoinPath(o.dir, "tls");
    so.passphrase = p;
    so.heartbeat = milliseconds(*beat / 1'000'000);
    auto store = cli.OpenStore(o);
    if (!store.ok()) return (void)cli.Fail(store.status());
    auto server = CsServer::Start(so, **store);
    if (!server.ok()) return (void)cli.Fail(server.status());
    // The dashboard (web_server.h), when it has a token.
    std::unique_ptr<WebAuth> web_auth;
    std::unique_ptr<WebApi> web_api;
    std::unique_ptr<WebServer> web;
    if (!web_token_file.empty()) {
      auto token = cslink::ReadPassphrase(shim::PosixFileSystem(), web_token_file);
      if (!token.ok()) return (void)cli.Fail(token.status());
      auto auth = WebAuth::Create(*token);
      if (!auth.ok()) return (void)cli.Fail(auth.status().WithContext(web_token_file));
      web_auth = std::move(*auth);
      web_api = std::make_unique<WebApi>(**store, *web_auth, milliseconds(15'000));
      WebServerOptions wo;
      const bool web_any = web_listen.size() > 2 && web_listen.substr(web_listen.size() - 2) == ":0";
      const Status whp = cslink::ParseHostPort(web_any ? web_listen.substr(0, web_listen.size() - 2) : web_listen,
                                               &wo.listen_host, &wo.port);
      if (!whp.ok()) return (void)cli.Fail(whp.WithContext("--web-listen"));
      if (web_any) wo.port = 0;
      wo.tls_dir = shim::JoinPath(o.dir, "web-tls");
      auto started = WebServer::Start(wo, *web_api);
      if (!started.ok()) return (void)cli.Fail(started.status().WithContext("the dashboard"));
      web = std::move(*started);
    }
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    spdlog::info("mt-cs listening on {}:{}, certificate fingerprint {}", so.listen_host,
                 (*server)->port(), (*server)->fingerprint());
    out << "mt-cs: listening on " << so.listen_host << ":" << (*server)->port()
        << "; certificate fingerprint " << (*server)->fingerprint() << std::endl;
    if (web) {
      spdlog::info("mt-cs dashboard on https://{}:{}/, certificate fingerprint {}", HostOf(web_listen), web->port(),
                   web->fingerprint());
      out << "mt-cs: dashboard on https://" << HostOf(web_listen) << ":" << web->port() << "/"
          << "; certificate fingerprint " << web->fingerprint() << std::endl;
    }
    while (!g_stop) std::this_thread::sleep_for(milliseconds(200));
    if (web) web->Stop();
    (*server)->Stop();
  });

  // fingerprint
  auto* fp = app.add_subcommand("fingerprint", "Print the certificate fingerprint agents pin");
  AddCommon(fp, o, false, false);
  fp->callback([&] {
    auto id = daemon::LoadOrCreateTlsIdentity(shim::PosixFileSystem(), shim::JoinPath(o.dir, "tls"), "mt-cs");
    if (!id.ok()) return (void)cli.Fail(id.status());
    out << id->fingerprint << std::endl;
  });

  // agents
  auto* agents = app.add_subcommand("agents", "The registered agents and their health");
  AddCommon(agents, o, false, true);
  agents->callback([&] {
    auto store = cli.OpenStore(o);
    if (!store.ok()) return (void)cli.Fail(store.status());
    auto rows = (*store)->ListAgents();
    if (!rows.ok()) return (void)cli.Fail(rows.status());
    if (o.json) {
      out << "[";
      bool first = true;
      for (const AgentRow& a : *rows) {
        proto::AgentStatus st;
        auto h = (*store)->GetHealth(a.id);
        if (h.ok() && *h) st = **h;
        auto j = cli::ToJson(st, false);
        out << (first ? "" : ",") << "\n  {\"id\":\"" << a.id << "\",\"hostname\":\"" << a.hostname
            << "\",\"version\":\"" << a.version << "\",\"address\":\"" << a.address
            << "\",\"connected\":" << (a.connected ? "true" : "false")
            << ",\"registered_ns\":" << a.registered_ns << ",\"last_seen_ns\":" << a.last_seen_ns
            << ",\"status\":" << (j.ok() ? *j : "{}") << "}";
        first = false;
      }
      out << "\n]\n";
      return;
    }
    out << std::left << std::setw(10) << "AGENT" << std::setw(20) << "HOST" << std::setw(12)
        << "LINK" << std::setw(14) << "LAST SEEN" << std::setw(9) << "STREAMS" << std::setw(7)
        << "DISKS" << std::setw(16) << "RETENTION FREE" << "ALERTS\n";
    for (const AgentRow& a : *rows) {
      auto h = (*store)->GetHealth(a.id);
      AgentLoad load;
      int alerts = 0;
      if (h.ok() && *h) {
        load = LoadOf(**h);
        alerts = (*h)->alerts_size();
      }
      const std::string free_space =
          load.retention_capacity_bytes == 0
              ? "-"
              : std::to_string(load.retention_free_bytes >> 20) + " MiB (" +
                    std::to_string(load.retention_free_bytes * 100 / load.retention_capacity_bytes) + "%)";
      out << std::setw(10) << a.id << std::setw(20) << a.hostname << std::setw(12)
          << (a.connected ? "connected" : "down") << std::setw(14) << Age(a.last_seen_ns)
          << std::setw(9) << load.streams << std::setw(7) << load.protected_disks << std::setw(16)
          << free_space << alerts << "\n";
    }
  });

  // disks
  auto* disks = app.add_subcommand("disks", "The disks an agent sees (its last inventory)");
  AddCommon(disks, o, true, true);
  disks->callback([&] {
    auto store = cli.OpenStore(o);
    if (!store.ok()) return (void)cli.Fail(store.status());
    auto a = (*store)->FindAgent(o.agent);
    if (!a.ok()) return (void)cli.Fail(a.status());
    auto inv = (*store)->GetInventory(a->id);
    if (!inv.ok()) return (void)cli.Fail(inv.status());
    if (!*inv) return (void)cli.Fail("agent " + a->id + " has sent no inventory yet");
    if (o.json) return cli.PrintJson(**inv);
    out << std::left << std::setw(10) << "NAME" << std::setw(42) << "WWID" << std::setw(12)
        << "SIZE" << "ROLE\n";
    for (const auto& d : (*inv)->disks()) {
      out << std::setw(10) << d.name() << std::setw(42) << (d.wwid().empty() ? "-" : d.wwid())
          << std::setw(12) << d.size_bytes() << d.role() << "\n";
    }
  });

  // streams
  auto* streams = app.add_subcommand("streams", "The streams of an agent (or of all): state, RPO, backlog");
  AddCommon(streams, o, true, true);
  streams->callback([&] {
    auto store = cli.OpenStore(o);
    if (!store.ok()) return (void)cli.Fail(store.status());
    std::vector<AgentRow> which;
    if (o.agent.empty()) {
      auto all = (*store)->ListAgents();
      if (!all.ok()) return (void)cli.Fail(all.status());
      which = *all;
    } else {
      auto a = (*store)->FindAgent(o.agent);
      if (!a.ok()) return (void)cli.Fail(a.status());
      which.push_back(*a);
    }
    proto::PairList list;
    std::vector<std::string> owners;
    for (const AgentRow& a : which) {
      auto h = (*store)->GetHealth(a.id);
      if (!h.ok() || !*h) continue;
      for (const auto& p : (*h)->pairs()) {
        *list.add_pairs() = p;
        owners.push_back(a.id);
      }
    }
    list.set_source("cs");
    if (o.json) return cli.PrintJson(list);
    out << std::left << std::setw(10) << "AGENT" << std::setw(16) << "STREAM" << std::setw(10)
        << "GROUP" << std::setw(11) << "STATE" << std::setw(10) << "RESYNC" << std::setw(10)
        << "RPO" << "BACKLOG\n";
    for (int i = 0; i < list.pairs_size(); ++i) {
      const auto& p = list.pairs(i);
      std::string resync = "complete";
      for (const auto& d : p.disks())
        if (d.resync_state() != "complete") resync = d.resync_state();
      out << std::setw(10) << owners[i] << std::setw(16) << p.name() << std::setw(10)
          << (p.group().empty() ? "-" : p.group()) << std::setw(11) << p.state() << std::setw(10)
          << resync << std::setw(10)
          << (p.rpo_ns() < 0 ? std::string("-") : control::HumanDuration(p.rpo_ns()))
          << p.backlog_records() << "\n";
    }
  });

  // jobs
  auto* jobs = app.add_subcommand("jobs", "Jobs of an agent (or of all), as the agents reported them");
  AddCommon(jobs, o, true, true);
  jobs->callback([&] {
    auto store = cli.OpenStore(o);
    if (!store.ok()) return (void)cli.Fail(store.status());
    std::string agent_id;
    if (!o.agent.empty()) {
      auto a = (*store)->FindAgent(o.agent);
      if (!a.ok()) return (void)cli.Fail(a.status());
      agent_id = a->id;
    }
    auto rows = (*store)->ListJobs(agent_id);
    if (!rows.ok()) return (void)cli.Fail(rows.status());
    if (o.json) {
      proto::JobList l;
      for (auto& r : *rows) *l.add_jobs() = r.second;
      return cli.PrintJson(l);
    }
    out << std::left << std::setw(10) << "AGENT" << std::setw(28) << "JOB" << std::setw(14)
        << "KIND" << std::setw(12) << "STATE" << "MESSAGE\n";
    for (auto& r : *rows) {
      out << std::setw(10) << r.first << std::setw(28) << r.second.id() << std::setw(14)
          << r.second.kind() << std::setw(12) << r.second.state() << r.second.message() << "\n";
    }
  });

  // points
  std::vector<std::string> point_streams;
  std::string point_group;
  bool app_only = false;
  auto* points = app.add_subcommand("points", "The recovery points of an agent's streams (asked of the agent)");
  AddCommon(points, o, true, true);
  points->add_option("--stream", point_streams, "The stream(s); default every stream (or --group's)");
  points->add_option("--group", point_group, "The streams of this group");
  points->add_flag("--app", app_only, "App-consistent tagged points only");
  points->add_option("--timeout", o.timeout, "How long to wait for the answer (default 10m)");
  points->callback([&] {
    proto::ControlRequest r;
    for (const auto& s : point_streams) r.mutable_list_points()->add_streams(s);
    r.mutable_list_points()->set_group(point_group);
    r.mutable_list_points()->set_app_only(app_only);
    auto target = cli.ForAgent(o);
    if (!target.ok()) return (void)cli.Fail(target.status());
    auto resp = cli.Call(*target->store, target->agent, r, target->timeout);
    if (!resp.ok()) return (void)cli.Fail(resp.status());
    if (resp->has_error()) return (void)cli.Fail(resp->error().message());
    if (o.json) return cli.PrintJson(resp->points());
    out << cli::PointsText(resp->points(), app_only);
  });

  // alerts
  auto* alerts = app.add_subcommand("alerts", "What needs an operator: every agent's alerts (RPO, "
                                              "app points, failed streams, retention space) and "
                                              "agents whose link is down");
  AddCommon(alerts, o, false, true);
  alerts->callback([&] {
    auto store = cli.OpenStore(o);
    if (!store.ok()) return (void)cli.Fail(store.status());
    // Each as proto Alert; agent-wide ones have no stream. The agent's id
    // goes in front of the message in text, in "agent" in JSON.
    auto collected = AgentAlerts(**store, Now());
    if (!collected.ok()) return (void)cli.Fail(collected.status());
    const auto& all = *collected;
    if (o.json) {
      out << "[";
      for (size_t i = 0; i < all.size(); ++i) {
        auto j = cli::ToJson(all[i].second, false);
        out << (i ? "," : "") << "\n  {\"agent\":\"" << all[i].first << "\",\"alert\":" << (j.ok() ? *j : "{}") << "}";
      }
      out << "\n]\n";
      return;
    }
    if (all.empty()) out << "no alerts\n";
    for (const auto& [agent, al] : all) {
      out << std::left << std::setw(10) << agent << std::setw(18) << al.kind() << std::setw(16)
          << (al.stream().empty() ? "-" : al.stream()) << al.message() << "\n";
    }
  });

  // audit
  auto* audit = app.add_subcommand("audit", "The audit lines: registrations, refusals");
  AddCommon(audit, o, false, false);
  audit->callback([&] {
    auto store = cli.OpenStore(o);
    if (!store.ok()) return (void)cli.Fail(store.status());
    auto lines = (*store)->AuditLines(200);
    if (!lines.ok()) return (void)cli.Fail(lines.status());
    for (const auto& l : *lines) out << l << "\n";
  });

  // request: any control command, as protobuf JSON
  std::string request_json;
  auto* request = app.add_subcommand("request", "Send one control command (protobuf JSON of a "
                                                "ControlRequest) to an agent; print its answer");
  AddCommon(request, o, true, false);
  request->add_option("request", request_json, "e.g. '{\"list_pairs\":{}}'")->required();
  request->add_option("--timeout", o.timeout, "How long to wait for the answer (default 10m)");
  request->callback([&] {
    proto::ControlRequest r;
    if (!google::protobuf::util::JsonStringToMessage(request_json, &r).ok() ||
        r.command_case() == proto::ControlRequest::COMMAND_NOT_SET) {
      return (void)cli.Fail("'" + request_json + "' is not a ControlRequest (proto/mt/control.proto)");
    }
    auto target = cli.ForAgent(o);
    if (!target.ok()) return (void)cli.Fail(target.status());
    auto resp = cli.Call(*target->store, target->agent, r, target->timeout);
    if (!resp.ok()) return (void)cli.Fail(resp.status());
    cli.PrintJson(*resp);
    if (resp->has_error()) cli.Fail(resp->error().message());
  });

  // protect
  std::string stream, group;
  std::vector<std::string> disk_specs;
  auto* protect = app.add_subcommand("protect", "Protect a stream onto target disks of an agent "
                                                "(without --agent: the one with room); keeps its "
                                                "credential for the sender");
  AddCommon(protect, o, true, true);
  protect->add_option("--stream", stream, "The stream's name")->required();
  protect->add_option("--group", group, "Its replication group");
  protect->add_option("--disk", disk_specs, "INDEX=TARGET (a WWID); repeatable")->required();
  protect->add_option("--timeout", o.timeout, "How long to wait for the answer (default 10m)");
  bool blank = false;
  protect->add_flag("--blank", blank,
                    "The targets are new, blank disks: the sender's first resync copies every block "
                    "without comparing");
  protect->callback([&] { ProtectStream(cli, o, stream, group, disk_specs, blank); });

  // run: one job, followed to its end
  std::string kind, to, at, out_path, name;
  std::vector<std::string> job_streams;
  uint32_t disk = 0;
  auto* run = app.add_subcommand("run", "Run a job on an agent and follow it: rollback, export, "
                                        "vsnap-create, vsnap-remove, commit, release, attach, resync");
  AddCommon(run, o, true, true);
  run->add_option("kind", kind, "The job")->required()->check(
      CLI::IsMember({"rollback", "export", "vsnap-create", "vsnap-remove", "commit", "release", "attach",
                     "resync"}));
  run->add_option("--stream", job_streams, "The stream(s)");
  run->add_option("--group", group, "rollback: the group (with no --to: its common point)");
  run->add_option("--to", to, "rollback: the point (latest, latest-app, seq:N, a time, a tag; with --group: common-app, group-tag:ID)");
  auto* disk_option = run->add_option("--disk", disk, "export, vsnap-create, release, resync: the disk index "
                                                      "(resync without it: every disk of the stream)");
  run->add_option("--at", at, "export, vsnap-create: the point");
  run->add_option("--out", out_path, "export: where to write");
  run->add_option("--name", name, "vsnap-create, vsnap-remove: the vsnap");
  run->add_option("--timeout", o.timeout, "How long to follow the job (default 10m)");
  run->callback([&] {
    proto::JobSpec spec;
    const std::string first = job_streams.empty() ? "" : job_streams[0];
    if (kind == "rollback") {
      for (const auto& s : job_streams) spec.mutable_rollback()->add_streams(s);
      spec.mutable_rollback()->set_to(to);
      spec.mutable_rollback()->set_group(group);
    } else if (kind == "export") {
      spec.mutable_export_disk()->set_stream(first);
      spec.mutable_export_disk()->set_disk(disk);
      spec.mutable_export_disk()->set_at(at);
      spec.mutable_export_disk()->set_out(out_path);
    } else if (kind == "vsnap-create") {
      spec.mutable_vsnap_create()->set_stream(first);
      spec.mutable_vsnap_create()->set_disk(disk);
      spec.mutable_vsnap_create()->set_at(at);
      spec.mutable_vsnap_create()->set_name(name);
    } else if (kind == "vsnap-remove") {
      spec.mutable_vsnap_remove()->set_name(name);
    } else if (kind == "commit") {
      for (const auto& s : job_streams) spec.mutable_commit()->add_streams(s);
    } else if (kind == "resync") {
      spec.mutable_resync()->set_stream(first);
      if (disk_option->count() > 0) spec.mutable_resync()->add_disks(disk);
    } else if (kind == "release") {
      spec.mutable_release()->set_stream(first);
      spec.mutable_release()->set_disk(disk);
    } else {
      spec.mutable_attach()->set_stream(first);
    }
    auto target = cli.ForAgent(o);
    if (!target.ok()) return (void)cli.Fail(target.status());
    CsStore& db = *target->store;
    const AgentRow& agent = target->agent;
    const milliseconds t = target->timeout;
    auto job = cli.RunJob(db, agent, spec, t, o.json);
    if (!job.ok()) return (void)cli.Fail(job.status());
    if (o.json) return cli.PrintJson(*job);
    out << "job " << job->id() << " (" << job->kind() << ") succeeded: " << job->message() << "\n";
  });

  // failback: the plan as one command
  auto* failback = app.add_subcommand(
      "failback", "Fail a group back on an agent: protect its streams (--pair), wait for their "
                  "resync, roll the group back to its common app-consistent point, commit");
  AddCommon(failback, o, true, false);
  failback->add_option("--group", group, "The replication group")->required();
  failback->add_option("--to", to, "The point (default common-app; latest-app, a tag, ...)");
  failback->add_option("--timeout", o.timeout, "How long each step may take (default 10m)");
  std::vector<std::string> pairs;
  failback->add_option("--pair", pairs,
                       "STREAM:INDEX=TARGET[,INDEX=TARGET...]: protect this stream of the group "
                       "first (unless the agent has it); repeatable")
      ->type_name("SPEC");
  failback->callback([&] {
    auto target = cli.ForAgent(o);
    if (!target.ok()) return (void)cli.Fail(target.status());
    CsStore& db = *target->store;
    const AgentRow& agent = target->agent;
    const milliseconds t = target->timeout;
    // 0. protect what is not protected yet; the senders then resync it.
    std::set<std::string> required;
    for (const std::string& spec : pairs) {
      const auto colon = spec.find(':');
      if (colon == std::string::npos || colon == 0) {
        return (void)cli.Fail("--pair " + spec + ": expected STREAM:INDEX=TARGET[,INDEX=TARGET...]");
      }
      const std::string name = spec.substr(0, colon);
      required.insert(name);
      bool present = false;
      auto h = db.GetHealth(agent.id);
      if (h.ok() && *h)
        for (const auto& p : (*h)->pairs()) present = present || p.name() == name;
      if (present) continue;
      std::vector<std::string> disks;
      std::stringstream list(spec.substr(colon + 1));
      for (std::string d; std::getline(list, d, ',');) disks.push_back(d);
      // Not declared blank: a failback's targets may hold the old image.
      if (!ProtectStream(cli, o, name, group, disks, /*blank=*/false)) return;
      out << "failback: 0/3 protected '" << name << "': start its sender with that key" << std::endl;
    }
    // 1. the group's streams, resynced (from the agent's heartbeats)
    std::vector<std::string> names;
    const auto deadline = std::chrono::steady_clock::now() + t;
    for (bool said = false;; said = true) {
      names.clear();
      bool ready = true;
      auto h = db.GetHealth(agent.id);
      if (!h.ok()) return (void)cli.Fail(h.status());
      if (*h) {
        for (const auto& p : (*h)->pairs()) {
          if (p.group() != group || p.state() == "committed") continue;
          names.push_back(p.name());
          for (const auto& d : p.disks())
            if (d.resync_state() != "complete") ready = false;
        }
      }
      for (const std::string& n : required)
        if (std::find(names.begin(), names.end(), n) == names.end()) ready = false;
      if (!names.empty() && ready) break;
      if (!said) {
        out << "failback: waiting for the streams of group '" << group << "' on " << agent.id
            << " to finish their resync" << std::endl;
      }
      if (std::chrono::steady_clock::now() > deadline || g_stop) {
        return (void)cli.Fail(names.empty() ? "agent " + agent.id + " reports no stream of group '" + group + "'"
                                            : "the group's resync did not complete in time");
      }
      std::this_thread::sleep_for(milliseconds(200));
    }
    out << "failback: 1/3 resync complete for " << names.size() << " stream(s)" << std::endl;
    // The group's common app-consistent point may come after the resync (the
    // source makes one every app_frequency): wait for it.
    if (to.empty() || to == "common-app") {
      for (bool said = false;; said = true) {
        proto::ControlRequest lp;
        for (const auto& n : names) lp.mutable_list_points()->add_streams(n);
        lp.mutable_list_points()->set_app_only(true);
        auto resp = cli.Call(db, agent, lp, t);
        if (!resp.ok()) return (void)cli.Fail(resp.status());
        if (resp->has_error()) return (void)cli.Fail(resp->error().message());
        // A group tag id every stream has.
        std::map<std::string, size_t> seen;
        for (const auto& sp : resp->points().streams()) {
          std::set<std::string> ids;
          for (const auto& p : sp.points())
            if (!p.group_tag_id().empty()) ids.insert(p.group_tag_id());
          for (const auto& id : ids) ++seen[id];
        }
        bool common = false;
        for (const auto& [id, n] : seen) common = common || n == names.size();
        if (common) break;
        if (!said) out << "failback: waiting for the group's first common app-consistent point" << std::endl;
        if (std::chrono::steady_clock::now() > deadline || g_stop) {
          return (void)cli.Fail("group '" + group + "' has no common app-consistent point yet");
        }
        std::this_thread::sleep_for(milliseconds(500));
      }
    }
    // 2. roll the group back
    proto::JobSpec rb;
    for (const auto& n : names) rb.mutable_rollback()->add_streams(n);
    rb.mutable_rollback()->set_group(group);
    rb.mutable_rollback()->set_to(to.empty() ? "common-app" : to);
    auto rolled = cli.RunJob(db, agent, rb, t, false);
    if (!rolled.ok()) return (void)cli.Fail("failback stopped at the rollback: " + rolled.status().message());
    out << "failback: 2/3 rolled back to " << rolled->result().point() << std::endl;
    // 3. commit
    proto::JobSpec commit;
    for (const auto& n : names) commit.mutable_commit()->add_streams(n);
    auto committed = cli.RunJob(db, agent, commit, t, false);
    if (!committed.ok()) return (void)cli.Fail("failback stopped at the commit: " + committed.status().message());
    out << "failback: 3/3 committed; group '" << group << "' is failed back" << std::endl;
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::ParseError& e) {
    return cli.Fail(std::string(e.what()) + " (see mt-cs --help)", 2);
  }
  return cli.exit();
}

}  // namespace mt::cs
