// mtctl recovery commands as a process: the refusals that need no devices.
// (The flows themselves run in scripts/demo and the integration tier.)
#include <gtest/gtest.h>

#include <algorithm>

#include "mt/shim/devmapper.h"
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

TEST(MtctlRecovery, PointsNeedsExactlyOneSelector) {
  auto r = Mtctl({"--config", "/nonexistent/agent.toml", "points", "--stream", "a", "--group", "b"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(Lines(r.err), 1u) << r.err;
}

}  // namespace
}  // namespace mt::cli
