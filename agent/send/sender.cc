#include "send/sender.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstdio>
#include <cstring>
#include <deque>

#include "stream/messages.h"
#include "mt/shim/clock.h"
#include "mt/shim/crc32c.h"
#include "mt/shim/file_system.h"
#include "send/reconnect.h"
#include "send/record.h"
#include "send/send_window.h"
#include "stream/block_hash.h"
#include "mt/shim/aligned_buffer.h"
#include "mt/shim/block_device.h"
#include "stream/validator.h"
#include "mt/shim/detach.h"
#include <cmath>

namespace mt::send {

using Clock = std::chrono::steady_clock;
using stream::FrameHeader;

namespace {

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// ---------------------------------------------------------------------------

class WorkloadRunner final : public ReconnectingRunner {
 public:
  explicit WorkloadRunner(const WorkloadOptions& o)
      : ReconnectingRunner(o.connect, o.retry_for, o.verbose), o_(o) {}

  Result<RunResult> Go() {
    MT_RETURN_IF_ERROR(CheckSpec(o_.spec));
    if (o_.count == 0 && o_.seconds <= 0) {
      return Status(Errc::kInvalidArgument, "give --count N or --seconds S");
    }
    if (o_.tag_every > 0 && o_.tag_every_items > 0) {
      return Status(Errc::kInvalidArgument, "give --tag-every S or --tag-every-items N, not both");
    }
    MT_RETURN_IF_ERROR(CheckGroupTagPrefix(o_.group_tags));
    if (!o_.group_tags.empty() && o_.tag_every <= 0 && o_.tag_every_items == 0) {
      return Status(Errc::kInvalidArgument,
                    "--group-tags needs tags: give --tag-every S or --tag-every-items N");
    }
    Status s = Run();
    if (!s.ok()) return s;
    res_.seconds = SecondsSince(started_);
    res_.reconnects = reconnects();
    return res_;
  }

 private:
  // An item of the window (sent, not yet durable). A write keeps no data:
  // its bytes are a function of (seed, seq) and are generated again when it
  // is resent, so the window's memory does not grow with --window.
  struct Item {
    uint64_t seq = 0;
    bool tag = false;
    WriteItem w;
    uint32_t crc = 0;
    int64_t time_ns = 0;
    std::string name;
    std::string group_tag_id;

    bool is_tag() const { return tag; }
    uint64_t charge() const { return tag ? 0 : w.length; }
    uint64_t write_bytes() const { return w.length; }
  };

  Status OnWelcome(const proto::Welcome& w) override {
    for (uint32_t d = 0; d < o_.spec.disks; ++d) {
      auto it = std::find_if(w.disks().begin(), w.disks().end(),
                             [d](const proto::DiskInfo& i) { return i.disk() == d; });
      if (it == w.disks().end()) {
        return Status(Errc::kNotFound, "the receiver's stream '" + o_.connect.stream +
                                           "' has no disk " + std::to_string(d) + " (--disks " +
                                           std::to_string(o_.spec.disks) + ")");
      }
      if (it->size_bytes() < o_.spec.disk_size) {
        return Status(Errc::kOutOfRange,
                      "the receiver's disk " + std::to_string(d) + " has " +
                          std::to_string(it->size_bytes()) + " bytes, --disk-size asks " +
                          std::to_string(o_.spec.disk_size));
      }
      if (it->logical_block_size() == 0 || o_.spec.block % it->logical_block_size() != 0) {
        return Status(Errc::kMisaligned, "--block " + std::to_string(o_.spec.block) +
                                             " is not a multiple of disk " + std::to_string(d) +
                                             "'s logical block size " +
                                             std::to_string(it->logical_block_size()));
      }
    }
    const uint64_t r = w.resume_seq();
    if (!opened_) {
      opened_ = true;
      uint64_t start = r;
      if (!o_.record_path.empty()) {
        MT_ASSIGN_OR_RETURN(record_, RecordWriter::Open(shim::PosixFileSystem(), o_.record_path,
                                                        o_.spec.seed, r));
        start = record_->start();
        if (!o_.group_tags.empty() && o_.tag_every > 0) {
          // Time-driven group tags are numbered through the run: a restart
          // continues after the tags its record kept.
          MT_ASSIGN_OR_RETURN(Record kept, ReadRecord(shim::PosixFileSystem(), o_.record_path));
          for (const RecordEntry& e : kept.entries)
            if (e.type == 'T' && e.seq > start) ++tags_made_;
        }
      }
      start_seq_ = start;
      end_seq_ = o_.count > 0 ? start + o_.count : UINT64_MAX;
      next_seq_ = r + 1;
      res_.first_seq = r + 1;
      if (o_.seconds > 0) {
        deadline_ = started_ + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(o_.seconds));
      }
      next_tag_ = Clock::now() + TagPeriod();
      rate_clock_ = Clock::now();
    }
    // Resend what is not durable, exactly as it was.
    MT_RETURN_IF_ERROR(window_.Resume(
        r, o_.batch_writes, &res_, [this](const std::vector<const Item*>& b) { return SendBatch(b); },
        [this](const Item& t) { return SendTag(t); }));
    // Nothing left unacknowledged: go on after the receiver (on the first
    // welcome next_seq_ is r + 1 already).
    if (window_.empty()) next_seq_ = std::max(next_seq_, r + 1);
    Pump();
    return Status::Ok();
  }

