// PayloadBudget: a process-wide bound on the payload bytes being received
// (frames whose header arrived and whose payload is not complete yet), shared
// by every session's FrameDecoder. A decoder takes a frame's whole declared
// payload from the budget before it reserves memory for it, and gives it back
// when the frame is handed out, the decoder fails or is reset or destroyed.
// A frame that does not fit waits (its session stops reading) — it never
// allocates past the budget. All or nothing, so decoders never hold part of
// what they need: no deadlock as long as the budget is at least one maximal
// payload. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

namespace mt::stream {

class PayloadBudget {
 public:
  explicit PayloadBudget(uint64_t limit_bytes) : limit_(limit_bytes) {}
  PayloadBudget(const PayloadBudget&) = delete;
  PayloadBudget& operator=(const PayloadBudget&) = delete;

  // Bytes taken from a budget; returned when destroyed or Reset. Move-only.
  class Grant {
   public:
    Grant() = default;
    Grant(Grant&& o) noexcept
        : budget_(std::exchange(o.budget_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
    Grant& operator=(Grant&& o) noexcept {
      if (this != &o) {
        Reset();
        budget_ = std::exchange(o.budget_, nullptr);
        bytes_ = std::exchange(o.bytes_, 0);
      }
      return *this;
    }
    ~Grant() { Reset(); }
    void Reset() {
      if (budget_ != nullptr) budget_->in_use_.fetch_sub(bytes_);
      budget_ = nullptr;
      bytes_ = 0;
    }
    uint64_t bytes() const { return bytes_; }

   private:
    friend class PayloadBudget;
    PayloadBudget* budget_ = nullptr;
    uint64_t bytes_ = 0;
  };

  // All n bytes, or nothing (an empty grant, false). n == 0 always succeeds.
  bool TryAcquire(uint64_t n, Grant* grant) {
    uint64_t cur = in_use_.load();
    do {
      if (n > limit_ || cur > limit_ - n) return false;
    } while (!in_use_.compare_exchange_weak(cur, cur + n));
    *grant = Grant();
    grant->budget_ = this;
    grant->bytes_ = n;
    return true;
  }

  uint64_t limit() const { return limit_; }
  uint64_t in_use() const { return in_use_.load(); }

 private:
  const uint64_t limit_;
  std::atomic<uint64_t> in_use_{0};
};

}  // namespace mt::stream
