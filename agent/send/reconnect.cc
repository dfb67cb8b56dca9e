#include "send/reconnect.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>

namespace mt::send {

namespace {

// "0.4 s", "60 s".
std::string Seconds(std::chrono::duration<double> d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f s", d.count() < 10 ? 1 : 0, std::max(0.0, d.count()));
  return buf;
}

}  // namespace

void ReconnectSchedule::Start(Clock::time_point now) {
  counted_ = Clock::duration::zero();
  running_since_ = now;
  delay_ = kFirstDelay;
  failures_ = 0;
}

void ReconnectSchedule::Welcomed(Clock::time_point now) {
  counted_ = Failing(now);
  running_since_.reset();
}

void ReconnectSchedule::Progressed(Clock::time_point now) {
  counted_ = Clock::duration::zero();
  if (running_since_) running_since_ = now;
  delay_ = kFirstDelay;
  failures_ = 0;
}

ReconnectSchedule::Clock::duration ReconnectSchedule::Failing(Clock::time_point now) const {
  return counted_ + (running_since_ ? now - *running_since_ : Clock::duration::zero());
}

std::optional<std::chrono::milliseconds> ReconnectSchedule::NextDelay(Clock::time_point now) {
  if (!running_since_) running_since_ = now;
  ++failures_;
  const Clock::duration failing = Failing(now);
  if (failing >= retry_for_) return std::nullopt;
  ++reconnects_;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(retry_for_ - failing);
  const std::chrono::milliseconds d = std::min(delay_, left);
  delay_ = std::min(delay_ * 2, kMaxDelay);
  return d;
}

bool RetryNotices::Due(Clock::time_point now, uint64_t* unshown) {
  if (!every_ && last_ && now - *last_ < kEvery) {
    ++unshown_;
    return false;
  }
  *unshown = unshown_;
  unshown_ = 0;
  last_ = now;
  return true;
}

ReconnectingRunner::ReconnectingRunner(const ConnectOptions& c, std::chrono::milliseconds retry_for,
                                       bool verbose)
    : pump_timer_(ioc_), copts_(c), retry_timer_(ioc_), schedule_(retry_for), notices_(verbose) {
  ssl_ = MakeClientContext();
}

void ReconnectingRunner::Progressed() { schedule_.Progressed(Clock::now()); }

void ReconnectingRunner::SawDurable(uint64_t seq) {
  if (durable_ && seq > *durable_) Progressed();
  if (!durable_ || seq > *durable_) durable_ = seq;
}

Status ReconnectingRunner::Run() {
  started_ = Clock::now();
  schedule_.Start(started_);
  Connect();
  try {
    ioc_.run();
  } catch (const std::exception& e) {  // the edge: nothing of Asio's escapes
    return Status(Errc::kInternal, e.what());
  }
  return result_;
}

void ReconnectingRunner::Finish(const Status& s) {
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

void ReconnectingRunner::Connect() {
  welcomed_ = false;
  Connection::Callbacks cb;
  cb.on_welcome = [this](const proto::Welcome& w) {
    welcomed_ = true;
    schedule_.Welcomed(Clock::now());
    SawDurable(w.resume_seq());
    Status s = OnWelcome(w);
    if (!s.ok()) Finish(s);
  };
  cb.on_frame = [this](stream::Frame&& f) {
    if (f.type() == stream::FrameHeader::kAck) SawDurable(f.header.ack().durable_seq());
    Status s = OnFrame(std::move(f));
    if (!s.ok()) Finish(s);
  };
  cb.on_sent = [this] { Pump(); };
  cb.on_closed = [this](const CloseReason& r) { OnClosed(r); };
  conn_ = std::make_shared<Connection>(ioc_, *ssl_, copts_, std::move(cb));
  conn_->Start();
}

void ReconnectingRunner::OnClosed(const CloseReason& r) {
  conn_.reset();
  welcomed_ = false;
  pump_timer_.cancel();
  if (finished_) return;
  if (r.permanent) {
    Finish(r.status);
    return;
  }
  const Clock::time_point now = Clock::now();
  const std::optional<std::chrono::milliseconds> delay = schedule_.NextDelay(now);
  if (!delay) {
    Finish(r.status.WithContext("giving up after " + std::to_string(schedule_.failures()) +
                                " failed attempts, " + Seconds(schedule_.Failing(now)) +
                                " of failing without progress (--retry-for " +
                                Seconds(schedule_.retry_for()) + ")"));
    return;
  }
  uint64_t unshown = 0;
  if (notices_.Due(now, &unshown)) {
    const std::string left = Seconds(schedule_.retry_for() - schedule_.Failing(now));
    std::string more;
    if (unshown > 0) more = "; " + std::to_string(unshown) + " retries not shown since the last line";
    std::fprintf(stderr,
                 "mtsend: %s; reconnecting in %s (failed attempt %llu; %s of --retry-for left%s)\n",
                 r.status.ToString().c_str(), Seconds(*delay).c_str(),
                 static_cast<unsigned long long>(schedule_.failures()), left.c_str(), more.c_str());
    std::fflush(stderr);
  }
  retry_timer_.expires_after(*delay);
  retry_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !finished_) Connect();
  });
}

}  // namespace mt::send
