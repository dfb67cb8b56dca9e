#include "apply/io_pool.h"

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

void IoPool::Drain() {
  while (task_ != nullptr && next_ < n_) {
    const size_t i = next_++;
    ++running_;
    const auto* task = task_;
    mu_.unlock();
    Status s = (*task)(i);
    mu_.lock();
    results_[i] = std::move(s);
    if (--running_ == 0 && next_ >= n_) done_cv_.notify_all();
  }
}

void IoPool::Worker() {
  UniqueLock l(mu_);
  uint64_t seen = 0;
  while (true) {
    work_cv_.wait(l.native(), [&]() MT_REQUIRES(mu_) {
      return stop_ || (job_ != seen && task_ != nullptr && next_ < n_);
    });
    if (stop_) return;
    seen = job_;
    Drain();
  }
}

Status IoPool::Run(size_t n, const std::function<Status(size_t)>& task) {
  if (n == 0) return Status::Ok();
  UniqueLock l(mu_);
  task_ = &task;
  n_ = n;
  next_ = 0;
  running_ = 0;
  ++job_;
  results_.assign(n, Status::Ok());
  l.Unlock();
  if (n > 1) work_cv_.notify_all();
  l.Lock();
  Drain();
  done_cv_.wait(l.native(), [&]() MT_REQUIRES(mu_) { return running_ == 0 && next_ >= n_; });
  task_ = nullptr;
  for (auto& r : results_)
    if (!r.ok()) return r;
  return Status::Ok();
}

}  // namespace mt::apply
