// kill -9 of mt-agent at random moments while mtsend streams to it, out of
// process (testing.md, "Out-of-process"; issue 6 acceptance).
//
// One stream with two loop-device targets, the retention store in a scratch
// directory, the daemon as a process (`mt-agent --foreground`, its log in a
// file) on a fixed data port, and `mtsend workload --record` as a process
// that reconnects by itself and resumes from the welcome's resume_seq. The
// test SIGKILLs the daemon at seeded random moments while data flows, and
// sometimes again while it restarts, then restarts it and checks after each
// restart that everything the daemon had made durable (so everything it could
// have acknowledged) is still there.
//
// After the last kill mtsend must finish (exit 0: it checks itself that every
// welcome resumes at or after what it saw acknowledged; on a slow machine it
// may need a second run with a larger --count to outlast the kills) and the
// daemon stops on SIGTERM. Then, offline, against mtsend's record (the model):
//  1. every seq 1..N is recorded once; the checkpoint of every disk is N;
//  2. the targets equal the record rebuilt at N (send::RebuildDisks);
//  3. every seq in the window: the undo journal read forward holds, for each
//     recorded item and in the same order, one record whose before-image is
//     byte for byte the recorded source disk just before that item. With (2)
//     this is invariant 5 at every seq (by induction from N downwards:
//     target + undo(>p) newest first = source at p);
//  4. recovery::Export of each disk at every tag point, at >= 50 seqs spread
//     over the window and at the seqs around every kill equals the record
//     rebuilt at that seq, byte for byte.
// Reproduce a run with MT_CRASH_SEED=<seed printed by the test>.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "retention/catalog.h"
#include "retention/compression.h"
#include "control/control_client.h"
#include "retention/journal_reader.h"
#include "loop_device.h"
#include "mt/control.pb.h"
#include "mt/shim/aligned_buffer.h"
#include "mt/shim/block_device.h"
#include "mt/shim/clock.h"
#include "mt/shim/crc32c.h"
#include "mt/shim/file_system.h"
#include "send/record.h"
#include "retention/record_format.h"
#include "recovery/recovery.h"
#include "retention/retention_store.h"
#include "subprocess.h"
#include "send/workload.h"

