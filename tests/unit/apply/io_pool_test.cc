// IoPool: one pool for every stream's applier (issue 19: threads that do not
// grow with the number of streams). Every task of a call runs once, the first
// failure in task order is the call's status, several callers share the pool
// at once, and a call makes progress while every pool thread is stuck on
// another call's task (a hung target of another stream).
#include "apply/io_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace mt::apply {
namespace {

TEST(IoPool, EveryTaskRunsOnceAndTheFirstFailureInTaskOrderIsReturned) {
  IoPool pool(4);
  EXPECT_EQ(pool.threads(), 3u);
  std::vector<std::atomic<int>> runs(100);
  Status s = pool.Run(100, [&](size_t i) {
    ++runs[i];
    if (i == 70) return Status(Errc::kIoError, "task 70");
    if (i == 30) return Status(Errc::kNoSpace, "task 30");
    return Status::Ok();
  });
  EXPECT_EQ(s.code(), Errc::kNoSpace) << s.ToString();
  for (auto& r : runs) EXPECT_EQ(r.load(), 1);
  EXPECT_TRUE(pool.Run(0, [](size_t) { return Status(Errc::kIoError, "never"); }).ok());
}

TEST(IoPool, SeveralCallersAtOnceEachGetTheirOwnTasksAndResults) {
  IoPool pool(3);
  constexpr int kCallers = 6, kCalls = 50, kTasks = 8;
  std::vector<std::thread> callers;
  std::atomic<int> wrong{0};
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int k = 0; k < kCalls; ++k) {
        std::vector<int> seen(kTasks, 0);
        Status s = pool.Run(kTasks, [&](size_t i) {
          ++seen[i];  // each index once: no two threads write one slot
          return c % 2 == 1 && i == kTasks - 1 ? Status(Errc::kIoError, "odd caller")
                                               : Status::Ok();
        });
        for (int v : seen)
          if (v != 1) ++wrong;
        if (s.ok() != (c % 2 == 0)) ++wrong;
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(IoPool, ACallGoesOnWhileEveryPoolThreadIsStuckOnAnotherCall) {
  IoPool pool(2);  // one pool thread
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> stuck{0};
  // Caller A: two tasks that hang until released; the pool thread and A
  // itself each take one.
  std::thread a([&] {
    (void)pool.Run(2, [&](size_t) {
      ++stuck;
      std::unique_lock<std::mutex> l(mu);
      cv.wait(l, [&] { return release; });
      return Status::Ok();
    });
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (stuck.load() < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(stuck.load(), 2);
  // Caller B runs its own tasks meanwhile.
  std::atomic<int> done{0};
  Status b = pool.Run(5, [&](size_t) {
    ++done;
    return Status::Ok();
  });
  EXPECT_TRUE(b.ok());
  EXPECT_EQ(done.load(), 5);
  {
    std::lock_guard<std::mutex> l(mu);
    release = true;
  }
  cv.notify_all();
  a.join();
}

}  // namespace
}  // namespace mt::apply
