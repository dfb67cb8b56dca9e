// The configuration-server link end to end: mt-cs serve and mt-agent as
// processes on 127.0.0.1, real TLS, real SQLite on both sides. Registration
// (a wrong passphrase and a wrong pinned fingerprint refused with nothing
// kept), the link (status, inventory, heartbeats), a pair protected and a
// rollback and export run from mt-cs, a job for a disk that is not a target
// refused, and the outcome of a job that finished while mt-cs was down
// delivered once it is back.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "cs_fixture.h"
#include "jobs/job_store.h"
#include "mt/inventory.pb.h"

namespace mt {
namespace {

using CsLinkTest = CsFixture;

TEST_F(CsLinkTest, RegistersLinksAndRunsJobsFromTheConfigurationServer) {
  ASSERT_NO_FATAL_FAILURE(StartCs());
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string reg_file = dir_ + "/cs/registration";

  // A wrong passphrase: refused, nothing kept, an audit line on the CS.
  const std::string wrong = dir_ + "/wrong";
  std::ofstream(wrong) << "not the passphrase\n";
  auto bad = Mtctl({"register", "--cs", CsAddress(), "--passphrase-file", wrong});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("wrong passphrase"), std::string::npos) << bad.err;
  EXPECT_NE(access(reg_file.c_str(), F_OK), 0);
  // A pinned fingerprint that is not the CS's: refused before any secret is proved.
  auto pinned = Mtctl({"register", "--cs", CsAddress(), "--passphrase-file", pass_,
                       "--fingerprint", std::string(64, 'a')});
  EXPECT_EQ(pinned.exit_code, 1);
  EXPECT_NE(pinned.err.find("presents certificate fingerprint " + cs_fp_), std::string::npos) << pinned.err;
  EXPECT_NE(access(reg_file.c_str(), F_OK), 0);
  auto audit = Cs({"audit"});
  EXPECT_NE(audit.out.find("wrong passphrase"), std::string::npos) << audit.out;

  // Registered: the CS's fingerprint pinned, id and key kept 0600, no passphrase in them.
  auto reg = Mtctl({"register", "--cs", CsAddress(), "--passphrase-file", pass_, "--json"});
  ASSERT_EQ(reg.exit_code, 0) << reg.err;
  EXPECT_NE(reg.out.find("\"agent_id\":\"agent-1\""), std::string::npos) << reg.out;
  EXPECT_NE(reg.out.find(cs_fp_), std::string::npos) << reg.out;
  struct stat st {};
  ASSERT_EQ(stat(reg_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ReadFile(reg_file).find("correct horse"), std::string::npos);
  auto again = Mtctl({"register", "--cs", CsAddress(), "--passphrase-file", pass_});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("already registered"), std::string::npos) << again.err;

  // The running agent picks the registration up and connects.
  ASSERT_TRUE(Eventually([&] {
    auto s = Mtctl({"status", "--json"});
    return s.exit_code == 0 && FromJson<proto::AgentStatus>(s.out).cs_link() == "connected";
  })) << Log();
  ASSERT_TRUE(Eventually([&] {
    return Cs({"agents", "--json"}).out.find("\"connected\":true") != std::string::npos;
  })) << cs_log_;
  // Its inventory: both loop targets.
  ASSERT_TRUE(Eventually([&] { return Cs({"disks", "--agent", "agent-1", "--json"}).exit_code == 0; }));
  const auto inv = FromJson<proto::Inventory>(Cs({"disks", "--agent", "agent-1", "--json"}).out);
  int loops_seen = 0;
  for (const auto& d : inv.disks())
    if (d.device() == loops_[0]->path() || d.device() == loops_[1]->path()) ++loops_seen;
  EXPECT_EQ(loops_seen, 2);