namespace mt {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kDisks = 2;
constexpr uint64_t kDiskSize = 16ull << 20;
// SIGKILLs while mtsend streams: at least kMinKills, then more while the
// workload is less than 3/4 done, at most kMaxKills.
constexpr int kMinKills = 20, kMaxKills = 30;
constexpr int kRestartKillEvery = 4;  // every 4th one is followed by a SIGKILL mid-restart
constexpr uint64_t kWorkloadSeed = 20261127;
constexpr int kRate = 500;         // writes per second (mtsend catches up after an outage)
constexpr uint64_t kCount = 9000;  // ~18 s of workload; 20 kills take ~10 s
constexpr const char* kSizes = "4k..16k";
constexpr size_t kSpreadPoints = 60;  // crash-consistent seqs exported, spread over the window

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The last `lines` lines of a log, for failure messages.
std::string Tail(const std::string& text, size_t lines = 30) {
  size_t at = text.size();
  while (lines-- > 0 && at > 0) {
    const size_t nl = text.rfind('\n', at - 1);
    if (nl == std::string::npos) return text;
    at = nl;
  }
  return text.substr(at);
}

// A TCP port on 127.0.0.1 that was free a moment ago: the data port must stay
// the same across restarts, since mtsend reconnects to one address.
uint16_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

// A disk in memory: the destination of an export, and the targets' contents
// as a source (read once from the loop devices after the daemon stopped).
class VectorDevice final : public shim::BlockDevice {
 public:
  VectorDevice(std::string name, std::vector<uint8_t> bytes)
      : name_(std::move(name)), bytes_(std::move(bytes)) {}
  const std::string& name() const override { return name_; }
  uint64_t size() const override { return bytes_.size(); }
  uint32_t logical_block_size() const override { return 512; }
  uint32_t physical_block_size() const override { return 4096; }
  Status ReadAt(uint64_t offset, void* buf, size_t len) override {
    MT_RETURN_IF_ERROR(shim::CheckBlockIo(*this, "read", offset, buf, len));
    std::memcpy(buf, bytes_.data() + offset, len);
    return Status::Ok();
  }
  Status WriteAt(uint64_t offset, const void* buf, size_t len) override {
    MT_RETURN_IF_ERROR(shim::CheckBlockIo(*this, "write", offset, buf, len));
    std::memcpy(bytes_.data() + offset, buf, len);
    return Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  Status Discard(uint64_t offset, uint64_t len) override {
    MT_RETURN_IF_ERROR(shim::CheckBlockIo(*this, "discard", offset, nullptr, len));
    std::memset(bytes_.data() + offset, 0, len);
    return Status::Ok();
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::string name_;
  std::vector<uint8_t> bytes_;
};

// The source disks as mtsend's record says, advanced in seq order.
class RecordModel {
 public:
  explicit RecordModel(const send::Record& r)
      : r_(r), disks_(kDisks, std::vector<uint8_t>(kDiskSize, 0)) {}

  // Applies every recorded write with seq <= seq.
  Status AdvanceTo(uint64_t seq) {
    while (next_ < r_.entries.size() && r_.entries[next_].seq <= seq) {
      const send::RecordEntry& e = r_.entries[next_];
      if (e.type == 'W') {
        if (e.disk >= kDisks || e.offset + e.length > kDiskSize)
          return Status(Errc::kCorruption,
                        "record: seq " + std::to_string(e.seq) + " is out of range");
        uint8_t* to = disks_[e.disk].data() + e.offset;
        send::WorkloadData(r_.seed, e.seq, to, e.length);
        if (crc32c::Value(to, e.length) != e.crc32c)
          return Status(Errc::kCorruption,
                        "record: seq " + std::to_string(e.seq) + " does not regenerate to its CRC");
      }
      ++next_;
    }
    at_ = std::max(at_, seq);
    return Status::Ok();
  }
  // Index of the next entry AdvanceTo would apply.
  size_t next() const { return next_; }
  uint64_t at() const { return at_; }
  const std::vector<uint8_t>& disk(uint32_t d) const { return disks_[d]; }

 private:
  const send::Record& r_;
  std::vector<std::vector<uint8_t>> disks_;
  size_t next_ = 0;
  uint64_t at_ = 0;
};

// Where two images first differ, and which recorded writes cover that byte.
std::string Difference(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want,
                       const send::Record& rec, uint32_t disk) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  size_t differing = 0;
  for (size_t j = i; j < got.size() && j < want.size(); ++j) differing += got[j] != want[j];
  std::string writers;
  for (const auto& e : rec.entries)
    if (e.type == 'W' && e.disk == disk && e.offset <= i && i < e.offset + e.length)
      writers += " " + std::to_string(e.seq);
  return "first difference at byte " + std::to_string(i) + " (" + std::to_string(differing) +
         " bytes differ); recorded writes covering it:" + (writers.empty() ? " none" : writers);
}

struct KillInfo {
  int number = 0;
  uint64_t durable_before = 0;  // the daemon's durable (acknowledgeable) seq just before the kill
  bool attached = false;        // mtsend was connected
  bool flowing = false;         // durable seq advanced during the random pause before the kill
  int64_t checkpoint_at_kill = -1;  // catalog checkpoint read offline after the kill (-1: unread)
  bool restart_kill = false;        // a second SIGKILL landed while the daemon restarted
  bool restart_kill_before_ready = false;
  uint64_t recovered = 0;  // "applied up to seq N" of the restart that served again
  double restart_s = 0;    // spawn to ready
};

std::string Describe(const KillInfo& ki) {
  char line[256];
  std::snprintf(line, sizeof line,
                "kill %2d: durable %6llu attached %d flowing %d checkpoint %6lld recovered %6llu "
                "restart %.3f s%s",
                ki.number, static_cast<unsigned long long>(ki.durable_before), ki.attached,
                ki.flowing, static_cast<long long>(ki.checkpoint_at_kill),
                static_cast<unsigned long long>(ki.recovered), ki.restart_s,
                !ki.restart_kill               ? ""
                : ki.restart_kill_before_ready ? " (+ a kill while it started)"
                                               : " (+ a kill after it served)");
  return line;
}

class DaemonCrash : public ::testing::Test {
 protected:
  void SetUp() override {
    MT_REQUIRE_ROOT();
    std::string t = test::ScratchDir() + "/mt-crash-it-XXXXXX";
    ASSERT_NE(mkdtemp(t.data()), nullptr);
    dir_ = t;
    ASSERT_EQ(mkdir((dir_ + "/retention").c_str(), 0700), 0);
    for (auto& l : loops_) {
      l = std::make_unique<test::LoopDevice>(kDiskSize);
      ASSERT_FALSE(l->path().empty()) << l->error();
    }
    port_ = FreePort();
    ASSERT_NE(port_, 0);
    config_ = dir_ + "/agent.toml";
    std::ofstream(config_) << "[agent]\nlog_level = \"info\"\n"
                           << "[data]\nlisten = \"127.0.0.1:" << port_ << "\"\n"
                           << "tls_dir = \"" << dir_ << "/tls\"\n"
                           << "credentials_dir = \"" << dir_ << "/credentials\"\n"
                           << "[control]\nsocket = \"" << Socket() << "\"\n"
                           << "[retention]\ndir = \"" << dir_ << "/retention\"\n"
                           << "segment_size = \"4MiB\"\nwal_quota = \"32MiB\"\nrequire_mount = false\n"
                           << "[targets]\nallow_non_scsi = [\"" << loops_[0]->path() << "\", \""
                           << loops_[1]->path() << "\"]\n";
    // Offline: the daemon starts the stream when it starts.
    auto add =
        test::RunProcess({MT_MTCTL_PATH, "--config", config_, "pair", "add", "--stream", "vm1",
                          "--disk", "0:" + loops_[0]->path(), "--disk", "1:" + loops_[1]->path()});
    ASSERT_EQ(add.exit_code, 0) << add.out << add.err;
  }

