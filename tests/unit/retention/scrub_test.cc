// The scrub of sealed journal segments (retention/scrub.h): damage that
// opening no longer reads is found, recorded once, alerted, and found again
// only when due; the thread checks what appears.
#include "retention/scrub.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <thread>

#include "mt/shim/mem_file_system.h"

namespace mt::retention {
namespace {


struct ScrubFixture {
  shim::MemFileSystem fs;
  shim::FakeClock clock;
  std::vector<SegmentInfo> segs;

  ScrubFixture() {
    JournalOptions o;
    o.kind = SegmentKind::kUndo;
    o.stream = 3;
    o.dir = "/ret/streams/3/undo";
    o.segment_bytes = 64 << 10;
    o.max_batch_bytes = 64 << 10;
    o.preallocate = false;
    auto j = std::move(Journal::Open(fs, clock, o, nullptr)).value();
    std::vector<uint8_t> p(5000);
    std::mt19937 rng(7);
    for (uint64_t seq = 1; seq <= 40; ++seq) {
      for (auto& b : p) b = static_cast<uint8_t>(rng());
      RecordHeader h;
      h.seq = seq;
      h.length = p.size();
      EXPECT_TRUE(j->Append(h, p.data(), p.size()).ok());
    }
    EXPECT_TRUE(j->Sync().ok());
    segs = j->Segments();
  }
  std::vector<Scrubber::StreamJournals> List() const {
    return {{3, "/ret/streams/3", {}, segs}};
  }
  void Damage(size_t seg, uint64_t offset) {
    shim::FileOptions o;
    o.writable = true;
    auto f = std::move(fs.OpenFile(segs[seg].path, o)).value();
    uint8_t b = 0;
    ASSERT_EQ(f->ReadAt(offset, &b, 1).value(), 1u);
    b ^= 0x20;
    ASSERT_TRUE(f->WriteAt(offset, &b, 1).ok());
  }
};

TEST(Scrub, ADamagedSealedSegmentIsRecordedOnceAndAlerted) {
  ScrubFixture f;
  ASSERT_GE(f.segs.size(), 3u);
  const size_t sealed = f.segs.size() - 1;
  f.Damage(1, kSegmentHeaderSize + kRecordHeaderSize + EncodedRecordSize(5000) + 99);
  std::vector<std::string> logged;
  Scrubber::Options o;
  o.on_damage = [&](uint64_t stream, const std::string& alert) {
    EXPECT_EQ(stream, 3u);
    logged.push_back(alert);
  };
  Scrubber s(f.fs, f.clock, o, [&] { return f.List(); });
  EXPECT_EQ(s.RunOnce(), sealed) << "every sealed segment, not the newest";
  EXPECT_EQ(s.checked_segments(), sealed);
  ASSERT_EQ(logged.size(), 1u);
  const std::string alert = s.Alert(3);
  EXPECT_NE(alert.find("undo segment " + std::to_string(f.segs[1].number)), std::string::npos) << alert;
  EXPECT_NE(alert.find("failed its check"), std::string::npos) << alert;
  EXPECT_NE(alert.find("points before seq " + std::to_string(f.segs[1].last_seq)), std::string::npos)
      << alert;
  EXPECT_EQ(s.Alert(4), "");
  auto damage = ReadDamage(f.fs, "/ret/streams/3");
  ASSERT_TRUE(damage.ok()) << damage.status().ToString();
  ASSERT_EQ(damage->size(), 1u);
  EXPECT_EQ((*damage)[0].kind, SegmentKind::kUndo);
  EXPECT_EQ((*damage)[0].number, f.segs[1].number);
  EXPECT_EQ((*damage)[0].first_seq, f.segs[1].first_seq);
  EXPECT_EQ((*damage)[0].last_seq, f.segs[1].last_seq);
  EXPECT_NE((*damage)[0].reason.find("offset"), std::string::npos) << (*damage)[0].reason;

  // Not due again until every_ns has passed.
  EXPECT_EQ(s.RunOnce(), 0u);
  f.clock.Advance(o.every_ns);
  EXPECT_EQ(s.RunOnce(), sealed);
  EXPECT_EQ(ReadDamage(f.fs, "/ret/streams/3")->size(), 1u) << "recorded once";

  // Only the undo segments still there carry their damage.
  EXPECT_EQ(DamageOf(*damage, f.segs).size(), 1u);
  std::vector<SegmentInfo> pruned(f.segs.begin() + 2, f.segs.end());
  EXPECT_TRUE(DamageOf(*damage, pruned).empty());
}

TEST(Scrub, AnIntactJournalRaisesNothingAndASegmentGoneIsNotDamage) {
  ScrubFixture f;
  Scrubber s(f.fs, f.clock, {}, [&] { return f.List(); });
  ASSERT_TRUE(f.fs.Remove(f.segs[0].path).ok());  // pruned after it was listed
  EXPECT_EQ(s.RunOnce(), f.segs.size() - 1);
  EXPECT_EQ(s.Alert(3), "");
  EXPECT_TRUE(ReadDamage(f.fs, "/ret/streams/3")->empty());
}

TEST(Scrub, TheThreadChecksTheSegmentsItIsGivenAndStops) {
  ScrubFixture f;
  f.Damage(0, kSegmentHeaderSize + kRecordHeaderSize + 10);
  Scrubber::Options o;
  o.bytes_per_second = 1ull << 30;
  Scrubber s(f.fs, f.clock, o, [&] { return f.List(); });
  s.Start();
  for (int i = 0; i < 1000 && s.checked_segments() < f.segs.size() - 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(s.checked_segments(), f.segs.size() - 1);
  EXPECT_NE(s.Alert(3), "");
  s.Stop();
}

TEST(Scrub, ADamageFileThatDoesNotParseIsAnError) {
  shim::MemFileSystem fs;
  ASSERT_TRUE(fs.CreateDir("/s").ok());
  ASSERT_TRUE(shim::WriteFileAtomically(fs, DamagePath("/s"), "undo x y\n").ok());
  EXPECT_EQ(ReadDamage(fs, "/s").status().code(), Errc::kCorruption);
  DamagedSegment d;
  d.number = 4;
  d.first_seq = 10;
  d.last_seq = 20;
  d.reason = "bad\nthing";
  ASSERT_TRUE(fs.Remove(DamagePath("/s")).ok());
  ASSERT_TRUE(RecordDamage(fs, "/s", d).ok());
  auto back = ReadDamage(fs, "/s");
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0].reason, "bad thing");
  EXPECT_EQ((*back)[0].last_seq, 20u);
}

}  // namespace
}  // namespace mt::retention