  Status OnFrame(stream::Frame&& f) override {
    MT_ASSIGN_OR_RETURN(const bool pump, window_.OnFrame(f, &res_));
    if (pump) Pump();
    return Status::Ok();
  }

  Clock::duration TagPeriod() const {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.tag_every));
  }
  bool GenerationOver() const {
    return next_seq_ > end_seq_ || (o_.seconds > 0 && Clock::now() >= deadline_);
  }

  // Seconds to wait before the next write may go (0: now).
  double RateWait() {
    const double now = SecondsSince(rate_clock_);
    const double w = o_.rate_writes > 0 ? (writes_sent_ / o_.rate_writes) - now : 0;
    const double b = o_.rate_bytes > 0 ? (bytes_sent_ / o_.rate_bytes) - now : 0;
    return std::max({0.0, w, b});
  }

  void Pump() override {
    if (!opened_) return;
    if (GenerationOver() && window_.empty()) {
      Finish(Status::Ok());
      return;
    }
    if (!connected()) return;
    while (conn_ && window_.HasRoom(conn_->queued_bytes()) && !GenerationOver()) {
      const double wait = RateWait();
      if (wait > 0) {
        pump_timer_.expires_after(std::chrono::microseconds(static_cast<int64_t>(wait * 1e6) + 1));
        pump_timer_.async_wait([this](const boost::system::error_code& ec) {
          if (!ec) Pump();
        });
        return;
      }
      Status s = SendNext();
      if (!s.ok()) {
        Finish(s);
        return;
      }
    }
  }

  // Is the next item a tag (time- or count-driven)?
  bool TagDue() const {
    if (o_.tag_every_items > 0) return IsCountedTag(start_seq_, o_.tag_every_items, next_seq_);
    return o_.tag_every > 0 && Clock::now() >= next_tag_;
  }

  // Generates, records and sends the next batch of writes or one tag.
  Status SendNext() {
    const int64_t now_ns = shim::SystemClock().NowNs();
    std::vector<RecordEntry> rec;
    if (TagDue()) {
      next_tag_ = Clock::now() + TagPeriod();
      Item t;
      t.seq = next_seq_++;
      t.tag = true;
      t.time_ns = now_ns;
      t.name = WorkloadTagName(t.seq);
      const uint64_t k = o_.tag_every_items > 0
                             ? CountedTagOrdinal(start_seq_, o_.tag_every_items, t.seq)
                             : ++tags_made_;
      t.group_tag_id = GroupTagId(o_.group_tags, k);
      RecordEntry e;
      e.type = 'T';
      e.seq = t.seq;
      e.kind = "app";
      e.name = t.name;
      rec.push_back(e);
      if (record_) MT_RETURN_IF_ERROR(record_->Append(rec));
      return SendTag(window_.Push(std::move(t)));
    }
    const size_t first = window_.size();
    uint64_t bytes = 0;
    size_t used = 0;  // bytes of scratch_ holding this batch's data
    while (bytes < o_.batch_bytes && window_.size() - first < o_.batch_writes && !GenerationOver() &&
           (window_.size() == first || RateWait() <= 0) && !TagDue()) {
      Item it;
      it.seq = next_seq_++;
      it.w = WriteAt(o_.spec, it.seq);
      uint8_t* data = ScratchFor(used, it.w.length);
      WorkloadData(o_.spec.seed, it.seq, data, it.w.length);
      it.crc = crc32c::Value(data, it.w.length);
      used += it.w.length;
      it.time_ns = now_ns;
      RecordEntry e;
      e.seq = it.seq;
      e.disk = it.w.disk;
      e.offset = it.w.offset;
      e.length = it.w.length;
      e.crc32c = it.crc;
      rec.push_back(e);
      bytes += it.w.length;
      ++writes_sent_;
      bytes_sent_ += static_cast<double>(it.w.length);
      window_.Push(std::move(it));
    }
    if (record_) MT_RETURN_IF_ERROR(record_->Append(rec));
    return SendGenerated(window_.Since(first));
  }

  // scratch_[at, at + len), growing scratch_ (its start may move: take
  // pointers only after the batch's last call).
  uint8_t* ScratchFor(size_t at, size_t len) {
    if (scratch_.size() < at + len) scratch_.resize(at + len);
    return scratch_.data() + at;
  }

  // Resends writes: their data is generated again into scratch_.
  Status SendBatch(const std::vector<const Item*>& items) {
    size_t used = 0;
    for (const Item* it : items) {
      WorkloadData(o_.spec.seed, it->seq, ScratchFor(used, it->w.length), it->w.length);
      used += it->w.length;
    }
    return SendGenerated(items);
  }

  // Sends writes whose data lies back to back at the start of scratch_.
  Status SendGenerated(const std::vector<const Item*>& items) {
    if (items.empty() || !conn_) return Status::Ok();
    FrameHeader h;
    proto::WriteBatch* b = h.mutable_write_batch();
    b->set_first_seq(items.front()->seq);
    std::vector<stream::ConstSlice> payload;
    size_t at = 0;
    for (const Item* it : items) {
      proto::Write* w = b->add_writes();
      w->set_seq(it->seq);
      w->set_disk(it->w.disk);
      w->set_offset(it->w.offset);
      w->set_length(it->w.length);
      w->set_source_time_ns(it->time_ns);
      w->set_crc32c(it->crc);
      payload.push_back({scratch_.data() + at, it->w.length});
      at += it->w.length;
    }
    return conn_->Send(h, payload);
  }

  Status SendTag(const Item& t) {
    if (!conn_) return Status::Ok();
    FrameHeader h;
    proto::Tag* tag = h.mutable_tag();
    tag->set_seq(t.seq);
    tag->set_name(t.name);
    tag->set_kind(proto::TAG_KIND_APP);
    tag->set_group_tag_id(t.group_tag_id);
    tag->set_source_time_ns(t.time_ns);
    return conn_->Send(h);
  }

  const WorkloadOptions o_;
  std::unique_ptr<RecordWriter> record_;
  bool opened_ = false;
  uint64_t next_seq_ = 1, end_seq_ = UINT64_MAX;
  uint64_t start_seq_ = 0;  // the run's start: its items are start_seq_ + 1 ..
  uint64_t tags_made_ = 0;  // time-driven tags of the run so far (group tag numbering)
  SendWindow<Item> window_{"run", o_.window_bytes};  // sent, not yet durable
  std::vector<uint8_t> scratch_;  // data of the batch being sent (reused)
  Clock::time_point deadline_, next_tag_, rate_clock_;
  double writes_sent_ = 0, bytes_sent_ = 0;
  RunResult res_;
};

