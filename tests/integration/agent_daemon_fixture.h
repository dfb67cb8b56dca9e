// The AgentDaemon fixture: mt-agent as a process on a generated
// configuration (temp retention directory, two loop-device targets allowed
// as non-SCSI), readiness by polling the control socket, mtctl and mtsend as
// processes against it. Used by agent_daemon_test.cc and cs_link_test.cc.
#pragma once

#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control/control_client.h"
#include "loop_device.h"
#include "mt/control.pb.h"
#include "subprocess.h"

namespace mt {

using namespace std::chrono_literals;

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

template <typename M>
M FromJson(const std::string& json) {
  M m;
  const auto s = google::protobuf::util::JsonStringToMessage(json, &m);
  EXPECT_TRUE(s.ok()) << s.ToString() << "\n" << json;
  return m;
}

// Whether another process holds the device open O_EXCL (the agent's targets).
inline bool HeldExclusively(const std::string& dev) {
  const int fd = open(dev.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC);
  if (fd >= 0) {
    close(fd);
    return false;
  }
  return errno == EBUSY;
}

class AgentDaemon : public ::testing::Test {
 protected:
  void SetUp() override {
    MT_REQUIRE_ROOT();
    std::string t = test::ScratchDir() + "/mt-agent-it-XXXXXX";
    ASSERT_NE(mkdtemp(t.data()), nullptr);
    dir_ = t;
    ASSERT_EQ(mkdir((dir_ + "/retention").c_str(), 0700), 0);
    for (auto& l : loops_) {
      l = std::make_unique<test::LoopDevice>(64ull << 20);
      ASSERT_FALSE(l->path().empty()) << l->error();
    }
    config_ = dir_ + "/agent.toml";
    std::ofstream(config_) << "[agent]\nlog_level = \"debug\"\n"
                           << "[data]\nlisten = \"127.0.0.1:0\"\n"
                           << "tls_dir = \"" << dir_ << "/tls\"\n"
                           << "credentials_dir = \"" << dir_ << "/credentials\"\n"
                           << "[control]\nsocket = \"" << Socket() << "\"\n"
                           << "[retention]\ndir = \"" << dir_ << "/retention\"\n"
                           << "segment_size = \"16MiB\"\nwal_quota = \"64MiB\"\nrequire_mount = false\n"
                           << "[cs]\ndir = \"" << dir_ << "/cs\"\nheartbeat = \"1s\"\n"
                           << "[targets]\nallow_non_scsi = [\"" << loops_[0]->path() << "\", \""
                           << loops_[1]->path() << "\"]\n";
  }

  void TearDown() override {
    if (agent_) Stop();
    for (auto& l : loops_) l.reset();
    if (!dir_.empty()) test::Run("rm -rf " + dir_);
  }

  std::string Socket() const { return dir_ + "/run/control.sock"; }

  // Starts mt-agent --foreground and waits until its control socket answers.
  void Start() {
    std::vector<std::string> argv{MT_AGENT_PATH, "--config", config_, "--foreground"};
    if (!agent_env_.empty()) {  // test hooks: env NAME=VALUE... mt-agent ...
      argv.insert(argv.begin(), agent_env_.begin(), agent_env_.end());
      argv.insert(argv.begin(), "/usr/bin/env");
    }
    agent_ = std::make_unique<test::Subprocess>(argv);
    ASSERT_TRUE(agent_->started());
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    proto::ControlRequest req;
    req.mutable_get_status();
    while (true) {
      auto r = control::CallControl(Socket(), req, 2s);
      if (r.ok() && !r->has_error()) break;
      ASSERT_LT(std::chrono::steady_clock::now(), deadline)
          << "mt-agent not ready in 30 s: " << r.status().ToString() << "\n" << Log();
      ASSERT_LT(agent_->Wait(0ms), 0) << "mt-agent exited before it was ready:\n" << Log();
      std::this_thread::sleep_for(50ms);
    }
  }

  // SIGTERM; returns the exit status (-1: not within the deadline).
  int Stop() {
    agent_->Signal(SIGTERM);
    const int rc = agent_->Wait(60s);
    log_ += agent_->DrainErr();
    agent_.reset();
    return rc;
  }

  // The daemon's stderr so far (read without blocking it).
  std::string Log() {
    if (agent_)
      while (auto line = agent_->ReadErrLine(10ms)) log_ += *line + "\n";
    return log_;
  }

  test::ProcessResult Mtctl(std::vector<std::string> args) {
    args.insert(args.begin(), {MT_MTCTL_PATH, "--config", config_});
    auto r = test::RunProcess(args);
    Log();  // keep the daemon's pipe drained
    return r;
  }

  // mtsend ARGS... as the sender of `stream`: the daemon's data port and
  // fingerprint (mtctl status), the stream's credential.
  test::ProcessResult Mtsend(const std::string& stream, std::vector<std::string> args) {
    auto status = Mtctl({"status", "--json"});
    EXPECT_EQ(status.exit_code, 0) << status.err;
    const auto st = FromJson<proto::AgentStatus>(status.out);
    args.insert(args.begin(), MT_MTSEND_PATH);
    args.insert(args.end(), {"--to", st.listen(), "--stream", stream, "--key",
                             dir_ + "/credentials/" + stream + ".key", "--fingerprint",
                             st.tls_fingerprint(), "--retry-for", "10"});
    auto r = test::RunProcess(args);
    Log();
    return r;
  }

  // A device's bytes (64 MiB), past the page cache.
  static std::vector<char> DeviceBytes(const std::string& dev) {
    const int fd = open(dev.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    std::vector<char> b(64ull << 20);
    EXPECT_EQ(pread(fd, b.data(), b.size(), 0), static_cast<ssize_t>(b.size()));
    close(fd);
    return b;
  }

  std::string dir_, config_;
  std::vector<std::string> agent_env_;  // NAME=VALUE for the next Start()
  std::unique_ptr<test::LoopDevice> loops_[2];
  std::unique_ptr<test::Subprocess> agent_;
  std::string log_;
};

}  // namespace mt
