// mtctl: the operator CLI. A thin main (mtctl_main.cc) over this library, so
// tests run the same code in-process or as the built binary.
//
// Structure: one file per subcommand group (disks_command.cc, ...), each with
// an Add<Group>Command(app, ctx) that adds its subcommand(s) to the CLI11 app;
// RunMtctl calls every one of them (kCommandGroups in mtctl.cc). To add a
// group: write <group>_command.cc, declare its Add function below, list it in
// kCommandGroups.
//
// Contract (architecture §7): exit status 0 on success; on failure non-zero
// and exactly one line "mtctl: <what failed>" on stderr. Every listing also
// as --json (protobuf JSON with the proto field names).
#pragma once

#include <google/protobuf/message.h>

#include <CLI/CLI.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "mt/shim/status.h"
#include "mt/recovery.pb.h"
#include "recovery/recovery.h"

namespace mt::cli {

// Options of mtctl itself, valid before or after the subcommand.
struct GlobalOptions {
  // Root prefix for /sys, /proc and /dev lookups (a captured tree); "" = this system.
  std::string sysroot;
  // Non-SCSI devices (paths or identities) that may be targets (demos, tests).
  std::vector<std::string> allow_non_scsi;
  bool verbose = false;
  // The agent's configuration (control socket, retention and credential
  // paths); "" = /etc/mt-agent/agent.toml, or the defaults when it is missing.
  std::string config;
  // The daemon's control socket, overriding the configuration's.
  std::string socket;
};

struct Context {
  Context(std::ostream& o, std::ostream& e) : out(o), err(e) {}
  GlobalOptions global;
  std::ostream& out;
  std::ostream& err;
  int exit_code = 0;

  // Writes "mtctl: <message>" (one line) on err; returns and records `code`.
  int Fail(const std::string& message, int code = 1);
  int Fail(const Status& status, int code = 1) { return Fail(status.message(), code); }
};

// Protobuf JSON of a message, proto field names, every field printed.
// `pretty`: indented on several lines, ending in a newline; otherwise one
// line without a newline.
Result<std::string> ToJson(const google::protobuf::Message& message, bool pretty);

// Subcommand groups.
void AddDisksCommand(CLI::App& app, Context& ctx);
void AddRetentionCommand(CLI::App& app, Context& ctx);
void AddPairsCommand(CLI::App& app, Context& ctx);   // pair add, pairs, pause, resume
void AddStatusCommand(CLI::App& app, Context& ctx);
// points, common-point, rollback, export, verify, commit, release, attach, vsnap
void AddRecoveryCommands(CLI::App& app, Context& ctx);
void AddJobsCommand(CLI::App& app, Context& ctx);  // jobs
void AddRegisterCommand(CLI::App& app, Context& ctx);  // register (configuration server)

// `mtctl points` as text (mt-cs points prints the same).
std::string PointsText(const proto::PointsReport& report, bool app_only);

// A time as RFC 3339 UTC (recovery/recovery.h).
using recovery::UtcTime;

// Runs mtctl with these arguments; returns its exit status.
int RunMtctl(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace mt::cli
