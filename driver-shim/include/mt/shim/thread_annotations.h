// Thread-safety annotations checked by clang's -Wthread-safety (the clang
// build of scripts/test treats its warnings as errors): which mutex guards a
// member (MT_GUARDED_BY), which a function needs held (MT_REQUIRES) or must
// not hold (MT_EXCLUDES). Other compilers see nothing.
//
// libstdc++'s std::mutex carries no annotations, so guarded state uses
// mt::Mutex with MutexLock (a scope) or UniqueLock (a scope that can unlock
// and lock again, and wait on a std::condition_variable through native()).
// A condition-variable predicate reads guarded state with the lock held:
// annotate the lambda, `[&]() MT_REQUIRES(mu_) { return ...; }`.
#pragma once

#include <mutex>
#include <shared_mutex>

#if defined(__clang__)
#define MT_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define MT_THREAD_ANNOTATION(x)
#endif

#define MT_CAPABILITY(name) MT_THREAD_ANNOTATION(capability(name))
#define MT_SCOPED_CAPABILITY MT_THREAD_ANNOTATION(scoped_lockable)
#define MT_GUARDED_BY(mu) MT_THREAD_ANNOTATION(guarded_by(mu))
#define MT_PT_GUARDED_BY(mu) MT_THREAD_ANNOTATION(pt_guarded_by(mu))
#define MT_REQUIRES(...) MT_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define MT_EXCLUDES(...) MT_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define MT_ACQUIRE(...) MT_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define MT_RELEASE(...) MT_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define MT_ACQUIRE_SHARED(...) MT_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define MT_RELEASE_SHARED(...) MT_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define MT_RELEASE_GENERIC(...) MT_THREAD_ANNOTATION(release_generic_capability(__VA_ARGS__))
#define MT_NO_THREAD_SAFETY_ANALYSIS MT_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace mt {

// std::mutex as a capability the analysis knows.
class MT_CAPABILITY("mutex") Mutex {
 public:
  void lock() MT_ACQUIRE() { m_.lock(); }
  void unlock() MT_RELEASE() { m_.unlock(); }
  // Tells the analysis that the caller holds this mutex; checks nothing at
  // run time. Only for code the analysis cannot follow: a handle that exists
  // only while its creator holds the lock (Catalog::Transaction).
  void AssertHeld() const MT_THREAD_ANNOTATION(assert_capability(this)) {}
  // For std::unique_lock inside UniqueLock only.
  std::mutex& native() { return m_; }

 private:
  std::mutex m_;
};

// Holds `mu` for its scope.
class MT_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) MT_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() MT_RELEASE() { mu_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

// Holds `mu` for its scope, except between Unlock() and Lock(); native() is
// what std::condition_variable::wait takes (the wait gives the mutex back
// held, as the analysis assumes).
class MT_SCOPED_CAPABILITY UniqueLock {
 public:
  explicit UniqueLock(Mutex& mu) MT_ACQUIRE(mu) : l_(mu.native()) {}
  ~UniqueLock() MT_RELEASE() {}
  void Unlock() MT_RELEASE() { l_.unlock(); }
  void Lock() MT_ACQUIRE() { l_.lock(); }
  std::unique_lock<std::mutex>& native() { return l_; }

 private:
  std::unique_lock<std::mutex> l_;
};

// std::shared_mutex as a capability: exclusive (WriterLock) or shared
// (ReaderLock).
class MT_CAPABILITY("mutex") SharedMutex {
 public:
  void lock() MT_ACQUIRE() { m_.lock(); }
  void unlock() MT_RELEASE() { m_.unlock(); }
  void lock_shared() MT_ACQUIRE_SHARED() { m_.lock_shared(); }
  void unlock_shared() MT_RELEASE_SHARED() { m_.unlock_shared(); }

 private:
  std::shared_mutex m_;
};

class MT_SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex& mu) MT_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~WriterLock() MT_RELEASE() { mu_.unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex& mu_;
};

class MT_SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex& mu) MT_ACQUIRE_SHARED(mu) : mu_(mu) { mu_.lock_shared(); }
  ~ReaderLock() MT_RELEASE_GENERIC() { mu_.unlock_shared(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  SharedMutex& mu_;
};

}  // namespace mt
