// mt-agent as a process, with mtctl against it: a generated configuration on
// a temp retention directory, loop-device targets (allow_non_scsi), readiness
// by polling the control socket, pair add / pairs --json / status --json
// through the daemon and offline, SIGTERM with exit status 0, restart; and
// mtsend streaming to the daemon's data port with the printed credential.
#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <thread>

#include "control/control_client.h"
#include "jobs/job_store.h"
#include "agent_daemon_fixture.h"
#include "loop_device.h"
#include "mt/control.pb.h"
#include "notify_socket.h"
#include "subprocess.h"

namespace mt {
namespace {

using namespace std::chrono_literals;

TEST_F(AgentDaemon, ServesPairAddPairsAndStatusThenStopsCleanlyOnSigterm) {
  Start();
  const std::string l0 = loops_[0]->path(), l1 = loops_[1]->path();
  auto add = Mtctl({"pair", "add", "--stream", "vm1", "--disk", "0:" + l0 + ":src-a", "--disk",
                    "1:" + l1, "--rpo", "5m"});
  ASSERT_EQ(add.exit_code, 0) << add.err << Log();
  EXPECT_NE(add.out.find("pair added through mt-agent (running)"), std::string::npos) << add.out;
  // The credential is printed once and kept (mode 0600) for the daemon.
  const std::string marker = "credential for the sender (shown only now): ";
  const size_t at = add.out.find(marker);
  ASSERT_NE(at, std::string::npos) << add.out;
  const std::string hex = add.out.substr(at + marker.size(), 64);
  EXPECT_EQ(ReadFile(dir_ + "/credentials/vm1.key"), hex + "\n");

  auto pairs = Mtctl({"pairs", "--json"});
  ASSERT_EQ(pairs.exit_code, 0) << pairs.err;
  const auto list = FromJson<proto::PairList>(pairs.out);
  EXPECT_EQ(list.source(), "daemon");
  ASSERT_EQ(list.pairs_size(), 1);
  const proto::Pair& p = list.pairs(0);
  EXPECT_EQ(p.name(), "vm1");
  EXPECT_EQ(p.state(), "protected");
  EXPECT_TRUE(p.running());
  ASSERT_EQ(p.disks_size(), 2);
  EXPECT_EQ(p.disks(0).target_device(), l0);
  EXPECT_EQ(p.disks(0).target_id(), "loop:" + loops_[0]->backing_file());
  EXPECT_EQ(p.disks(0).source_disk_id(), "src-a");
  EXPECT_EQ(p.disks(0).size_bytes(), 64ull << 20);
  EXPECT_EQ(p.policy().rpo_threshold_ns(), 5LL * 60 * 1'000'000'000);
  // The daemon holds its targets exclusively.
  EXPECT_TRUE(HeldExclusively(l0));
  EXPECT_TRUE(HeldExclusively(l1));

  auto status = Mtctl({"status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const auto st = FromJson<proto::AgentStatus>(status.out);
  EXPECT_TRUE(st.daemon_running());
  EXPECT_EQ(st.version(), "0.1.0");
  EXPECT_EQ(st.retention_dir(), dir_ + "/retention");
  EXPECT_GT(st.retention_capacity_bytes(), 0u);
  ASSERT_EQ(st.pairs_size(), 1);
  EXPECT_TRUE(st.pairs(0).running());
  EXPECT_EQ(st.alerts_size(), 0) << status.out;
  auto text = Mtctl({"status"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("mt-agent 0.1.0: running for"), std::string::npos) << text.out;

  // A target already taken: one line on stderr, exit 1, nothing changes.
  auto taken = Mtctl({"pair", "add", "--stream", "vm2", "--disk", "0:" + l0});
  EXPECT_EQ(taken.exit_code, 1);
  EXPECT_EQ(taken.err, "mtctl: disk 0 (" + l0 + "): loop:" + loops_[0]->backing_file() +
                           " is already disk 0 of stream 'vm1'\n");

  ASSERT_EQ(Stop(), 0) << log_;
  EXPECT_NE(log_.find("stream 'vm1' stopped"), std::string::npos) << log_;
  EXPECT_NE(log_.find("mt-agent stopped"), std::string::npos) << log_;
  EXPECT_NE(access(Socket().c_str(), F_OK), 0) << "the control socket is left behind";
  EXPECT_FALSE(HeldExclusively(l0));

  // Started again, it runs the stream again.
  Start();
  auto again = Mtctl({"pairs", "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(FromJson<proto::PairList>(again.out).pairs(0).running()) << again.out;
  ASSERT_EQ(Stop(), 0) << log_;
}

TEST_F(AgentDaemon, OfflinePairAddIsRecordedAndTheDaemonStartsItLater) {
  const std::string l0 = loops_[0]->path();
  auto add = Mtctl({"pair", "add", "--stream", "vm1", "--disk", "0:" + l0, "--json"});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  const auto result = FromJson<proto::PairAddResult>(add.out);
  EXPECT_EQ(result.source(), "catalog");
  EXPECT_EQ(result.credential_hex().size(), 64u);
  EXPECT_FALSE(result.pair().running());
  auto text = Mtctl({"pairs"});
  EXPECT_NE(text.out.find("mt-agent is not running"), std::string::npos) << text.out;
  auto offline_status = Mtctl({"status", "--json"});
  EXPECT_EQ(offline_status.exit_code, 3) << offline_status.err;  // not running
  EXPECT_FALSE(FromJson<proto::AgentStatus>(offline_status.out).daemon_running());

  Start();
  auto pairs = Mtctl({"pairs", "--json"});
  ASSERT_EQ(pairs.exit_code, 0) << pairs.err;
  const auto list = FromJson<proto::PairList>(pairs.out);
  ASSERT_EQ(list.pairs_size(), 1);
  EXPECT_TRUE(list.pairs(0).running()) << pairs.out << Log();
  ASSERT_EQ(Stop(), 0) << log_;
}

// Which non-SCSI devices may be targets is the configuration's to say
// ([targets] allow_non_scsi), because mt-agent checks every target against it
// at each start. mtctl's --allow-non-scsi cannot add a target: pair add
// refuses it the same way offline and through the daemon, and records
// nothing (a pair added offline with it would fail at every daemon start).
TEST_F(AgentDaemon, PairAddRefusesAllowNonScsiOnTheCommandLineOfflineAndOnline) {
  test::LoopDevice extra(64ull << 20);
  ASSERT_FALSE(extra.path().empty()) << extra.error();
  const std::vector<std::string> add = {"--allow-non-scsi", extra.path(), "pair", "add",
                                        "--stream", "vm9", "--disk", "0:" + extra.path()};
  auto offline = Mtctl(add);
  EXPECT_EQ(offline.exit_code, 2) << offline.out << offline.err;
  EXPECT_NE(offline.err.find("[targets] allow_non_scsi"), std::string::npos) << offline.err;
  EXPECT_EQ(std::count(offline.err.begin(), offline.err.end(), '\n'), 1) << offline.err;
  EXPECT_NE(access((dir_ + "/credentials/vm9.key").c_str(), F_OK), 0);
  Start();
  auto online = Mtctl(add);
  EXPECT_EQ(online.exit_code, 2) << online.out << online.err;
  EXPECT_EQ(online.err, offline.err);
  auto pairs = Mtctl({"pairs", "--json"});
  EXPECT_EQ(FromJson<proto::PairList>(pairs.out).pairs_size(), 0) << pairs.out;
  ASSERT_EQ(Stop(), 0) << log_;
}

TEST_F(AgentDaemon, AMissingTargetFailsItsStreamAndTheDaemonGoesOn) {
  ASSERT_EQ(Mtctl({"pair", "add", "--stream", "vm1", "--disk", "0:" + loops_[0]->path()}).exit_code,
            0);
  ASSERT_EQ(Mtctl({"pair", "add", "--stream", "vm2", "--disk", "0:" + loops_[1]->path()}).exit_code,
            0);
  const std::string gone = loops_[1]->path();
  loops_[1].reset();  // detached: the VMDK went away
  Start();
  auto status = Mtctl({"status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const auto st = FromJson<proto::AgentStatus>(status.out);
  ASSERT_EQ(st.pairs_size(), 2);
  EXPECT_TRUE(st.pairs(0).running());
  EXPECT_EQ(st.pairs(1).state(), "failed");
  EXPECT_NE(st.pairs(1).error().find("is not attached to this machine (last seen as " + gone),
            std::string::npos)
      << st.pairs(1).error();
  ASSERT_EQ(st.alerts_size(), 1) << status.out;
  EXPECT_EQ(st.alerts(0).kind(), "stream-failed");
  EXPECT_EQ(st.alerts(0).stream(), "vm2");
  ASSERT_EQ(Stop(), 0) << log_;
}

TEST_F(AgentDaemon, MtsendStreamsToTheDataPortAndWhatIsAppliedSurvivesARestart) {
  Start();
  const std::string l0 = loops_[0]->path(), l1 = loops_[1]->path();
  ASSERT_EQ(Mtctl({"pair", "add", "--stream", "vm1", "--disk", "0:" + l0, "--disk", "1:" + l1})
                .exit_code,
            0);
  auto status = Mtctl({"status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const auto st = FromJson<proto::AgentStatus>(status.out);
  ASSERT_NE(st.listen(), "") << "the data port does not listen:\n" << Log();
  ASSERT_EQ(st.tls_fingerprint().size(), 64u);
  const std::vector<std::string> send = {MT_MTSEND_PATH, "workload", "--to", st.listen(),
                                         "--stream", "vm1", "--key",
                                         dir_ + "/credentials/vm1.key", "--fingerprint",
                                         st.tls_fingerprint(), "--disks", "2", "--disk-size",
                                         "64M", "--count", "200", "--retry-for", "0"};
  auto sent = test::RunProcess(send);
  ASSERT_EQ(sent.exit_code, 0) << sent.out << sent.err << Log();

  // Everything acknowledged is applied (poll: the applier runs on its own).
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  proto::Pair p;
  while (true) {
    auto pairs = Mtctl({"pairs", "--json"});
    ASSERT_EQ(pairs.exit_code, 0) << pairs.err;
    p = FromJson<proto::PairList>(pairs.out).pairs(0);
    if (p.applied_seq() == 200) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << pairs.out;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(p.durable_seq(), 200u);
  EXPECT_EQ(p.backlog_records(), 0u);
  EXPECT_GE(p.rpo_ns(), 0);

  // Paused, the data port refuses the stream's sender.
  ASSERT_EQ(Mtctl({"pause", "--stream", "vm1"}).exit_code, 0);
  std::vector<std::string> more = send;
  more[more.size() - 3] = "210";  // --count
  auto refused = test::RunProcess(more);
  EXPECT_NE(refused.exit_code, 0) << refused.out << refused.err;
  // After a good proof the sender learns why (a condition it retries within
  // --retry-for, here 0), not a misleading authentication failure.
  EXPECT_NE(refused.err.find("paused"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.err.find("authentication"), std::string::npos) << refused.err;
  ASSERT_EQ(Mtctl({"resume", "--stream", "vm1"}).exit_code, 0);

  ASSERT_EQ(Stop(), 0) << log_;
  Start();
  auto pairs = Mtctl({"pairs", "--json"});
  ASSERT_EQ(pairs.exit_code, 0) << pairs.err;
  p = FromJson<proto::PairList>(pairs.out).pairs(0);
  EXPECT_TRUE(p.running());
  EXPECT_EQ(p.applied_seq(), 200u) << pairs.out;
  ASSERT_EQ(Stop(), 0) << log_;
}

// Issue 13, resync on demand: a source that lost track of its changes is
// brought back in line by `mtctl resync` and a second mtsend resync; the
// point from before stays valid (rollback to it through the repeated
// resync's before-images), a tag taken while the resync runs is no point,
// and after a rollback `mtctl resync` protects the disk again. Issue 20: the
// pair is added with --blank, so the first resync copies in full by itself
// and the one asked for later compares.
TEST_F(AgentDaemon, ResyncOnDemandBringsTheTargetBackAndKeepsThePointsFromBefore) {
  Start();
  const std::string l0 = loops_[0]->path();
  ASSERT_EQ(Mtctl({"pair", "add", "--stream", "vm1", "--disk", "0:" + l0, "--blank"}).exit_code, 0)
      << Log();
  auto listed = Mtctl({"pairs"});
  EXPECT_NE(listed.out.find("resync pending  (declared blank: full copy)"), std::string::npos)
      << listed.out;
  auto mtsend = [&](std::vector<std::string> args) { return Mtsend("vm1", std::move(args)); };
  auto all_applied = [&] {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (true) {
      auto pairs = Mtctl({"pairs", "--json"});
      ASSERT_EQ(pairs.exit_code, 0) << pairs.err;
      const proto::Pair p = FromJson<proto::PairList>(pairs.out).pairs(0);
      if (p.running() && p.applied_seq() == p.durable_seq() && p.backlog_records() == 0) return;
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << pairs.out << Log();
      std::this_thread::sleep_for(50ms);
    }
  };
  auto target = [&] { return DeviceBytes(l0); };
  // Source A: a pattern; B: A with three regions changed that were never sent.
  std::vector<char> a(64ull << 20), b;
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<char>((i * 2654435761u) >> 13);
  b = a;
  for (size_t off : {size_t{4096}, size_t{5} << 20, size_t{63} << 20})
    std::fill_n(b.begin() + off, 20000, 'B');
  const std::string src_a = dir_ + "/a.img", src_b = dir_ + "/b.img";
  std::ofstream(src_a, std::ios::binary).write(a.data(), a.size());
  std::ofstream(src_b, std::ios::binary).write(b.data(), b.size());

  auto full = mtsend({"resync", "--source", src_a, "--disk", "0"});
  ASSERT_EQ(full.exit_code, 0) << full.err;
  EXPECT_NE(full.out.find("64.0 MiB copied, 8 blocks"), std::string::npos) << full.out;
  ASSERT_EQ(mtsend({"tag", "before-resync", "--app"}).exit_code, 0);
  all_applied();
  ASSERT_TRUE(target() == a);

  // The disk's resync is complete: only a new one, asked for, lets it run.
  auto refused = mtsend({"resync", "--source", src_b, "--disk", "0"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("mtctl resync asks for a new one"), std::string::npos) << refused.err;
  EXPECT_EQ(Mtctl({"resync", "--stream", "vm1", "--disk", "3"}).exit_code, 1);  // no disk 3
  auto asked = Mtctl({"resync", "--stream", "vm1"});
  ASSERT_EQ(asked.exit_code, 0) << asked.err << Log();
  EXPECT_NE(asked.out.find("resync of disk(s) 0 required"), std::string::npos) << asked.out;
  ASSERT_EQ(mtsend({"tag", "during-resync", "--app"}).exit_code, 0);
  auto again = mtsend({"resync", "--source", src_b, "--disk", "0"});
  ASSERT_EQ(again.exit_code, 0) << again.err << Log();
  EXPECT_NE(again.out.find("3 blocks"), std::string::npos) << again.out;  // only what differs
  all_applied();
  EXPECT_TRUE(target() == b);

  auto points = Mtctl({"points", "--stream", "vm1", "--json"});
  ASSERT_EQ(points.exit_code, 0) << points.err;
  EXPECT_NE(points.out.find("\"before-resync\""), std::string::npos) << points.out;
  EXPECT_EQ(points.out.find("\"during-resync\""), std::string::npos) << points.out;

  // The point from before the resync is exact: the resync kept before-images.
  auto back = Mtctl({"rollback", "--stream", "vm1", "--to", "before-resync", "--yes"});
  ASSERT_EQ(back.exit_code, 0) << back.err << Log();
  EXPECT_TRUE(target() == a);
  auto resume = Mtctl({"resume", "--stream", "vm1"});
  EXPECT_EQ(resume.exit_code, 1);
  EXPECT_NE(resume.err.find("protect the disks again with a resync"), std::string::npos) << resume.err;

  // After the rollback, a resync protects the disk again.
  ASSERT_EQ(Mtctl({"resync", "--stream", "vm1"}).exit_code, 0) << Log();
  auto after = mtsend({"resync", "--source", src_b, "--disk", "0"});
  ASSERT_EQ(after.exit_code, 0) << after.err << Log();
  all_applied();
  EXPECT_TRUE(target() == b);
  auto pairs = Mtctl({"pairs", "--json"});
  const proto::Pair p = FromJson<proto::PairList>(pairs.out).pairs(0);
  EXPECT_EQ(p.state(), "protected");
  EXPECT_EQ(p.disks(0).resync_state(), "complete");

  // An export job of a running stream stops it for the copy and runs it again.
  auto ex = Mtctl({"export", l0, "--at", "latest", "--out", dir_ + "/latest.img"});
  ASSERT_EQ(ex.exit_code, 0) << ex.err << Log();
  EXPECT_TRUE(ReadFile(dir_ + "/latest.img") == std::string(b.begin(), b.end()));
  pairs = Mtctl({"pairs", "--json"});
  EXPECT_TRUE(FromJson<proto::PairList>(pairs.out).pairs(0).running()) << pairs.out;
  ASSERT_EQ(Stop(), 0) << log_;
}

// Issue 13, recovery as jobs in the daemon: with mt-agent running, mtctl
// Opening does not read the records of a sealed segment (its index file says
// what it holds), so damage inside one is the scrub's to find: started with a
// damaged sealed undo segment, the agent runs the stream, the scrub finds the
// damage (the retention-damaged alert, the stream's `damaged` file), a
// rollback to a point that would read the segment is refused with the reason
// before any target is written, and mtctl verify reports it too.
TEST_F(AgentDaemon, TheScrubFindsADamagedSealedSegmentAndRecoveryRefusesThePointsItCosts) {
  Start();
  const std::string l0 = loops_[0]->path();
  ASSERT_EQ(Mtctl({"pair", "add", "--stream", "vm1", "--disk", "0:" + l0, "--blank"}).exit_code, 0)
      << Log();
  auto mtsend = [&](std::vector<std::string> args) { return Mtsend("vm1", std::move(args)); };
  std::vector<char> a(64ull << 20);
  std::mt19937_64 rng(5);
  for (size_t i = 0; i < a.size(); i += 8) {
    const uint64_t v = rng();
    std::memcpy(a.data() + i, &v, 8);
  }
  const std::string src_a = dir_ + "/a.img";
  std::ofstream(src_a, std::ios::binary).write(a.data(), a.size());
  ASSERT_EQ(mtsend({"resync", "--source", src_a, "--disk", "0"}).exit_code, 0);
  ASSERT_EQ(mtsend({"tag", "p1", "--app"}).exit_code, 0);
  // About 50 MiB of writes over random data: about 50 MiB of before-images,
  // in 16 MiB undo segments.
  auto w = mtsend({"workload", "--disks", "1", "--disk-size", "64M", "--count", "100"});
  ASSERT_EQ(w.exit_code, 0) << w.err;
  ASSERT_EQ(mtsend({"tag", "p2", "--app"}).exit_code, 0);
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (true) {
    auto pairs = Mtctl({"pairs", "--json"});
    ASSERT_EQ(pairs.exit_code, 0) << pairs.err;
    const proto::Pair p = FromJson<proto::PairList>(pairs.out).pairs(0);
    if (p.applied_seq() == p.durable_seq() && p.backlog_records() == 0) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << pairs.out;
    std::this_thread::sleep_for(50ms);
  }
  Stop();

  const std::string undo = dir_ + "/retention/streams/1/undo";
  const std::string seg1 = undo + "/undo-0000000000000001.seg";
  ASSERT_EQ(test::Run("test -f " + undo + "/undo-0000000000000002.seg"), 0) << "one sealed at least";
  ASSERT_EQ(test::Run("test -f " + undo + "/undo-0000000000000001.idx"), 0) << "sealed: indexed";
  {
    const int fd = ::open(seg1.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    const off_t off = 8 << 20;  // inside its records (16 MiB segments)
    char b = 0;
    ASSERT_EQ(::pread(fd, &b, 1, off), 1);
    b = static_cast<char>(b ^ 0x55);
    ASSERT_EQ(::pwrite(fd, &b, 1, off), 1);
    ::close(fd);
  }
  Start();  // the stream opens from the index: the damage is not read here
  std::string alert;
  const auto found_by = std::chrono::steady_clock::now() + 60s;
  while (alert.empty()) {
    auto status = Mtctl({"status", "--json"});
    ASSERT_EQ(status.exit_code, 0) << status.err;
    const auto st = FromJson<proto::AgentStatus>(status.out);
    for (const auto& al : st.alerts())
      if (al.kind() == "retention-damaged") alert = al.message();
    ASSERT_LT(std::chrono::steady_clock::now(), found_by) << "the scrub found nothing\n" << Log();
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(alert.find("undo segment 1 "), std::string::npos) << alert;
  EXPECT_NE(alert.find("failed its check"), std::string::npos) << alert;
  EXPECT_EQ(test::Run("test -s " + dir_ + "/retention/streams/1/damaged"), 0);

  const auto target_before = DeviceBytes(l0);
  auto rb = Mtctl({"rollback", "--stream", "vm1", "--to", "p1", "--yes"});
  EXPECT_NE(rb.exit_code, 0) << rb.out;
  EXPECT_NE(rb.err.find("cannot be recovered"), std::string::npos) << rb.err;
  EXPECT_NE(rb.err.find("undo segment 1 "), std::string::npos) << rb.err;
  EXPECT_TRUE(DeviceBytes(l0) == target_before) << "nothing written";

  auto verify = Mtctl({"verify", "--stream", "vm1"});
  EXPECT_EQ(verify.exit_code, 1) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("undo-0000000000000001.seg"), std::string::npos) << verify.out;
}

// rollback is a job the daemon runs (mtctl follows it); `mtctl jobs` lists it
// with its result; the same job id again runs nothing twice, with another
// request it is refused; a job left running by an agent that stopped is run
// again when it starts (a rollback resumes).
TEST_F(AgentDaemon, RollbackRunsAsAJobInTheDaemonAndAnInterruptedOneRunsAgainAtStart) {
  Start();
  const std::string l0 = loops_[0]->path();
  ASSERT_EQ(Mtctl({"pair", "add", "--stream", "vm1", "--disk", "0:" + l0}).exit_code, 0) << Log();
  auto mtsend = [&](std::vector<std::string> args) { return Mtsend("vm1", std::move(args)); };
  std::vector<char> a(64ull << 20, 'a');
  const std::string src_a = dir_ + "/a.img";
  std::ofstream(src_a, std::ios::binary).write(a.data(), a.size());
  ASSERT_EQ(mtsend({"resync", "--source", src_a, "--disk", "0", "--full"}).exit_code, 0);
  ASSERT_EQ(mtsend({"tag", "p1", "--app"}).exit_code, 0);
  auto w = mtsend({"workload", "--disks", "1", "--disk-size", "64M", "--count", "100"});
  ASSERT_EQ(w.exit_code, 0) << w.err;
  auto target = [&] { return DeviceBytes(l0); };

  auto rb = Mtctl({"rollback", "--stream", "vm1", "--to", "p1", "--yes", "--job-id", "j1", "--json"});
  ASSERT_EQ(rb.exit_code, 0) << rb.err << Log();
  EXPECT_NE(rb.err.find("job j1 queued in mt-agent"), std::string::npos) << rb.err;
  const auto result = FromJson<proto::RecoveryResult>(rb.out);
  EXPECT_EQ(result.operation(), "rollback");
  EXPECT_EQ(result.stream(), "vm1");
  EXPECT_TRUE(target() == a);

  auto jobs = Mtctl({"jobs", "--json"});
  ASSERT_EQ(jobs.exit_code, 0) << jobs.err;
  auto list = FromJson<proto::JobList>(jobs.out);
  ASSERT_EQ(list.jobs_size(), 1) << jobs.out;  // (before the export)
  EXPECT_EQ(list.jobs(0).id(), "j1");
  EXPECT_EQ(list.jobs(0).kind(), "rollback");
  EXPECT_EQ(list.jobs(0).state(), "succeeded");
  EXPECT_EQ(list.jobs(0).result().seq(), result.seq());
  EXPECT_GT(list.jobs(0).finished_ns(), 0);
  // A GetJob that waits for progress returns at once for a job that ended.
  {
    proto::ControlRequest get;
    get.mutable_get_job()->set_id("j1");
    get.mutable_get_job()->set_wait_ms(10'000);
    get.mutable_get_job()->set_after_revision(1'000'000);
    const auto asked = std::chrono::steady_clock::now();
    auto got = control::CallControl(Socket(), get, 30s);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->job().state(), "succeeded");
    EXPECT_LT(std::chrono::steady_clock::now() - asked, 5s) << "it waited for a job that had ended";
  }

  // Export is a job too: disk 0 at p1 into a file.
  auto ex = Mtctl({"export", l0, "--at", "p1", "--out", dir_ + "/x.img", "--job-id", "e1"});
  ASSERT_EQ(ex.exit_code, 0) << ex.err << Log();
  EXPECT_NE(ex.out.find("exported disk 0"), std::string::npos) << ex.out;
  EXPECT_TRUE(ReadFile(dir_ + "/x.img") == std::string(a.begin(), a.end()));

  // The same id and request: the finished job, not a second run.
  auto again = Mtctl({"rollback", "--stream", "vm1", "--to", "p1", "--yes", "--job-id", "j1"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("job j1 succeeded"), std::string::npos) << again.err;
  // The same id, another request: refused, nothing runs.
  auto other = Mtctl({"rollback", "--stream", "vm1", "--to", "latest", "--yes", "--job-id", "j1"});
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.err.find("exists with another request"), std::string::npos) << other.err;
  ASSERT_EQ(Stop(), 0) << log_;
  size_t runs = 0;
  for (size_t at = log_.find("job 'j1' (rollback) running"); at != std::string::npos;
       at = log_.find("job 'j1' (rollback) running", at + 1))
    ++runs;
  EXPECT_EQ(runs, 1u) << log_;

  // A job an agent left running (killed in its middle) runs at the next start.
  {
    auto store = jobs::JobStore::Open(dir_ + "/retention/jobs.db", false);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    proto::JobSpec spec;
    spec.mutable_rollback()->add_streams("vm1");
    spec.mutable_rollback()->set_to("p1");
    bool created = false;
    auto j = (*store)->Create("j2", spec, 1, &created);
    ASSERT_TRUE(j.ok() && created);
    j->set_state("running");
    ASSERT_TRUE((*store)->Save(*j).ok());
    // A vsnap create cut short is not run again: it is failed at the start.
    proto::JobSpec vs;
    vs.mutable_vsnap_create()->set_stream("vm1");
    vs.mutable_vsnap_create()->set_at("p1");
    vs.mutable_vsnap_create()->set_name("v1");
    auto v = (*store)->Create("v1", vs, 2, &created);
    ASSERT_TRUE(v.ok() && created);
    v->set_state("running");
    ASSERT_TRUE((*store)->Save(*v).ok());
  }
  Start();
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  proto::Job j2;
  while (true) {
    auto l = Mtctl({"jobs", "--json"});
    ASSERT_EQ(l.exit_code, 0) << l.err;
    const auto listed = FromJson<proto::JobList>(l.out);
    for (const auto& j : listed.jobs())
      if (j.id() == "j2") j2 = j;
    if (j2.state() == "succeeded" || j2.state() == "failed") break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << l.out << Log();
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(j2.id(), "j2");
  EXPECT_EQ(j2.state(), "succeeded") << j2.message();
  EXPECT_TRUE(target() == a);
  auto v1 = Mtctl({"jobs", "--json"});
  ASSERT_EQ(v1.exit_code, 0) << v1.err;
  bool seen = false;
  const auto after = FromJson<proto::JobList>(v1.out);
  for (const auto& j : after.jobs()) {
    if (j.id() != "v1") continue;
    seen = true;
    EXPECT_EQ(j.kind(), "vsnap-create");
    EXPECT_EQ(j.state(), "failed");
    EXPECT_NE(j.message().find("mtctl vsnap remove"), std::string::npos) << j.message();
  }
  EXPECT_TRUE(seen) << v1.out;
  ASSERT_EQ(Stop(), 0) << log_;
  EXPECT_NE(log_.find("job 'j2' (rollback) was running when mt-agent stopped"), std::string::npos) << log_;
  EXPECT_EQ(log_.find("job 'v1' (vsnap-create) running"), std::string::npos) << log_;
}

// Commit is a job of the daemon: the stream stopped, its retention and
// credential gone, the other stream untouched. A commit an agent left
// running after it recorded a stream in its result runs again at the next
// start and finishes; a stream it recorded that is already gone is done.
// Release, attach and vsnap remove are jobs too (a missing vsnap fails its
// remove with the reason).
TEST_F(AgentDaemon, CommitReleaseAndAttachRunAsJobsAndAnInterruptedCommitFinishesAtTheNextStart) {
  Start();
  ASSERT_EQ(Mtctl({"pair", "add", "--stream", "vm1", "--disk", "0:" + loops_[0]->path()}).exit_code, 0)
      << Log();
  ASSERT_EQ(Mtctl({"pair", "add", "--stream", "vm2", "--disk", "0:" + loops_[1]->path()}).exit_code, 0)
      << Log();
  const std::string key1 = dir_ + "/credentials/vm1.key", key2 = dir_ + "/credentials/vm2.key";
  ASSERT_EQ(access(key1.c_str(), F_OK), 0);
  auto names = [&] {
    auto p = Mtctl({"pairs", "--json"});
    EXPECT_EQ(p.exit_code, 0) << p.err;
    std::vector<std::string> out;
    const auto list = FromJson<proto::PairList>(p.out);
    for (const auto& pair : list.pairs()) out.push_back(pair.name());
    return out;
  };

  // Release and attach are jobs too: a pause (the disk's map dropped) and a resume.
  auto state_of = [&](const std::string& name) {
    auto p = Mtctl({"pairs", "--json"});
    EXPECT_EQ(p.exit_code, 0) << p.err;
    const auto list = FromJson<proto::PairList>(p.out);
    for (const auto& pair : list.pairs())
      if (pair.name() == name) return pair.state();
    return std::string("none");
  };
  auto rel = Mtctl({"release", loops_[1]->path(), "--job-id", "rel1"});
  ASSERT_EQ(rel.exit_code, 0) << rel.err << Log();
  EXPECT_NE(rel.err.find("job rel1 queued in mt-agent"), std::string::npos) << rel.err;
  EXPECT_NE(rel.out.find("the disk can be detached"), std::string::npos) << rel.out;
  EXPECT_EQ(state_of("vm2"), "paused");
  auto att = Mtctl({"attach", loops_[1]->path(), "--job-id", "att1"});
  ASSERT_EQ(att.exit_code, 0) << att.err << Log();
  EXPECT_NE(att.err.find("job att1 queued in mt-agent"), std::string::npos) << att.err;
  EXPECT_EQ(state_of("vm2"), "protected");

  auto c = Mtctl({"commit", "--stream", "vm1", "--yes", "--job-id", "c1", "--json"});
  ASSERT_EQ(c.exit_code, 0) << c.err << Log();
  EXPECT_NE(c.err.find("job c1 queued in mt-agent"), std::string::npos) << c.err;
  const auto result = FromJson<proto::RecoveryResult>(c.out);
  EXPECT_EQ(result.operation(), "commit");
  ASSERT_EQ(result.streams_size(), 1) << c.out;
  EXPECT_EQ(result.streams(0).stream(), "vm1");
  EXPECT_EQ(names(), std::vector<std::string>{"vm2"});
  EXPECT_NE(access(key1.c_str(), F_OK), 0);
  EXPECT_EQ(access(key2.c_str(), F_OK), 0);
  EXPECT_NE(Log().find("stream 'vm1' committed"), std::string::npos) << log_;

  auto rm = Mtctl({"vsnap", "remove", "nosuch", "--job-id", "r1"});
  EXPECT_EQ(rm.exit_code, 1);
  EXPECT_NE(rm.err.find("job r1 failed"), std::string::npos) << rm.err;
  EXPECT_NE(rm.err.find("no vsnap named nosuch"), std::string::npos) << rm.err;
  ASSERT_EQ(Stop(), 0) << log_;

  {
    auto store = jobs::JobStore::Open(dir_ + "/retention/jobs.db", false);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    bool created = false;
    for (const char* name : {"vm2", "gone"}) {
      proto::JobSpec spec;
      spec.mutable_commit()->add_streams(name);
      auto j = (*store)->Create(std::string("c-") + name, spec, 1, &created);
      ASSERT_TRUE(j.ok() && created);
      j->set_state("running");
      j->mutable_result()->add_streams()->set_stream(name);  // recorded before the drop
      ASSERT_TRUE((*store)->Save(*j).ok());
    }
  }
  Start();
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  std::map<std::string, proto::Job> seen;
  while (true) {
    auto l = Mtctl({"jobs", "--json"});
    ASSERT_EQ(l.exit_code, 0) << l.err;
    const auto listed = FromJson<proto::JobList>(l.out);
    for (const auto& j : listed.jobs()) seen[j.id()] = j;
    bool ended = true;
    for (const char* id : {"c-vm2", "c-gone"})
      ended = ended && (seen[id].state() == "succeeded" || seen[id].state() == "failed");
    if (ended) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << l.out << Log();
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(seen["c-vm2"].state(), "succeeded") << seen["c-vm2"].message();
  EXPECT_EQ(seen["c-gone"].state(), "succeeded") << seen["c-gone"].message();
  EXPECT_EQ(seen["r1"].kind(), "vsnap-remove");
  EXPECT_EQ(seen["rel1"].kind(), "release");
  EXPECT_EQ(seen["att1"].state(), "succeeded");
  EXPECT_TRUE(names().empty());
  EXPECT_NE(access(key2.c_str(), F_OK), 0);
  ASSERT_EQ(Stop(), 0) << log_;
  EXPECT_NE(log_.find("job 'c-vm2' (commit) was running when mt-agent stopped"), std::string::npos)
      << log_;
}

TEST_F(AgentDaemon, ASecondDaemonRefusesToStartAndLeavesTheFirstAlone) {
  Start();
  ASSERT_EQ(Mtctl({"pair", "add", "--stream", "vm1", "--disk", "0:" + loops_[0]->path()}).exit_code,
            0);
  auto second = test::RunProcess({MT_AGENT_PATH, "--config", config_, "--foreground"});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("already running"), std::string::npos) << second.err;
  auto pairs = Mtctl({"pairs", "--json"});
  ASSERT_EQ(pairs.exit_code, 0) << pairs.err;
  EXPECT_EQ(FromJson<proto::PairList>(pairs.out).pairs(0).state(), "protected");
  ASSERT_EQ(Stop(), 0) << log_;
}

}  // namespace
}  // namespace mt

namespace mt {
namespace {

// The systemd watchdog is pinged while every worker makes progress; a hung
// applier (test hook MT_TEST_STALL_APPLIER: it stops in its second batch)
// stops the pings, STATUS= names it, and SIGTERM still stops the agent.
TEST_F(AgentDaemon, AHungApplierStopsTheWatchdogPingsAndStatusNamesIt) {
  test::NotifySocket notify(dir_ + "/notify.sock");
  ASSERT_TRUE(notify.ok());
  setenv("NOTIFY_SOCKET", notify.path().c_str(), 1);
  setenv("WATCHDOG_USEC", "1000000", 1);  // a tick every 0.5 s, stall limit 0.5 s
  setenv("MT_TEST_STALL_APPLIER", "vm1", 1);
  Start();
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  unsetenv("MT_TEST_STALL_APPLIER");
  EXPECT_NE(notify.WaitFor("WATCHDOG=1", 10s), "") << "no ping while idle:\n" << Log();
  ASSERT_EQ(Mtctl({"pair", "add", "--stream", "vm1", "--disk", "0:" + loops_[0]->path()})
                .exit_code,
            0);
  auto status = Mtctl({"status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  const auto st = FromJson<proto::AgentStatus>(status.out);
  // Idle, with a stream: pings go on, STATUS= counts it.
  EXPECT_NE(notify.WaitFor("1/1 streams running", 10s), "") << Log();
  // 100 writes over about 2 s: many apply batches; the second one hangs.
  auto sent = test::RunProcess({MT_MTSEND_PATH, "workload", "--to", st.listen(), "--stream",
                                "vm1", "--key", dir_ + "/credentials/vm1.key", "--fingerprint",
                                st.tls_fingerprint(), "--disks", "1", "--disk-size", "64M",
                                "--count", "100", "--rate", "50", "--retry-for", "0"});
  ASSERT_EQ(sent.exit_code, 0) << sent.out << sent.err << Log();
  const std::string stalled = notify.WaitFor("STATUS=stalled: stream 'vm1': applier busy for", 10s);
  EXPECT_NE(stalled, "") << Log();
  EXPECT_EQ(stalled.find("WATCHDOG=1"), std::string::npos) << stalled;
  // From then on, no ping at all.
  const auto quiet_until = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < quiet_until) {
    const std::string d = notify.Next(200ms);
    EXPECT_EQ(d.find("WATCHDOG=1"), std::string::npos) << "pinged while stalled: " << d;
  }
  EXPECT_NE(Log().find("stalled: stream 'vm1': applier busy for"), std::string::npos) << log_;
  ASSERT_EQ(Stop(), 0) << log_;
}

}  // namespace
}  // namespace mt

namespace mt {
namespace {

// Start-up with streams: before each stream replays its WAL the agent
// extends systemd's start timeout and says which stream it replays; once
// ready, STATUS= counts the streams.
TEST_F(AgentDaemon, EachStreamStartedExtendsTheStartTimeoutAndStatusSaysWhichOne) {
  Start();
  ASSERT_EQ(Mtctl({"pair", "add", "--stream", "vm1", "--disk", "0:" + loops_[0]->path()})
                .exit_code,
            0);
  ASSERT_EQ(Stop(), 0) << log_;
  test::NotifySocket notify(dir_ + "/notify.sock");
  ASSERT_TRUE(notify.ok());
  setenv("NOTIFY_SOCKET", notify.path().c_str(), 1);
  Start();
  unsetenv("NOTIFY_SOCKET");
  const std::string extend = notify.WaitFor("EXTEND_TIMEOUT_USEC=", 10s);
  EXPECT_NE(extend.find("EXTEND_TIMEOUT_USEC=300000000"), std::string::npos) << extend;
  EXPECT_NE(extend.find("STATUS=starting: stream vm1 (replaying its WAL)"), std::string::npos)
      << extend;
  const std::string ready = notify.WaitFor("READY=1", 10s);
  EXPECT_NE(ready.find("STATUS=1/1 streams running, backlog 0 records, no alerts"),
            std::string::npos)
      << ready;
  ASSERT_EQ(Stop(), 0) << log_;
}

}  // namespace
}  // namespace mt
