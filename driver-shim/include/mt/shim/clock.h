// Clock: wall and monotonic time through an interface, so retention windows,
// RPO and timeouts are testable with a FakeClock.
#pragma once

#include <atomic>
#include <cstdint>

namespace mt::shim {

class Clock {
 public:
  virtual ~Clock() = default;
  // Nanoseconds since the Unix epoch (CLOCK_REALTIME).
  virtual int64_t NowNs() const = 0;
  // Nanoseconds on a clock that never goes backwards (CLOCK_MONOTONIC).
  virtual int64_t MonotonicNs() const = 0;
};

// The real clock; a process-wide instance.
Clock& SystemClock();

// A clock tests move by hand. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start_ns = 1'700'000'000'000'000'000) : now_(start_ns), mono_(0) {}
  int64_t NowNs() const override { return now_.load(); }
  int64_t MonotonicNs() const override { return mono_.load(); }
  void Advance(int64_t ns) {
    now_ += ns;
    mono_ += ns;
  }
  void Set(int64_t now_ns) { now_ = now_ns; }

 private:
  std::atomic<int64_t> now_;
  std::atomic<int64_t> mono_;
};

}  // namespace mt::shim
