// IoPool: runs the n independent tasks of one step on up to `threads` threads
// (the caller's own included) and waits for all of them. The applier uses it
// to keep several target reads or writes in flight (a queue depth > 1) where
// their order does not matter.
//
// Contract: Run returns after every task has finished; its status is the
// first failure in task order (ok when none). Tasks must not call Run.
// One Run at a time (the applier is driven by one thread).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "mt/shim/status.h"
#include "mt/shim/thread_annotations.h"

namespace mt::apply {

class IoPool {
 public:
  explicit IoPool(size_t threads);
  ~IoPool();
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  Status Run(size_t n, const std::function<Status(size_t)>& task);

 private:
  void Worker();
  // Takes and runs tasks of the current job until none is left (mu_ is
  // let go while a task runs).
  void Drain() MT_REQUIRES(mu_);

  Mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  const std::function<Status(size_t)>* task_ MT_GUARDED_BY(mu_) = nullptr;
  size_t n_ MT_GUARDED_BY(mu_) = 0;
  size_t next_ MT_GUARDED_BY(mu_) = 0;
  size_t running_ MT_GUARDED_BY(mu_) = 0;
  uint64_t job_ MT_GUARDED_BY(mu_) = 0;
  std::vector<Status> results_ MT_GUARDED_BY(mu_);
  bool stop_ MT_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace mt::apply
