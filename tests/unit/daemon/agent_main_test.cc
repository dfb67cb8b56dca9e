// The built mt-agent as a process: exit statuses and the one-line messages
// of bad usage, bad configuration and a start that cannot happen.
#include <gtest/gtest.h>

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

TEST(AgentMain, WithoutItsRetentionDirectoryItStopsWithStatus1AndSaysWhy) {
  test::TempDir dir;
  dir.Write("agent.toml", "[control]\nsocket = \"" + dir.path() +
                              "/control.sock\"\n[retention]\ndir = \"" + dir.path() +
                              "/missing\"\n");
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
