#include "agent_main.h"

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

#include "agent.h"
#include "agent_config.h"
#include "mt/shim/detach.h"

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
  auto agent = Agent::Start(config);
  if (!agent.ok()) {
    spdlog::critical("cannot start: {}", agent.status().message());
    sd_notifyf(0, "STATUS=cannot start: %s", agent.status().message().c_str());
    return 1;
  }
  uint64_t watchdog_usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0;
  sd_notify(0, "READY=1\nSTATUS=running");
  shim::NotifyDetachedParent(ready_fd);

  while (true) {
    siginfo_t info;
    timespec timeout{};
    if (watchdog) {
      const uint64_t half = watchdog_usec / 2;
      timeout.tv_sec = static_cast<time_t>(half / 1'000'000);
      timeout.tv_nsec = static_cast<long>((half % 1'000'000) * 1000);
    } else {
      timeout.tv_sec = 3600;
    }
    const int sig = sigtimedwait(&set, &info, &timeout);
    if (watchdog) sd_notify(0, "WATCHDOG=1");
    if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("{}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      break;
    }
    if (sig == SIGHUP)
      spdlog::warn("SIGHUP: reloading the configuration is not supported; restart mt-agent");
  }
  sd_notify(0, "STOPPING=1\nSTATUS=stopping");
  (*agent)->Shutdown();
  agent->reset();
  spdlog::info("mt-agent stopped");
  return 0;
}

}  // namespace mt::daemon
