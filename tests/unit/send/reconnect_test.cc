// mtsend's reconnect schedule (reconnect.h) without sockets: back-off 100 ms
// doubling to 5 s, started again only by progress; the give-up clock counts
// the time spent failing (from a failure or the start to the next welcome)
// since the last progress, a welcome stops it without setting it back; the
// last wait is cut to what is left; reconnects and failures counted. And the
// rate of the retry lines (RetryNotices).
#include <gtest/gtest.h>

#include <vector>

#include "send/reconnect.h"

namespace mt::send {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = ReconnectSchedule::Clock;

TEST(ReconnectSchedule, BacksOffFrom100MsDoublingUpTo5s) {
  ReconnectSchedule s(seconds(60));
  const Clock::time_point t0{};
  s.Start(t0);
  std::vector<long long> got;
  for (int i = 0; i < 9; ++i) got.push_back(s.NextDelay(t0 + seconds(1))->count());
  EXPECT_EQ(got, (std::vector<long long>{100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000}));
  EXPECT_EQ(s.reconnects(), 9u);
  EXPECT_EQ(s.failures(), 9u);
}

// The measured bug (issue 19): every connection was welcomed, then refused
// at once (a failed stream); each welcome set the back-off to 100 ms and the
// give-up clock to zero, so mtsend retried 7 times a second for ever. A
// welcome without progress changes neither.
TEST(ReconnectSchedule, AWelcomeFollowedByARefusalNeitherResetsTheBackOffNorTheGiveUpClock) {
  ReconnectSchedule s(seconds(10));
  Clock::time_point t{};
  s.Start(t);
  std::vector<long long> delays;
  for (int i = 0; i < 100; ++i) {
    t += milliseconds(20);  // connect and handshake
    s.Welcomed(t);
    t += milliseconds(5);  // the refusal
    const std::optional<milliseconds> d = s.NextDelay(t);
    if (!d) break;
    delays.push_back(d->count());
    t += *d;
  }
  // Doubling, then what is left: 10 s less the waits and the 20 ms
  // handshakes (7 of them) counted so far. The 5 ms welcomed do not count.
  EXPECT_EQ(delays, (std::vector<long long>{100, 200, 400, 800, 1600, 3200, 3560}));
  // The 8th refusal gives up: 9860 ms waited + 8 x 20 ms handshakes counted,
  // + 8 x 5 ms welcomed.
  EXPECT_EQ(s.failures(), 8u);
  EXPECT_EQ(t - Clock::time_point{}, milliseconds(10060));
  EXPECT_EQ(s.Failing(t), milliseconds(10020));
}

TEST(ReconnectSchedule, TimeConnectedDoesNotCountTowardsGivingUp) {
  ReconnectSchedule s(seconds(10));
  const Clock::time_point t0{};
  s.Start(t0);
  ASSERT_TRUE(s.NextDelay(t0 + seconds(4)).has_value());  // 4 s failing
  s.Welcomed(t0 + seconds(6));                            // 6 s failing
  EXPECT_EQ(s.Failing(t0 + seconds(60)), seconds(6));     // connected: the clock stands
  // The connection fails after 10 minutes: 6 s of 10 counted, 4 s left.
  const Clock::time_point t1 = t0 + seconds(600);
  ASSERT_TRUE(s.NextDelay(t1).has_value());
  EXPECT_EQ(s.Failing(t1 + seconds(3)), seconds(9));
  ASSERT_TRUE(s.NextDelay(t1 + seconds(3)).has_value());
  EXPECT_FALSE(s.NextDelay(t1 + seconds(4)).has_value());
}

TEST(ReconnectSchedule, ProgressStartsTheBackOffAndTheGiveUpClockAgain) {
  ReconnectSchedule s(seconds(10));
  const Clock::time_point t0{};
  s.Start(t0);
  EXPECT_EQ(*s.NextDelay(t0 + seconds(1)), milliseconds(100));
  EXPECT_EQ(*s.NextDelay(t0 + seconds(2)), milliseconds(200));
  EXPECT_EQ(*s.NextDelay(t0 + seconds(8)), milliseconds(400));
  s.Welcomed(t0 + seconds(9));  // 9 s counted
  s.Progressed(t0 + seconds(9) + milliseconds(1));
  EXPECT_EQ(s.failures(), 0u);
  EXPECT_EQ(s.Failing(t0 + seconds(30)), Clock::duration::zero());
  EXPECT_EQ(*s.NextDelay(t0 + seconds(30)), milliseconds(100));
  EXPECT_TRUE(s.NextDelay(t0 + seconds(39)).has_value());
  EXPECT_FALSE(s.NextDelay(t0 + seconds(40)).has_value());
  EXPECT_EQ(s.reconnects(), 5u);  // giving up is not a reconnect
  EXPECT_EQ(s.failures(), 3u);
}

TEST(ReconnectSchedule, GivesUpOnceRetryForIsCountedAndCutsTheLastWaitToWhatIsLeft) {
  ReconnectSchedule s(seconds(10));
  const Clock::time_point t0{};
  s.Start(t0);
  EXPECT_EQ(*s.NextDelay(t0 + milliseconds(9950)), milliseconds(50));  // not 100 ms
  EXPECT_FALSE(s.NextDelay(t0 + seconds(10)).has_value());
  EXPECT_EQ(s.reconnects(), 1u);
}

TEST(ReconnectSchedule, RetryForZeroGivesUpAtTheFirstFailure) {
  ReconnectSchedule s(milliseconds(0));
  const Clock::time_point t0{};
  s.Start(t0);
  EXPECT_FALSE(s.NextDelay(t0).has_value());
  EXPECT_EQ(s.reconnects(), 0u);
}

TEST(RetryNotices, FirstRetryAtOnceThenOneLineEvery5sWithTheCountNotShown) {
  RetryNotices n(/*every=*/false);
  const Clock::time_point t0{};
  uint64_t unshown = 99;
  ASSERT_TRUE(n.Due(t0, &unshown));
  EXPECT_EQ(unshown, 0u);
  int shown = 0;
  std::vector<uint64_t> counts;
  // 7 retries a second for 20 s: the measured rate.
  for (int i = 1; i <= 140; ++i) {
    if (n.Due(t0 + milliseconds(i * 1000 / 7), &unshown)) {
      ++shown;
      counts.push_back(unshown);
    }
  }
  EXPECT_EQ(shown, 4);  // at 5, 10, 15 and 20 s
  EXPECT_EQ(counts, (std::vector<uint64_t>{34, 34, 34, 34}));
}

TEST(RetryNotices, VerboseShowsEveryRetry) {
  RetryNotices n(/*every=*/true);
  const Clock::time_point t0{};
  uint64_t unshown = 99;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(n.Due(t0 + milliseconds(i), &unshown));
    EXPECT_EQ(unshown, 0u);
  }
}

}  // namespace
}  // namespace mt::send