// ---------------------------------------------------------------------------

class TagRunner final : public ReconnectingRunner {
 public:
  explicit TagRunner(const TagOptions& o) : ReconnectingRunner(o.connect, o.retry_for, o.verbose), o_(o) {}

  Result<RunResult> Go() {
    if (!stream::IsPrintableName(o_.name, 1, stream::kMaxNameBytes)) {
      return Status(Errc::kInvalidArgument, "tag name must be 1..255 printable ASCII bytes");
    }
    Status s = Run();
    if (!s.ok()) return s;
    res_.seconds = SecondsSince(started_);
    return res_;
  }

 private:
  Status OnWelcome(const proto::Welcome& w) override {
    // After a reconnect the tag may already be durable: then it is done.
    if (seq_ != 0 && w.resume_seq() >= seq_) {
      Finish(Status::Ok());
      return Status::Ok();
    }
    seq_ = w.resume_seq() + 1;
    FrameHeader h;
    proto::Tag* t = h.mutable_tag();
    t->set_seq(seq_);
    t->set_name(o_.name);
    t->set_kind(o_.kind);
    t->set_group_tag_id(o_.group_tag_id);
    t->set_source_time_ns(shim::SystemClock().NowNs());
    res_.first_seq = res_.last_seq = seq_;
    res_.tags = 1;
    return conn_->Send(h);
  }
  Status OnFrame(stream::Frame&& f) override {
    if (f.type() == FrameHeader::kAck && f.header.ack().durable_seq() >= seq_) Finish(Status::Ok());
    return Status::Ok();
  }

