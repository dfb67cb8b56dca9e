#include "mt/shim/fault.h"

namespace mt::shim {

void FaultController::FailNth(uint64_t n, int err) {
  std::lock_guard<std::mutex> l(mu_);
  fail_at_ = ops_ + n;
  fail_errno_ = err;
}

void FaultController::CrashAtNth(uint64_t n) {
  std::lock_guard<std::mutex> l(mu_);
  crash_at_ = ops_ + n;
}

void FaultController::FailObject(const std::string& name, int err) {
  std::lock_guard<std::mutex> l(mu_);
  failing_objects_.insert(name);
  object_errno_ = err;
}

void FaultController::Reset() {
  std::lock_guard<std::mutex> l(mu_);
  ops_ = 0;
  fail_at_ = crash_at_ = 0;
  crashed_ = false;
  failing_objects_.clear();
}

void FaultController::HoldSyncs(bool hold) {
  {
    std::lock_guard<std::mutex> l(mu_);
    hold_syncs_ = hold;
  }
  released_.notify_all();
}

int FaultController::held_syncs() const {
  std::lock_guard<std::mutex> l(mu_);
  return held_syncs_;
}

bool FaultController::crashed() const {
  std::lock_guard<std::mutex> l(mu_);
  return crashed_;
}

uint64_t FaultController::operations() const {
  std::lock_guard<std::mutex> l(mu_);
  return ops_;
}

Status FaultController::Check(const char* op, const std::string& object) {
  std::unique_lock<std::mutex> l(mu_);
  if (hold_syncs_ && std::string(op) == "sync") {
    ++held_syncs_;
    released_.wait(l, [&] { return !hold_syncs_; });
    --held_syncs_;
  }
  ++ops_;
  if (crashed_ || (crash_at_ != 0 && ops_ >= crash_at_)) {
    crashed_ = true;
    return Status(Errc::kAborted, std::string(op) + " " + object + ": simulated power loss");
  }
  if (fail_at_ != 0 && ops_ == fail_at_) {
    fail_at_ = 0;
    return Status::FromErrno(fail_errno_, std::string(op) + " " + object + " (injected fault)");
  }
  if (failing_objects_.count(object) != 0)
    return Status::FromErrno(object_errno_, std::string(op) + " " + object + " (injected fault)");
  return Status::Ok();
}

}  // namespace mt::shim