  void TearDown() override {
    sender_.reset();  // SIGKILL and reap whatever still runs
    agent_.reset();
    for (auto& l : loops_) l.reset();
    if (dir_.empty()) return;
    if (HasFailure() && std::getenv("MT_CRASH_KEEP") != nullptr)
      std::printf("kept %s (record, retention store, logs)\n", dir_.c_str());
    else
      test::Run("rm -rf " + dir_);
  }

  std::string Socket() const { return dir_ + "/run/control.sock"; }
  std::string AgentLog() const { return dir_ + "/agent.log"; }
  std::string Record() const { return dir_ + "/record.txt"; }

  void Spawn() {
    // exec: the pid is mt-agent's own, so SIGKILL reaches the daemon itself.
    agent_ = std::make_unique<test::Subprocess>(std::vector<std::string>{
        "/bin/sh", "-c", "exec \"$0\" --config \"$1\" --foreground 2>>\"$2\"", MT_AGENT_PATH,
        config_, AgentLog()});
    ASSERT_TRUE(agent_->started());
  }

  void Kill() {
    agent_->Signal(SIGKILL);
    EXPECT_EQ(agent_->Wait(10s), 128 + SIGKILL);
    agent_.reset();
  }

  // The stream as the daemon reports it; nullopt while nobody serves the
  // socket, while the daemon starts, or on a call error.
  std::optional<proto::Pair> Pair() {
    proto::ControlRequest req;
    req.mutable_list_pairs();
    auto r = control::CallControl(Socket(), req, 2s);
    if (!r.ok() || r->has_error() || !r->has_pairs() || r->pairs().pairs_size() != 1)
      return std::nullopt;
    return r->pairs().pairs(0);
  }

  // Waits until the daemon serves the stream (running, not failed).
  ::testing::AssertionResult WaitReady(proto::Pair* out, std::chrono::seconds limit = 20s) {
    const auto deadline = Clock::now() + limit;
    while (true) {
      if (auto p = Pair()) {
        if (p->state() == "failed")
          return ::testing::AssertionFailure()
                 << "the stream failed to start: " << p->error() << "\n"
                 << Tail(ReadFile(AgentLog()));
        if (p->running()) {
          *out = *p;
          return ::testing::AssertionSuccess();
        }
      }
      const int rc = agent_->Wait(0ms);
      if (rc >= 0)
        return ::testing::AssertionFailure()
               << "mt-agent exited with " << rc << " before it served\n"
               << Tail(ReadFile(AgentLog()));
      if (Clock::now() > deadline)
        return ::testing::AssertionFailure()
               << "mt-agent did not serve within " << limit.count() << " s\n"
               << Tail(ReadFile(AgentLog()));
      std::this_thread::sleep_for(10ms);
    }
  }

  // The seq the last start of the stream recovered to ("applied up to seq N").
  std::optional<uint64_t> LastRecoveredSeq() {
    const std::string log = ReadFile(AgentLog());
    const std::string marker = "stream 'vm1' started: 2 disk(s), applied up to seq ";
    const size_t at = log.rfind(marker);
    if (at == std::string::npos) return std::nullopt;
    return std::strtoull(log.c_str() + at + marker.size(), nullptr, 10);
  }

  size_t Count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }

