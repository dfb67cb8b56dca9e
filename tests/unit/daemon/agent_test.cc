// The Agent in-process, on the captured vmware-mt tree (its disks, the
// retention volume at /mnt/retention on sdb), in-memory journals and target
// devices, the catalog and the control socket in a temp dir.
#include "daemon/agent.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

#include "../inventory/fake_disks.h"
#include "control/control_client.h"
#include "mt/shim/clock.h"
#include "mt/shim/fault_injection.h"
#include "mt/shim/mem_block_device.h"
#include "mt/shim/mem_file_system.h"
#include "temp_tree.h"

namespace mt::daemon {
namespace {

using namespace std::chrono_literals;
constexpr uint64_t kDiskBytes = 4u << 20;

class AgentTest : public ::testing::Test {
 protected:
  AgentTest() : sys_("vmware-mt") {
    sys_.content["/dev/sdb"] = test::Fs("ext4", "0b9e8f6a-1c2d-4e3f-8a9b-0c1d2e3f4a5b");
    sys_.content["/dev/sdf1"] = test::Fs("ext4");
    config_.retention_dir = "/mnt/retention";
    config_.credentials_dir = "/var/lib/mt-agent/credentials";
    config_.control_socket = dir_.path() + "/control.sock";
    config_.segment_bytes = 1u << 20;
    config_.listen_host = "127.0.0.1";
    config_.listen_port = 0;
    config_.tls_dir = "/var/lib/mt-agent/tls";
    EXPECT_TRUE(fs_.CreateDir("/mnt/retention").ok());
  }

  AgentEnvironment Env() {
    AgentEnvironment e;
    e.fs = &fs_;
    e.clock = &clock_;
    e.disks = &sys_;
    e.control_uid = getuid();
    e.catalog_path = dir_.path() + "/catalog.db";
    e.geometry = [](const std::string&) -> Result<control::Geometry> {
      return control::Geometry{kDiskBytes, 512};
    };
    e.open_target = [this](const std::string& dev) -> Result<std::unique_ptr<shim::BlockDevice>> {
      if (busy_.count(dev) != 0) return Status(Errc::kBusy, "open " + dev + ": busy");
      opened_.push_back(dev);
      // A wrapper whose inner device says when the agent closed it.
      std::shared_ptr<shim::BlockDevice> inner(new shim::MemBlockDevice(dev, kDiskBytes),
                                               [this, dev](shim::BlockDevice* d) {
                                                 closed_.push_back(dev);
                                                 delete d;
                                               });
      return std::unique_ptr<shim::BlockDevice>(
          new shim::FaultInjectingBlockDevice(std::move(inner), never_));
    };
    return e;
  }

  std::unique_ptr<Agent> StartAgent() {
    auto a = Agent::Start(config_, Env());
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? std::move(a).value() : nullptr;
  }

  Result<proto::ControlResponse> Call(const proto::ControlRequest& req) {
    auto r = control::CallControl(config_.control_socket, req, 10s);
    if (!r.ok()) return r.status();
    Status s = control::ResponseStatus(*r);
    if (!s.ok()) return s;
    return r;
  }

  Result<proto::ControlResponse> AddPair(const std::string& name,
                                         std::vector<std::string> targets) {
    proto::ControlRequest req;
    req.mutable_pair_add()->set_stream(name);
    for (size_t i = 0; i < targets.size(); ++i) {
      auto* d = req.mutable_pair_add()->add_disks();
      d->set_disk(static_cast<uint32_t>(i));
      d->set_target(targets[i]);
    }
    return Call(req);
  }

  proto::Pair Find(const proto::PairList& list, const std::string& name) {
    for (const auto& p : list.pairs())
      if (p.name() == name) return p;
    ADD_FAILURE() << "no pair " << name;
    return {};
  }