  const TagOptions o_;
  uint64_t seq_ = 0;
  RunResult res_;
};


// ---------------------------------------------------------------------------

class ResyncRunner final : public ReconnectingRunner {
 public:
  explicit ResyncRunner(const ResyncOptions& o) : ReconnectingRunner(o.connect, o.retry_for, o.verbose), o_(o) {}

  Result<ResyncResult> Go() {
    if (o_.block_size == 0 || (o_.block_size & (o_.block_size - 1)) != 0 || o_.block_size > (64u << 20))
      return Status(Errc::kInvalidArgument, "--block-size must be a power of two up to 64 MiB");
    shim::BlockDeviceOptions bo;
    bo.writable = false;
    bo.direct = false;
    MT_ASSIGN_OR_RETURN(source_, shim::OpenBlockDevice(o_.source, bo));
    tty_ = o_.progress && shim::IsTerminal(2);
    Status s = Run();
    if (tty_ && printed_) std::fprintf(stderr, "\n");
    if (!s.ok()) return s;
    res_.run.seconds = SecondsSince(started_);
    res_.run.reconnects = reconnects();
    return res_;
  }

 private:
  // A hash request in flight: the source's side (filled by a worker) and
  // the receiver's reply, compared once both are there.
  struct Pending {
    proto::ResyncHashRequest req;
    AlignedBuffer data;          // the source range, rounded up to lbs_
    std::vector<uint8_t> mine;   // its block hashes
    Status read;                 // the worker's outcome
    bool hashed = false;         // the worker is done (set on ioc_'s thread)
    bool replied = false;        // theirs holds the receiver's hashes
    stream::PayloadBytes theirs;
  };
  Status OnWelcome(const proto::Welcome& w) override {
    auto it = std::find_if(w.disks().begin(), w.disks().end(),
                           [&](const proto::DiskInfo& i) { return i.disk() == o_.disk; });
    if (it == w.disks().end()) {
      return Status(Errc::kNotFound, "the receiver's stream '" + o_.connect.stream + "' has no disk " +
                                         std::to_string(o_.disk));
    }
    if (it->resync_state() == proto::RESYNC_STATE_COMPLETE) {
      if (done_seq_ != 0 && w.resume_seq() >= done_seq_) {  // finished before a reconnect
        Finish(Status::Ok());
        return Status::Ok();
      }
      return Status(Errc::kInvalidArgument, "disk " + std::to_string(o_.disk) +
                                                " is not being resynced (its resync is complete; on the "
                                                "master target, mtctl resync asks for a new one)");
    }
    if (it->size_bytes() != source_->size()) {
      return Status(Errc::kOutOfRange, "the source " + o_.source + " has " + std::to_string(source_->size()) +
                                           " bytes, the receiver's disk " + std::to_string(o_.disk) + " " +
                                           std::to_string(it->size_bytes()));
    }
    if (it->logical_block_size() == 0 || o_.block_size % it->logical_block_size() != 0 ||
        source_->logical_block_size() == 0 || o_.block_size % source_->logical_block_size() != 0) {
      return Status(Errc::kMisaligned, "--block-size " + std::to_string(o_.block_size) +
                                           " is not a multiple of the logical block size");
    }
    if (done_seq_ != 0 && w.resume_seq() >= done_seq_) {
      Finish(Status::Ok());
      return Status::Ok();
    }
    // The mode, taken at the first welcome and kept for the run (a later
    // welcome cannot say more: the disk stays declared blank until its resync
    // completes, which ends the run).
    if (pass_ == 0) {
      full_ = o_.mode == ResyncMode::kFull || (o_.mode == ResyncMode::kAuto && it->target_blank());
      res_.full_copy = full_;
      if (o_.verbose) SayMode();  // otherwise with the first progress line
    }
    disk_size_ = it->size_bytes();
    lbs_ = std::max<uint64_t>(it->logical_block_size(), source_->logical_block_size());
    chunk_ = std::max(o_.block_size, o_.chunk_bytes / o_.block_size * o_.block_size);
    // What the receiver holds durable of the last pass (its welcome may say
    // more than the acks that reached us).
    Acknowledged(w.resume_seq());
    // A new pass, seqs after the welcome's: a compare pass from the start, a
    // full copy after what is durable (its records go in offset order).
    next_seq_ = w.resume_seq() + 1;
    acked_ = w.resume_seq();
    next_offset_ = full_ ? durable_end_ : 0;
    requests_.clear();  // the workers' results for them are dropped (pass_)
    ahead_.clear();
    ahead_offset_ = next_offset_;
    reading_ = false;
    ++pass_;
    unacked_.clear();
    window_ = 0;
    complete_sent_ = false;
    done_seq_ = 0;
    if (pass_start_ == Clock::time_point()) pass_start_ = Clock::now();
    // Full mode goes on where the receiver's durable records end.
    res_.compared_bytes = next_offset_;
    res_.run.first_seq = next_seq_;
    Pump();
    return Status::Ok();
  }

