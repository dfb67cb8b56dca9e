// BusySince: when a worker thread started its current unit of work, for
// liveness checks (the systemd watchdog). A worker calls Busy() when it takes
// work and Idle() before it waits for more; another thread asks BusyForNs().
// A thread that waits for work is idle by design, never "stalled"; one that
// has been busy for longer than any unit of work should take is stuck.
// Thread safety: any thread; lock-free.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace mt::shim {

class BusySince {
 public:
  void Busy() { since_ns_.store(Now(), std::memory_order_relaxed); }
  void Idle() { since_ns_.store(0, std::memory_order_relaxed); }
  // How long the current unit of work has run (monotonic); 0 when idle.
  int64_t BusyForNs() const {
    const int64_t s = since_ns_.load(std::memory_order_relaxed);
    return s == 0 ? 0 : Now() - s;
  }

 private:
  static int64_t Now() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count() + 1;  // never 0: that means idle
  }
  std::atomic<int64_t> since_ns_{0};
};

}  // namespace mt::shim
