#include "apply/io_pool.h"

#include <algorithm>

namespace mt::apply {

IoPool::IoPool(size_t threads) {
  for (size_t i = 1; i < threads; ++i) workers_.emplace_back([this] { Worker(); });
}

IoPool::~IoPool() {
  {
    MutexLock l(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void IoPool::RunOne(Job& job) {
  const size_t i = job.next++;
  if (job.next == job.n) queue_.erase(std::find(queue_.begin(), queue_.end(), &job));
  ++job.running;
  const auto* task = job.task;
  mu_.unlock();
  Status s = (*task)(i);
  mu_.lock();
  job.results[i] = std::move(s);
  // Every caller waits on done_cv_: wake them when a job is finished.
  if (--job.running == 0 && job.next == job.n) done_cv_.notify_all();
}

Status IoPool::Run(size_t n, const std::function<Status(size_t)>& task) {
  if (n == 0) return Status::Ok();
  Job job;
  job.task = &task;
  job.n = n;
  job.results.assign(n, Status::Ok());
  UniqueLock l(mu_);
  queue_.push_back(&job);
  if (n > 1 && !workers_.empty()) work_cv_.notify_all();
  // The caller works on its own call until every task is taken...
  while (job.next < job.n) RunOne(job);
  // ... and waits for those the pool's threads took.
  done_cv_.wait(l.native(), [&]() MT_REQUIRES(mu_) { return job.running == 0; });
  for (auto& r : job.results)
    if (!r.ok()) return r;
  return Status::Ok();
}

void IoPool::Worker() {
  UniqueLock l(mu_);
  while (true) {
    work_cv_.wait(l.native(), [&]() MT_REQUIRES(mu_) { return stop_ || !queue_.empty(); });
    if (stop_) return;
    RunOne(*queue_.front());
  }
}

}  // namespace mt::apply
