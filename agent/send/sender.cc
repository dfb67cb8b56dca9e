#include "sender.h"

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <deque>

#include "messages.h"
#include "mt/shim/clock.h"
#include "mt/shim/crc32c.h"
#include "mt/shim/file_system.h"
#include "record.h"

namespace mt::send {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using stream::FrameHeader;

namespace {

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Connection management shared by the commands: connect, reconnect with
// back-off on transient failures, stop on permanent ones or when done.
class Runner {
 public:
  Runner(const ConnectOptions& c, std::chrono::milliseconds retry_for, bool verbose)
      : copts_(c), retry_for_(retry_for), verbose_(verbose), retry_timer_(ioc_), pump_timer_(ioc_) {
    ssl_ = MakeClientContext();
  }
  virtual ~Runner() = default;

  Status Run() {
    started_ = Clock::now();
    last_welcome_ = started_;
    Connect();
    try {
      ioc_.run();
    } catch (const std::exception& e) {  // the edge: nothing of Asio's escapes
      return Status(Errc::kInternal, e.what());
    }
    return result_;
  }

 protected:
  virtual Status OnWelcome(const proto::Welcome& w) = 0;
  virtual Status OnFrame(stream::Frame&& f) = 0;
  virtual void Pump() {}

  // Ends the run: ok closes the connection gracefully.
  void Finish(const Status& s) {
    if (finished_) return;
    finished_ = true;
    result_ = s;
    retry_timer_.cancel();
    pump_timer_.cancel();
    if (conn_ && s.ok()) {
      conn_->Close();
    } else if (conn_) {
      auto c = conn_;
      conn_.reset();
      c->Close();
    }
  }

  bool connected() const { return conn_ != nullptr && welcomed_; }

  asio::io_context ioc_;
  std::unique_ptr<asio::ssl::context> ssl_;
  std::shared_ptr<Connection> conn_;
  ConnectOptions copts_;
  std::chrono::milliseconds retry_for_;
  bool verbose_;
  asio::steady_timer retry_timer_, pump_timer_;
  Clock::time_point started_, last_welcome_;
  uint64_t reconnects_ = 0;

 private:
  void Connect() {
    welcomed_ = false;
    Connection::Callbacks cb;
    cb.on_welcome = [this](const proto::Welcome& w) {
      welcomed_ = true;
      last_welcome_ = Clock::now();
      backoff_ = std::chrono::milliseconds(100);
      Status s = OnWelcome(w);
      if (!s.ok()) Finish(s);
    };
    cb.on_frame = [this](stream::Frame&& f) {
      Status s = OnFrame(std::move(f));
      if (!s.ok()) Finish(s);
    };
    cb.on_drained = [this] { Pump(); };
    cb.on_closed = [this](const CloseReason& r) { OnClosed(r); };
    conn_ = std::make_shared<Connection>(ioc_, *ssl_, copts_, std::move(cb));
    conn_->Start();
  }

  void OnClosed(const CloseReason& r) {
    conn_.reset();
    welcomed_ = false;
    pump_timer_.cancel();
    if (finished_) return;
    if (r.permanent) {
      Finish(r.status);
      return;
    }
    if (Clock::now() - last_welcome_ > retry_for_) {
      Finish(r.status.WithContext("giving up after " + std::to_string(retry_for_.count() / 1000) +
                                  " s of failed attempts"));
      return;
    }
    ++reconnects_;
    if (verbose_) {
      std::fprintf(stderr, "mtsend: %s; reconnecting in %lld ms\n", r.status.ToString().c_str(),
                   static_cast<long long>(backoff_.count()));
    }
    retry_timer_.expires_after(backoff_);
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(5000));
    retry_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec && !finished_) Connect();
    });
  }

  std::chrono::milliseconds backoff_{100};
  bool welcomed_ = false;
  bool finished_ = false;
  Status result_;
};

// ---------------------------------------------------------------------------

class WorkloadRunner final : public Runner {
 public:
  explicit WorkloadRunner(const WorkloadOptions& o)
      : Runner(o.connect, o.retry_for, o.verbose), o_(o) {}

  Result<RunResult> Go() {
    MT_RETURN_IF_ERROR(CheckSpec(o_.spec));
    if (o_.count == 0 && o_.seconds <= 0) {
      return Status(Errc::kInvalidArgument, "give --count N or --seconds S");
    }
    Status s = Run();
    if (!s.ok()) return s;
    res_.seconds = SecondsSince(started_);
    res_.reconnects = reconnects_;
    return res_;
  }

