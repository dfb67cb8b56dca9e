#include "retention/policy.h"

#include <gtest/gtest.h>

namespace mt::retention {
namespace {

constexpr int64_t kHour = 3600LL * 1'000'000'000;

// Segment n holds seqs [100n+1, 100n+100], newest write at hour n.
SegmentInfo Seg(uint64_t n, bool sealed = true) {
  SegmentInfo s;
  s.number = n;
  s.first_seq = 100 * n + 1;
  s.last_seq = 100 * n + 100;
  s.first_time_ns = s.last_time_ns = static_cast<int64_t>(n) * kHour;
  s.records = 100;
  s.bytes = 1000;
  s.sealed = sealed;
  return s;
}

PruneInput Base() {
  PruneInput in;
  for (uint64_t n = 1; n <= 5; ++n) {
    in.undo.push_back(Seg(n, n < 5));
    in.wal.push_back(Seg(n, n < 5));
  }
  in.applied_seq = 600;
  in.now_ns = 30 * kHour;
  in.window_ns = 24 * kHour;  // window starts at hour 6: everything expired
  return in;
}

TEST(PlanPrune, NewestSegmentIsNeverDeleted) {
  PrunePlan p = PlanPrune(Base());
  EXPECT_EQ(p.undo_segments, (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(p.wal_segments, (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(p.oldest_point_seq, 500u);
}

// Segments 3 and 4 start with pieces of the before-image of seq 300 (a
// long discard begun in segment 2): 2, 3 and 4 go together or stay.
TEST(PlanPrune, AnItemKeptInPiecesIsPrunedWithAllItsSegmentsOrNotAtAll) {
  PruneInput in = Base();
  for (uint64_t n : {3, 4}) {
    in.undo[n - 1].first_seq = 300;
    in.undo[n - 1].first_continues = true;
  }
  in.undo[1].last_seq = 300;
  in.undo[2].last_seq = 300;
  in.undo[3].last_seq = 400;  // seq 300 ends in segment 4
  EXPECT_EQ(PlanPrune(in).undo_segments, (std::vector<uint64_t>{1, 2, 3, 4}));
  in.undo[4].first_seq = 400;  // and goes on into the newest segment, which stays
  in.undo[4].first_continues = true;
  PrunePlan p = PlanPrune(in);
  EXPECT_EQ(p.undo_segments, (std::vector<uint64_t>{1}));
  EXPECT_EQ(p.oldest_point_seq, 200u);  // segment 1 holds seqs 101..200
}

TEST(PlanPrune, WalSegmentsGoOnlyOnceApplied) {
  PruneInput in = Base();
  in.applied_seq = 250;
  PrunePlan p = PlanPrune(in);
  EXPECT_EQ(p.wal_segments, (std::vector<uint64_t>{1}));
}

TEST(PlanPrune, UndoNeededByCrashRecoveryIsKept) {
  PruneInput in = Base();
  in.applied_seq = 350;  // records of segment 3 newer than the checkpoint
  PrunePlan p = PlanPrune(in);
  EXPECT_EQ(p.undo_segments, (std::vector<uint64_t>{1, 2}));
}

TEST(PlanPrune, UnexpiredPointsKeepTheirSegments) {
  PruneInput in = Base();
  in.now_ns = 26 * kHour;  // window starts at hour 2: segments 2.. serve points inside it
  PrunePlan p = PlanPrune(in);
  EXPECT_EQ(p.undo_segments, (std::vector<uint64_t>{1}));
  EXPECT_TRUE(p.alerts.empty());
}

TEST(PlanPrune, PinnedPointStopsPruningEvenWhenLowOnSpace) {
  PruneInput in = Base();
  in.pinned_seqs = {250};  // a vsnap at seq 250 needs segment 2 (seqs 201-300) and later
  in.low_space = true;
  in.bytes_to_free = 1 << 20;
  PrunePlan p = PlanPrune(in);
  EXPECT_EQ(p.undo_segments, (std::vector<uint64_t>{1}));
  ASSERT_EQ(p.alerts.size(), 1u);
  EXPECT_NE(p.alerts[0].find("held by a virtual snapshot"), std::string::npos);
}

TEST(PlanPrune, LowSpaceWithPruneDropsUnexpiredPointsAndAlerts) {
  PruneInput in = Base();
  in.now_ns = 20 * kHour;  // nothing expired
  in.low_space = true;
  in.bytes_to_free = 1500;
  PrunePlan p = PlanPrune(in);
  EXPECT_EQ(p.undo_segments, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(p.oldest_point_seq, 300u);
  EXPECT_FALSE(p.stop_applying);
  ASSERT_EQ(p.alerts.size(), 1u);
  EXPECT_NE(p.alerts[0].find("dropped recovery points older than seq 300"), std::string::npos);
}

TEST(PlanPrune, LowSpaceWithStopKeepsPointsAndStopsApplying) {
  PruneInput in = Base();
  in.now_ns = 20 * kHour;
  in.low_space = true;
  in.bytes_to_free = 1500;
  in.full_action = FullAction::kStop;
  PrunePlan p = PlanPrune(in);
  EXPECT_TRUE(p.undo_segments.empty());
  EXPECT_TRUE(p.stop_applying);
  ASSERT_FALSE(p.alerts.empty());
  EXPECT_NE(p.alerts.back().find("applying stopped"), std::string::npos);
}

TEST(LowSpaceThreshold, PercentClampedBetweenMinAndMax) {
  SpacePolicy p;
  EXPECT_EQ(LowSpaceThreshold(p, 100ull << 30), 10ull << 30);      // 10%
  EXPECT_EQ(LowSpaceThreshold(p, 8ull << 30), 1ull << 30);         // min 1 GiB
  EXPECT_EQ(LowSpaceThreshold(p, 10000ull << 30), 50ull << 30);    // max 50 GiB
  // Below 4 GiB the 1 GiB floor would say "always full": percent alone.
  EXPECT_EQ(LowSpaceThreshold(p, 2ull << 30), (2ull << 30) / 10);
  EXPECT_EQ(LowSpaceThreshold(p, 1000ull << 20), (1000ull << 20) / 10);
}

// A stream's worst-case footprint before any window, and how many fit.
TEST(StreamsTheVolumeHolds, FootprintIsTheWalQuotaAndTwoOpenSegments) {
  constexpr uint64_t kMiB = 1 << 20;
  EXPECT_EQ(StreamFootprint(256 * kMiB, 256 * kMiB), 768 * kMiB);
  SpacePolicy p;  // 10 %, at least 1 GiB
  p.wal_quota_bytes = 256 * kMiB;
  // 4 GiB volume: 1 GiB kept free, 3 GiB / 768 MiB = 4 streams at the
  // defaults (issue 19 ran 30 there and filled it); 32 MiB segments: 9.
  EXPECT_EQ(StreamsTheVolumeHolds(p, 4096 * kMiB, 256 * kMiB), 4u);
  EXPECT_EQ(StreamsTheVolumeHolds(p, 4096 * kMiB, 32 * kMiB), 9u);
  p.wal_quota_bytes = 32 * kMiB;
  EXPECT_EQ(StreamsTheVolumeHolds(p, 4096 * kMiB, 16 * kMiB), 48u);
  EXPECT_EQ(StreamsTheVolumeHolds(p, 64 * kMiB, 256 * kMiB), 0u);
}

}  // namespace
}  // namespace mt::retention
