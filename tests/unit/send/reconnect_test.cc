// mtsend's reconnect schedule (reconnect.h) without sockets: back-off 100 ms
// doubling to 5 s, back to 100 ms after a welcome, give up once retry_for has
// passed since the last welcome, reconnects counted.
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
}

TEST(ReconnectSchedule, AWelcomeStartsTheBackOffAgain) {
  ReconnectSchedule s(seconds(60));
  const Clock::time_point t0{};
  s.Start(t0);
  EXPECT_EQ(*s.NextDelay(t0), milliseconds(100));
  EXPECT_EQ(*s.NextDelay(t0), milliseconds(200));
  EXPECT_EQ(*s.NextDelay(t0), milliseconds(400));
  s.Welcomed(t0 + seconds(1));
  EXPECT_EQ(*s.NextDelay(t0 + seconds(2)), milliseconds(100));
  EXPECT_EQ(s.reconnects(), 4u);
}

TEST(ReconnectSchedule, GivesUpOnceRetryForPassesWithoutAWelcome) {
  ReconnectSchedule s(seconds(10));
  const Clock::time_point t0{};
  s.Start(t0);
  EXPECT_TRUE(s.NextDelay(t0 + seconds(10)).has_value());  // exactly retry_for: still tries
  EXPECT_FALSE(s.NextDelay(t0 + seconds(10) + milliseconds(1)).has_value());
  EXPECT_EQ(s.reconnects(), 1u);  // giving up is not a reconnect
  // A welcome counts from then on.
  s.Welcomed(t0 + seconds(30));
  EXPECT_EQ(*s.NextDelay(t0 + seconds(35)), milliseconds(100));
  EXPECT_FALSE(s.NextDelay(t0 + seconds(41)).has_value());
  EXPECT_EQ(s.reconnects(), 2u);
}

}  // namespace
}  // namespace mt::send
