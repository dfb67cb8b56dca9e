#include "daemon/in_place_writer.h"

namespace mt::daemon {

InPlaceWriter::InPlaceWriter(WriteFn write) : write_(std::move(write)), thread_([this] { Loop(); }) {}

InPlaceWriter::~InPlaceWriter() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  work_cv_.notify_one();
  thread_.join();
}

void InPlaceWriter::Submit(uint64_t seq, uint32_t disk, uint64_t offset, const uint8_t* data,
                           uint64_t len) {
  {
    std::lock_guard<std::mutex> l(mu_);
    jobs_.push_back({seq, disk, offset, data, len});
    submitted_ = seq;
  }
  work_cv_.notify_one();
}

Status InPlaceWriter::WaitThrough(uint64_t seq) {
  std::unique_lock<std::mutex> l(mu_);
  done_cv_.wait(l, [&] { return done_ >= seq || submitted_ < seq || !error_.ok(); });
  if (!error_.ok()) return error_;
  if (done_ < seq)
    return Status(Errc::kInternal, "in-place write of seq " + std::to_string(seq) + " was never submitted");
  return Status::Ok();
}

void InPlaceWriter::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    work_cv_.wait(l, [&] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, and everything submitted is done
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
  }
}

}  // namespace mt::daemon