  // The stream's checkpoint (lowest over its disks), read from the catalog
  // while the daemon is down; -1 if it cannot be read.
  int64_t CheckpointOffline(uint64_t stream) {
    auto c = retention::Catalog::OpenReadOnly(dir_ + "/retention/catalog.db");
    if (!c.ok()) return -1;
    int64_t low = INT64_MAX;
    for (uint32_t d = 0; d < kDisks; ++d) {
      auto cp = (*c)->GetCheckpoint(stream, d);
      if (!cp.ok()) return -1;
      low = std::min<int64_t>(low, *cp ? static_cast<int64_t>((*cp)->applied_seq) : 0);
    }
    return low;
  }

  void VerifyOffline(const std::vector<KillInfo>& kills);

  std::string dir_, config_;
  uint16_t port_ = 0;
  std::unique_ptr<test::LoopDevice> loops_[kDisks];
  std::unique_ptr<test::Subprocess> agent_, sender_;
  uint64_t count_ = kCount;  // the workload's last seq (grows if mtsend is run again)
  int sender_runs_ = 0;
};

TEST_F(DaemonCrash, KillNineTwentyTimesWhileStreamingLosesNothingAndEveryPointIsExact) {
  const auto t0 = Clock::now();
  uint64_t seed = 6;
  if (const char* s = std::getenv("MT_CRASH_SEED")) seed = std::strtoull(s, nullptr, 10);
  std::printf("kill schedule seed %llu (MT_CRASH_SEED), workload seed %llu\n",
              static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(kWorkloadSeed));
  std::mt19937_64 rng(seed);
  SCOPED_TRACE("kill schedule seed " + std::to_string(seed));

  Spawn();
  proto::Pair p;
  ASSERT_TRUE(WaitReady(&p));
  const uint64_t stream_id = p.stream_id();
  std::string fingerprint;
  {
    proto::ControlRequest req;
    req.mutable_get_status();
    auto st = control::CallControl(Socket(), req, 2s);
    ASSERT_TRUE(st.ok() && !st->has_error()) << st.status().ToString();
    fingerprint = st->status().tls_fingerprint();
    ASSERT_EQ(st->status().listen(), "127.0.0.1:" + std::to_string(port_));
  }
  ASSERT_EQ(fingerprint.size(), 64u);

  // mtsend, its output in files (nothing to drain), bounded by timeout(1).
  // Normally one run streams through every kill. On a slow machine it may
  // finish its workload first: then it is run again with a larger --count,
  // as a restarted sender would be (it resumes from the welcome's resume_seq
  // and keeps appending to the same record).
  auto start_sender = [&] {
    // clang-format off
    sender_ = std::make_unique<test::Subprocess>(std::vector<std::string>{
        "/bin/sh", "-c",
        "o=$1; e=$2; shift 2; exec /usr/bin/timeout -s KILL 150 \"$@\" >>\"$o\" 2>>\"$e\"",
        "sh", dir_ + "/mtsend.out", dir_ + "/mtsend.err",
        MT_MTSEND_PATH, "workload",
        "--to", "127.0.0.1:" + std::to_string(port_),
        "--stream", "vm1",
        "--key", dir_ + "/credentials/vm1.key",
        "--fingerprint", fingerprint,
        "--disks", std::to_string(kDisks),
        "--disk-size", std::to_string(kDiskSize),
        "--sizes", kSizes,
        "--overlap", "0.5",
        "--seed", std::to_string(kWorkloadSeed),
        "--rate", std::to_string(kRate),
        "--count", std::to_string(count_),
        "--tag-every", "0.2",
        "--retry-for", "30",  // seconds of failing without progress before it gives up
        "--record", Record(),
        "--verbose"});
    // clang-format on
    ++sender_runs_;
  };
  start_sender();
  ASSERT_TRUE(sender_->started());
  auto sender_done = [&] { return sender_->Wait(0ms) >= 0; };

  // Streaming again: mtsend attached and the durable seq moves past `after`.
  auto wait_streaming = [&](uint64_t after) -> ::testing::AssertionResult {
    const auto deadline = Clock::now() + 20s;
    while (Clock::now() < deadline) {
      if (sender_done()) {
        const int rc = sender_->Wait(0ms);
        if (rc != 0)
          return ::testing::AssertionFailure()
                 << "mtsend failed (exit " << rc
                 << ") during the kill loop (it fails when a welcome resumes before what it saw "
                    "acknowledged: a lost acknowledged write):\n"
                 << Tail(ReadFile(dir_ + "/mtsend.err"), 5) << Tail(ReadFile(AgentLog()), 10);
        count_ += kCount / 4;  // finished before the kills were done: go on
        std::printf(
            "mtsend finished its workload before the kills were done; run %d goes on "
            "to seq %llu\n",
            sender_runs_ + 1, static_cast<unsigned long long>(count_));
        start_sender();
        continue;
      }
      auto q = Pair();
      if (q && q->attached() && q->durable_seq() > after) return ::testing::AssertionSuccess();
      std::this_thread::sleep_for(5ms);
    }
    return ::testing::AssertionFailure()
           << "mtsend did not stream again within 20 s after seq " << after << "\n"
           << Tail(ReadFile(dir_ + "/mtsend.err"), 5) << Tail(ReadFile(AgentLog()), 10);
  };
  ASSERT_TRUE(wait_streaming(0));

  std::vector<KillInfo> kills;
  // A restart serves after ~60 ms: most second kills land while it starts.
  std::uniform_int_distribution<int> pause_ms(50, 400), restart_pause_ms(0, 80);
  const auto loop_start = Clock::now();
  for (int k = 1; k <= kMaxKills; ++k) {
    if (k > kMinKills) {
      const auto q = Pair();
      if (!q || q->durable_seq() >= count_ * 3 / 4) break;
    }
    KillInfo ki;
    ki.number = k;
    const auto before = Pair();
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));
    const auto last = Pair();
    ASSERT_TRUE(before && last) << "kill " << k << ": the daemon does not answer";
    ki.durable_before = last->durable_seq();
    ki.attached = last->attached();
    ki.flowing = last->durable_seq() > before->durable_seq();
    Kill();
    ki.checkpoint_at_kill = CheckpointOffline(stream_id);

