#include "send/reconnect.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>

namespace mt::send {

std::optional<std::chrono::milliseconds> ReconnectSchedule::NextDelay(Clock::time_point now) {
  if (now - last_welcome_ > retry_for_) return std::nullopt;
  ++reconnects_;
  const std::chrono::milliseconds d = delay_;
  delay_ = std::min(delay_ * 2, kMaxDelay);
  return d;
}

ReconnectingRunner::ReconnectingRunner(const ConnectOptions& c, std::chrono::milliseconds retry_for,
                                       bool verbose)
    : pump_timer_(ioc_), copts_(c), verbose_(verbose), retry_timer_(ioc_), schedule_(retry_for) {
  ssl_ = MakeClientContext();
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

void ReconnectingRunner::OnClosed(const CloseReason& r) {
  conn_.reset();
  welcomed_ = false;
  pump_timer_.cancel();
  if (finished_) return;
  if (r.permanent) {
    Finish(r.status);
    return;
  }
  const std::optional<std::chrono::milliseconds> delay = schedule_.NextDelay(Clock::now());
  if (!delay) {
    Finish(r.status.WithContext("giving up after " +
                                std::to_string(schedule_.retry_for().count() / 1000) +
                                " s of failed attempts"));
    return;
  }
  if (verbose_) {
    std::fprintf(stderr, "mtsend: %s; reconnecting in %lld ms\n", r.status.ToString().c_str(),
                 static_cast<long long>(delay->count()));
  }
  retry_timer_.expires_after(*delay);
  retry_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !finished_) Connect();
  });
}

}  // namespace mt::send