  // Protect from the CS: the agent's pair, the sender's credential kept by the CS.
  const std::string l0 = loops_[0]->path();
  // No --agent: mt-cs places it on the agent that sees the target free.
  // --blank (issue 20): the new target is blank, so the sender's first
  // resync copies it in full by itself.
  auto prot = Cs({"protect", "--stream", "vm1", "--group", "g1", "--disk", "0=" + l0, "--timeout", "60s",
                  "--blank"});
  ASSERT_EQ(prot.exit_code, 0) << prot.err << Log();
  EXPECT_NE(prot.err.find("placing stream 'vm1' on agent-1"), std::string::npos) << prot.err;
  EXPECT_EQ(ReadFile(cs_dir_ + "/credentials/agent-1/vm1.key"),
            ReadFile(dir_ + "/credentials/vm1.key"));
  ASSERT_TRUE(Eventually([&] {
    return Cs({"streams", "--json"}).out.find("\"name\": \"vm1\"") != std::string::npos;
  }));

  // Data and a point, then a rollback run by the CS as a job of the agent.
  std::vector<char> a(64ull << 20, 'a');
  const std::string src_a = dir_ + "/a.img";
  std::ofstream(src_a, std::ios::binary).write(a.data(), a.size());
  auto copied = Mtsend("vm1", {"resync", "--source", src_a, "--disk", "0"});
  ASSERT_EQ(copied.exit_code, 0) << copied.err;
  EXPECT_NE(copied.out.find("MiB copied"), std::string::npos) << copied.out;
  ASSERT_EQ(Mtsend("vm1", {"tag", "p1", "--app"}).exit_code, 0);
  ASSERT_EQ(Mtsend("vm1", {"workload", "--disks", "1", "--disk-size", "64M", "--count", "50"}).exit_code, 0);
  auto rb = Cs({"run", "rollback", "--agent", "agent-1", "--stream", "vm1", "--to", "p1",
                "--timeout", "120s"});
  ASSERT_EQ(rb.exit_code, 0) << rb.err << Log();
  EXPECT_NE(rb.out.find("(rollback) succeeded"), std::string::npos) << rb.out;
  EXPECT_TRUE(DeviceBytes(l0) == a);
  auto jobs = FromJson<proto::JobList>(Cs({"jobs", "--agent", "agent-1", "--json"}).out);
  ASSERT_GE(jobs.jobs_size(), 1);
  EXPECT_EQ(jobs.jobs(0).kind(), "rollback");
  EXPECT_EQ(jobs.jobs(0).state(), "succeeded");

  // The points, asked of the agent through the CS.
  auto pts = Cs({"points", "--agent", "agent-1", "--stream", "vm1", "--json"});
  ASSERT_EQ(pts.exit_code, 0) << pts.err;
  EXPECT_NE(pts.out.find("\"name\": \"p1\""), std::string::npos) << pts.out;
  // The heartbeat carries the agent's status: retention space, streams with their RPO.
  auto agents = Cs({"agents", "--json"});
  EXPECT_NE(agents.out.find("\"retention_available_bytes\""), std::string::npos) << agents.out;
  EXPECT_NE(agents.out.find("\"rpo_ns\""), std::string::npos) << agents.out;

