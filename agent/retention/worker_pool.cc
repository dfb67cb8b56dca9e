#include "retention/worker_pool.h"

#include <algorithm>

namespace mt::retention {

WorkerPool::WorkerPool(std::string name, size_t max_threads)
    : name_(std::move(name)), max_threads_(std::max<size_t>(1, max_threads)) {}

WorkerPool::~WorkerPool() {
  std::vector<std::thread> workers;
  {
    MutexLock l(mu_);
    stopping_ = true;
    workers.swap(workers_);
  }
  work_cv_.notify_all();
  for (auto& t : workers) t.join();
}

std::unique_ptr<WorkerPool::Strand> WorkerPool::NewStrand(std::function<void()> run) {
  return std::unique_ptr<Strand>(new Strand(*this, std::move(run)));
}

size_t WorkerPool::threads() const {
  MutexLock l(mu_);
  return workers_.size();
}

void WorkerPool::ScheduleLocked(Strand* s) {
  if (s->stopped_) return;
  if (s->running_) {
    s->again_ = true;  // the worker running it queues it when the run ends
    return;
  }
  if (s->queued_) return;
  s->queued_ = true;
  ready_.push_back(s);
  // More strands waiting than idle threads to take them (an idle thread
  // counts until it has woken and taken one): one more thread, if allowed.
  if (ready_.size() > idle_ && workers_.size() < max_threads_ && !stopping_) {
    workers_.emplace_back([this] { Worker(); });
  } else {
    work_cv_.notify_one();
  }
}

void WorkerPool::CancelTimerLocked(Strand* s) {
  if (!s->has_timer_) return;
  timers_.erase({s->due_, s});
  s->has_timer_ = false;
}

void WorkerPool::FireTimersLocked(Clock::time_point now) {
  while (!timers_.empty() && timers_.begin()->first <= now) {
    Strand* s = timers_.begin()->second;
    timers_.erase(timers_.begin());
    s->has_timer_ = false;
    ScheduleLocked(s);
  }
}

void WorkerPool::Strand::Wake() {
  MutexLock l(pool_.mu_);
  pool_.ScheduleLocked(this);
}

void WorkerPool::Strand::WakeAfter(std::chrono::milliseconds delay) {
  MutexLock l(pool_.mu_);
  if (stopped_) return;
  const Clock::time_point due = Clock::now() + delay;
  if (has_timer_ && due_ <= due) return;
  pool_.CancelTimerLocked(this);
  due_ = due;
  has_timer_ = true;
  pool_.timers_.insert({due_, this});
  // A timer needs a thread that waits for it.
  if (pool_.idle_ == 0 && pool_.workers_.size() < pool_.max_threads_ && !pool_.stopping_) {
    pool_.workers_.emplace_back([p = &pool_] { p->Worker(); });
  } else {
    pool_.work_cv_.notify_all();  // a waiting worker looks at the earliest timer again
  }
}

void WorkerPool::Strand::Stop() {
  UniqueLock l(pool_.mu_);
  stopped_ = true;
  again_ = false;
  pool_.CancelTimerLocked(this);
  if (queued_) {
    auto& q = pool_.ready_;
    q.erase(std::remove(q.begin(), q.end(), this), q.end());
    queued_ = false;
  }
  if (running_ && runner_ == std::this_thread::get_id()) return;  // from its own run
  pool_.done_cv_.wait(l.native(), [&] { return !running_; });
}

void WorkerPool::Worker() {
  UniqueLock l(mu_);
  while (true) {
    FireTimersLocked(Clock::now());
    if (ready_.empty()) {
      if (stopping_) return;
      ++idle_;
      if (timers_.empty()) {
        work_cv_.wait(l.native());
      } else {
        // A copy: the timer's node may be erased while this thread waits.
        const Clock::time_point due = timers_.begin()->first;
        work_cv_.wait_until(l.native(), due);
      }
      --idle_;
      continue;
    }
    Strand* s = ready_.front();
    ready_.pop_front();
    s->queued_ = false;
    s->running_ = true;
    s->runner_ = std::this_thread::get_id();
    l.Unlock();
    s->run_();
    l.Lock();
    s->running_ = false;
    s->runner_ = std::thread::id();
    if (s->again_ && !s->stopped_) {
      s->again_ = false;
      s->queued_ = true;
      ready_.push_back(s);  // behind the strands already waiting
    }
    done_cv_.notify_all();
  }
}

}  // namespace mt::retention
