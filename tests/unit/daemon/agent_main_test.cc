// The built mt-agent as a process: exit statuses and the one-line messages
// of bad usage, bad configuration and a start that cannot happen.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "retention/catalog.h"
#include "notify_socket.h"
#include "subprocess.h"
#include "temp_tree.h"

namespace mt {
namespace {

using test::RunProcess;

int Lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST(AgentMain, ABadConfigurationIsOneLineNamingTheKeyAndStatus2) {
  test::TempDir dir;
  dir.Write("agent.toml", "[policy]\nrpo = \"15\"\n");
  auto r = RunProcess({MT_AGENT_PATH, "--config", dir.path() + "/agent.toml", "--foreground"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("mt-agent: " + dir.path() + "/agent.toml:2: policy.rpo: ", 0), 0u)
      << r.err;
  EXPECT_EQ(Lines(r.err), 1) << r.err;
}

TEST(AgentMain, CheckConfigAcceptsTheShippedFileAndRefusesABadOne) {
  auto ok = RunProcess({MT_AGENT_PATH, "--check-config", "--config",
                        std::string(MT_SOURCE_DIR) + "/packaging/agent.toml"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  test::TempDir dir;
  dir.Write("agent.toml", "[retention]\ndri = \"/mnt/retention\"\n");
  auto bad = RunProcess({MT_AGENT_PATH, "--check-config", "--config", dir.path() + "/agent.toml"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("retention.dri: unknown key"), std::string::npos) << bad.err;
}

TEST(AgentMain, AMissingConfigurationFileGivenByNameIsStatus2) {
  auto r = RunProcess({MT_AGENT_PATH, "--config", "/nonexistent/agent.toml", "--foreground"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("/nonexistent/agent.toml"), std::string::npos) << r.err;
  EXPECT_EQ(Lines(r.err), 1) << r.err;
}

TEST(AgentMain, AnUnknownOptionIsStatus2) {
  auto r = RunProcess({MT_AGENT_PATH, "--frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("mt-agent: ", 0), 0u) << r.err;
  EXPECT_EQ(Lines(r.err), 1) << r.err;
}

TEST(AgentMain, ARetentionDirectoryThatIsNotAMountPointIsStatus2AndSaysWhatToDo) {
  test::TempDir dir;
  dir.Write("retention/.keep", "");
  dir.Write("agent.toml", "[control]\nsocket = \"" + dir.path() +
                              "/control.sock\"\n[retention]\ndir = \"" + dir.path() +
                              "/retention\"\n");
  auto r = RunProcess({MT_AGENT_PATH, "--config", dir.path() + "/agent.toml", "--foreground"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("retention directory " + dir.path() + "/retention is not a mount point: "
                       "mount the retention volume there (mt-prepare --retention DEVICE"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("catalog"), std::string::npos) << "nothing written: " << r.err;
}

TEST(AgentMain, WithoutItsRetentionDirectoryItStopsWithStatus1AndSaysWhy) {
  test::TempDir dir;
  dir.Write("agent.toml", "[control]\nsocket = \"" + dir.path() +
                              "/control.sock\"\n[retention]\ndir = \"" + dir.path() +
                              "/missing\"\nrequire_mount = false\n");
  for (const bool foreground : {true, false}) {
    std::vector<std::string> argv = {MT_AGENT_PATH, "--config", dir.path() + "/agent.toml"};
    if (foreground) argv.push_back("--foreground");
    auto r = RunProcess(argv);
    EXPECT_EQ(r.exit_code, 1) << (foreground ? "--foreground" : "detached");
    EXPECT_NE(r.err.find("retention directory " + dir.path() + "/missing does not exist"),
              std::string::npos)
        << r.err;
  }
}

TEST(AgentMain, VersionIsPrinted) {
  auto r = RunProcess({MT_AGENT_PATH, "--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("mt-agent ", 0), 0u) << r.out;
}

}  // namespace
}  // namespace mt

// --- systemd readiness and watchdog, detaching ----------------------------

namespace mt {
namespace {

using test::NotifySocket;

// A configuration that needs no root: no streams, retention and socket in `dir`.
std::string WriteConfig(test::TempDir& dir) {
  dir.Write("retention/.keep", "");
  dir.Write("agent.toml", "[data]\nlisten = \"127.0.0.1:0\"\ntls_dir = \"" + dir.path() +
                              "/tls\"\ncredentials_dir = \"" + dir.path() +
                              "/creds\"\n[control]\nsocket = \"" + dir.path() +
                              "/control.sock\"\n[retention]\ndir = \"" + dir.path() +
                              "/retention\"\nrequire_mount = false\n");
  return dir.path() + "/agent.toml";
}

TEST(AgentMain, TellsSystemdItIsReadyPingsTheWatchdogAndSaysWhenItStops) {
  test::TempDir dir;
  const std::string config = WriteConfig(dir);
  NotifySocket notify(dir.path() + "/notify.sock");
  ASSERT_TRUE(notify.ok());
  setenv("NOTIFY_SOCKET", (dir.path() + "/notify.sock").c_str(), 1);
  setenv("WATCHDOG_USEC", "200000", 1);  // 0.2 s: a ping every 0.1 s
  test::Subprocess agent({MT_AGENT_PATH, "--config", config, "--foreground"});
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  ASSERT_TRUE(agent.started());
  EXPECT_NE(notify.WaitFor("READY=1", std::chrono::seconds(20)), "") << agent.DrainErr();
  int pings = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (std::chrono::steady_clock::now() < until)
    if (notify.Next(std::chrono::milliseconds(300)).find("WATCHDOG=1") != std::string::npos) ++pings;
  EXPECT_GE(pings, 4) << "expected a watchdog ping about every 100 ms";
  agent.Signal(SIGTERM);
  EXPECT_NE(notify.WaitFor("STOPPING=1", std::chrono::seconds(20)), "");
  EXPECT_EQ(agent.Wait(std::chrono::seconds(30)), 0) << agent.DrainErr();
}

TEST(AgentMain, WithoutForegroundTheParentExitsOnceTheDaemonIsReady) {
  test::TempDir dir;
  const std::string config = WriteConfig(dir);
  // The detached daemon keeps the stderr it was given (its log): send that to
  // a file, so only the parent is waited for.
  const std::string log = dir.path() + "/agent.log";
  const int rc = std::system((std::string(MT_AGENT_PATH) + " --config " + config + " 2>" + log +
                              " </dev/null >/dev/null")
                                 .c_str());
  ASSERT_TRUE(WIFEXITED(rc));
  ASSERT_EQ(WEXITSTATUS(rc), 0);
  // Ready means serving: the control socket answers at once. Its peer is the
  // detached daemon; stop it by its pid.
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, (dir.path() + "/control.sock").c_str(), sizeof a.sun_path - 1);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ucred peer{};
  socklen_t len = sizeof peer;
  ASSERT_EQ(getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len), 0);
  close(fd);
  ASSERT_GT(peer.pid, 0);
  ASSERT_EQ(kill(peer.pid, SIGTERM), 0);
  // It removes its socket when it has stopped.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (access((dir.path() + "/control.sock").c_str(), F_OK) == 0 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_NE(access((dir.path() + "/control.sock").c_str(), F_OK), 0);
  for (int i = 0; i < 100 && kill(peer.pid, 0) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_NE(kill(peer.pid, 0), 0) << "the detached daemon did not exit";
}

// --- mtctl's side: usage errors and offline messages ----------------------

TEST(MtctlAgentCommands, ABadDiskSpecOrDurationIsOneLineAndStatus2) {
  const struct {
    std::vector<std::string> args;
    const char* message;
  } cases[] = {
      {{"pair", "add", "--stream", "vm1", "--disk", "/dev/sdb"},
       "mtctl: --disk /dev/sdb: no disk index (expected INDEX:TARGET[:SOURCE_ID])\n"},
      {{"pair", "add", "--stream", "vm1", "--disk", "x:/dev/sdb"},
       "mtctl: --disk x:/dev/sdb: disk index 'x' is not a number"},
      {{"pair", "add", "--stream", "vm1", "--disk", "0:"}, "mtctl: --disk 0:: no target"},
      {{"pair", "add", "--stream", "vm1", "--disk", "0:/dev/sdb", "--rpo", "15"},
       "mtctl: --rpo: expected a duration"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv = {MT_MTCTL_PATH, "--config", "/nonexistent.toml"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = RunProcess(argv);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(r.err.rfind(c.message, 0), 0u) << r.err;
    EXPECT_EQ(Lines(r.err), 1) << r.err;
  }
}

TEST(MtctlAgentCommands, OfflineWithoutARetentionStoreSaysSoInOneLine) {
  test::TempDir dir;
  dir.Write("agent.toml", "[control]\nsocket = \"" + dir.path() + "/control.sock\"\n" +
                              "[retention]\ndir = \"" + dir.path() + "/missing\"\n");
  for (const char* cmd : {"pairs", "status"}) {
    auto r = RunProcess({MT_MTCTL_PATH, "--config", dir.path() + "/agent.toml", cmd});
    EXPECT_EQ(r.exit_code, 1) << cmd;
    EXPECT_EQ(r.err, "mtctl: mt-agent is not running and the retention directory " + dir.path() +
                         "/missing does not exist (mtctl retention prepare DEVICE --force)\n");
  }
  dir.Write("missing/.keep", "");
  auto r = RunProcess({MT_MTCTL_PATH, "--config", dir.path() + "/agent.toml", "pairs"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("holds no retention store yet (no catalog.db)"), std::string::npos) << r.err;
  auto bad = RunProcess({MT_MTCTL_PATH, "--config", dir.path() + "/nope.toml", "pairs"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("nope.toml: no such configuration file"), std::string::npos) << bad.err;
}

// Monitoring runs `mtctl status`: with the daemon down it must not look
// healthy. The catalog's picture is still printed, with an agent-down alert,
// and the exit status is 3 ("not running", as systemctl status) with the
// reason on stderr; --json the same.
TEST(MtctlAgentCommands, StatusWithTheDaemonDownExits3WithTheReasonAndAnAlert) {
  test::TempDir dir;
  dir.Write("agent.toml", "[control]\nsocket = \"" + dir.path() + "/control.sock\"\n" +
                              "[retention]\ndir = \"" + dir.path() + "/retention\"\n");
  dir.Write("retention/.keep", "");
  ASSERT_TRUE(retention::Catalog::Open(dir.path() + "/retention/catalog.db").ok());
  const std::string why =
      "mtctl: mt-agent is not running (nothing serves " + dir.path() + "/control.sock)\n";
  auto text = RunProcess({MT_MTCTL_PATH, "--config", dir.path() + "/agent.toml", "status"});
  EXPECT_EQ(text.exit_code, 3);
  EXPECT_EQ(text.err, why);
  EXPECT_EQ(text.out.find("alerts: none"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("alerts: 1\n  [agent-down] mt-agent is not running"), std::string::npos)
      << text.out;
  auto json =
      RunProcess({MT_MTCTL_PATH, "--config", dir.path() + "/agent.toml", "status", "--json"});
  EXPECT_EQ(json.exit_code, 3);
  EXPECT_EQ(json.err, why);
  EXPECT_NE(json.out.find("\"kind\": \"agent-down\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"daemon_running\": false"), std::string::npos) << json.out;
}

}  // namespace
}  // namespace mt