  test::TempDir dir_;
  test::TreeDiskSystem sys_;
  shim::MemFileSystem fs_;
  shim::FakeClock clock_;
  AgentConfig config_;
  std::vector<std::string> opened_, closed_;
  std::set<std::string> busy_;
  shim::FaultController never_;
};

TEST_F(AgentTest, APairAddedThroughTheSocketRunsAndRunsAgainAfterARestart) {
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  auto added = AddPair("vm1", {"/dev/sdd", "/dev/sdh"});
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  EXPECT_EQ(added->pair_add().source(), "daemon");
  EXPECT_TRUE(added->pair_add().pair().running());
  EXPECT_EQ(added->pair_add().pair().state(), "protected");
  EXPECT_EQ(added->pair_add().credential_hex().size(), 64u);
  EXPECT_EQ(opened_, (std::vector<std::string>{"/dev/sdd", "/dev/sdh"}));
  EXPECT_EQ(agent->RunningStreams(), std::vector<std::string>{"vm1"});

  proto::ControlRequest status;
  status.mutable_get_status();
  auto st = Call(status);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_TRUE(st->status().daemon_running());
  EXPECT_EQ(st->status().version(), AgentVersion());
  EXPECT_EQ(st->status().retention_dir(), "/mnt/retention");
  ASSERT_EQ(st->status().pairs_size(), 1);
  EXPECT_TRUE(st->status().pairs(0).running());
  EXPECT_EQ(st->status().alerts_size(), 0);

  agent->Shutdown();
  EXPECT_TRUE(agent->RunningStreams().empty());
  agent.reset();
  opened_.clear();
  agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  EXPECT_EQ(agent->RunningStreams(), std::vector<std::string>{"vm1"});
  EXPECT_EQ(opened_, (std::vector<std::string>{"/dev/sdd", "/dev/sdh"}));
}

TEST_F(AgentTest, AStreamWhoseTargetIsGoneIsMarkedFailedAndTheOthersRun) {
  {
    auto agent = StartAgent();
    ASSERT_NE(agent, nullptr);
    ASSERT_TRUE(AddPair("vm1", {"/dev/sdd"}).ok());
    ASSERT_TRUE(AddPair("vm2", {"/dev/sdh"}).ok());
    ASSERT_TRUE(AddPair("vm3", {"/dev/sdc"}).ok());
  }
  // sdh was detached; sdc is held by someone else.
  sys_.edit_facts = [](std::vector<shim::BlockDeviceFacts>* f) {
    f->erase(std::remove_if(f->begin(), f->end(), [](const auto& x) { return x.name == "sdh"; }),
             f->end());
  };
  busy_.insert("/dev/sdc");
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  EXPECT_EQ(agent->RunningStreams(), std::vector<std::string>{"vm1"});
  auto list = agent->ListPairs();
  ASSERT_TRUE(list.ok());
  const proto::Pair vm2 = Find(*list, "vm2");
  EXPECT_EQ(vm2.state(), "failed");
  EXPECT_FALSE(vm2.running());
  EXPECT_NE(vm2.error().find("is not attached to this machine (last seen as /dev/sdh)"),
            std::string::npos)
      << vm2.error();
  const proto::Pair vm3 = Find(*list, "vm3");
  EXPECT_EQ(vm3.state(), "failed");
  EXPECT_NE(vm3.error().find("open /dev/sdc: busy"), std::string::npos) << vm3.error();
  auto st = agent->Status();
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st->alerts_size(), 2);
  EXPECT_EQ(st->alerts(0).kind(), "stream-failed");

  // The disk is back: resume starts it and clears the failure.
  sys_.edit_facts = nullptr;
  proto::ControlRequest resume;
  resume.mutable_resume()->set_stream("vm2");
  auto r = Call(resume);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->pair().state(), "protected");
  EXPECT_TRUE(r->pair().running());
  EXPECT_EQ(r->pair().error(), "");
}

