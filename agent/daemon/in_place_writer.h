// InPlaceWriter: writes a stream's in-place resync data (kFlagInPlace,
// docs/formats/journal.md) to its targets, in the order it was submitted, as
// it arrives, on a strand of a WorkerPool shared with the appliers (a thread
// of its own without one) — so target writes go on while the
// WAL's committer flushes the targets and writes the records of earlier
// ones. The committer's before-write hook waits (WaitThrough) for the
// writes of the records in its batch before it flushes the targets.
//
// Contract: Submit() in increasing seq order; `data` stays valid until
// WaitThrough(seq) has returned for it. The first write error is kept:
// every later WaitThrough() returns it, and nothing after it is written.
// Thread safety: Submit from one thread (the stream's ingest), WaitThrough
// from any; the destructor finishes what was submitted.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <memory>

#include "mt/shim/status.h"
#include "retention/worker_pool.h"

namespace mt::daemon {

class InPlaceWriter {
 public:
  // write(disk, offset, data, len): the target write (ordered against the
  // applier: ApplyPipeline::WriteTarget).
  using WriteFn = std::function<Status(uint32_t, uint64_t, const uint8_t*, uint64_t)>;
  // `pool`: the threads it writes on (never one that the WAL's committers
  // run on: they wait for these writes); null: a thread of its own.
  // REQUIRES: pool outlives the writer.
  explicit InPlaceWriter(WriteFn write, retention::WorkerPool* pool = nullptr);
  ~InPlaceWriter();
  InPlaceWriter(const InPlaceWriter&) = delete;
  InPlaceWriter& operator=(const InPlaceWriter&) = delete;

  void Submit(uint64_t seq, uint32_t disk, uint64_t offset, const uint8_t* data, uint64_t len);
  // Waits until every write submitted with a seq <= `seq` is done: ok, or
  // the first error.
  Status WaitThrough(uint64_t seq);

 private:
  struct Job {
    uint64_t seq;
    uint32_t disk;
    uint64_t offset;
    const uint8_t* data;
    uint64_t len;
  };
  void Step();  // one run of the strand: writes one job

  const WriteFn write_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<Job> jobs_;
  uint64_t submitted_ = 0;  // the newest seq submitted
  uint64_t done_ = 0;       // every job through this seq is written (or failed)
  Status error_;
  std::unique_ptr<retention::WorkerPool> own_pool_;
  std::unique_ptr<retention::WorkerPool::Strand> strand_;
};

}  // namespace mt::daemon