    if (k % kRestartKillEvery == 0) {  // killed again while it recovers and starts
      ki.restart_kill = true;
      Spawn();
      std::this_thread::sleep_for(std::chrono::milliseconds(restart_pause_ms(rng)));
      ki.restart_kill_before_ready = !Pair().has_value();
      Kill();
    }

    const auto spawned = Clock::now();
    Spawn();
    proto::Pair after;
    ASSERT_TRUE(WaitReady(&after)) << "restart after kill " << k;
    ki.restart_s = Seconds(Clock::now() - spawned);
    auto recovered = LastRecoveredSeq();
    ASSERT_TRUE(recovered.has_value()) << Tail(ReadFile(AgentLog()));
    ki.recovered = *recovered;
    kills.push_back(ki);
    // Invariant 1: whatever was durable (so possibly acknowledged) before the
    // kill is still there after the restart.
    ASSERT_GE(ki.recovered, ki.durable_before)
        << "kill " << k << " (schedule seed " << seed << "): the daemon said seq "
        << ki.durable_before << " was durable before SIGKILL, the restart recovered only up to "
        << ki.recovered << "\n"
        << Tail(ReadFile(AgentLog()));
    ASSERT_GE(after.durable_seq(), ki.recovered);
    std::printf("%s\n", Describe(ki).c_str());
    std::fflush(stdout);
    ASSERT_TRUE(wait_streaming(after.durable_seq())) << "after kill " << k;
  }
  const double loop_s = Seconds(Clock::now() - loop_start);

  // mtsend finishes: every item acknowledged (it fails on a welcome that
  // resumes before what it saw acknowledged).
  const int sent_rc = sender_->Wait(120s);
  const std::string sent_out = ReadFile(dir_ + "/mtsend.out");
  const std::string sent_err = ReadFile(dir_ + "/mtsend.err");
  ASSERT_EQ(sent_rc, 0) << sent_out << sent_err;
  EXPECT_NE(
      sent_out.find((sender_runs_ == 1 ? "seqs 1.." : "..") + std::to_string(count_) + " durable"),
      std::string::npos)
      << sent_out;
  const double stream_s = Seconds(Clock::now() - t0);

  // Everything durable is applied; SIGTERM stops the daemon cleanly.
  const auto deadline = Clock::now() + 30s;
  while (true) {
    auto q = Pair();
    if (q && q->applied_seq() == count_) {
      EXPECT_EQ(q->durable_seq(), count_);
      break;
    }
    ASSERT_LT(Clock::now(), deadline) << "not applied up to " << count_;
    std::this_thread::sleep_for(20ms);
  }
  agent_->Signal(SIGTERM);
  ASSERT_EQ(agent_->Wait(60s), 0) << Tail(ReadFile(AgentLog()));
  agent_.reset();
  const std::string log = ReadFile(AgentLog());
  EXPECT_EQ(Count(log, "not started"), 0u) << log;
  EXPECT_EQ(Count(log, " error"), 0u) << Tail(log, 60);

  const auto verify_start = Clock::now();
  VerifyOffline(kills);
  const double verify_s = Seconds(Clock::now() - verify_start);

  int attached = 0, flowing = 0, behind = 0, after_status = 0, restart_kills = 0,
      restart_kills_early = 0;
  double restart_max = 0, restart_sum = 0;
  for (const auto& ki : kills) {
    attached += ki.attached;
    flowing += ki.attached && ki.flowing;
    behind +=
        ki.checkpoint_at_kill >= 0 && static_cast<uint64_t>(ki.checkpoint_at_kill) < ki.recovered;
    after_status += ki.recovered > ki.durable_before;
    restart_kills += ki.restart_kill;
    restart_kills_early += ki.restart_kill_before_ready;
    restart_max = std::max(restart_max, ki.restart_s);
    restart_sum += ki.restart_s;
  }
  std::printf(
      "%d SIGKILLs while streaming + %d during a restart (%d of them before it served); "
      "mid-ingest (sender attached, durable seq moving): %d, idle: %d (sender attached: %d); "
      "items became durable after the last status: %d; applier behind the WAL at the kill: %d\n",
      static_cast<int>(kills.size()), restart_kills, restart_kills_early, flowing,
      static_cast<int>(kills.size()) - flowing, attached, after_status, behind);
  std::printf(
      "restart to serving: mean %.3f s, max %.3f s; kill loop %.1f s; %d mtsend run(s): %s"
      "%zu reconnects logged; streaming %.1f s, offline checks %.1f s, total %.1f s\n",
      restart_sum / kills.size(), restart_max, loop_s, sender_runs_, sent_out.c_str(),
      Count(sent_err, "reconnecting"), stream_s, verify_s, Seconds(Clock::now() - t0));
}