  // The same job id again: the job as it stands, not a second run.
  const std::string start = R"({"start_job":{"id":"same-1","spec":{"export_disk":{"stream":"vm1","disk":0,"at":"p1","out":")" +
                            dir_ + R"(/same.img"}}}})";
  auto first = Cs({"request", "--agent", "agent-1", start, "--timeout", "60s"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto job_state = [&](const std::string& id) {
    const auto list = FromJson<proto::JobList>(Cs({"jobs", "--agent", "agent-1", "--json"}).out);
    for (const auto& j : list.jobs())
      if (j.id() == id) return j.state();
    return std::string("none");
  };
  ASSERT_TRUE(Eventually([&] { return job_state("same-1") == "succeeded"; })) << job_state("same-1");
  auto second = Cs({"request", "--agent", "agent-1", start, "--timeout", "60s"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.out.find("\"state\": \"succeeded\""), std::string::npos) << second.out;

  // A job for a disk that is not a target of the stream: the agent's refusal, nothing done.
  auto ex = Cs({"run", "export", "--agent", "agent-1", "--stream", "vm1", "--disk", "7", "--at",
                "p1", "--out", dir_ + "/x.img", "--timeout", "60s"});
  EXPECT_EQ(ex.exit_code, 1);
  EXPECT_NE(ex.err.find("disk 7"), std::string::npos) << ex.err;
  EXPECT_NE(access((dir_ + "/x.img").c_str(), F_OK), 0);

  // A job finished while the CS was down reaches it when the link returns.
  StopCs();
  ASSERT_TRUE(Eventually([&] {
    return FromJson<proto::AgentStatus>(Mtctl({"status", "--json"}).out).cs_link().rfind("down", 0) == 0;
  }));
  auto local = Mtctl({"export", l0, "--at", "p1", "--out", dir_ + "/y.img", "--job-id", "offline-1"});
  ASSERT_EQ(local.exit_code, 0) << local.err;
  ASSERT_NO_FATAL_FAILURE(StartCs(cs_port_));
  EXPECT_TRUE(Eventually([&] {
    return Cs({"jobs", "--json"}).out.find("offline-1") != std::string::npos;
  })) << Log();
  EXPECT_EQ(job_state("offline-1"), "succeeded");

  // kill -9 of the agent in the middle of a job (held "running" by the test
  // hook MT_TEST_STALL_JOBS): the CS sees the job running, then the agent
  // down; at the restart the job runs again and its outcome reaches the CS.
  ASSERT_EQ(Stop(), 0) << log_;
  agent_env_ = {"MT_TEST_STALL_JOBS=1"};
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_TRUE(Eventually([&] {
    return Cs({"agents", "--json"}).out.find("\"connected\":true") != std::string::npos;
  }));
  const std::string killed = R"({"start_job":{"id":"killed-1","spec":{"export_disk":{"stream":"vm1","disk":0,"at":"p1","out":")" +
                             dir_ + R"(/k.img"}}}})";
  ASSERT_EQ(Cs({"request", "--agent", "agent-1", killed, "--timeout", "60s"}).exit_code, 0);
  ASSERT_TRUE(Eventually([&] { return job_state("killed-1") == "running"; })) << job_state("killed-1");
  EXPECT_NE(Mtctl({"jobs"}).out.find("killed-1  export  running"), std::string::npos);
  agent_->Signal(SIGKILL);
  agent_->Wait(30s);
  log_ += agent_->DrainErr();
  agent_.reset();
  ASSERT_TRUE(Eventually([&] {
    return Cs({"agents", "--json"}).out.find("\"connected\":false") != std::string::npos;
  }));
  auto lost = Cs({"alerts"});
  EXPECT_NE(lost.out.find("agent-down"), std::string::npos) << lost.out;
  EXPECT_EQ(job_state("killed-1"), "running") << "the CS cannot know more while the agent is down";
  agent_env_.clear();
  ASSERT_NO_FATAL_FAILURE(Start());
  EXPECT_TRUE(Eventually([&] { return job_state("killed-1") == "succeeded"; })) << job_state("killed-1");
  EXPECT_NE(Log().find("job 'killed-1' (export) was running when mt-agent stopped: running it again"),
            std::string::npos);
  EXPECT_EQ(ReadFile(dir_ + "/k.img"), ReadFile(dir_ + "/y.img"));

  // A resync on demand as a job run from the CS: the disk's resync pending
  // again, the stream running (it was paused by the rollback), and the
  // sender's resync completes it.
  auto rs = Cs({"run", "resync", "--agent", "agent-1", "--stream", "vm1", "--timeout", "60s"});
  ASSERT_EQ(rs.exit_code, 0) << rs.err << Log();
  auto after = FromJson<proto::PairList>(Mtctl({"pairs", "--json"}).out);
  ASSERT_EQ(after.pairs_size(), 1);
  EXPECT_TRUE(after.pairs(0).running());
  EXPECT_NE(after.pairs(0).disks(0).resync_state(), "complete");
  ASSERT_EQ(Mtsend("vm1", {"resync", "--source", src_a, "--disk", "0"}).exit_code, 0) << Log();
  after = FromJson<proto::PairList>(Mtctl({"pairs", "--json"}).out);
  EXPECT_EQ(after.pairs(0).disks(0).resync_state(), "complete");
  // The failback plan as one command, from the protection on: mt-cs failback
  // --pair protects vm2 (group g2), waits while its sender resyncs and tags,
  // rolls the group back to its common app-consistent point, commits.
  test::Subprocess fb({MT_CS_PATH, "failback", "--dir", cs_dir_, "--agent", "agent-1", "--group", "g2",
                       "--pair", "vm2:0=" + loops_[1]->path(), "--timeout", "120s"});
  ASSERT_TRUE(fb.started());
  ASSERT_TRUE(Eventually([&] { return access((cs_dir_ + "/credentials/agent-1/vm2.key").c_str(), F_OK) == 0; }));
  std::vector<char> b(64ull << 20, 'b');
  const std::string src_b = dir_ + "/b.img";
  std::ofstream(src_b, std::ios::binary).write(b.data(), b.size());
  ASSERT_EQ(Mtsend("vm2", {"resync", "--source", src_b, "--disk", "0", "--full"}).exit_code, 0) << Log();
  ASSERT_EQ(Mtsend("vm2", {"tag", "b-point", "--app", "--group-tag-id", "g2-1"}).exit_code, 0);
  std::string fb_out;
  while (auto line = fb.ReadOutLine(120s)) fb_out += *line + "\n";
  EXPECT_EQ(fb.Wait(10s), 0) << fb_out << fb.DrainErr();
  EXPECT_NE(fb_out.find("failback: 0/3 protected 'vm2'"), std::string::npos) << fb_out;
  EXPECT_NE(fb_out.find("failback: 2/3 rolled back to group tag 'g2-1'"), std::string::npos) << fb_out;
  EXPECT_NE(fb_out.find("failback: 3/3 committed"), std::string::npos) << fb_out;
  EXPECT_TRUE(DeviceBytes(loops_[1]->path()) == b) << "the target is not at the group's common point";
  auto committed = FromJson<proto::PairList>(Mtctl({"pairs", "--json"}).out);
  for (const auto& p : committed.pairs()) {
    if (p.name() == "vm2") {
      EXPECT_EQ(p.state(), "committed");
    }
  }

  ASSERT_EQ(Stop(), 0) << log_;
  EXPECT_NE(log_.find("audit: configuration server request"), std::string::npos);
  size_t runs = 0;
  for (size_t at = log_.find("job 'same-1' (export) running"); at != std::string::npos;
       at = log_.find("job 'same-1' (export) running", at + 1))
    ++runs;
  EXPECT_EQ(runs, 1u) << "a resubmitted job ran again";
}

