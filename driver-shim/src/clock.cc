#include "mt/shim/clock.h"

#include <ctime>

namespace mt::shim {
namespace {

int64_t Read(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

class RealClock : public Clock {
 public:
  int64_t NowNs() const override { return Read(CLOCK_REALTIME); }
  int64_t MonotonicNs() const override { return Read(CLOCK_MONOTONIC); }
};

}  // namespace

Clock& SystemClock() {
  static RealClock clock;
  return clock;
}

}  // namespace mt::shim
