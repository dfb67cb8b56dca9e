// AgentConfig: /etc/mt-agent/agent.toml, the daemon's configuration (mtctl
// reads it too, for the socket, retention and credential paths). Every key,
// its default and its meaning: packaging/agent.toml, which ships as the
// default configuration and parses to exactly the defaults below (a test
// checks that).
//
// Rules: an unknown table or key is an error (a typo must not silently fall
// back to a default); every path is absolute; durations are "<n>s|m|h|d"
// (combinations such as "1h30m" too); sizes are "<n>[KiB|MiB|GiB|TiB]" or a
// plain byte count. A bad configuration is one kInvalidArgument whose message
// names the file, line and key: "agent.toml:12: policy.rpo: ...".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "retention/catalog.h"
#include "mt/shim/status.h"

namespace mt::daemon {

inline constexpr const char* kDefaultConfigPath = "/etc/mt-agent/agent.toml";

struct AgentConfig {
  // [agent]
  std::string log_level = "info";  // trace | debug | info | warn | error

  // [data] — the TLS data port senders connect to.
  std::string listen_host = "0.0.0.0";
  uint16_t listen_port = 9443;  // 0: any free port (tests)
  std::string tls_dir = "/var/lib/mt-agent/tls";
  std::string credentials_dir = "/var/lib/mt-agent/credentials";
  // Resync data written to the target as it arrives, a payload-less record
  // in the WAL (formats/journal.md, "In-place resync data"); false: through
  // the WAL like any write (benchmarks compare the two).
  bool resync_in_place = true;

  // [control]
  std::string control_socket = "/run/mt-agent/control.sock";

  // [retention]
  std::string retention_dir = "/mnt/retention";
  uint64_t wal_quota_bytes = 256ull << 20;  // per stream, in the WAL
  // All streams together: durable, unapplied data kept in memory for the
  // appliers; past it the appliers read it back from the WAL.
  uint64_t wal_memory_bytes = 256ull << 20;
  uint64_t segment_bytes = 256ull << 20;
  double low_space_percent = 10.0;
  uint64_t low_space_min_bytes = 1ull << 30;
  uint64_t low_space_max_bytes = 50ull << 30;
  // The background check of sealed journal segments (retention/scrub.h):
  // bytes read per second at most (0: off), and how often each is checked.
  uint64_t scrub_bytes_per_second = 32ull << 20;
  int64_t scrub_every_ns = 24ll * 3600 * 1'000'000'000;
  // mt-agent (the executable) refuses to start unless `retention_dir` is the
  // mount point of a volume of its own (retention_mount.h); false only for
  // tests and demos whose retention is a plain directory.
  bool require_mount = true;

  // [policy] — defaults of new pairs (mtctl pair add may override each).
  retention::PolicyRow policy;  // window 24h, rpo 15m, app frequency 60m, prune

  // [targets]
  std::vector<std::string> allow_non_scsi;
  // Write SCSI targets through the agent's own device-mapper map "mt-<wwid>"
  // where the kernel has device-mapper (needed by vsnap); false: write the
  // disk itself. Without device-mapper the disk itself is always written.
  bool device_mapper = true;

  // [cs] — the configuration-server link (docs/formats/cs-link.md).
  // Registration state (<cs_dir>/registration, 0600) is written by
  // `mtctl register`, or by the daemon itself when `address` and
  // `passphrase_file` are set and it is not registered yet.
  std::string cs_dir = "/var/lib/mt-agent/cs";
  std::string cs_address;          // "host[:port]" (port 443 by default); "" = none
  std::string cs_passphrase_file;  // "" = none
  std::string cs_fingerprint;      // pinned up front; "" = trust on first use
  int64_t cs_heartbeat_ns = 30'000'000'000;  // unless the CS asks for another

  // "host:port" as configured ("[::1]:9443" for IPv6).
  std::string ListenAddress() const;
};

// Parses configuration text; `source` names it in messages (the file path).
Result<AgentConfig> ParseAgentConfig(std::string_view text, const std::string& source);
// Reads and parses the file. kNotFound (naming the path) when it is missing.
Result<AgentConfig> LoadAgentConfig(const std::string& path);

// "15m" -> 900 s in ns; "1h30m", "90s", "2d". kInvalidArgument otherwise
// (zero, negative, no unit, unknown unit, overflow).
Result<int64_t> ParseDuration(std::string_view text);
// "4GiB", "512MiB", "64KiB", "1TiB", "4096"; kInvalidArgument otherwise.
Result<uint64_t> ParseSize(std::string_view text);
// The shortest exact spelling of a duration: "24h", "15m", "1h30m", "90s".
std::string FormatDuration(int64_t ns);

}  // namespace mt::daemon
