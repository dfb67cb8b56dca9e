// IoPool: runs the n independent tasks of one step on the pool's threads and
// the caller's own, and waits for all of them. The appliers use it to keep
// several target reads or writes in flight (a queue depth > 1) where their
// order does not matter. One pool serves every stream of the agent (so
// threads do not grow with the number of streams): several Run calls, from
// different threads, may be under way at once; the pool's threads take
// tasks of any of them, oldest call first.
//
// Contract: Run returns after every task of its call has finished; its
// status is the first failure in task order (ok when none). The caller runs
// its own call's tasks too, so a call always makes progress, even while every
// pool thread is busy with other calls (or stuck on a hung device). Tasks
// must not call Run.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "mt/shim/status.h"
#include "mt/shim/thread_annotations.h"

namespace mt::apply {

class IoPool {
 public:
  // `threads` - 1 pool threads: with one caller, `threads` tasks in flight.
  explicit IoPool(size_t threads);
  ~IoPool();
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  Status Run(size_t n, const std::function<Status(size_t)>& task);

  size_t threads() const { return workers_.size(); }

 private:
  // One Run call's tasks (on its caller's stack).
  struct Job {
    const std::function<Status(size_t)>* task = nullptr;
    size_t n = 0, next = 0, running = 0;
    std::vector<Status> results;
  };
  void Worker();
  // Takes the next task of `job` and runs it with mu_ let go; removes the
  // job from the queue when its last task is taken. REQUIRES job.next < job.n.
  void RunOne(Job& job) MT_REQUIRES(mu_);

  Mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<Job*> queue_ MT_GUARDED_BY(mu_);  // calls with tasks not yet taken
  bool stop_ MT_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace mt::apply