// Three mt-agent processes on this machine against one mt-cs, each allowed
// its own loop disks (as each master target sees the VMDKs attached to its
// VM): a new protection goes to the agent that can take its target, and of
// two that can, to the one with fewer protected disks.
TEST_F(CsLinkTest, ThreeAgentsOnOneCsAndEachProtectionGoesToAnAgentWithRoom) {
  ASSERT_NO_FATAL_FAILURE(StartCs());
  ASSERT_NO_FATAL_FAILURE(Start());  // agent-1: loops_[0], loops_[1]
  ASSERT_EQ(Mtctl({"register", "--cs", CsAddress(), "--passphrase-file", pass_}).exit_code, 0);
  // Agents 2 and 3: their own directories, socket and port; x2 is agent 2's,
  // x3 agent 3's, and both may take `shared`.
  test::LoopDevice x2(64ull << 20), x3(64ull << 20), shared(64ull << 20);
  ASSERT_FALSE(x2.path().empty() || x3.path().empty() || shared.path().empty());
  struct Extra {
    std::string dir, config;
    std::unique_ptr<test::Subprocess> proc;
  } extra[2];
  const std::string own[2] = {x2.path(), x3.path()};
  for (int i = 0; i < 2; ++i) {
    Extra& e = extra[i];
    e.dir = dir_ + "/agent" + std::to_string(i + 2);
    ASSERT_EQ(mkdir(e.dir.c_str(), 0700), 0);
    ASSERT_EQ(mkdir((e.dir + "/retention").c_str(), 0700), 0);
    e.config = e.dir + "/agent.toml";
    std::ofstream(e.config) << "[data]\nlisten = \"127.0.0.1:0\"\ntls_dir = \"" << e.dir << "/tls\"\n"
                            << "credentials_dir = \"" << e.dir << "/credentials\"\n"
                            << "[control]\nsocket = \"" << e.dir << "/control.sock\"\n"
                            << "[retention]\ndir = \"" << e.dir << "/retention\"\n"
                            << "segment_size = \"16MiB\"\nwal_quota = \"64MiB\"\nrequire_mount = false\n"
                            << "[cs]\ndir = \"" << e.dir << "/cs\"\nheartbeat = \"1s\"\n"
                            << "[targets]\nallow_non_scsi = [\"" << own[i] << "\", \"" << shared.path()
                            << "\"]\n";
    e.proc = std::make_unique<test::Subprocess>(
        std::vector<std::string>{MT_AGENT_PATH, "--config", e.config, "--foreground"});
    proto::ControlRequest st;
    st.mutable_get_status();
    ASSERT_TRUE(Eventually([&] {
      auto r = control::CallControl(e.dir + "/control.sock", st, 2s);
      return r.ok() && !r->has_error();
    }));
    auto reg = test::RunProcess({MT_MTCTL_PATH, "--config", e.config, "register", "--cs", CsAddress(),
                                 "--passphrase-file", pass_});
    ASSERT_EQ(reg.exit_code, 0) << reg.err;
  }
  ASSERT_TRUE(Eventually([&] {
    const std::string a = Cs({"agents", "--json"}).out;
    size_t n = 0;
    for (size_t at = a.find("\"connected\":true"); at != std::string::npos; at = a.find("\"connected\":true", at + 1)) ++n;
    return n == 3 && Cs({"disks", "--agent", "agent-3"}).exit_code == 0;
  })) << Cs({"agents"}).out;
  auto place = [&](const std::string& stream, const std::string& target) {
    auto r = Cs({"protect", "--stream", stream, "--disk", "0=" + target, "--timeout", "60s"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const std::string marker = "placing stream '" + stream + "' on ";
    const size_t at = r.err.find(marker);
    return at == std::string::npos ? r.err : r.err.substr(at + marker.size(), 7);
  };
  EXPECT_EQ(place("s1", loops_[0]->path()), "agent-1");  // only agent 1 may take it
  EXPECT_EQ(place("s3", x3.path()), "agent-3");           // only agent 3
  // Agents 2 and 3 may both take `shared`; agent 3 has a protected disk now.
  ASSERT_TRUE(Eventually([&] {
    return Cs({"agents"}).out.find("agent-3") != std::string::npos &&
           Cs({"streams", "--agent", "agent-3", "--json"}).out.find("\"name\": \"s3\"") != std::string::npos;
  }));
  EXPECT_EQ(place("s2", shared.path()), "agent-2");
  // x2: only agent 2 may take it, whatever its load.
  EXPECT_EQ(place("s4", x2.path()), "agent-2");
  // A target that no agent may take: refused with each agent's reason.
  auto none = Cs({"protect", "--stream", "s5", "--disk", "0=" + loops_[1]->path() + "-nope"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("agent-2: does not see"), std::string::npos) << none.err;
  for (Extra& e : extra) {
    e.proc->Signal(SIGTERM);
    EXPECT_EQ(e.proc->Wait(60s), 0);
  }
}

}  // namespace
}  // namespace mt
