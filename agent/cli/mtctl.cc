#include <google/protobuf/util/json_util.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <ctime>
#include <memory>

#include "cli/commands.h"

namespace mt::cli {

namespace {

// Every subcommand group; add yours here (see commands.h).
using AddCommandGroup = void (*)(CLI::App&, Context&);
const AddCommandGroup kCommandGroups[] = {
    AddDisksCommand,
    AddRetentionCommand,
    AddPairsCommand,
    AddStatusCommand,
    AddRecoveryCommands,
    AddJobsCommand,
    AddRegisterCommand,
};

// Library code logs at debug level only; -v shows it, on stderr.
void SetUpLogging(bool verbose) {
  auto logger =
      std::make_shared<spdlog::logger>("mtctl", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("mtctl: %l: %v");
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

// One line: CLI11 messages can span lines.
std::string OneLine(std::string s) {
  for (char& c : s)
    if (c == '\n') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

}  // namespace

int Context::Fail(const std::string& message, int code) {
  err << "mtctl: " << OneLine(message) << std::endl;
  exit_code = code;
  return code;
}

Result<std::string> ToJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  options.add_whitespace = pretty;
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok())
    return Status(Errc::kInternal, "JSON encoding of " + message.GetTypeName() +
                                       " failed: " + std::string(status.message()));
  if (pretty) {
    if (json.empty() || json.back() != '\n') json.push_back('\n');
  } else {
    // One object per line (no newline inside, none at the end).
    std::string line;
    for (char c : json)
      if (c != '\n') line.push_back(c);
    json.swap(line);
  }
  return json;
}

int RunMtctl(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  Context ctx(out, err);
  CLI::App app{"mtctl: operate the mt-agent master target (disks, retention, pairs, points, ...)",
               "mtctl"};
  app.require_subcommand(1);
  app.fallthrough();
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  app.add_option("--sysroot", ctx.global.sysroot,
                 "Root prefix for /sys, /proc and /dev lookups (a captured tree; tests)")
      ->type_name("DIR");
  app.add_option("--allow-non-scsi", ctx.global.allow_non_scsi,
                 "Show this non-SCSI device (path or identity) as target-capable in disks "
                 "and retention (demos, tests); repeatable. Targets themselves are allowed "
                 "by [targets] allow_non_scsi in the configuration")
      ->type_name("PATH");
  app.add_flag("-v,--verbose", ctx.global.verbose, "Debug messages on stderr");
  app.add_option("--config", ctx.global.config,
                 "mt-agent configuration (socket, retention, credentials; default "
                 "/etc/mt-agent/agent.toml)")
      ->type_name("FILE");
  app.add_option("--socket", ctx.global.socket, "mt-agent's control socket (overrides --config)")
      ->type_name("PATH");
  app.parse_complete_callback([&ctx] { SetUpLogging(ctx.global.verbose); });
  for (AddCommandGroup add : kCommandGroups) add(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e, out, err);
  } catch (const CLI::ParseError& e) {
    return ctx.Fail(std::string(e.what()) + " (see mtctl --help)", 2);
  }
  return ctx.exit_code;
}

}  // namespace mt::cli
