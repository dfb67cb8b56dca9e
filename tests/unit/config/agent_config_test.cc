// agent.toml: defaults, the shipped file, every key, every way a key can be
// wrong (one message naming file, line and key), durations and sizes.
#include "config/agent_config.h"

#include <gtest/gtest.h>

#include "temp_tree.h"

namespace mt::daemon {
namespace {

constexpr int64_t kS = 1'000'000'000;

void ExpectDefaults(const AgentConfig& c) {
  const AgentConfig d;
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.listen_host, "0.0.0.0");
  EXPECT_EQ(c.listen_port, 9443);
  EXPECT_EQ(c.ListenAddress(), "0.0.0.0:9443");
  EXPECT_EQ(c.tls_dir, "/var/lib/mt-agent/tls");
  EXPECT_EQ(c.credentials_dir, "/var/lib/mt-agent/credentials");
  EXPECT_TRUE(c.resync_in_place);
  EXPECT_EQ(c.control_socket, "/run/mt-agent/control.sock");
  EXPECT_EQ(c.retention_dir, "/mnt/retention");
  EXPECT_EQ(c.wal_quota_bytes, 256ull << 20);
  EXPECT_EQ(c.wal_memory_bytes, 256ull << 20);
  EXPECT_EQ(c.segment_bytes, 256ull << 20);
  EXPECT_EQ(c.low_space_percent, 10.0);
  EXPECT_EQ(c.low_space_min_bytes, 1ull << 30);
  EXPECT_EQ(c.low_space_max_bytes, 50ull << 30);
  EXPECT_EQ(c.policy.window_ns, 24 * 3600 * kS);
  EXPECT_EQ(c.policy.rpo_threshold_ns, 15 * 60 * kS);
  EXPECT_EQ(c.policy.app_frequency_ns, 60 * 60 * kS);
  EXPECT_EQ(c.policy.full_action, retention::FullAction::kPrune);
  EXPECT_TRUE(c.allow_non_scsi.empty());
}

TEST(AgentConfig, AnEmptyFileMeansTheDefaults) {
  auto c = ParseAgentConfig("", "agent.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ExpectDefaults(*c);
}

TEST(AgentConfig, TheShippedFileSpellsOutExactlyTheDefaults) {
  auto c = LoadAgentConfig(std::string(MT_SOURCE_DIR) + "/packaging/agent.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ExpectDefaults(*c);
}

TEST(AgentConfig, EveryKeyIsRead) {
  auto c = ParseAgentConfig(R"(
[agent]
log_level = "debug"
[data]
listen = "[::1]:7443"
tls_dir = "/etc/x/tls/"
credentials_dir = "/etc/x/creds"
resync_in_place = false
[control]
socket = "/tmp/x.sock"
[retention]
dir = "/data/ret"
wal_quota = "1GiB"
wal_memory = "64MiB"
segment_size = 16777216
low_space_percent = 5.5
low_space_min = "2GiB"
low_space_max = "1TiB"
[policy]
window = "2d"
rpo = "90s"
app_frequency = "1h30m"
full_action = "stop"
[targets]
allow_non_scsi = ["/dev/loop3", "loop:/var/tmp/d.img"]
[cs]
dir = "/var/lib/x/cs"
address = "cs.example.com:8443"
passphrase_file = "/etc/x/pass"
fingerprint = "AB:CD"
heartbeat = "10s"
)",
                            "agent.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->listen_host, "::1");
  EXPECT_EQ(c->listen_port, 7443);
  EXPECT_EQ(c->ListenAddress(), "[::1]:7443");
  EXPECT_EQ(c->tls_dir, "/etc/x/tls");  // trailing slash dropped
  EXPECT_EQ(c->credentials_dir, "/etc/x/creds");
  EXPECT_FALSE(c->resync_in_place);
  EXPECT_EQ(c->control_socket, "/tmp/x.sock");
  EXPECT_EQ(c->retention_dir, "/data/ret");
  EXPECT_EQ(c->wal_quota_bytes, 1ull << 30);
  EXPECT_EQ(c->wal_memory_bytes, 64ull << 20);
  EXPECT_EQ(c->segment_bytes, 16ull << 20);
  EXPECT_EQ(c->low_space_percent, 5.5);
  EXPECT_EQ(c->low_space_min_bytes, 2ull << 30);
  EXPECT_EQ(c->low_space_max_bytes, 1ull << 40);
  EXPECT_EQ(c->policy.window_ns, 48 * 3600 * kS);
  EXPECT_EQ(c->policy.rpo_threshold_ns, 90 * kS);
  EXPECT_EQ(c->policy.app_frequency_ns, 90 * 60 * kS);
  EXPECT_EQ(c->policy.full_action, retention::FullAction::kStop);
  EXPECT_EQ(c->allow_non_scsi, (std::vector<std::string>{"/dev/loop3", "loop:/var/tmp/d.img"}));
  EXPECT_EQ(c->cs_dir, "/var/lib/x/cs");
  EXPECT_EQ(c->cs_address, "cs.example.com:8443");
  EXPECT_EQ(c->cs_passphrase_file, "/etc/x/pass");
  EXPECT_EQ(c->cs_fingerprint, "AB:CD");
  EXPECT_EQ(c->cs_heartbeat_ns, 10 * kS);
}

TEST(AgentConfig, PortZeroMeansAnyFreePort) {
  auto c = ParseAgentConfig("[data]\nlisten = \"127.0.0.1:0\"\n", "a.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->listen_port, 0);
}

struct Bad {
  const char* text;
  const char* message;  // the whole expected "<file>:<line>: <key>: ..." prefix or a part
};

TEST(AgentConfig, EveryBadKeyIsOneMessageNamingFileLineAndKey) {
  const Bad cases[] = {
      {"[agnet]\nlog_level = \"info\"\n", "a.toml:1: agnet: unknown table (known: agent, "
                                          "control, cs, data, policy, retention, targets)"},
      {"[cs]\nheartbeat = \"500ms\"\n", "a.toml:2: cs.heartbeat: expected a duration"},
      {"[cs]\nheartbeat = \"0s\"\n", "a.toml:2: cs.heartbeat"},
      {"[cs]\npassphrase_file = \"relative\"\n", "a.toml:2: cs.passphrase_file"},
      {"[agent]\nlog_levle = \"info\"\n", "a.toml:2: agent.log_levle: unknown key (known: "
                                          "log_level)"},
      {"agent = 3\n", "a.toml:1: agent: expected a table [agent]"},
      {"[agent]\nlog_level = \"loud\"\n", "a.toml:2: agent.log_level: expected trace, debug"},
      {"[agent]\nlog_level = 3\n", "a.toml:2: agent.log_level: expected a string"},
      {"[data]\nlisten = \"0.0.0.0\"\n", "a.toml:2: data.listen: expected \"address:port\""},
      {"[data]\nlisten = \"mt.example.com:9443\"\n",
       "a.toml:2: data.listen: \"mt.example.com\" is not an IP address"},
      {"[data]\nlisten = \"0.0.0.0:99999\"\n", "a.toml:2: data.listen: port must be a number"},
      {"[data]\nlisten = \"0.0.0.0:http\"\n", "a.toml:2: data.listen: port must be a number"},
      {"[data]\nlisten = \"[::1:9443\"\n", "a.toml:2: data.listen: expected \"[IPv6]:port\""},
      {"[data]\nlisten = \"::1:9443\"\n", "a.toml:2: data.listen: expected \"address:port\""},
      {"[data]\ntls_dir = \"tls\"\n", "a.toml:2: data.tls_dir: expected an absolute path"},
      {"[data]\ncredentials_dir = 7\n", "a.toml:2: data.credentials_dir: expected an absolute"},
      {"[control]\nsocket = \"control.sock\"\n", "a.toml:2: control.socket: expected an absolute"},
      {"[control]\nsocket = \"/x/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n",
       "a.toml:2: control.socket: socket path longer than 107 bytes"},
      {"[retention]\ndir = \"\"\n", "a.toml:2: retention.dir: expected an absolute path"},
      {"[retention]\nwal_quota = \"4GB\"\n", "a.toml:2: retention.wal_quota: expected a size"},
      {"[retention]\nwal_quota = -1\n", "a.toml:2: retention.wal_quota: expected a positive size"},
      {"[retention]\nwal_quota = true\n", "a.toml:2: retention.wal_quota: expected a size"},
      {"[retention]\nsegment_size = \"1000KiB\"\n",
       "a.toml:2: retention.segment_size: must be a whole number of MiB"},
      {"[retention]\nlow_space_percent = 100\n",
       "a.toml:2: retention.low_space_percent: expected a percentage"},
      {"[retention]\nlow_space_percent = \"10%\"\n",
       "a.toml:2: retention.low_space_percent: expected a number"},
      {"[retention]\nlow_space_min = \"0\"\n", "a.toml:2: retention.low_space_min: expected a size"},
      {"[retention]\nlow_space_max = \"x\"\n", "a.toml:2: retention.low_space_max: expected a size"},
      {"[retention]\nlow_space_min = \"2GiB\"\nlow_space_max = \"1GiB\"\n",
       "a.toml: retention.low_space_min: larger than retention.low_space_max"},
      {"[policy]\nwindow = \"24\"\n", "a.toml:2: policy.window: expected a duration"},
      {"[policy]\nwindow = 86400\n", "a.toml:2: policy.window: expected a string"},
      {"[policy]\nrpo = \"0m\"\n", "a.toml:2: policy.rpo: expected a duration"},
      {"[policy]\nrpo = \"15 m\"\n", "a.toml:2: policy.rpo: expected a duration"},
      {"[policy]\napp_frequency = \"1w\"\n", "a.toml:2: policy.app_frequency: expected a duration"},
      {"[policy]\nfull_action = \"delete\"\n",
       "a.toml:2: policy.full_action: expected \"prune\" or \"stop\""},
      {"[targets]\nallow_non_scsi = \"/dev/loop0\"\n",
       "a.toml:2: targets.allow_non_scsi: expected an array"},
      {"[targets]\nallow_non_scsi = [\"/dev/loop0\", 3]\n",
       "a.toml:2: targets.allow_non_scsi: expected an array of non-empty strings"},
      {"[policy]\nrpo = \"15m\"\nrpo = \"20m\"\n", "a.toml:3: not valid TOML"},
      {"[policy\n", "a.toml:1: not valid TOML"},
  };
  for (const Bad& b : cases) {
    auto c = ParseAgentConfig(b.text, "a.toml");
    ASSERT_FALSE(c.ok()) << b.text;
    EXPECT_EQ(c.status().code(), Errc::kInvalidArgument) << b.text;
    EXPECT_EQ(c.status().message().find(b.message), 0u)
        << "config:\n" << b.text << "message: " << c.status().message();
    EXPECT_EQ(c.status().message().find('\n'), std::string::npos) << c.status().message();
  }
}

TEST(AgentConfig, AMissingFileIsNotFoundNamingIt) {
  auto c = LoadAgentConfig("/nonexistent/agent.toml");
  EXPECT_EQ(c.status().code(), Errc::kNotFound);
  EXPECT_NE(c.status().message().find("/nonexistent/agent.toml"), std::string::npos);
}

TEST(AgentConfig, AFileIsNamedInItsMessages) {
  test::TempDir dir;
  dir.Write("agent.toml", "[policy]\n\nrpo = \"soon\"\n");
  auto c = LoadAgentConfig(dir.path() + "/agent.toml");
  EXPECT_EQ(c.status().message().find(dir.path() + "/agent.toml:3: policy.rpo: "), 0u)
      << c.status().message();
}

TEST(Durations, Parse) {
  EXPECT_EQ(*ParseDuration("15m"), 15 * 60 * kS);
  EXPECT_EQ(*ParseDuration("24h"), 24 * 3600 * kS);
  EXPECT_EQ(*ParseDuration("1h30m"), 90 * 60 * kS);
  EXPECT_EQ(*ParseDuration("2d"), 2 * 86400 * kS);
  EXPECT_EQ(*ParseDuration("45s"), 45 * kS);
  for (const char* bad : {"", "15", "m", "1.5h", "-5m", "0s", "5 m", "5M", "1w", "99999999999999d"})
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
}

TEST(Durations, FormatIsTheShortestExactSpelling) {
  EXPECT_EQ(FormatDuration(24 * 3600 * kS), "24h");
  EXPECT_EQ(FormatDuration(15 * 60 * kS), "15m");
  EXPECT_EQ(FormatDuration(90 * 60 * kS), "1h30m");
  EXPECT_EQ(FormatDuration(61 * kS), "1m1s");
  EXPECT_EQ(*ParseDuration(FormatDuration(3 * 3600 * kS + 7 * kS)), 3 * 3600 * kS + 7 * kS);
}

TEST(Sizes, Parse) {
  EXPECT_EQ(*ParseSize("4GiB"), 4ull << 30);
  EXPECT_EQ(*ParseSize("512MiB"), 512ull << 20);
  EXPECT_EQ(*ParseSize("64KiB"), 64ull << 10);
  EXPECT_EQ(*ParseSize("1TiB"), 1ull << 40);
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("4096B"), 4096u);
  for (const char* bad : {"", "GiB", "4GB", "4 GiB", "0", "-1", "1.5GiB", "4gib", "999999999999999TiB"})
    EXPECT_FALSE(ParseSize(bad).ok()) << bad;
}

}  // namespace
}  // namespace mt::daemon