void DaemonCrash::VerifyOffline(const std::vector<KillInfo>& kills) {
  shim::FileSystem& fs = shim::PosixFileSystem();

  // (1) The record: every seq once, in order.
  auto rec = send::ReadRecord(fs, Record());
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  ASSERT_EQ(rec->entries.size(), count_);
  for (uint64_t i = 0; i < count_; ++i) ASSERT_EQ(rec->entries[i].seq, i + 1);

  // The store as the stopped daemon left it.
  retention::StoreOptions so;
  so.root = dir_ + "/retention";
  so.segment_bytes = 4ull << 20;
  auto store = retention::RetentionStore::Open(fs, shim::SystemClock(), so);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  retention::Catalog& catalog = (*store)->catalog();
  auto row = catalog.FindStream("vm1");
  ASSERT_TRUE(row.ok() && row->has_value());
  const uint64_t id = (*row)->id;
  EXPECT_EQ((*row)->state, retention::StreamState::kProtected) << (*row)->error;
  auto journals = (*store)->OpenStream(id);
  ASSERT_TRUE(journals.ok()) << journals.status().ToString();
  EXPECT_EQ(journals->wal_report.truncated_bytes, 0u) << "a clean stop left a torn WAL tail";
  EXPECT_EQ(journals->undo_report.truncated_bytes, 0u) << "a clean stop left a torn undo tail";
  for (uint32_t d = 0; d < kDisks; ++d) {
    auto cp = catalog.GetCheckpoint(id, d);
    ASSERT_TRUE(cp.ok() && cp->has_value());
    EXPECT_EQ((*cp)->applied_seq, count_) << "checkpoint of disk " << d;
  }
  EXPECT_LE(journals->wal->durable_seq(), count_);
  EXPECT_EQ(journals->undo->durable_seq(), count_);
  const std::vector<retention::SegmentInfo> undo = journals->undo->Segments();
  const uint64_t oldest = retention::OldestReachablePoint(undo);
  EXPECT_EQ(oldest, 0u) << "nothing should have been pruned";

  // Tags: the record's are the catalog's points.
  std::vector<std::pair<uint64_t, std::string>> tags, points;
  for (const auto& e : rec->entries)
    if (e.type == 'T' && e.seq > oldest) tags.emplace_back(e.seq, e.name);
  auto rows = catalog.ListPoints(id);
  ASSERT_TRUE(rows.ok());
  for (const auto& pr : *rows) {
    points.emplace_back(pr.seq, pr.name);
    EXPECT_EQ(pr.kind, retention::TagKind::kApp) << pr.name;
  }
  EXPECT_EQ(points, tags);
  if (points != tags) {  // name the difference: the lists are long
    for (const auto& t : tags)
      if (std::find(points.begin(), points.end(), t) == points.end())
        ADD_FAILURE() << "tag in the record, not in the catalog: " << t.first << " " << t.second;
    for (const auto& pt : points)
      if (std::find(tags.begin(), tags.end(), pt) == tags.end())
        ADD_FAILURE() << "point in the catalog, not in the record: " << pt.first << " " << pt.second;
  }

  // (2) The targets equal the record rebuilt at N.
  std::vector<std::unique_ptr<VectorDevice>> targets;
  {
    std::vector<std::vector<uint8_t>> rebuilt;
    ASSERT_TRUE(send::RebuildDisks(*rec, kDisks, kDiskSize, count_, &rebuilt).ok());
    for (uint32_t d = 0; d < kDisks; ++d) {
      shim::BlockDeviceOptions o;  // read-only, O_DIRECT
      auto dev = shim::OpenBlockDevice(loops_[d]->path(), o);
      ASSERT_TRUE(dev.ok()) << dev.status().ToString();
      AlignedBuffer buf(kDiskSize);
      ASSERT_TRUE((*dev)->ReadAt(0, buf.data(), kDiskSize).ok());
      targets.push_back(std::make_unique<VectorDevice>(
          "target " + std::to_string(d), std::vector<uint8_t>(buf.data(), buf.data() + kDiskSize)));
      ASSERT_TRUE(targets[d]->bytes() == rebuilt[d])
          << "disk " << d << " differs from the record at seq " << count_ << ": "
          << Difference(targets[d]->bytes(), rebuilt[d], *rec, d);
    }
  }

  // (4) The points exported: every tag, seqs spread evenly over the window,
  // and the seqs around every kill (durable before it, the checkpoint it
  // left, what the restart recovered, and one after each).
  std::set<uint64_t> check;
  for (const auto& t : tags) check.insert(t.first);
  for (size_t i = 0; i < kSpreadPoints; ++i)
    check.insert(oldest + (count_ - oldest) * i / (kSpreadPoints - 1));
  for (const auto& ki : kills) {
    for (int64_t s : {static_cast<int64_t>(ki.durable_before), ki.checkpoint_at_kill,
                      static_cast<int64_t>(ki.recovered)})
      for (int64_t x : {s, s + 1})
        if (s >= 0 && static_cast<uint64_t>(x) >= oldest && static_cast<uint64_t>(x) <= count_)
          check.insert(static_cast<uint64_t>(x));
  }
  const size_t tag_points = tags.size();
  const size_t spread_points = check.size() - tag_points;

  // (3) and (4) in one walk: the undo journal forward, in step with the
  // record model; exports whenever the model reaches a point to check.
  RecordModel model(*rec);
  ASSERT_TRUE(model.AdvanceTo(oldest).ok());
  size_t expect = model.next();  // the entry the next undo record must describe
  uint64_t undo_writes = 0, undo_tags = 0, exports = 0;
  // Differences do not stop the walk (the first few are reported, with the
  // kill whose restart re-applied the seq, if any); a broken pairing of undo
  // records and recorded items does.
  struct Failures {
    uint64_t count = 0;
    std::vector<std::string> first;
    void Add(std::string m) {
      if (count++ < 5) first.push_back(std::move(m));
    }
  } journal, befores, exported;
  auto around = [&](uint64_t seq) -> std::string {
    for (const auto& ki : kills)
      if (ki.checkpoint_at_kill >= 0 && seq > static_cast<uint64_t>(ki.checkpoint_at_kill) &&
          seq <= ki.recovered)
        return "; applied again by the restart after kill " + std::to_string(ki.number) +
               " (checkpoint at the kill " + std::to_string(ki.checkpoint_at_kill) +
               ", recovered to " + std::to_string(ki.recovered) + ")";
    return "; applied live, not by a restart";
  };
  auto it = check.begin();
  auto export_check = [&](uint64_t p) -> Status {
    MT_RETURN_IF_ERROR(model.AdvanceTo(p));
    for (uint32_t d = 0; d < kDisks; ++d) {
      VectorDevice out("export", std::vector<uint8_t>(kDiskSize, 0xa5));
      Status s = recovery::Export(fs, undo, *targets[d], d, p, out);
      ++exports;
      if (!s.ok())
        exported.Add("export of disk " + std::to_string(d) + " at seq " + std::to_string(p) + ": " +
                     s.ToString());
      else if (out.bytes() != model.disk(d))
        exported.Add(
            "disk " + std::to_string(d) + " exported at seq " + std::to_string(p) +
            " differs from the record: " + Difference(out.bytes(), model.disk(d), *rec, d));
    }
    return Status::Ok();
  };
  std::vector<uint8_t> before;
  Status walk = retention::ForEachRecord(
      fs, undo, retention::Direction::kForward,
      [&](const retention::RecordHeader& h, const std::vector<uint8_t>& stored, bool*) -> Status {
        for (; it != check.end() && *it < h.seq; ++it) MT_RETURN_IF_ERROR(export_check(*it));
        MT_RETURN_IF_ERROR(model.AdvanceTo(h.seq - 1));
        auto broken = [&](const std::string& m) {
          journal.Add(m);
          return Status(Errc::kAborted, m);
        };
        if (expect < rec->entries.size() && rec->entries[expect].seq < h.seq)
          return broken("record seq " + std::to_string(rec->entries[expect].seq) +
                        " has no undo record (the next one is seq " + std::to_string(h.seq) + ")");
        if (expect >= rec->entries.size() || rec->entries[expect].seq != h.seq)
          return broken("undo record seq " + std::to_string(h.seq) + " is not a recorded item");
        const send::RecordEntry& e = rec->entries[expect++];
        if (h.type == retention::RecordType::kTag) {
          retention::TagPayload t;
          if (e.type != 'T' || !retention::DecodeTag(stored.data(), stored.size(), &t).ok() ||
              t.name != e.name)
            return broken("undo record seq " + std::to_string(h.seq) +
                          " is a tag, the record's is not this one");
          ++undo_tags;
          return Status::Ok();
        }
        if (h.type != retention::RecordType::kWrite || e.type != 'W' || h.disk != e.disk ||
            h.offset != e.offset || h.length != e.length)
          return broken("undo record seq " + std::to_string(h.seq) + " (disk " +
                        std::to_string(h.disk) + " offset " + std::to_string(h.offset) +
                        " length " + std::to_string(h.length) +
                        ") does not describe the recorded item");
        before.resize(h.length);
        MT_RETURN_IF_ERROR(
            retention::ExpandPayload(h, stored.data(), stored.size(), before.data()));
        ++undo_writes;
        if (std::memcmp(before.data(), model.disk(e.disk).data() + e.offset, e.length) != 0) {
          size_t i = 0, n = 0;
          while (before[i] == model.disk(e.disk)[e.offset + i]) ++i;
          for (size_t j = i; j < e.length; ++j) n += before[j] != model.disk(e.disk)[e.offset + j];
          befores.Add("the before-image of seq " + std::to_string(h.seq) + " (disk " +
                      std::to_string(e.disk) + ", offset " + std::to_string(e.offset) + ", " +
                      std::to_string(e.length) + " bytes) differs from the source at seq " +
                      std::to_string(h.seq - 1) + " in " + std::to_string(n) +
                      " bytes, first at disk byte " + std::to_string(e.offset + i) + around(h.seq));
        }
        return Status::Ok();
      },
      oldest + 1);
  if (!walk.ok() && journal.count == 0) journal.Add("undo walk: " + walk.ToString());
  if (walk.ok()) {
    for (; it != check.end(); ++it) ASSERT_TRUE(export_check(*it).ok());
    if (expect != rec->entries.size())
      journal.Add("record seq " + std::to_string(rec->entries[expect].seq) +
                  " and later have no undo record");
  }
  for (const auto& f : journal.first) ADD_FAILURE() << "undo journal vs record: " << f;
  EXPECT_EQ(befores.count, 0u) << "before-images that differ from the record";
  for (const auto& f : befores.first) ADD_FAILURE() << f;
  EXPECT_EQ(exported.count, 0u) << "exports that differ from the record";
  for (const auto& f : exported.first) ADD_FAILURE() << f;
  std::printf(
      "checked offline: %llu seqs (%llu before-images, %llu tags) byte for byte against the "
      "record; %llu exports at %zu points (%zu tags, %zu other seqs)\n",
      static_cast<unsigned long long>(count_ - oldest),
      static_cast<unsigned long long>(undo_writes), static_cast<unsigned long long>(undo_tags),
      static_cast<unsigned long long>(exports), check.size(), tag_points, spread_points);
}

}  // namespace
}  // namespace mt
