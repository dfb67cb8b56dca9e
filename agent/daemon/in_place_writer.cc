#include "daemon/in_place_writer.h"

namespace mt::daemon {

InPlaceWriter::InPlaceWriter(WriteFn write, retention::WorkerPool* pool) : write_(std::move(write)) {
  if (pool == nullptr) {
    own_pool_ = std::make_unique<retention::WorkerPool>("in-place", 1);
    pool = own_pool_.get();
  }
  strand_ = pool->NewStrand([this] { Step(); });
}

InPlaceWriter::~InPlaceWriter() {
  {
    std::unique_lock<std::mutex> l(mu_);
    done_cv_.wait(l, [&] { return jobs_.empty(); });  // what was submitted is written
  }
  strand_->Stop();
}

void InPlaceWriter::Submit(uint64_t seq, uint32_t disk, uint64_t offset, const uint8_t* data,
                           uint64_t len) {
  {
    std::lock_guard<std::mutex> l(mu_);
    jobs_.push_back({seq, disk, offset, data, len});
    submitted_ = seq;
  }
  strand_->Wake();
}

Status InPlaceWriter::WaitThrough(uint64_t seq) {
  std::unique_lock<std::mutex> l(mu_);
  done_cv_.wait(l, [&] { return done_ >= seq || submitted_ < seq || !error_.ok(); });
  if (!error_.ok()) return error_;
  if (done_ < seq)
    return Status(Errc::kInternal, "in-place write of seq " + std::to_string(seq) + " was never submitted");
  return Status::Ok();
}

void InPlaceWriter::Step() {
  std::unique_lock<std::mutex> l(mu_);
  if (jobs_.empty()) return;
  const Job j = jobs_.front();
  const bool failed = !error_.ok();
  l.unlock();
  Status s = failed ? Status::Ok() : write_(j.disk, j.offset, j.data, j.len);
  l.lock();
  jobs_.pop_front();
  if (!s.ok() && error_.ok())
    error_ = s.WithContext("in-place resync data at seq " + std::to_string(j.seq));
  done_ = j.seq;
  done_cv_.notify_all();
  if (!jobs_.empty()) strand_->Wake();  // one write a run: the pool's other strands take turns
}

}  // namespace mt::daemon
