// WorkerPool (issue 19): strands share a bounded set of threads; a strand's
// runs never overlap, every Wake is followed by a run, threads start only as
// they are needed, timers fire, and Stop waits for the run under way.
#include "retention/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace mt::retention {
namespace {

using namespace std::chrono_literals;

// Waits up to 10 s for `pred`.
template <typename Pred>
bool Eventually(Pred pred) {
  for (int i = 0; i < 1000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

TEST(WorkerPool, ManyStrandsShareFewThreadsAndTheirRunsNeverOverlap) {
  WorkerPool pool("test", 3);
  constexpr int kStrands = 40, kWakes = 200;
  struct Counter {
    std::atomic<int> inside{0}, overlaps{0}, runs{0};
  };
  std::vector<Counter> c(kStrands);
  std::vector<std::unique_ptr<WorkerPool::Strand>> strands;
  for (int i = 0; i < kStrands; ++i) {
    strands.push_back(pool.NewStrand([&c, i] {
      if (c[i].inside.fetch_add(1) != 0) c[i].overlaps.fetch_add(1);
      std::this_thread::yield();
      c[i].runs.fetch_add(1);
      c[i].inside.fetch_sub(1);
    }));
  }
  std::vector<std::thread> wakers;
  for (int t = 0; t < 4; ++t)
    wakers.emplace_back([&] {
      for (int k = 0; k < kWakes; ++k)
        for (auto& s : strands) s->Wake();
    });
  for (auto& t : wakers) t.join();
  // Every strand ran at least once after the last Wake: quiet means done.
  std::this_thread::sleep_for(200ms);
  for (int i = 0; i < kStrands; ++i) {
    EXPECT_GE(c[i].runs.load(), 1) << i;
    EXPECT_EQ(c[i].overlaps.load(), 0) << i;
  }
  EXPECT_LE(pool.threads(), 3u);
  strands.clear();
}

TEST(WorkerPool, AWakeDuringARunIsFollowedByAnotherRun) {
  WorkerPool pool("test", 2);
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> runs{0};
  auto s = pool.NewStrand([&] {
    if (runs.fetch_add(1) == 0) {
      std::unique_lock<std::mutex> l(m);
      cv.wait(l, [&] { return release; });
    }
  });
  s->Wake();
  ASSERT_TRUE(Eventually([&] { return runs.load() == 1; }));
  s->Wake();  // during the first run
  {
    std::lock_guard<std::mutex> l(m);
    release = true;
  }
  cv.notify_all();
  EXPECT_TRUE(Eventually([&] { return runs.load() == 2; }));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(runs.load(), 2) << "one Wake during a run: one more run, no more";
}

TEST(WorkerPool, ThreadsStartOnlyAsTheyAreNeededUpToTheBound) {
  WorkerPool pool("test", 4);
  std::atomic<int> runs{0};
  auto one = pool.NewStrand([&] { runs.fetch_add(1); });
  for (int i = 0; i < 50; ++i) {
    one->Wake();
    ASSERT_TRUE(Eventually([&] { return runs.load() == i + 1; }));
  }
  EXPECT_EQ(pool.threads(), 1u) << "one strand woken after each run needs one thread";
  // Ten strands that block at once: the pool grows to its bound, no further.
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> blocked{0}, finished{0};
  std::vector<std::unique_ptr<WorkerPool::Strand>> blockers;
  for (int i = 0; i < 10; ++i)
    blockers.push_back(pool.NewStrand([&] {
      blocked.fetch_add(1);
      std::unique_lock<std::mutex> l(m);
      cv.wait(l, [&] { return release; });
      finished.fetch_add(1);
    }));
  for (auto& b : blockers) b->Wake();
  ASSERT_TRUE(Eventually([&] { return blocked.load() == 4; }));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(blocked.load(), 4) << "four threads: the other strands wait their turn";
  EXPECT_EQ(pool.threads(), 4u);
  {
    std::lock_guard<std::mutex> l(m);
    release = true;
  }
  cv.notify_all();
  EXPECT_TRUE(Eventually([&] { return finished.load() == 10; }));
  EXPECT_EQ(pool.threads(), 4u);
  blockers.clear();
}

TEST(WorkerPool, WakeAfterRunsOnceTheDelayHasPassedAndStopCancelsIt) {
  WorkerPool pool("test", 1);
  std::atomic<int> runs{0};
  auto s = pool.NewStrand([&] { runs.fetch_add(1); });
  const auto t0 = std::chrono::steady_clock::now();
  s->WakeAfter(100ms);
  ASSERT_TRUE(Eventually([&] { return runs.load() == 1; }));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
  s->WakeAfter(100ms);
  s->Stop();
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(runs.load(), 1) << "a stopped strand's timer does not fire";
  s->Wake();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(runs.load(), 1) << "Wake after Stop does nothing";
}

TEST(WorkerPool, StopWaitsForTheRunUnderWay) {
  WorkerPool pool("test", 2);
  std::atomic<bool> started{false}, ended{false};
  auto s = pool.NewStrand([&] {
    started = true;
    std::this_thread::sleep_for(200ms);
    ended = true;
  });
  s->Wake();
  ASSERT_TRUE(Eventually([&] { return started.load(); }));
  s->Stop();
  EXPECT_TRUE(ended.load()) << "Stop returned while the run was under way";
}

}  // namespace
}  // namespace mt::retention