  Status OnFrame(stream::Frame&& f) override {
    switch (f.type()) {
      case FrameHeader::kAck: {
        acked_ = std::max(acked_, f.header.ack().durable_seq());
        Acknowledged(acked_);
        if (done_seq_ != 0 && acked_ >= done_seq_) {
          res_.run.last_seq = done_seq_;
          Progress(true);
          Finish(Status::Ok());
          return Status::Ok();
        }
        Pump();
        return Status::Ok();
      }
      case FrameHeader::kThrottle:
        throttled_ = f.header.throttle().on();
        if (!throttled_) Pump();
        return Status::Ok();
      case FrameHeader::kResyncHashReply:
        return OnHashReply(f);
      default:
        return Status(Errc::kProtocol, std::string("unexpected ") + stream::FrameTypeName(f.type()) +
                                           " frame from the receiver");
    }
  }

  // Once: why this run copies or compares, for the operator.
  void SayMode() {
    if (mode_said_) return;
    mode_said_ = true;
    std::fprintf(stderr, "mtsend resync: disk %u: %s\n", o_.disk, ModeLine());
  }
  // Why this run copies or compares.
  const char* ModeLine() const {
    switch (o_.mode) {
      case ResyncMode::kFull:
        return "full copy (--full): every block is sent";
      case ResyncMode::kCompare:
        return "compare (--compare): only blocks whose SHA-256 differs are sent";
      case ResyncMode::kAuto:
        break;
    }
    return full_ ? "full copy: the target was declared blank at pair add (--compare compares instead)"
                 : "compare: only blocks whose SHA-256 differs are sent";
  }

