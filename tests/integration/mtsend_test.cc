// mtsend (the reference sender) as a process against the in-process
// receiver over real TLS on 127.0.0.1: workloads reach the targets exactly as
// their record says, a killed and restarted mtsend loses and duplicates
// nothing, pinning and credentials fail with one clear line, a failed
// stream stops it at once with one line, a transient refusal after every
// welcome ends after --retry-for with bounded retry lines; and openssl
// s_client judges which TLS versions the data port accepts.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>

#include "data_port_fixture.h"
#include "stream/block_hash.h"
#include "mt/shim/aligned_buffer.h"
#include "mt/shim/fault_injection.h"
#include "send/record.h"
#include "send/sender.h"
#include "subprocess.h"

namespace mt::daemon::test {
namespace {

using mt::test::ProcessResult;
using mt::test::RunProcess;
using mt::test::Subprocess;

// Every child runs under timeout(1): a hang fails the test instead of stalling it.
ProcessResult RunBounded(std::vector<std::string> argv, int seconds = 90) {
  argv.insert(argv.begin(), {"/usr/bin/timeout", "-s", "KILL", std::to_string(seconds)});
  return RunProcess(argv);
}

class MtsendTest : public DataPortTest {
 protected:
  std::vector<std::string> Workload(const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {MT_MTSEND_PATH, "workload",
                                     "--to", "127.0.0.1:" + std::to_string(port()),
                                     "--stream", kStream,
                                     "--key", creds_->PathOf(kStream),
                                     "--fingerprint", identity_.fingerprint,
                                     "--disks", std::to_string(kDisks),
                                     "--disk-size", std::to_string(kDiskSize),
                                     "--retry-for", "20"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  // The targets equal the record rebuilt at the durable seq, every seq
  // 1..last is recorded once, and the tags in the record are the stream's points.
  void ExpectTargetsMatchRecord(const std::string& record_path, uint64_t last) {
    ASSERT_TRUE(runtime_->WaitApplied(30'000).ok());
    EXPECT_EQ(runtime_->Health().durable_seq, last);
    auto rec = send::ReadRecord(shim::PosixFileSystem(), record_path);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    ASSERT_EQ(rec->entries.size(), last);
    for (uint64_t i = 0; i < last; ++i) ASSERT_EQ(rec->entries[i].seq, i + 1);
    std::vector<std::vector<uint8_t>> images;
    ASSERT_TRUE(send::RebuildDisks(*rec, kDisks, kDiskSize, last, &images).ok());
    for (uint32_t d = 0; d < kDisks; ++d) {
      EXPECT_TRUE(images[d] == disks_[d]->Contents()) << "disk " << d << " differs from the record";
    }
    std::vector<std::string> tags;
    for (const auto& e : rec->entries) {
      if (e.type == 'T') tags.push_back(e.name);
    }
    auto points = store_->catalog().ListPoints(stream_id_);
    ASSERT_TRUE(points.ok());
    std::vector<std::string> names;
    for (const auto& p : *points) names.push_back(p.name);
    EXPECT_EQ(names, tags);
  }
};

TEST_F(MtsendTest, WorkloadReachesTheTargetsExactlyAsRecorded) {
  const std::string record = dir_.path() + "/record.txt";
  ProcessResult r = RunBounded(Workload({"--count", "400", "--sizes", "4k..64k", "--overlap", "0.5",
                                         "--seed", "7", "--record", record}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("seqs 1..400 durable"), std::string::npos) << r.out;
  ExpectTargetsMatchRecord(record, 400);
}

TEST_F(MtsendTest, KilledMtsendRestartedLosesAndDuplicatesNothing) {
  const std::string record = dir_.path() + "/record.txt";
  const std::vector<std::string> argv =
      Workload({"--count", "3000", "--sizes", "4k..128k", "--overlap", "0.3", "--seed", "42",
                "--rate", "1500", "--tag-every", "0.25", "--record", record});
  for (uint64_t kill_at : {600u, 1500u}) {
    Subprocess p(argv);
    ASSERT_TRUE(p.started());
    ASSERT_TRUE(WaitFor([&] { return runtime_->Health().durable_seq >= kill_at; },
                        std::chrono::seconds(30)))
        << "mtsend made no progress: " << p.DrainErr();
    p.Signal(SIGKILL);  // mid-batch: writes are in flight and unacknowledged
    EXPECT_EQ(p.Wait(std::chrono::seconds(10)), 128 + SIGKILL);
  }
  EXPECT_LT(runtime_->Health().durable_seq, 3000u) << "the kills came too late to test anything";
  ProcessResult r = RunBounded(argv);  // restarted: resumes from the welcome's resume_seq
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectTargetsMatchRecord(record, 3000);
}

TEST_F(MtsendTest, DifferentServerFingerprintIsRefusedWithOneLine) {
  std::vector<std::string> argv = Workload({"--count", "10"});
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--fingerprint") argv[i + 1] = std::string(64, 'a');
  }
  ProcessResult r = RunBounded(argv);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("fingerprint"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("refusing"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(runtime_->Health().durable_seq, 0u);
}

TEST_F(MtsendTest, WrongCredentialFailsAtOnceWithOneLine) {
  std::vector<std::string> argv = Workload({"--count", "10"});
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--key") {
      argv[i] = "--key-hex";
      argv[i + 1] = std::string(64, '0');
    }
  }
  ProcessResult r = RunBounded(argv);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("auth: authentication failed for stream 'vm1'"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(MtsendTest, TagBecomesARecoveryPointOfItsKind) {
  ProcessResult w = RunBounded(Workload({"--count", "20", "--sizes", "4k"}));
  ASSERT_EQ(w.exit_code, 0) << w.err;
  ProcessResult r = RunBounded({MT_MTSEND_PATH, "tag", "before-upgrade", "--app",
                                "--to", "127.0.0.1:" + std::to_string(port()), "--stream", kStream,
                                "--key", creds_->PathOf(kStream),
                                "--fingerprint", ColonFingerprint(identity_.fingerprint)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(runtime_->WaitApplied(10'000).ok());
  auto p = store_->catalog().FindPoint(stream_id_, "before-upgrade");
  ASSERT_TRUE(p.ok() && p->has_value());
  EXPECT_EQ((*p)->seq, 21u);
  EXPECT_EQ((*p)->kind, retention::TagKind::kApp);
}

// --- resync ------------------------------------------------------------------

// The HashSource proposal (hash_source.h) outside the runtime, for the test:
// wait until what is durable is applied, then hash the target range.
class TargetHashSource final : public HashSource {
 public:
  TargetHashSource(StreamRuntime& rt, std::vector<shim::MemBlockDevice*> disks)
      : rt_(rt), disks_(std::move(disks)) {}
  Status HashBlocks(const proto::ResyncHashRequest& r, std::vector<uint8_t>* out) override {
    ++requests;
    if (r.disk() >= disks_.size()) return Status(Errc::kNotFound, "no disk " + std::to_string(r.disk()));
    MT_RETURN_IF_ERROR(rt_.WaitApplied(30'000));
    const std::vector<uint8_t> all = disks_[r.disk()]->Contents();
    if (r.offset() + r.length() > all.size()) return Status(Errc::kOutOfRange, "beyond the disk");
    return stream::HashBlocks(all.data() + r.offset(), r.length(), r.block_size(), out);
  }
  std::atomic<int> requests{0};  // hash requests answered or refused

 private:
  StreamRuntime& rt_;
  std::vector<shim::MemBlockDevice*> disks_;
};

class MtsendResyncTest : public MtsendTest {
 protected:
  retention::ResyncState ResyncStateOf(uint32_t disk) const override {
    return disk == 1 ? retention::ResyncState::kPending : retention::ResyncState::kComplete;
  }
  void SetUp() override {
    MtsendTest::SetUp();
    hashes_ = std::make_unique<TargetHashSource>(
        *runtime_, std::vector<shim::MemBlockDevice*>{disks_[0].get(), disks_[1].get()});
    directory_.Set(kStream, StreamEntry{std::make_shared<RuntimePort<StreamRuntime>>(*runtime_, hashes_.get()), key_});
  }
  std::vector<std::string> Resync(const std::string& source, uint32_t disk) {
    return {MT_MTSEND_PATH, "resync", "--source", source, "--disk", std::to_string(disk),
            "--chunk", "1M", "--to", "127.0.0.1:" + std::to_string(port()), "--stream", kStream,
            "--key", creds_->PathOf(kStream), "--fingerprint", identity_.fingerprint};
  }
  // A source image of zeros, the disks' size.
  std::string ZeroSource() {
    const std::string source = dir_.path() + "/zeros.img";
    const std::vector<char> zeros(kDiskSize);
    std::ofstream(source, std::ios::binary).write(zeros.data(), zeros.size());
    return source;
  }
  // A source image of the workload pattern of `seed`, the disks' size;
  // *image gets its bytes.
  std::string PatternSource(uint64_t seed, std::vector<uint8_t>* image) {
    image->assign(kDiskSize, 0);
    send::WorkloadData(seed, seed, image->data(), image->size());
    const std::string source = dir_.path() + "/source.img";
    std::ofstream(source, std::ios::binary).write(reinterpret_cast<const char*>(image->data()), image->size());
    return source;
  }
  // mtsend resync --full of disk 1 from PatternSource(seed, image).
  ProcessResult FullResync(uint64_t seed, std::vector<uint8_t>* image) {
    std::vector<std::string> args = Resync(PatternSource(seed, image), 1);
    args.push_back("--full");
    return RunBounded(args);
  }
  // Disk 1 holds `image` with `change` made to it (given the bytes).
  void TargetFrom(const std::vector<uint8_t>& image, const std::function<void(uint8_t*)>& change) {
    AlignedBuffer buf(kDiskSize);
    std::copy(image.begin(), image.end(), buf.data());
    change(buf.data());
    ASSERT_TRUE(disks_[1]->WriteAt(0, buf.data(), kDiskSize).ok());
  }
  std::unique_ptr<TargetHashSource> hashes_;
};

TEST_F(MtsendResyncTest, ResyncSendsOnlyTheBlocksThatDifferAndCompletesTheDisk) {
  // Source image: a pattern; the target already holds it except 5 blocks of 64 KiB.
  std::vector<uint8_t> image;
  const std::string source = PatternSource(5, &image);
  TargetFrom(image, [](uint8_t* t) {
    for (uint64_t b : {0u, 3u, 17u, 64u, 127u}) std::fill_n(t + b * 65536 + 1000, 10, 0xee);
  });

  std::vector<std::string> coarse = Resync(source, 1);
  coarse.insert(coarse.end(), {"--block-size", "64k"});
  ProcessResult r = RunBounded(coarse);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("5 blocks (0.3 MiB) sent"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("100.0% compared"), std::string::npos) << r.err;  // plain progress lines
  ASSERT_TRUE(runtime_->WaitApplied(30'000).ok());
  EXPECT_TRUE(disks_[1]->Contents() == image);
  auto rows = store_->catalog().ListDisks(stream_id_);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[1].resync_state, retention::ResyncState::kComplete);

  // The disk is in sync now: a second resync is refused with one line.
  ProcessResult again = RunBounded(Resync(source, 1));
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("resync is complete"), std::string::npos) << again.err;
}

// Issue 20: 4 KiB blocks are compared (the default), so a small change
// sends little, and adjacent differing blocks go as one record, so a dense
// change is not cut into 4 KiB records.
TEST_F(MtsendResyncTest, SmallChangesSendTheirBlockAndAdjacentChangesGoAsOneRecord) {
  std::vector<uint8_t> image;
  const std::string source = PatternSource(15, &image);
  TargetFrom(image, [](uint8_t* t) {
    for (uint64_t b : {2u, 40u}) t[b * 65536 + 3 * 4096 + 5] ^= 0xff;  // one 4 KiB block each
    for (uint64_t i = 4u << 20; i < (5u << 20); ++i) t[i] ^= 0xff;       // 1 MiB, adjacent
  });

  ProcessResult r = RunBounded(Resync(source, 1));  // 1 MiB chunks
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(" 3 blocks "), std::string::npos) << r.out;  // 2 of 4 KiB + 1 of 1 MiB
  ASSERT_TRUE(runtime_->WaitApplied(30'000).ok());
  EXPECT_EQ(runtime_->Health().bytes_ingested, 2u * 4096 + (1u << 20));
  EXPECT_TRUE(disks_[1]->Contents() == image);
}

// --full (issue 20): no hash request at all; every block is sent, in 8 MiB
// records, and the target ends equal to the source.
TEST_F(MtsendResyncTest, FullResyncSendsEveryBlockWithoutComparing) {
  std::vector<uint8_t> image;
  ProcessResult r = FullResync(7, &image);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const uint64_t records = (kDiskSize + send::kFullRecordBytes - 1) / send::kFullRecordBytes;
  EXPECT_NE(r.out.find(std::to_string(records) + " blocks"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("100.0% copied"), std::string::npos) << r.err;
  EXPECT_EQ(hashes_->requests.load(), 0);
  ASSERT_TRUE(runtime_->WaitApplied(30'000).ok());
  EXPECT_TRUE(disks_[1]->Contents() == image);
  auto rows = store_->catalog().ListDisks(stream_id_);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[1].resync_state, retention::ResyncState::kComplete);
}

// Disk 1's catalog row as `pair add --blank` leaves it (target_blank), and
// as a completed first resync then `mtctl resync` leave it when
// `completed_before` (resync pending again, resync_complete_seq set).
void DeclareBlank(retention::Catalog& catalog, uint64_t stream, bool completed_before) {
  auto rows = catalog.ListDisks(stream);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  retention::DiskRow row = (*rows)[1];
  row.target_blank = true;
  if (completed_before) row.resync_complete_seq = 1;
  ASSERT_TRUE(catalog.UpdateDisk(row).ok());
}

// Issue 20: a target declared blank at pair add is copied in full by
// mtsend's default mode (the welcome says so): no hash request, every block
// sent, and the operator is told why.
TEST_F(MtsendResyncTest, ATargetDeclaredBlankIsCopiedInFullWithoutBeingAsked) {
  DeclareBlank(store_->catalog(), stream_id_, false);
  std::vector<uint8_t> image;
  ProcessResult r = RunBounded(Resync(PatternSource(8, &image), 1));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(hashes_->requests.load(), 0);
  EXPECT_NE(r.err.find("full copy: the target was declared blank"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("MiB copied"), std::string::npos) << r.out;
  ASSERT_TRUE(runtime_->WaitApplied(30'000).ok());
  EXPECT_TRUE(disks_[1]->Contents() == image);
}

// Without a declaration the default is to compare (and say so).
TEST_F(MtsendResyncTest, WithoutADeclarationTheDefaultIsToCompare) {
  std::vector<uint8_t> image;
  const std::string source = PatternSource(10, &image);
  ProcessResult r = RunBounded(Resync(source, 1));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(hashes_->requests.load(), 0);
  EXPECT_NE(r.err.find("compare: only blocks whose SHA-256 differs"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("MiB compared"), std::string::npos) << r.out;
  ASSERT_TRUE(runtime_->WaitApplied(30'000).ok());
  EXPECT_TRUE(disks_[1]->Contents() == image);
}

// --compare overrides the declaration; --full with it is a usage error.
TEST_F(MtsendResyncTest, CompareOverridesATargetDeclaredBlank) {
  DeclareBlank(store_->catalog(), stream_id_, false);
  std::vector<uint8_t> image;
  std::vector<std::string> args = Resync(PatternSource(11, &image), 1);
  args.push_back("--compare");
  ProcessResult r = RunBounded(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(hashes_->requests.load(), 0);
  EXPECT_NE(r.err.find("compare (--compare)"), std::string::npos) << r.err;
  ASSERT_TRUE(runtime_->WaitApplied(30'000).ok());
  EXPECT_TRUE(disks_[1]->Contents() == image);
  // --full and --compare together is a usage error.
  args.push_back("--full");
  EXPECT_EQ(RunBounded(args).exit_code, 2);
}

// Once the disk's first resync completed, a resync asked for again compares:
// the target holds the source's data now.
TEST_F(MtsendResyncTest, ATargetDeclaredBlankIsComparedOnceItsFirstResyncCompleted) {
  DeclareBlank(store_->catalog(), stream_id_, true);
  std::vector<uint8_t> image;
  ProcessResult r = RunBounded(Resync(PatternSource(12, &image), 1));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(hashes_->requests.load(), 0);
  EXPECT_NE(r.err.find("compare: only blocks"), std::string::npos) << r.err;
  ASSERT_TRUE(runtime_->WaitApplied(30'000).ok());
  EXPECT_TRUE(disks_[1]->Contents() == image);
}

// Hash requests that each wait (up to 10 s) until `want` of them are being
// answered at once, then hash the target as TargetHashSource does: they see
// how many requests the sender keeps in flight.
class GatheringHashSource final : public HashSource {
 public:
  GatheringHashSource(TargetHashSource& inner, int want) : inner_(inner), want_(want) {}
  Status HashBlocks(const proto::ResyncHashRequest& r, std::vector<uint8_t>* out) override {
    {
      std::unique_lock<std::mutex> l(mu_);
      ++inside_;
      most = std::max(most.load(), inside_);
      cv_.notify_all();
      cv_.wait_for(l, std::chrono::seconds(10), [&] { return inside_ >= want_ || released_; });
      released_ = true;  // the first group gathered (or gave up): no waiting after it
    }
    Status s = inner_.HashBlocks(r, out);
    std::lock_guard<std::mutex> l(mu_);
    --inside_;
    return s;
  }
  std::atomic<int> most{0};  // the most requests answered at once

 private:
  TargetHashSource& inner_;
  const int want_;
  std::mutex mu_;
  std::condition_variable cv_;
  int inside_ = 0;
  bool released_ = false;
};

class MtsendPipelinedResyncTest : public MtsendResyncTest {
 protected:
  void SetUp() override {
    workers_ = 4;  // as many receiver threads as requests in flight
    MtsendResyncTest::SetUp();
    gathering_ = std::make_unique<GatheringHashSource>(*hashes_, 4);
    directory_.Set(kStream, StreamEntry{std::make_shared<RuntimePort<StreamRuntime>>(*runtime_, gathering_.get()), key_});
  }
  std::unique_ptr<GatheringHashSource> gathering_;
};

// Issue 20: the sender keeps --requests hash requests in flight (it hashes
// its own side of each while the receiver hashes, instead of waiting for a
// reply before it asks for the next range), and the result is still exact.
TEST_F(MtsendPipelinedResyncTest, ResyncKeepsTheRequestedHashRequestsInFlight) {
  std::vector<uint8_t> image;
  const std::string source = PatternSource(9, &image);
  TargetFrom(image, [](uint8_t* t) {
    for (uint64_t b : {1u, 40u, 99u}) std::fill_n(t + b * 65536 + 7, 3, 0x5a);
  });

  std::vector<std::string> args = Resync(source, 1);  // 1 MiB chunks: 8 requests
  args.insert(args.end(), {"--requests", "4"});
  ProcessResult r = RunBounded(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(gathering_->most.load(), 4);
  EXPECT_NE(r.out.find("3 blocks (0.0 MiB) sent"), std::string::npos) << r.out;  // 4 KiB blocks
  ASSERT_TRUE(runtime_->WaitApplied(30'000).ok());
  EXPECT_TRUE(disks_[1]->Contents() == image);
}

// The daemon's own hashing path (StreamRuntime as the HashSource): what
// `mtctl pairs` shows of a resync under way comes from it.
class MtsendRuntimeHashResyncTest : public MtsendResyncTest {
 protected:
  void SetUp() override {
    MtsendResyncTest::SetUp();
    directory_.Set(kStream, StreamEntry{std::make_shared<RuntimePort<StreamRuntime>>(*runtime_, runtime_.get()), key_});
  }
};

// Issue 20: the runtime follows each disk's resync pass (the furthest range
// hashed or copied, and the rate) for `mtctl pairs`; disks not resynced
// have no entry.
TEST_F(MtsendRuntimeHashResyncTest, ResyncProgressIsFollowedPerDisk) {
  EXPECT_TRUE(runtime_->Health().resync.empty());
  std::vector<uint8_t> image;
  const std::string source = PatternSource(11, &image);
  ProcessResult r = RunBounded(Resync(source, 1));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(runtime_->WaitApplied(30'000).ok());
  EXPECT_TRUE(disks_[1]->Contents() == image);
  const StreamHealth h = runtime_->Health();
  ASSERT_EQ(h.resync.size(), 1u);
  ASSERT_EQ(h.resync.count(1), 1u);
  const ResyncProgress& p = h.resync.at(1);
  EXPECT_EQ(p.bytes, kDiskSize);
  EXPECT_GT(p.started_ns, 0);
  EXPECT_GE(p.updated_ns, p.started_ns);
}

// Issue 20: resync data goes straight to the target (one write instead of
// WAL + target), and an acknowledgement still means durable: the target's
// data survives a power cut of everything not flushed right after mtsend
// saw every record acknowledged.
TEST_F(MtsendResyncTest, AcknowledgedInPlaceResyncDataSurvivesAPowerCutOfTheTarget) {
  std::vector<uint8_t> image;
  ProcessResult r = FullResync(13, &image);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  disks_[1]->PowerCut();  // before the applier could flush anything of its own
  EXPECT_TRUE(disks_[1]->Contents() == image);
  EXPECT_EQ(runtime_->Health().bytes_applied, 0u);  // the applier wrote none of it
}

// The apply thread stalls from its second batch on (the liveness hook), and
// in-place resync data waits at most half a second for earlier writes.
class InPlaceOrderTest : public MtsendResyncTest {
 protected:
  void SetUp() override {
    runtime_options_.test_stall_after_batches = 1;
    runtime_options_.in_place_wait_ms = 500;
    MtsendResyncTest::SetUp();
  }
};

// Issue 20: in-place resync data is never written under an earlier write of
// its disk that still waits in the WAL (applied later, the older write would
// land on top). Here the earlier write can never be applied: the resync data
// is refused after the wait, and the target holds neither.
TEST_F(InPlaceOrderTest, ResyncDataWaitsForTheDisksEarlierUnappliedWrites) {
  RawTlsClient c;
  ASSERT_TRUE(c.Connect(port()));
  auto w = c.Authenticate(kStream, key_);
  ASSERT_TRUE(w && w->type() == stream::FrameHeader::kWelcome);
  auto [first, p1] = Batch(1, 1);  // disk 0: the one batch the applier applies
  ASSERT_TRUE(c.Write(Encode(first, p1)));
  ASSERT_TRUE(c.WaitAck(1));
  ASSERT_TRUE(WaitFor([&] { return runtime_->Health().applied_seq >= 1; }, std::chrono::seconds(10)));
  auto [older, p2] = Batch(2, 1, 65536, /*disk=*/1, /*offset=*/0);  // durable, never applied
  ASSERT_TRUE(c.Write(Encode(older, p2)));
  ASSERT_TRUE(c.WaitAck(2));
  stream::FrameHeader h;
  std::vector<uint8_t> data(65536, 0xbb);
  proto::ResyncData* d = h.mutable_resync_data();
  d->set_seq(3);
  d->set_disk(1);
  d->set_offset(0);
  d->set_length(data.size());
  d->set_crc32c(crc32c::Value(data.data(), data.size()));
  ASSERT_TRUE(c.Write(Encode(h, data)));
  std::vector<stream::Frame> frames = c.ReadUntilClosed();
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().type(), stream::FrameHeader::kError);
  EXPECT_NE(frames.back().header.error().message().find("earlier writes of disk 1"), std::string::npos)
      << frames.back().header.error().message();
  const std::vector<uint8_t> now = disks_[1]->Contents();
  EXPECT_TRUE(std::all_of(now.begin(), now.begin() + 65536, [](uint8_t b) { return b == 0; }));
  EXPECT_EQ(runtime_->Health().durable_seq, 2u);
}

// --- retrying, and not retrying (issue 19) --------------------------------------

size_t Lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }
size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}
double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// A stream whose disk 1 waits for its resync and whose disk 0 is behind a
// fault injector; resync hashes come from the runtime itself (the daemon's
// path). FailTheStream() makes applying a write to disk 0 fail: the stream
// is failed, as the daemon reports one ("stream 'vm1' failed: io-error: ...").
class MtsendFailedStreamTest : public MtsendResyncTest {
 protected:
  void SetUp() override {
    MtsendResyncTest::SetUp();
    hashes_.reset();
    runtime_.reset();  // the same stream again, disk 0 behind the injector
    failing_ = std::make_unique<shim::FaultInjectingBlockDevice>(
        std::shared_ptr<shim::BlockDevice>(disks_[0].get(), [](shim::BlockDevice*) {}), faults_);
    std::map<uint32_t, shim::BlockDevice*> m{{0, failing_.get()}, {1, disks_[1].get()}};
    auto rt = StreamRuntime::Start(*store_, shim::SystemClock(), stream_id_, m, runtime_options_);
    ASSERT_TRUE(rt.ok()) << rt.status().ToString();
    runtime_ = std::move(rt).value();
    directory_.Set(kStream, StreamEntry{std::make_shared<RuntimePort<StreamRuntime>>(
                                            *runtime_, runtime_.get()),
                                        key_});
  }
  void FailTheStream() {
    faults_.FailObject("t0");
    RawTlsClient c;
    ASSERT_TRUE(c.Connect(port()));
    auto w = c.Authenticate(kStream, key_);
    ASSERT_TRUE(w && w->type() == stream::FrameHeader::kWelcome);
    auto [h, payload] = Batch(1, 1);
    ASSERT_TRUE(c.Write(Encode(h, payload)));
    ASSERT_TRUE(c.WaitAck(1));  // durable in the WAL; applying it fails
    ASSERT_TRUE(WaitFor([&] { return runtime_->Health().state == "failed"; },
                        std::chrono::seconds(10)))
        << runtime_->Health().state;
  }
  shim::FaultController faults_;
  std::unique_ptr<shim::FaultInjectingBlockDevice> failing_;
};

// The refusal on the wire: a failed stream's error frame says so.
TEST_F(MtsendFailedStreamTest, RefusalOfAFailedStreamCarriesTheStreamFailedCondition) {
  RawTlsClient before;  // not failed yet: a refusal carries no condition
  ASSERT_TRUE(before.Connect(port()));
  ASSERT_EQ(before.Authenticate(kStream, key_)->type(), stream::FrameHeader::kWelcome);
  RawTlsClient second;
  ASSERT_TRUE(second.Connect(port()));
  auto busy = second.Authenticate(kStream, key_);
  ASSERT_TRUE(busy && busy->type() == stream::FrameHeader::kError);
  EXPECT_EQ(busy->header.error().code(), "busy");
  EXPECT_EQ(busy->header.error().condition(), proto::ERROR_CONDITION_UNSPECIFIED);
  for (RawTlsClient* c : {&second, &before}) {
    c->ShutdownWrite();
    c->ReadUntilClosed();
  }
  ASSERT_TRUE(WaitFor([&] { return receiver_->sessions() == 0; }, std::chrono::seconds(10)));

  FailTheStream();
  RawTlsClient c;
  ASSERT_TRUE(c.Connect(port()));
  auto w = c.Authenticate(kStream, key_);
  ASSERT_TRUE(w && w->type() == stream::FrameHeader::kWelcome);  // ingest goes on (stream_runtime.h)
  stream::FrameHeader h;
  auto* r = h.mutable_resync_hash_request();
  r->set_request_id(1);
  r->set_disk(1);
  r->set_offset(0);
  r->set_length(1 << 20);
  r->set_block_size(64 << 10);
  ASSERT_TRUE(c.Write(Encode(h)));
  auto frames = c.ReadUntilClosed();
  ASSERT_EQ(frames.size(), 1u);
  ASSERT_EQ(frames[0].type(), stream::FrameHeader::kError);
  const proto::Error& e = frames[0].header.error();
  EXPECT_EQ(e.code(), "unavailable");
  EXPECT_NE(e.message().find("stream 'vm1' failed: io-error"), std::string::npos) << e.message();
  EXPECT_EQ(e.condition(), proto::ERROR_CONDITION_STREAM_FAILED);
}

// Issue 19: mtsend resync against a failed stream retried 7 times a second
// for ten minutes, silent, past its --retry-for. It stops at once now, with
// one line.
TEST_F(MtsendFailedStreamTest, ResyncOfAFailedStreamStopsAtOnceWithOneLine) {
  FailTheStream();
  std::vector<std::string> argv = Resync(ZeroSource(), 1);
  argv.insert(argv.end(), {"--retry-for", "60"});
  const auto t0 = std::chrono::steady_clock::now();
  ProcessResult r = RunBounded(argv, 75);
  const double took = SecondsSince(t0);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_LT(took, 10.0) << r.err;
  EXPECT_EQ(Lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("mtsend: unavailable: the receiver refused: unavailable: stream 'vm1' "
                       "failed: io-error"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("retrying cannot help"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("reconnecting"), std::string::npos) << r.err;
}

// Hash requests refused as a transient condition would refuse them (a
// stream paused for a moment): every connection is welcomed, then refused.
class RefusingHashSource final : public HashSource {
 public:
  Status HashBlocks(const proto::ResyncHashRequest&, std::vector<uint8_t>*) override {
    ++calls;
    return Status(Errc::kBusy, "stream 'vm1' is paused for a moment (test)");
  }
  std::atomic<int> calls{0};
};

class MtsendRefusedResyncTest : public MtsendResyncTest {
 protected:
  void SetUp() override {
    MtsendResyncTest::SetUp();
    directory_.Set(kStream, StreamEntry{std::make_shared<RuntimePort<StreamRuntime>>(*runtime_, &refusing_), key_});
  }
  RefusingHashSource refusing_;
};

TEST_F(MtsendRefusedResyncTest, TransientRefusalAfterEveryWelcomeGivesUpAfterRetryForWithBoundedLines) {
  std::vector<std::string> argv = Resync(ZeroSource(), 1);
  argv.insert(argv.end(), {"--retry-for", "2"});
  const auto t0 = std::chrono::steady_clock::now();
  ProcessResult r = RunBounded(argv, 30);
  const double took = SecondsSince(t0);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_GE(took, 2.0) << r.err;
  EXPECT_LT(took, 8.0) << r.err;
  // Several attempts (back-off 100, 200, 400, 800 ms, then what is left),
  // each welcomed and refused; one retry line for them (at most one per 5 s)
  // naming why and when, and the last line giving up.
  EXPECT_GE(refusing_.calls.load(), 4) << r.err;
  // At most one call per hash request in flight per attempt (6 attempts).
  EXPECT_LE(refusing_.calls.load(), 6 * static_cast<int>(send::ResyncOptions().hash_requests)) << r.err;
  const std::string why = "mtsend: busy: the receiver refused: busy: stream 'vm1' is paused for a "
                          "moment (test); reconnecting in 0.1 s (failed attempt 1; ";
  EXPECT_EQ(r.err.find(why), 0u) << r.err;
  EXPECT_EQ(Count(r.err, "reconnecting in"), 1u) << r.err;
  EXPECT_EQ(Lines(r.err), 2u) << r.err;
  EXPECT_NE(r.err.find("mtsend: busy: giving up after "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("without progress (--retry-for 2.0 s): the receiver refused: busy"),
            std::string::npos)
      << r.err;
}

// --- openssl as the judge ---------------------------------------------------

// The openssl binary's path, or "" (RunProcess does not search PATH).
std::string Openssl() {
  ProcessResult r = RunProcess({"/bin/sh", "-c", "command -v openssl"});
  if (r.exit_code != 0) return "";
  while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == ' ')) r.out.pop_back();
  return r.out;
}
bool HaveOpenssl() { return !Openssl().empty(); }

ProcessResult SClient(uint16_t port, const std::string& version) {
  return RunBounded({Openssl(), "s_client", "-connect", "127.0.0.1:" + std::to_string(port),
                     "-" + version, "-cipher", "DEFAULT@SECLEVEL=0"}, 30);
}

TEST_F(DataPortTest, OpensslTls11IsRefusedByTheServer) {
  if (!HaveOpenssl()) GTEST_SKIP() << "no openssl binary (scripts/bootstrap installs it)";
  ProcessResult r = SClient(port(), "tls1_1");
  EXPECT_NE(r.exit_code, 0);
  // The refusal is the server's: it answers the TLS 1.1 hello with an alert.
  EXPECT_NE((r.out + r.err).find("alert protocol version"), std::string::npos) << r.out << r.err;
}

TEST_F(DataPortTest, OpensslTls12AndTls13Connect) {
  if (!HaveOpenssl()) GTEST_SKIP() << "no openssl binary (scripts/bootstrap installs it)";
  for (const char* v : {"tls1_2", "tls1_3"}) {
    ProcessResult r = SClient(port(), v);
    const std::string want = std::string("New, TLSv1.") + (v[5] == '2' ? "2" : "3");
    EXPECT_EQ(r.exit_code, 0) << v << ": " << r.err;
    EXPECT_NE(r.out.find(want), std::string::npos) << v << ": " << r.out;
  }
}

TEST_F(DataPortTest, FingerprintIsTheOneOpensslComputes) {
  if (!HaveOpenssl()) GTEST_SKIP() << "no openssl binary (scripts/bootstrap installs it)";
  ProcessResult r = RunProcess({Openssl(), "x509", "-noout", "-fingerprint", "-sha256", "-in",
                                dir_.path() + "/tls/cert.pem"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(ColonFingerprint(identity_.fingerprint)), std::string::npos) << r.out;
}

}  // namespace
}  // namespace mt::daemon::test
