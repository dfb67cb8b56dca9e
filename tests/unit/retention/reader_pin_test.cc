// Reader pins (reader_pin.h) on the real file system: flock is what tells a
// live holder from a dead one, so these tests need real files and a real
// second process.
#include "retention/reader_pin.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "retention/journal_reader.h"
#include "mt/shim/clock.h"
#include "retention/retention_store.h"

namespace mt::retention {
namespace {

constexpr int64_t kHour = 3600LL * 1'000'000'000;

class ReaderPinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = ::testing::TempDir() + "mt-pins-XXXXXX";
    ASSERT_NE(mkdtemp(t.data()), nullptr);
    root_ = t;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  size_t FilesInPinDir() {
    std::error_code ec;
    size_t n = 0;
    for (auto it = std::filesystem::directory_iterator(PinDir(root_), ec);
         !ec && it != std::filesystem::directory_iterator(); ++it)
      ++n;
    return n;
  }

  shim::FileSystem& fs_ = shim::PosixFileSystem();
  std::string root_;
};

TEST_F(ReaderPinTest, NoPinDirectoryMeansNoPins) {
  auto pins = LivePins(fs_, root_, 1);
  ASSERT_TRUE(pins.ok()) << pins.status().ToString();
  EXPECT_TRUE(pins->empty());
}

TEST_F(ReaderPinTest, ALivePinIsListedForItsStreamOnlyAndGoesWhenReleased) {
  auto a = ReaderPin::Take(fs_, root_, 3, 25);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = ReaderPin::Take(fs_, root_, 3, 7);
  ASSERT_TRUE(b.ok());
  auto other = ReaderPin::Take(fs_, root_, 4, 1);
  ASSERT_TRUE(other.ok());

  auto pins = LivePins(fs_, root_, 3);
  ASSERT_TRUE(pins.ok()) << pins.status().ToString();
  std::sort(pins->begin(), pins->end());
  EXPECT_EQ(*pins, (std::vector<uint64_t>{7, 25}));
  EXPECT_EQ(FilesInPinDir(), 3u);  // listing a live pin leaves it in place

  a->reset();
  pins = LivePins(fs_, root_, 3);
  EXPECT_EQ(*pins, (std::vector<uint64_t>{7}));
  b->reset();
  other->reset();
  EXPECT_TRUE(LivePins(fs_, root_, 3)->empty());
  EXPECT_EQ(FilesInPinDir(), 0u);
}

// A holder killed without cleaning up (kill -9, a crash) leaves its file; the
// kernel dropped its lock, so the next listing ignores the pin and removes it.
TEST_F(ReaderPinTest, APinOfADeadHolderIsIgnoredAndRemoved) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto pin = ReaderPin::Take(shim::PosixFileSystem(), root_, 3, 25);
    if (!pin.ok()) ::_exit(1);
    (void)pin->release();  // leaked: the file stays, as after a crash
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(FilesInPinDir(), 1u);

  auto pins = LivePins(fs_, root_, 3);
  ASSERT_TRUE(pins.ok()) << pins.status().ToString();
  EXPECT_TRUE(pins->empty());
  EXPECT_EQ(FilesInPinDir(), 0u);
}

// A second process sees a live holder's pin (the daemon prunes while mtctl
// reads): the child lists while the parent holds.
TEST_F(ReaderPinTest, AnotherProcessSeesALivePin) {
  auto pin = ReaderPin::Take(fs_, root_, 9, 40);
  ASSERT_TRUE(pin.ok());
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto pins = LivePins(shim::PosixFileSystem(), root_, 9);
    ::_exit(pins.ok() && pins->size() == 1 && (*pins)[0] == 40 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(FilesInPinDir(), 1u);
}

// Stale ".taking-" files (a holder that died between creating and naming its
// pin) are removed; other names in the directory are left alone.
TEST_F(ReaderPinTest, AStaleHalfTakenPinIsRemovedAndStrangersAreLeftAlone) {
  ASSERT_TRUE(fs_.CreateDir(PinDir(root_)).ok());
  std::ofstream(PinDir(root_) + "/.taking-p1-0-0");
  std::ofstream(PinDir(root_) + "/README");
  auto pins = LivePins(fs_, root_, 1);
  ASSERT_TRUE(pins.ok());
  EXPECT_TRUE(pins->empty());
  EXPECT_FALSE(std::filesystem::exists(PinDir(root_) + "/.taking-p1-0-0"));
  EXPECT_TRUE(std::filesystem::exists(PinDir(root_) + "/README"));
}

// The hazard the pins exist for: a prune forced while a reader (an export, a
// vsnap fill) walks the undo journal. With the reader's pin the prune keeps
// every segment the reader needs and the read completes; once the pin is
// released the same prune deletes them.
TEST_F(ReaderPinTest, PruneForcedDuringAnExportKeepsWhatThePinnedReaderReads) {
  shim::FakeClock clock;
  clock.Set(100 * kHour);
  StoreOptions o;
  o.root = root_;
  o.segment_bytes = 64 << 10;
  o.max_batch_bytes = 32 << 10;
  o.preallocate = false;
  o.direct = false;
  o.space.low_space_min_bytes = 0;
  o.space.low_space_percent = 0;
  auto store = RetentionStore::Open(fs_, clock, o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  RetentionStore& st = **store;
  StreamRow row;
  row.name = "vm1";
  const uint64_t s = st.catalog().AddStream(row).value();
  DiskRow d;
  d.stream = s;
  d.target_id = "naa.6000c29vm1";
  d.size_bytes = 1 << 30;
  ASSERT_TRUE(st.catalog().AddDisk(d).ok());
  auto j = st.OpenStream(s);
  ASSERT_TRUE(j.ok());
  std::vector<uint8_t> payload(4096, 0x5a);
  for (uint64_t seq = 1; seq <= 60; ++seq) {
    RecordHeader h;
    h.seq = seq;
    h.source_time_ns = static_cast<int64_t>(seq) * kHour;
    h.length = 4096;
    ASSERT_TRUE(j->undo->Append(h, payload.data(), payload.size()).ok());
  }
  ASSERT_TRUE(j->undo->Sync().ok());
  ASSERT_TRUE(st.catalog().SetCheckpoint(CheckpointRow{s, 0, 60, 60 * kHour, 0}).ok());
  clock.Set(1000 * kHour);  // every record is outside the window
  const auto segments = j->undo->Segments();
  ASSERT_GT(segments.size(), 3u);

  // The export of the point at seq 5 reads every record newer than it.
  auto pin = ReaderPin::Take(fs_, root_, s, 5);
  ASSERT_TRUE(pin.ok());
  uint64_t read = 0;
  bool pruned = false;
  Status walk = ForEachRecord(fs_, segments, Direction::kBackward,
                              [&](const RecordHeader&, const std::vector<uint8_t>&, bool*) {
                                ++read;
                                if (!pruned) {  // the daemon's janitor runs now
                                  pruned = true;
                                  auto plan = st.Prune(s, {});
                                  if (!plan.ok()) return plan.status();
                                  EXPECT_TRUE(plan->undo_segments.empty());
                                }
                                return Status::Ok();
                              });
  ASSERT_TRUE(walk.ok()) << walk.ToString();
  EXPECT_EQ(read, 60u);

  pin->reset();
  auto plan = st.Prune(s, {});
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(plan->undo_segments.empty());  // nothing holds them now
}

}  // namespace
}  // namespace mt::retention
