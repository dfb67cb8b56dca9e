// packaging/mt-agent.service judged by systemd's own tools (when installed):
// `systemd-analyze verify` must find nothing to say about it, and
// `systemd-analyze security` must rate its sandbox no worse than "OK".
// ExecStart points at /usr/sbin/mt-agent, which does not exist on a build
// machine: the copy that is checked points at the built binary instead, and
// nothing else is changed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "subprocess.h"
#include "temp_tree.h"

namespace mt {
namespace {

std::string SystemdAnalyze() {
  for (const char* p : {"/usr/bin/systemd-analyze", "/bin/systemd-analyze"})
    if (access(p, X_OK) == 0) return p;
  return "";
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The shipped unit with ExecStart on the built binary, in a temp dir.
std::string UnitCopy(const test::TempDir& dir) {
  std::string unit = Read(std::string(MT_SOURCE_DIR) + "/packaging/mt-agent.service");
  const std::string from = "ExecStart=/usr/sbin/mt-agent ";
  const size_t at = unit.find(from);
  EXPECT_NE(at, std::string::npos) << "ExecStart is not /usr/sbin/mt-agent";
  if (at != std::string::npos)
    unit.replace(at, from.size(), std::string("ExecStart=") + MT_AGENT_PATH + " ");
  const_cast<test::TempDir&>(dir).Write("mt-agent.service", unit);
  return dir.path() + "/mt-agent.service";
}

TEST(ServiceUnit, ShipsTheContractOfArchitectureSection8) {
  const std::string unit = Read(std::string(MT_SOURCE_DIR) + "/packaging/mt-agent.service");
  for (const char* line :
       {"Type=notify", "ExecStart=/usr/sbin/mt-agent --config /etc/mt-agent/agent.toml --foreground",
        "Restart=on-failure", "ProtectSystem=strict", "PrivateTmp=yes", "NoNewPrivileges=yes",
        "RuntimeDirectory=mt-agent", "ReadWritePaths=-/mnt/retention"})
    EXPECT_NE(unit.find(std::string("\n") + line + "\n"), std::string::npos) << line;
  EXPECT_NE(unit.find("\nWatchdogSec="), std::string::npos);
  EXPECT_NE(unit.find("\nCapabilityBoundingSet="), std::string::npos);
}

TEST(ServiceUnit, SystemdAnalyzeVerifyFindsNothing) {
  const std::string sa = SystemdAnalyze();
  if (sa.empty()) GTEST_SKIP() << "systemd-analyze is not installed (systemd package)";
  test::TempDir dir;
  const std::string path = UnitCopy(dir);
  auto r = test::RunProcess({sa, "verify", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Unknown keys and bad values are only warnings: any line about our unit fails.
  std::istringstream err(r.err);
  for (std::string line; std::getline(err, line);)
    EXPECT_EQ(line.find("mt-agent.service"), std::string::npos) << line;
}

TEST(ServiceUnit, SystemdAnalyzeSecurityRatesTheSandboxOk) {
  const std::string sa = SystemdAnalyze();
  if (sa.empty()) GTEST_SKIP() << "systemd-analyze is not installed (systemd package)";
  test::TempDir dir;
  const std::string path = UnitCopy(dir);
  auto r = test::RunProcess({sa, "security", "--no-pager", "--offline=yes", path});
  if (r.err.find("--offline") != std::string::npos && r.exit_code != 0)
    GTEST_SKIP() << "this systemd-analyze has no --offline (systemd < 250)";
  std::smatch m;
  const std::regex overall("Overall exposure level for mt-agent.service: ([0-9.]+) (\\S+)");
  ASSERT_TRUE(std::regex_search(r.out, m, overall)) << r.out << r.err;
  const double exposure = std::stod(m[1]);
  std::cout << "systemd-analyze security: exposure " << exposure << " " << m[2] << "\n";
  // 0 = fully sandboxed, 10 = none; "OK" is below 4.9. Raw block I/O and
  // CAP_SYS_ADMIN (device-mapper) keep it from going much lower.
  EXPECT_LT(exposure, 4.9) << r.out;
}

}  // namespace
}  // namespace mt
