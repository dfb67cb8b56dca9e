#include "daemon/agent_main.h"

#include <signal.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>

#include "daemon/agent.h"
#include "config/agent_config.h"
#include "mt/shim/detach.h"
#include "mt/shim/mounts.h"
#include "daemon/retention_mount.h"

namespace mt::daemon {

namespace {

// "<N>" sd-daemon priority prefix, so the journal keeps each line's level.
class SdPriorityFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    int pri = 6;
    switch (msg.level) {
      case spdlog::level::trace:
      case spdlog::level::debug: pri = 7; break;
      case spdlog::level::info: pri = 6; break;
      case spdlog::level::warn: pri = 4; break;
      case spdlog::level::err: pri = 3; break;
      case spdlog::level::critical: pri = 2; break;
      default: break;
    }
    const char text[] = {'<', static_cast<char>('0' + pri), '>'};
    dest.append(text, text + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<SdPriorityFlag>();
  }
};

void SetUpLogging(const std::string& level) {
  auto logger = std::make_shared<spdlog::logger>(
      "mt-agent", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (std::getenv("JOURNAL_STREAM") != nullptr) {
    // The journal adds time, unit and pid itself.
    formatter->add_flag<SdPriorityFlag>('*').set_pattern("%*%v");
  } else {
    formatter->set_pattern("%Y-%m-%d %H:%M:%S.%e mt-agent[%P] %l: %v");
  }
  logger->set_formatter(std::move(formatter));
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
}

// Start-timeout extension per stream replayed at start (EXTEND_TIMEOUT_USEC).
constexpr uint64_t kReplayAllowanceUsec = 5ull * 60 * 1'000'000;
// STATUS= refresh when systemd has no watchdog for us.
constexpr uint64_t kStatusIntervalUsec = 30ull * 1'000'000;

int Fail(const std::string& message, int code) {
  std::fprintf(stderr, "mt-agent: %s\n", message.c_str());
  return code;
}

}  // namespace

int RunAgentMain(int argc, const char* const* argv) {
  std::string config_path = kDefaultConfigPath;
  bool foreground = false, check_config = false, version = false;
  CLI::App app{"mt-agent: master target agent (receives change streams, applies them to target "
               "disks, keeps the retention journal)",
               "mt-agent"};
  app.add_option("-c,--config", config_path, "Configuration file")->capture_default_str();
  app.add_flag("-f,--foreground", foreground,
               "Stay in the foreground (systemd: Type=notify); otherwise detach once ready");
  app.add_flag("--check-config", check_config, "Check the configuration file and exit");
  app.add_flag("--version", version, "Print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string m = e.what();
    for (char& c : m)
      if (c == '\n') c = ' ';
    return Fail(m + " (see mt-agent --help)", 2);
  }
  if (version) {
    std::printf("mt-agent %s\n", AgentVersion());
    return 0;
  }

  AgentConfig config;
  bool defaults = false;
  auto loaded = LoadAgentConfig(config_path);
  if (loaded.ok()) {
    config = *loaded;
  } else if (loaded.status().code() == Errc::kNotFound && app.count("--config") == 0) {
    defaults = true;  // no file at the default path: the documented defaults
  } else {
    return Fail(loaded.status().message(), 2);
  }
  if (check_config) {
    std::printf("%s: configuration is valid\n", defaults ? "(defaults)" : config_path.c_str());
    return 0;
  }

  int ready_fd = -1;
  if (!foreground) {
    auto fd = shim::DetachWithReadiness();
    if (!fd.ok()) return Fail("cannot detach: " + fd.status().message(), 1);
    ready_fd = *fd;
  }
  SetUpLogging(config.log_level);
  if (defaults) spdlog::warn("{} not found: running with the default configuration", config_path);

  // Every thread inherits this mask; the main thread takes the signals with sigtimedwait.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  spdlog::info("mt-agent {} starting (configuration {})", AgentVersion(),
               defaults ? "defaults" : config_path);
  if (config.require_mount) {
    // Not a transient failure: a host without its retention volume mounted.
    // Status 2 (RestartPreventExitStatus=2): systemd does not loop on it.
    auto mounts = shim::ReadMountInfo(shim::SysRoot());
    mt::Status mounted = mounts.ok() ? CheckRetentionMount(*mounts, config.retention_dir)
                                     : mounts.status();
    if (!mounted.ok()) {
      spdlog::critical("cannot start: {}", mounted.message());
      sd_notifyf(0, "STATUS=cannot start: %s", mounted.message().c_str());
      return 2;
    }
  }
  AgentEnvironment env;
  // WAL replay at start can be long: each stream extends systemd's start
  // timeout by kReplayAllowance before it starts.
  env.on_stream_starting = [](const std::string& stream) {
    sd_notifyf(0, "EXTEND_TIMEOUT_USEC=%llu\nSTATUS=starting: stream %s (replaying its WAL)",
               static_cast<unsigned long long>(kReplayAllowanceUsec), stream.c_str());
  };
  if (const char* hook = std::getenv("MT_TEST_STALL_APPLIER")) env.test_stall_applier = hook;
  if (const char* hook = std::getenv("MT_TEST_STALL_JOBS")) env.test_stall_jobs = std::string(hook) == "1";
  auto agent = Agent::Start(config, env);
  if (!agent.ok()) {
    spdlog::critical("cannot start: {}", agent.status().message());
    sd_notifyf(0, "STATUS=cannot start: %s", agent.status().message().c_str());
    return 1;
  }
  uint64_t watchdog_usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0;
  sd_notifyf(0, "READY=1\nSTATUS=%s", (*agent)->StatusLine().c_str());
  shim::NotifyDetachedParent(ready_fd);

  // Every tick (half the watchdog interval, else kStatusIntervalUsec): the
  // watchdog is pinged only while every worker makes progress or waits for
  // work (Agent::Stalled, limit: half the interval); STATUS= says how it goes.
  const uint64_t tick_usec = watchdog ? watchdog_usec / 2 : kStatusIntervalUsec;
  std::string stalled_before;
  while (true) {
    siginfo_t info;
    timespec timeout{};
    timeout.tv_sec = static_cast<time_t>(tick_usec / 1'000'000);
    timeout.tv_nsec = static_cast<long>((tick_usec % 1'000'000) * 1000);
    const int sig = sigtimedwait(&set, &info, &timeout);
    if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("{}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      break;
    }
    if (sig == SIGHUP)
      spdlog::warn("SIGHUP: reloading the configuration is not supported; restart mt-agent");
    const std::string stalled =
        watchdog ? (*agent)->Stalled(static_cast<int64_t>(tick_usec) * 1000) : std::string();
    if (stalled.empty()) {
      sd_notifyf(0, "%sSTATUS=%s", watchdog ? "WATCHDOG=1\n" : "",
                 (*agent)->StatusLine().c_str());
    } else {
      // No ping: systemd restarts the agent when the watchdog expires.
      if (stalled != stalled_before) spdlog::critical("stalled: {}; no watchdog ping", stalled);
      sd_notifyf(0, "STATUS=stalled: %s", stalled.c_str());
    }
    stalled_before = stalled;
  }
  sd_notify(0, "STOPPING=1\nSTATUS=stopping");
  (*agent)->Shutdown();
  agent->reset();
  spdlog::info("mt-agent stopped");
  return 0;
}

}  // namespace mt::daemon
