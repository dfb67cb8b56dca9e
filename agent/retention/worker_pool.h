// WorkerPool: a bounded set of threads shared by many serial tasks, so the
// agent's threads do not grow with the number of streams (issue 19). Each
// journal's committer and each stream's applier is a Strand of a pool: a
// function the pool runs when the strand is woken, never on two threads at
// once, and again after a run when it was woken during that run.
//
//   Wake() ─▶ ready queue (FIFO over strands) ─▶ a pool thread runs the
//   strand's function once ─▶ woken meanwhile? back to the queue's tail
//
// Contracts:
//  - A strand's runs never overlap, and every Wake() is followed by a run
//    that starts after it (unless the strand is stopped first).
//  - Fairness: a run should do one bounded step of work and Wake() itself if
//    more is left; it then queues behind the strands already waiting.
//  - Threads start on demand (a strand is woken and no pool thread is idle),
//    up to max_threads, and stay until the pool is destroyed: a pool serving
//    one busy strand holds one thread.
//  - Wake() and WakeAfter() never block on a run; they may be called with
//    the caller's own locks held (the pool's lock is taken last).
//  - A run that blocks (a hung device) holds its thread: with every thread
//    held, the other strands of that pool wait. Pools are split so that a
//    run never waits for a strand of its own pool (docs/operations.md,
//    "Threads").
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mt/shim/thread_annotations.h"

namespace mt::retention {

class WorkerPool {
 public:
  using Clock = std::chrono::steady_clock;

  WorkerPool(std::string name, size_t max_threads);
  // REQUIRES: every strand of the pool is destroyed.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  class Strand {
   public:
    ~Strand() { Stop(); }
    Strand(const Strand&) = delete;
    Strand& operator=(const Strand&) = delete;
    // A run soon (another after the one under way, if any).
    void Wake();
    // A run once `delay` has passed (or sooner if woken); a later timer
    // replaces an earlier one only if it is due sooner.
    void WakeAfter(std::chrono::milliseconds delay);
    // No more runs; waits for the one under way (unless called from it).
    // Idempotent; Wake() after Stop() does nothing.
    void Stop();

   private:
    friend class WorkerPool;
    Strand(WorkerPool& pool, std::function<void()> run) : pool_(pool), run_(std::move(run)) {}
    WorkerPool& pool_;
    const std::function<void()> run_;
    // All below guarded by pool_.mu_.
    bool queued_ = false;   // in ready_
    bool running_ = false;
    bool again_ = false;    // woken while running
    bool stopped_ = false;
    std::thread::id runner_;
    Clock::time_point due_{};  // timer (when has_timer_)
    bool has_timer_ = false;
  };

  std::unique_ptr<Strand> NewStrand(std::function<void()> run);

  // Threads started so far (at most max_threads).
  size_t threads() const;
  const std::string& name() const { return name_; }

 private:
  void Worker();
  // Queues `s` for a run (or marks it to run again); starts a thread if none
  // is idle and the pool has room.
  void ScheduleLocked(Strand* s) MT_REQUIRES(mu_);
  void CancelTimerLocked(Strand* s) MT_REQUIRES(mu_);
  // Moves every strand whose timer is due to the ready queue.
  void FireTimersLocked(Clock::time_point now) MT_REQUIRES(mu_);

  const std::string name_;
  const size_t max_threads_;
  mutable Mutex mu_;
  std::condition_variable work_cv_;  // workers: a strand is ready, a timer changed, stopping
  std::condition_variable done_cv_;  // Stop(): a run ended
  std::deque<Strand*> ready_ MT_GUARDED_BY(mu_);
  std::set<std::pair<Clock::time_point, Strand*>> timers_ MT_GUARDED_BY(mu_);
  size_t idle_ MT_GUARDED_BY(mu_) = 0;
  bool stopping_ MT_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_ MT_GUARDED_BY(mu_);
};

}  // namespace mt::retention
