// FaultController: decides which operation of the fakes and fault-injecting
// wrappers fails, and when the simulated machine "loses power".
//
// Every operation of an attached device or file system (reads, writes, flushes,
// syncs, truncates, creates, renames, removes) calls Check() once, before it
// touches anything; the controller numbers them 1, 2, 3, ... from its creation
// or the last Reset(). A failed or crashed operation changes nothing.
//
// Typical crash test:
//   FaultController fc;  fc.CrashAtNth(n);
//   run the workload until it reports an error;         // ops >= n all fail
//   mem_fs.PowerCut(opts); mem_dev->PowerCut(opts);      // drop what was not durable
//   fc.Reset();  restart the component and check the invariants.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>

#include "mt/shim/status.h"

namespace mt::shim {

// What survives a simulated power loss of the unsynced/unflushed writes.
struct PowerCutOptions {
  // Each unsynced write independently survives with this probability (0: the
  // classic "drop everything not synced").
  double keep_probability = 0.0;
  // The newest unsynced write survives as a prefix (a multiple of
  // tear_granularity bytes, possibly empty): a torn write.
  bool tear_last = false;
  uint32_t tear_granularity = 512;
  uint64_t seed = 1;
};

class FaultController {
 public:
  // The n-th operation from now (n = 1: the next one) fails once with `err`.
  void FailNth(uint64_t n, int err = 5 /* EIO */);
  // The n-th operation from now and every later one fail: power is gone.
  void CrashAtNth(uint64_t n);
  // Every later operation on the object with this name fails with `err`.
  void FailObject(const std::string& name, int err = 5 /* EIO */);
  // Forget schedules, object failures and the crashed state (after a restart).
  void Reset();

  // While held, every "sync" operation waits (before it is counted) until
  // released: a commit caught in flight, for race tests.
  void HoldSyncs(bool hold);
  // How many syncs are waiting now.
  int held_syncs() const;

  bool crashed() const;
  // Operations checked since construction or the last Reset().
  uint64_t operations() const;

  // Called by a fake/wrapper before an operation; non-ok means "do not do it".
  Status Check(const char* op, const std::string& object);

 private:
  mutable std::mutex mu_;
  std::condition_variable released_;
  bool hold_syncs_ = false;
  int held_syncs_ = 0;
  uint64_t ops_ = 0;
  uint64_t fail_at_ = 0;
  int fail_errno_ = 0;
  uint64_t crash_at_ = 0;
  bool crashed_ = false;
  std::set<std::string> failing_objects_;
  int object_errno_ = 0;
};

}  // namespace mt::shim