  // Drops what the receiver holds durable from the window.
  void Acknowledged(uint64_t durable_seq) {
    while (!unacked_.empty() && unacked_.front().seq <= durable_seq) {
      window_ -= unacked_.front().bytes;
      if (full_ && unacked_.front().end > durable_end_) {
        durable_end_ = unacked_.front().end;
        if (durable_end_ > compared_high_) {
          compared_high_ = durable_end_;
          Progressed();
        }
      }
      unacked_.pop_front();
    }
  }

  // Compare mode: keeps up to o_.hash_requests hash requests in flight
  // while the window has room; the source's side of each is read and hashed
  // on a worker as soon as the request is sent, so both ends hash at once.
  // Full mode: reads and sends the next records while it has room.
  void Pump() override {
    if (!connected() || complete_sent_) return;
    if (full_) {
      Status s = SendFullRecords();
      if (!s.ok()) {
        Finish(s);
        return;
      }
    }
    while (!full_ && !throttled_ && requests_.size() < std::max<uint32_t>(1, o_.hash_requests) &&
           next_offset_ < disk_size_ && window_ < o_.window_bytes) {
      auto p = std::make_shared<Pending>();
      p->req.set_disk(o_.disk);
      p->req.set_offset(next_offset_);
      p->req.set_length(std::min(chunk_, disk_size_ - next_offset_));
      p->req.set_block_size(o_.block_size);
      next_offset_ += p->req.length();
      if (!SendRequest(p)) return;
      HashSourceAhead(p);
    }
    if (requests_.empty() && next_offset_ >= disk_size_ && !complete_sent_) {
      FrameHeader h;
      proto::ResyncComplete* c = h.mutable_resync_complete();
      c->set_seq(next_seq_);
      c->set_disk(o_.disk);
      c->set_source_time_ns(shim::SystemClock().NowNs());
      done_seq_ = next_seq_++;
      complete_sent_ = true;
      Status s = conn_->Send(h);
      if (!s.ok()) Finish(s);
    }
  }

  // Sends p's request under a new id and keeps it in flight; false (the run
  // finished) when the connection failed.
  bool SendRequest(const std::shared_ptr<Pending>& p) {
    p->req.set_request_id(++request_id_);
    FrameHeader h;
    *h.mutable_resync_hash_request() = p->req;
    Status s = conn_->Send(h);
    if (!s.ok()) {
      Finish(s);
      return false;
    }
    requests_.push_back(p);
    return true;
  }

  // Full mode: the source from next_offset_ on, in records of
  // kFullRecordBytes, while the window has room and the connection holds
  // less than one record unsent (so one is always queued behind the one
  // being sent, and at most two are held; on_sent pumps again). Up to kReadAhead records
  // are read ahead on a worker, one read at a time in order of offset (the
  // kernel's sequential read-ahead keeps working), so reading the source
  // overlaps sending.
  Status SendFullRecords() {
    while (true) {
      if (!reading_ && ahead_.size() < kReadAhead && ahead_offset_ < disk_size_) ReadAhead();
      if (throttled_ || ahead_.empty() || !ahead_.front()->done || window_ >= o_.window_bytes ||
          conn_->queued_bytes() >= kFullRecordBytes)
        return Status::Ok();
      std::shared_ptr<Ahead> a = ahead_.front();
      ahead_.pop_front();
      MT_RETURN_IF_ERROR(a->read.WithContext("resync source " + o_.source));
      MT_RETURN_IF_ERROR(SendBlock(a->offset, a->data.data(), a->n));
      next_offset_ = a->offset + a->n;
      res_.compared_bytes += a->n;
      Progress(false);
    }
  }

  // Reads the next record from ahead_offset_ on a worker; Pump() when done.
  void ReadAhead() {
    auto a = std::make_shared<Ahead>();
    a->offset = ahead_offset_;
    a->n = std::min(kFullRecordBytes, disk_size_ - ahead_offset_);
    ahead_offset_ += a->n;
    ahead_.push_back(a);
    reading_ = true;
    const uint64_t pass = pass_;
    const uint64_t lbs = lbs_;
    boost::asio::post(hashers_, [this, a, pass, lbs] {
      a->data = AlignedBuffer::Uninitialized((a->n + lbs - 1) / lbs * lbs);
      a->read = source_->ReadAt(a->offset, a->data.data(), a->data.size());
      boost::asio::post(ioc_, [this, a, pass] {
        if (pass != pass_ || finished()) return;
        a->done = true;
        reading_ = false;
        Pump();
      });
    });
  }

