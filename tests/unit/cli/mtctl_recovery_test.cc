// mtctl recovery commands as a process: the refusals that need no devices.
// (The flows themselves run in scripts/demo and the integration tier.)
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "mt/shim/devmapper.h"
#include "mt/shim/file_lock.h"
#include "subprocess.h"

namespace mt::cli {
namespace {

test::ProcessResult Mtctl(std::vector<std::string> args) {
  args.insert(args.begin(), MT_MTCTL_PATH);
  return test::RunProcess(args);
}

size_t Lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

TEST(MtctlRecovery, RollbackWithoutYesChangesNothingAndSaysWhy) {
  auto r = Mtctl({"--config", "/nonexistent/agent.toml", "rollback", "--stream", "vm1", "--to", "latest"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(Lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("add --yes"), std::string::npos) << r.err;
}

TEST(MtctlRecovery, CommitWithoutYesIsRefused) {
  auto r = Mtctl({"commit", "--stream", "vm1"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("add --yes"), std::string::npos) << r.err;
}

TEST(MtctlRecovery, VsnapSaysWhyItIsUnavailable) {
  if (shim::DeviceMapperAvailable())
    GTEST_SKIP() << "this kernel has device-mapper: vsnap works (vm.vsnap tests it)";
  auto r = Mtctl({"vsnap", "create", "naa.6000c29a1b2c3d4e", "--at", "latest"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(Lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("needs device-mapper and this kernel has none"), std::string::npos) << r.err;
}

// Two operations that change things never run at once on one retention
// volume: the second says so and does nothing (here it never gets as far as
// the catalog, which does not even exist).
TEST(MtctlRecovery, ASecondOperationWhileOneRunsIsRefused) {
  char dir[] = "/tmp/mt-mtctl-lock-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string conf = std::string(dir) + "/agent.toml";
  {
    std::ofstream f(conf);
    f << "[retention]\ndir = \"" << dir << "\"\n";
  }
  auto held = shim::TryLockFile(std::string(dir) + "/.mtctl.lock");
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  for (std::vector<std::string> cmd :
       {std::vector<std::string>{"rollback", "--stream", "vm1", "--to", "latest", "--yes"},
        {"export", "naa.6000c29a1b2c3d4e", "--at", "latest", "--out", std::string(dir) + "/x.img"},
        {"commit", "--stream", "vm1", "--yes"},
        {"vsnap", "remove", "v1"},
        {"resync", "--stream", "vm1"}}) {
    cmd.insert(cmd.begin(), {"--config", conf});
    auto r = Mtctl(cmd);
    EXPECT_EQ(r.exit_code, 1) << cmd[2];
    EXPECT_EQ(Lines(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find("another mtctl operation"), std::string::npos) << cmd[2] << ": " << r.err;
  }
  EXPECT_FALSE(std::ifstream(std::string(dir) + "/x.img").good());  // nothing made
  held->reset();
  std::remove(conf.c_str());
  std::remove((std::string(dir) + "/.mtctl.lock").c_str());
  ::rmdir(dir);
}

TEST(MtctlRecovery, PointsNeedsExactlyOneSelector) {
  auto r = Mtctl({"--config", "/nonexistent/agent.toml", "points", "--stream", "a", "--group", "b"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(Lines(r.err), 1u) << r.err;
}

}  // namespace
}  // namespace mt::cli
