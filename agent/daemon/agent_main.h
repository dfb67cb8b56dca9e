// The mt-agent executable as a function (main.cc is a thin wrapper):
//
//   mt-agent [--config /etc/mt-agent/agent.toml] [--foreground] [--check-config] [--version]
//
// Loads the configuration (a bad one: one line naming the key, exit 2), logs
// with spdlog on stderr (with sd-daemon priority prefixes when stderr is the
// journal), blocks SIGTERM/SIGINT/SIGHUP before any thread starts, starts the
// Agent, reports READY=1 to systemd (when NOTIFY_SOCKET is set) and pings
// WATCHDOG=1 at half the WATCHDOG_USEC interval, waits for SIGTERM/SIGINT,
// reports STOPPING=1 and shuts the agent down.
// Without --foreground it detaches (fork, setsid; stdin and stdout on
// /dev/null, the log still on the stderr it was given) and the parent exits
// once the agent is ready (0) or with the agent's failure status; under
// systemd use --foreground (Type=notify).
// Exit status: 0 clean stop, 1 the agent could not start, 2 bad usage or
// configuration.
#pragma once

namespace mt::daemon {

int RunAgentMain(int argc, const char* const* argv);

}  // namespace mt::daemon