  // One resync_data record: the next seq, in the window until acknowledged.
  Status SendBlock(uint64_t offset, const uint8_t* data, uint64_t n) {
    FrameHeader h;
    proto::ResyncData* d = h.mutable_resync_data();
    d->set_seq(next_seq_);
    d->set_disk(o_.disk);
    d->set_offset(offset);
    d->set_length(n);
    d->set_crc32c(crc32c::Value(data, n));
    d->set_source_time_ns(shim::SystemClock().NowNs());
    MT_RETURN_IF_ERROR(conn_->Send(h, {{data, n}}));
    unacked_.push_back({next_seq_++, n, offset + n});
    window_ += n;
    res_.sent_bytes += n;
    ++res_.blocks_sent;
    return Status::Ok();
  }

  // The source's side of a request, on a worker: read the range (rounded up
  // to the logical block size) and hash it; the result goes back to ioc_'s
  // thread, where it is dropped if a reconnect began a new pass meanwhile.
  void HashSourceAhead(const std::shared_ptr<Pending>& p) {
    const uint64_t pass = pass_;
    const uint64_t lbs = lbs_;
    boost::asio::post(hashers_, [this, p, pass, lbs] {
      const uint64_t len = p->req.length();
      p->data = AlignedBuffer::Uninitialized((len + lbs - 1) / lbs * lbs);
      p->read = source_->ReadAt(p->req.offset(), p->data.data(), p->data.size());
      if (p->read.ok()) p->read = stream::HashBlocks(p->data.data(), len, p->req.block_size(), &p->mine);
      boost::asio::post(ioc_, [this, p, pass] {
        if (pass != pass_ || finished()) return;
        p->hashed = true;
        Status s = CompareIfBoth(p);
        if (!s.ok()) Finish(s);
      });
    });
  }

  Status OnHashReply(stream::Frame& f) {
    // Replies carry their request's id; they may come in any order.
    auto it = std::find_if(requests_.begin(), requests_.end(), [&](const std::shared_ptr<Pending>& p) {
      return p->req.request_id() == f.header.resync_hash_reply().request_id();
    });
    if (it == requests_.end() || (*it)->replied) {
      return Status(Errc::kProtocol, "resync hash reply " +
                                         std::to_string(f.header.resync_hash_reply().request_id()) +
                                         " answers no outstanding request");
    }
    std::shared_ptr<Pending> p = *it;
    MT_RETURN_IF_ERROR(stream::CheckHashReply(p->req, f.header.resync_hash_reply(), f.payload.size()));
    p->theirs = std::move(f.payload);
    p->replied = true;
    return CompareIfBoth(p);
  }

  // Once both sides of a request are hashed: sends the runs of adjacent
  // differing blocks (a record of at most kMaxRunBytes each), drops the
  // request and asks for more.
  Status CompareIfBoth(const std::shared_ptr<Pending>& p) {
    if (!p->hashed || !p->replied) return Status::Ok();
    MT_RETURN_IF_ERROR(p->read.WithContext("resync source " + o_.source));
    const proto::ResyncHashRequest& req = p->req;
    const uint64_t len = req.length();
    const uint64_t bs = req.block_size();
    const uint64_t blocks = stream::HashBlockCount(len, bs);
    std::vector<uint64_t> differ;
    for (uint64_t b = 0; b < blocks; ++b)
      if (!std::equal(p->mine.begin() + b * 32, p->mine.begin() + (b + 1) * 32, p->theirs.begin() + b * 32))
        differ.push_back(b);
    const uint64_t run_blocks = std::max<uint64_t>(1, kMaxRunBytes / bs);
    for (size_t i = 0; i < differ.size();) {
      size_t j = i + 1;
      while (j < differ.size() && differ[j] == differ[j - 1] + 1 && j - i < run_blocks) ++j;
      const uint64_t off = differ[i] * bs;
      const uint64_t n = std::min<uint64_t>((differ[j - 1] + 1) * bs, len) - off;
      MT_RETURN_IF_ERROR(SendBlock(req.offset() + off, p->data.data() + off, n));
      i = j;
    }
    requests_.erase(std::find(requests_.begin(), requests_.end(), p));
    res_.compared_bytes += len;
    // Progress for the reconnect schedule: compared further than any pass
    // before (a pass after a reconnect compares again from the start).
    if (req.offset() + len > compared_high_) {
      compared_high_ = req.offset() + len;
      Progressed();
    }
    Progress(false);
    Pump();
    return Status::Ok();
  }