 private:
  struct Item {
    uint64_t seq = 0;
    bool tag = false;
    WriteItem w;
    std::vector<uint8_t> data;
    uint32_t crc = 0;
    int64_t time_ns = 0;
    std::string name;
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
      }
      end_seq_ = o_.count > 0 ? start + o_.count : UINT64_MAX;
      next_seq_ = r + 1;
      res_.first_seq = r + 1;
      if (o_.seconds > 0) {
        deadline_ = started_ + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(o_.seconds));
      }
      next_tag_ = Clock::now() + TagPeriod();
      rate_clock_ = Clock::now();
    } else {
      while (!window_.empty() && window_.front().seq <= r) PopFront();
      if (!window_.empty() && window_.front().seq != r + 1) {
        return Status(Errc::kProtocol, "the receiver resumes after seq " + std::to_string(r) +
                                           " but this run's unacknowledged items start at " +
                                           std::to_string(window_.front().seq));
      }
      if (window_.empty()) next_seq_ = std::max(next_seq_, r + 1);
    }
    acked_ = r;
    throttled_ = false;
    // Resend what is not durable, exactly as it was.
    std::vector<const Item*> batch;
    for (const Item& it : window_) {
      if (it.tag) {
        MT_RETURN_IF_ERROR(SendBatch(batch));
        batch.clear();
        MT_RETURN_IF_ERROR(SendTag(it));
      } else {
        batch.push_back(&it);
        if (batch.size() >= o_.batch_writes) {
          MT_RETURN_IF_ERROR(SendBatch(batch));
          batch.clear();
        }
      }
    }
    MT_RETURN_IF_ERROR(SendBatch(batch));
    Pump();
    return Status::Ok();
  }

  Status OnFrame(stream::Frame&& f) override {
    switch (f.type()) {
      case FrameHeader::kAck:
        acked_ = std::max(acked_, f.header.ack().durable_seq());
        while (!window_.empty() && window_.front().seq <= acked_) PopFront();
        Pump();
        return Status::Ok();
      case FrameHeader::kThrottle:
        throttled_ = f.header.throttle().on();
        if (!throttled_) Pump();
        return Status::Ok();
      default:
        return Status(Errc::kProtocol, std::string("unexpected ") +
                                           stream::FrameTypeName(f.type()) + " frame from the receiver");
    }
  }

  void PopFront() {
    const Item& it = window_.front();
    window_bytes_ -= it.data.size();
    res_.last_seq = it.seq;
    if (it.tag) {
      ++res_.tags;
    } else {
      ++res_.writes;
      res_.bytes += it.w.length;
    }
    window_.pop_front();
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
    while (!throttled_ && conn_ && conn_->queued_bytes() < (4u << 20) &&
           window_bytes_ < o_.window_bytes && !GenerationOver()) {
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

  // Generates, records and sends the next batch of writes or one tag.
  Status SendNext() {
    const int64_t now_ns = shim::SystemClock().NowNs();
    std::vector<RecordEntry> rec;
    if (o_.tag_every > 0 && Clock::now() >= next_tag_) {
      next_tag_ = Clock::now() + TagPeriod();
      Item t;
      t.seq = next_seq_++;
      t.tag = true;
      t.time_ns = now_ns;
      t.name = "mtsend-" + std::to_string(t.seq);
      RecordEntry e;
      e.type = 'T';
      e.seq = t.seq;
      e.kind = "app";
      e.name = t.name;
      rec.push_back(e);
      if (record_) MT_RETURN_IF_ERROR(record_->Append(rec));
      window_.push_back(std::move(t));
      return SendTag(window_.back());
    }
    const size_t first = window_.size();
    uint64_t bytes = 0;
    while (bytes < o_.batch_bytes && window_.size() - first < o_.batch_writes && !GenerationOver() &&
           (window_.size() == first || RateWait() <= 0) &&
           !(o_.tag_every > 0 && Clock::now() >= next_tag_)) {
      Item it;
      it.seq = next_seq_++;
      it.w = WriteAt(o_.spec, it.seq);
      it.data.resize(it.w.length);
      WorkloadData(o_.spec.seed, it.seq, it.data.data(), it.w.length);
      it.crc = crc32c::Value(it.data.data(), it.data.size());
      it.time_ns = now_ns;
      RecordEntry e;
      e.seq = it.seq;
      e.disk = it.w.disk;
      e.offset = it.w.offset;
      e.length = it.w.length;
      e.crc32c = it.crc;
      rec.push_back(e);
      bytes += it.w.length;
      window_bytes_ += it.w.length;
      ++writes_sent_;
      bytes_sent_ += static_cast<double>(it.w.length);
      window_.push_back(std::move(it));
    }
    if (record_) MT_RETURN_IF_ERROR(record_->Append(rec));
    std::vector<const Item*> batch;
    for (size_t i = first; i < window_.size(); ++i) batch.push_back(&window_[i]);
    return SendBatch(batch);
  }

  Status SendBatch(const std::vector<const Item*>& items) {
    if (items.empty() || !conn_) return Status::Ok();
    FrameHeader h;
    proto::WriteBatch* b = h.mutable_write_batch();
    b->set_first_seq(items.front()->seq);
    std::vector<stream::ConstSlice> payload;
    for (const Item* it : items) {
      proto::Write* w = b->add_writes();
      w->set_seq(it->seq);
      w->set_disk(it->w.disk);
      w->set_offset(it->w.offset);
      w->set_length(it->w.length);
      w->set_source_time_ns(it->time_ns);
      w->set_crc32c(it->crc);
      payload.push_back({it->data.data(), it->data.size()});
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
    tag->set_source_time_ns(t.time_ns);
    return conn_->Send(h);
  }

  const WorkloadOptions o_;
  std::unique_ptr<RecordWriter> record_;
  bool opened_ = false;
  uint64_t next_seq_ = 1, end_seq_ = UINT64_MAX, acked_ = 0;
  std::deque<Item> window_;
  uint64_t window_bytes_ = 0;
  bool throttled_ = false;
  Clock::time_point deadline_, next_tag_, rate_clock_;
  double writes_sent_ = 0, bytes_sent_ = 0;
  RunResult res_;
};

// ---------------------------------------------------------------------------

class TagRunner final : public Runner {
 public:
  explicit TagRunner(const TagOptions& o) : Runner(o.connect, o.retry_for, o.verbose), o_(o) {}

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

}  // namespace

Result<RunResult> RunWorkload(const WorkloadOptions& options) {
  return WorkloadRunner(options).Go();
}

Result<RunResult> RunTag(const TagOptions& options) { return TagRunner(options).Go(); }

}  // namespace mt::send