TEST_F(AgentTest, PausedStreamsStayStoppedAcrossARestartUntilResumed) {
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  ASSERT_TRUE(AddPair("vm1", {"/dev/sdd"}).ok());
  proto::ControlRequest pause;
  pause.mutable_pause()->set_stream("vm1");
  auto p = Call(pause);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->pair().state(), "paused");
  EXPECT_FALSE(p->pair().running());
  EXPECT_TRUE(agent->RunningStreams().empty());
  agent.reset();
  opened_.clear();
  agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  EXPECT_TRUE(agent->RunningStreams().empty());
  EXPECT_TRUE(opened_.empty());
  auto r = agent->Resume("vm1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->state(), "protected");
  EXPECT_EQ(agent->RunningStreams(), std::vector<std::string>{"vm1"});
  EXPECT_EQ(agent->Pause("nope").status().code(), Errc::kNotFound);
}

// A sender's session keeps what it found by the stream's name (the gate,
// and through it the runtime) until it notices the stream is paused, which
// an idle sender may not do for a while. Pausing must close the targets
// anyway, or a rollback or release after it meets EBUSY.
TEST_F(AgentTest, PauseClosesTheTargetsWhileAnIdleSenderStillHoldsItsSession) {
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  ASSERT_TRUE(AddPair("vm1", {"/dev/sdd"}).ok());
  ASSERT_EQ(opened_.size(), 1u);
  auto entry = agent->directory().Find("vm1");  // what a session holds after its hello
  ASSERT_TRUE(entry.ok() && entry->port != nullptr);
  ASSERT_TRUE(entry->port->Attach("idle-sender").ok());
  auto p = agent->Pause("vm1");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(closed_, opened_) << "the paused stream's target is still open";
  // The session learns it at its next frame; then it goes.
  auto frame = std::make_shared<stream::Frame>();
  EXPECT_EQ(entry->port->Ingest(frame, [](const Status&, uint64_t) {}).code(), Errc::kUnavailable);
  entry->port->Detach("idle-sender");
  entry->port.reset();
  auto r = agent->Resume("vm1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(opened_.size(), 2u);
}

TEST_F(AgentTest, ASecondAgentRefusesToStartBeforeTouchingAnyTarget) {
  auto first = StartAgent();
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(AddPair("vm1", {"/dev/sdd"}).ok());
  opened_.clear();
  auto second = Agent::Start(config_, Env());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Errc::kBusy);
  EXPECT_NE(second.status().message().find("already running"), std::string::npos);
  EXPECT_TRUE(opened_.empty());
  auto list = first->ListPairs();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(Find(*list, "vm1").state(), "protected");
  // The first agent still serves its socket.
  proto::ControlRequest req;
  req.mutable_list_pairs();
  EXPECT_TRUE(Call(req).ok());
}

TEST_F(AgentTest, AMissingRetentionDirectoryStopsTheStartWithAClearMessage) {
  config_.retention_dir = "/mnt/nothing";
  auto a = Agent::Start(config_, Env());
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), Errc::kNotFound);
  EXPECT_NE(a.status().message().find("retention directory /mnt/nothing does not exist"),
            std::string::npos)
      << a.status().message();
  // Nothing is left serving the socket.
  proto::ControlRequest req;
  req.mutable_get_status();
  EXPECT_EQ(control::CallControl(config_.control_socket, req, 1s).status().code(),
            Errc::kUnavailable);
}

TEST_F(AgentTest, UnsafeTargetsAreRefusedThroughTheSocket) {
  auto agent = StartAgent();
  ASSERT_NE(agent, nullptr);
  auto os = AddPair("vm1", {"/dev/sda"});
  EXPECT_EQ(os.status().code(), Errc::kUnsafeTarget);
  auto retention = AddPair("vm1", {"/dev/sdb"});
  EXPECT_EQ(retention.status().code(), Errc::kUnsafeTarget);
  EXPECT_NE(retention.status().message().find("retention"), std::string::npos);
  EXPECT_TRUE(opened_.empty());
  // A target the agent holds is still known as taken (not "in use").
  ASSERT_TRUE(AddPair("vm1", {"/dev/sdd"}).ok());
  auto taken = AddPair("vm2", {"/dev/sdd"});
  EXPECT_EQ(taken.status().code(), Errc::kAlreadyExists);
}

}  // namespace
}  // namespace mt::daemon
