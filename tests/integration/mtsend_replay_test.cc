// mtsend replay --log-writes as a process against the in-process receiver
// over real TLS: a dm-log-writes capture built here (logwrites::Writer, the
// kernel's layout) reaches the target disk exactly as the capture replayed
// onto a zeroed image by the test itself, its marks become recovery points
// with the mark names; a killed and restarted replay (same --record) loses
// and duplicates nothing; a capture larger than the disk fails with one line.
//
// No real capture: this host's kernel has no device-mapper, so dm-log-writes
// cannot run here; the VM tier could produce one.
#include <gtest/gtest.h>
#include <signal.h>

#include <random>

#include "data_port_fixture.h"
#include "send/log_writes.h"
#include "mt/shim/aligned_buffer.h"
#include "send/record.h"
#include "recovery/recovery.h"
#include "subprocess.h"

namespace mt::daemon::test {
namespace {

using mt::test::ProcessResult;
using mt::test::RunProcess;
using mt::test::Subprocess;
namespace lw = mt::send::logwrites;

ProcessResult RunBounded(std::vector<std::string> argv, int seconds = 90) {
  argv.insert(argv.begin(), {"/usr/bin/timeout", "-s", "KILL", std::to_string(seconds)});
  return RunProcess(argv);
}

// A capture and, independently of the decoder, what it does to a zeroed disk.
struct Capture {
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> image;       // the disk after the whole log
  std::vector<std::string> marks;   // in order
  uint64_t items = 0;               // writes + discards + marks
};

Capture MakeCapture(uint64_t seed, int ops, uint64_t disk_size, uint64_t max_sectors) {
  const uint32_t ss = 512;
  std::mt19937_64 rng(seed);
  lw::Writer w(ss);
  Capture c;
  c.image.assign(disk_size, 0);
  const uint64_t sectors = disk_size / ss;
  for (int i = 0; i < ops; ++i) {
    const int kind = static_cast<int>(rng() % 20);
    if (kind == 0) {
      w.Flush();
      continue;
    }
    if (kind == 1) {
      const std::string name = "mark-" + std::to_string(i);
      w.Mark(name);
      c.marks.push_back(name);
      ++c.items;
      continue;
    }
    const uint64_t n = 1 + rng() % max_sectors;
    const uint64_t at = rng() % (sectors - n + 1);
    if (kind == 2) {
      w.Discard(at, n);
      std::fill_n(c.image.begin() + static_cast<ptrdiff_t>(at * ss), n * ss, 0);
    } else {
      std::vector<uint8_t> data(n * ss);
      for (auto& b : data) b = static_cast<uint8_t>(rng());
      w.Write(at, data, kind == 3 ? uint64_t{lw::kFua} : kind == 4 ? uint64_t{lw::kFlush} : uint64_t{0});
      std::copy(data.begin(), data.end(), c.image.begin() + static_cast<ptrdiff_t>(at * ss));
    }
    ++c.items;
  }
  w.Mark("dm-log-writes-end");  // what the kernel logs when the table goes away
  c.marks.push_back("dm-log-writes-end");
  ++c.items;
  c.bytes = w.Finish();
  return c;
}

class MtsendReplayTest : public DataPortTest {
 protected:
  std::string WriteCapture(const Capture& c) {
    const std::string path = dir_.path() + "/capture.log";
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(c.bytes.data()), c.bytes.size());
    return path;
  }
  std::vector<std::string> Replay(const std::string& capture, const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {MT_MTSEND_PATH, "replay", "--log-writes", capture,
                                     "--to", "127.0.0.1:" + std::to_string(port()),
                                     "--stream", kStream,
                                     "--key", creds_->PathOf(kStream),
                                     "--fingerprint", identity_.fingerprint,
                                     "--retry-for", "20"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }
  std::vector<std::string> PointNames(retention::TagKind* kind = nullptr) {
    auto points = store_->catalog().ListPoints(stream_id_);
    EXPECT_TRUE(points.ok());
    std::vector<std::string> names;
    for (const auto& p : *points) {
      names.push_back(p.name);
      if (kind != nullptr) *kind = p.kind;
    }
    return names;
  }
};

TEST_F(MtsendReplayTest, CaptureReachesTheDiskAndMarksBecomePoints) {
  // Something in the stream first: the replay's seqs start after it.
  ProcessResult w = RunBounded({MT_MTSEND_PATH, "workload", "--to", "127.0.0.1:" + std::to_string(port()),
                                "--stream", kStream, "--key", creds_->PathOf(kStream), "--fingerprint",
                                identity_.fingerprint, "--disks", "1", "--disk-size", "1M", "--count", "20",
                                "--sizes", "4k"});
  ASSERT_EQ(w.exit_code, 0) << w.err;
  const Capture c = MakeCapture(11, 300, kDiskSize, 128);
  ASSERT_GE(c.marks.size(), 3u);
  const std::string cap = WriteCapture(c);
  const std::string record = dir_.path() + "/record.txt";
  ProcessResult r = RunBounded(Replay(cap, {"--disk", "1", "--record", record}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("are seqs 21.." + std::to_string(20 + c.items) + " of disk 1"), std::string::npos) << r.out;
  ASSERT_TRUE(runtime_->WaitApplied(30'000).ok());
  EXPECT_EQ(runtime_->Health().durable_seq, 20 + c.items);
  EXPECT_TRUE(disks_[1]->Contents() == c.image) << "disk 1 differs from the capture replayed onto zeroes";
  retention::TagKind kind = retention::TagKind::kCrash;
  EXPECT_EQ(PointNames(&kind), c.marks);
  EXPECT_EQ(kind, retention::TagKind::kApp);
  auto rec = send::ReadRecord(shim::PosixFileSystem(), record);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->start, 20u);
  ASSERT_EQ(rec->entries.size(), c.items);
  EXPECT_EQ(rec->entries.back().seq, 20 + c.items);

  // Again with the same record: everything is durable, nothing is sent.
  ProcessResult again = RunBounded(Replay(cap, {"--disk", "1", "--record", record}));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(runtime_->Health().durable_seq, 20 + c.items);
  EXPECT_EQ(PointNames(), c.marks);
}

TEST_F(MtsendReplayTest, MarkKindUser) {
  const Capture c = MakeCapture(5, 40, kDiskSize, 16);
  ProcessResult r = RunBounded(Replay(WriteCapture(c), {"--mark-kind", "user"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(runtime_->WaitApplied(30'000).ok());
  retention::TagKind kind = retention::TagKind::kApp;
  EXPECT_EQ(PointNames(&kind), c.marks);
  EXPECT_EQ(kind, retention::TagKind::kUser);
  EXPECT_TRUE(disks_[0]->Contents() == c.image);
}

TEST_F(MtsendReplayTest, KilledReplayRestartedLosesAndDuplicatesNothing) {
  const Capture c = MakeCapture(42, 3000, kDiskSize, 64);
  const std::string cap = WriteCapture(c);
  const std::string record = dir_.path() + "/record.txt";
  const auto argv = Replay(cap, {"--record", record, "--window", "262144"});
  uint64_t killed_at = 0;
  {
    Subprocess p(argv);
    ASSERT_TRUE(p.started());
    ASSERT_TRUE(WaitFor([&] { return runtime_->Health().durable_seq >= 300; }, std::chrono::seconds(30)))
        << "mtsend made no progress: " << p.DrainErr();
    p.Signal(SIGKILL);
    EXPECT_EQ(p.Wait(std::chrono::seconds(10)), 128 + SIGKILL);
    killed_at = runtime_->Health().durable_seq;
  }
  EXPECT_LT(killed_at, c.items) << "the kill came too late to test anything";
  ProcessResult r = RunBounded(argv);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(runtime_->WaitApplied(30'000).ok());
  EXPECT_EQ(runtime_->Health().durable_seq, c.items);
  EXPECT_TRUE(disks_[0]->Contents() == c.image);
  EXPECT_EQ(PointNames(), c.marks);
}

TEST_F(MtsendReplayTest, CaptureLargerThanTheDiskFailsWithOneLine) {
  lw::Writer w(512);
  w.Write(kDiskSize / 512, std::vector<uint8_t>(4096, 1));
  const Capture c{w.Finish(), {}, {}, 1};
  ProcessResult r = RunBounded(Replay(WriteCapture(c), {}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("the capture writes up to byte 8392704 but the receiver's disk 0 has 8388608 bytes"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(runtime_->Health().durable_seq, 0u);
}

TEST_F(MtsendReplayTest, CorruptCaptureFailsWithOneLine) {
  Capture c = MakeCapture(3, 10, kDiskSize, 8);
  c.bytes[0] ^= 0xff;
  ProcessResult r = RunBounded(Replay(WriteCapture(c), {}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bad magic"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// What mkfs.xfs and mkfs.ext4 do at their defaults: discard the whole device
// (one dm-log-writes entry far over the stream's 64 MiB per write), then
// write. Disks of 128 MiB.
class MtsendReplayDiscardTest : public MtsendReplayTest {
 protected:
  static constexpr uint64_t kBigDisk = 128u << 20;
  uint64_t DiskSize() const override { return kBigDisk; }

  // Scattered data, a mark, the whole-disk discard, writes, a mark. `image_at_mark`:
  // the disk at the first mark; `skipped`: the disk at the end without the discard.
  Capture FormatCapture(std::vector<uint8_t>* image_at_mark, std::vector<uint8_t>* skipped) {
    std::mt19937_64 rng(77);
    lw::Writer w(512);
    Capture c;
    c.image.assign(kBigDisk, 0);
    auto write = [&](uint64_t sector, size_t bytes) {
      std::vector<uint8_t> data(bytes);
      for (auto& b : data) b = static_cast<uint8_t>(rng());
      w.Write(sector, data);
      std::copy(data.begin(), data.end(), c.image.begin() + static_cast<ptrdiff_t>(sector * 512));
      ++c.items;
    };
    for (int i = 0; i < 64; ++i) write(rng() % (kBigDisk / 512 - 512), 256 << 10);
    w.Mark("before-mkfs");
    c.marks.push_back("before-mkfs");
    ++c.items;
    *image_at_mark = c.image;
    *skipped = c.image;
    w.Discard(0, kBigDisk / 512);
    std::fill(c.image.begin(), c.image.end(), 0);
    ++c.items;
    for (int i = 0; i < 16; ++i) {
      const uint64_t sector = rng() % (kBigDisk / 512 - 8);
      write(sector, 4096);
      std::copy_n(c.image.begin() + static_cast<ptrdiff_t>(sector * 512), 4096,
                  skipped->begin() + static_cast<ptrdiff_t>(sector * 512));
    }
    w.Mark("after-mkfs");
    c.marks.push_back("after-mkfs");
    ++c.items;
    c.bytes = w.Finish();
    return c;
  }
};

TEST_F(MtsendReplayDiscardTest, WholeDiskDiscardIsSentAppliedAndRollsBackByteExact) {
  std::vector<uint8_t> at_mark, skipped;
  const Capture c = FormatCapture(&at_mark, &skipped);
  ProcessResult r = RunBounded(Replay(WriteCapture(c), {}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("1 discards"), std::string::npos) << r.out;
  ASSERT_TRUE(runtime_->WaitApplied(60'000).ok());
  EXPECT_EQ(runtime_->Health().durable_seq, c.items);
  EXPECT_TRUE(disks_[0]->Contents() == c.image) << "disk 0 differs from the capture";
  EXPECT_EQ(PointNames(), c.marks);
  // Roll a copy of the target back to the mark before the discard: the
  // discarded data come back from the undo pieces, byte for byte.
  auto points = store_->catalog().ListPoints(stream_id_);
  ASSERT_TRUE(points.ok());
  auto j = store_->OpenStream(stream_id_);
  ASSERT_TRUE(j.ok());
  auto copy = std::make_shared<shim::MemBlockDevice>("copy", kBigDisk);
  {
    auto img = disks_[0]->Contents();
    AlignedBuffer buf(img.size());
    std::memcpy(buf.data(), img.data(), img.size());
    ASSERT_TRUE(copy->WriteAt(0, buf.data(), img.size()).ok());
  }
  recovery::FileProgressStore progress(shim::PosixFileSystem(), dir_.path() + "/rollback");
  Status s = recovery::Rollback(shim::PosixFileSystem(), j->undo->Segments(), {{0, copy.get()}},
                                (*points)[0].seq, progress, {});
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(copy->Contents() == at_mark) << "rollback across the discard is not exact";
}

TEST_F(MtsendReplayDiscardTest, NoDiscardSkipsTheDiscardsAndTheirSeqs) {
  std::vector<uint8_t> at_mark, skipped;
  const Capture c = FormatCapture(&at_mark, &skipped);
  ProcessResult r = RunBounded(Replay(WriteCapture(c), {"--no-discard"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("1 discards skipped"), std::string::npos) << r.out;
  ASSERT_TRUE(runtime_->WaitApplied(60'000).ok());
  EXPECT_EQ(runtime_->Health().durable_seq, c.items - 1);
  EXPECT_TRUE(disks_[0]->Contents() == skipped) << "the discard reached the disk";
  EXPECT_EQ(PointNames(), c.marks);
}

}  // namespace
}  // namespace mt::daemon::test
