// Compiled, not run: the unit tier's ThreadSafety tests compile this file with
// clang -Wthread-safety -Werror. Without MT_HOLD_THE_LOCK it writes guarded
// state without its mutex and must not compile (the analysis is on); with
// it, it must compile (the command line itself is sound).
#include "mt/shim/thread_annotations.h"

namespace {

class Counter {
 public:
  void Add() {
#ifdef MT_HOLD_THE_LOCK
    mt::MutexLock l(mu_);
#endif
    ++n_;
  }

 private:
  mt::Mutex mu_;
  int n_ MT_GUARDED_BY(mu_) = 0;
};

}  // namespace

void Probe() { Counter().Add(); }