  void Progress(bool last) {
    if (!o_.progress) return;
    SayMode();
    const double secs = std::max(1e-3, SecondsSince(pass_start_));
    const double done = static_cast<double>(res_.compared_bytes);
    const double total = static_cast<double>(disk_size_);
    const double rate = done / secs;
    const double eta = rate > 0 ? (total - done) / rate : 0;
    const double pct = total > 0 ? 100.0 * done / total : 100.0;
    if (!tty_) {
      // Plain lines: one per 10% and the last one.
      const int decile = static_cast<int>(pct / 10);
      if (!last && decile == last_decile_) return;
      last_decile_ = decile;
    }
    std::fprintf(stderr, "%sresync disk %u: %.1f%% %s (%.1f of %.1f MiB), %.1f MiB sent, %.0f MiB/s, ETA %.0f s%s",
                 tty_ ? "\r" : "", o_.disk, pct, full_ ? "copied" : "compared", done / (1 << 20),
                 total / (1 << 20), static_cast<double>(res_.sent_bytes) / (1 << 20), rate / (1 << 20),
                 std::ceil(eta), tty_ ? "   " : "\n");
    std::fflush(stderr);
    printed_ = true;
  }

  const ResyncOptions o_;
  std::unique_ptr<shim::BlockDevice> source_;
  bool tty_ = false, printed_ = false, mode_said_ = false;
  int last_decile_ = -1;
  uint64_t disk_size_ = 0, lbs_ = 512, chunk_ = 0;
  uint64_t next_seq_ = 1, acked_ = 0, next_offset_ = 0, request_id_ = 0, done_seq_ = 0;
  uint64_t compared_high_ = 0;  // the furthest end of a compared chunk, over all passes
  std::deque<std::shared_ptr<Pending>> requests_;
  // Full mode: records being read ahead (done: read, on ioc_'s thread).
  struct Ahead {
    uint64_t offset = 0, n = 0;
    AlignedBuffer data;
    Status read;
    bool done = false;
  };
  static constexpr size_t kReadAhead = 4;
  std::deque<std::shared_ptr<Ahead>> ahead_;
  uint64_t ahead_offset_ = 0;  // the next offset to read ahead
  bool reading_ = false;       // a read ahead is on a worker
  uint64_t pass_ = 0;  // bumped at every welcome: a worker's result of an older pass is dropped
  struct Sent {
    uint64_t seq, bytes, end;  // end: the record's end offset on the disk
  };
  std::deque<Sent> unacked_;
  uint64_t window_ = 0;
  bool full_ = false;         // full copy (ResyncMode; taken at the first welcome)
  uint64_t durable_end_ = 0;  // full mode: [0, durable_end_) is durable on the receiver
  bool complete_sent_ = false, throttled_ = false;
  Clock::time_point pass_start_;
  ResyncResult res_;
  // Last: destroyed (stopped and joined) first, while source_ still exists.
  boost::asio::thread_pool hashers_{2};
};

}  // namespace

Result<RunResult> RunWorkload(const WorkloadOptions& options) {
  return WorkloadRunner(options).Go();
}

Result<RunResult> RunTag(const TagOptions& options) { return TagRunner(options).Go(); }

Result<ResyncResult> RunResync(const ResyncOptions& options) { return ResyncRunner(options).Go(); }

}  // namespace mt::send
