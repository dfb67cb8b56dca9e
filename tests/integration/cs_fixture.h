// The CS fixture: mt-cs serve as a process (optionally with its dashboard)
// beside the AgentDaemon fixture's mt-agent, and mt-cs's CLI as processes.
// Used by cs_link_test.cc and cs_web_test.cc.
#pragma once

#include <regex>

#include "agent_daemon_fixture.h"

namespace mt {

class CsFixture : public AgentDaemon {
 protected:
  void SetUp() override {
    AgentDaemon::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    cs_dir_ = dir_ + "/mt-cs";
    pass_ = dir_ + "/passphrase";
    web_token_ = dir_ + "/web-token";
    std::ofstream(pass_) << "correct horse battery\n";
  }
  void TearDown() override {
    if (cs_) StopCs();
    AgentDaemon::TearDown();
  }

  // mt-cs serve on a free port; its port and fingerprint from its first
  // line. With `web`: the dashboard too (token file web_token_), its port
  // from the second line.
  void StartCs(uint16_t port = 0, bool web = false) {
    std::vector<std::string> argv{MT_CS_PATH, "serve", "--dir", cs_dir_, "--listen",
                                  "127.0.0.1:" + std::to_string(port), "--passphrase-file", pass_,
                                  "--heartbeat", "1s"};
    if (web) {
      std::ofstream(web_token_) << kWebToken << "\n";
      argv.insert(argv.end(), {"--web-token-file", web_token_, "--web-listen", "127.0.0.1:0"});
    }
    cs_ = std::make_unique<test::Subprocess>(argv);
    ASSERT_TRUE(cs_->started());
    auto line = cs_->ReadOutLine(30s);
    ASSERT_TRUE(line.has_value()) << cs_->DrainErr();
    std::smatch m;
    ASSERT_TRUE(std::regex_search(*line, m, std::regex("127\\.0\\.0\\.1:([0-9]+); certificate fingerprint ([0-9a-f]{64})")))
        << *line;
    cs_port_ = static_cast<uint16_t>(std::stoul(m[1]));
    cs_fp_ = m[2];
    if (web) {
      line = cs_->ReadOutLine(30s);
      ASSERT_TRUE(line.has_value()) << cs_->DrainErr();
      ASSERT_TRUE(std::regex_search(*line, m, std::regex("dashboard on https://127\\.0\\.0\\.1:([0-9]+)/"))) << *line;
      web_port_ = static_cast<uint16_t>(std::stoul(m[1]));
    }
  }
  void StopCs() {
    cs_->Signal(SIGTERM);
    EXPECT_EQ(cs_->Wait(30s), 0);
    cs_log_ += cs_->DrainErr();
    cs_.reset();
  }
  test::ProcessResult Cs(std::vector<std::string> args) {
    args.insert(args.begin(), MT_CS_PATH);
    args.insert(args.end(), {"--dir", cs_dir_});
    auto r = test::RunProcess(args);
    Log();
    return r;
  }
  std::string CsAddress() const { return "127.0.0.1:" + std::to_string(cs_port_); }

  // Polls `pred` for up to 30 s.
  template <typename P>
  bool Eventually(P pred) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  // The running agent registered with the running CS, its link up.
  void Register() {
    auto reg = Mtctl({"register", "--cs", CsAddress(), "--passphrase-file", pass_});
    ASSERT_EQ(reg.exit_code, 0) << reg.err;
    ASSERT_TRUE(Eventually([&] {
      return Cs({"agents", "--json"}).out.find("\"connected\":true") != std::string::npos;
    })) << cs_log_ << Log();
  }

  static constexpr char kWebToken[] = "the dashboard token of this test";
  std::string cs_dir_, pass_, cs_fp_, cs_log_, web_token_;
  uint16_t cs_port_ = 0, web_port_ = 0;
  std::unique_ptr<test::Subprocess> cs_;
};


}  // namespace mt
