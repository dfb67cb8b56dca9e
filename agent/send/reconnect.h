// The reconnect discipline every mtsend command follows (workload, tag,
// resync, replay): connect; after a transient failure (refused, reset, busy,
// timeouts) try again after a back-off of 100 ms, doubling up to 5 s, and
// back to 100 ms after each welcome; give up once retry_for has passed since
// the last welcome (or the start) without a new one; a permanent failure
// (auth, fingerprint, protocol, validation) ends the run at once.
//
// ReconnectSchedule is that policy without sockets or timers (unit-tested);
// ReconnectingRunner runs a command's Connection on it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "send/client.h"
#include "mt/shim/status.h"

namespace mt::send {

class ReconnectSchedule {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kFirstDelay{100};
  static constexpr std::chrono::milliseconds kMaxDelay{5000};

  explicit ReconnectSchedule(std::chrono::milliseconds retry_for) : retry_for_(retry_for) {}

  // The run starts at `now`: it counts as a welcome for giving up.
  void Start(Clock::time_point now) { last_welcome_ = now; }
  // A welcome at `now`: the back-off starts again from kFirstDelay.
  void Welcomed(Clock::time_point now) {
    last_welcome_ = now;
    delay_ = kFirstDelay;
  }
  // After a transient failure at `now`: how long to wait before the next
  // attempt (counted as a reconnect), or nullopt when retry_for has passed
  // since the last welcome: give up.
  std::optional<std::chrono::milliseconds> NextDelay(Clock::time_point now);

  uint64_t reconnects() const { return reconnects_; }
  std::chrono::milliseconds retry_for() const { return retry_for_; }

 private:
  std::chrono::milliseconds retry_for_;
  std::chrono::milliseconds delay_ = kFirstDelay;
  Clock::time_point last_welcome_;
  uint64_t reconnects_ = 0;
};

// A command's connection management: Run() connects and runs the io_context
// until Finish(); OnWelcome/OnFrame errors finish the run; closes are handled
// by the ReconnectSchedule (a verbose run says on stderr why and when it
// reconnects). Single-threaded: everything runs on ioc_'s thread.
class ReconnectingRunner {
 public:
  using Clock = std::chrono::steady_clock;

  ReconnectingRunner(const ConnectOptions& c, std::chrono::milliseconds retry_for, bool verbose);
  virtual ~ReconnectingRunner() = default;
  ReconnectingRunner(const ReconnectingRunner&) = delete;
  ReconnectingRunner& operator=(const ReconnectingRunner&) = delete;

  // Connects and runs until Finish(); the status Finish() was given (or
  // kInternal for an exception out of Asio).
  Status Run();

 protected:
  virtual Status OnWelcome(const proto::Welcome& w) = 0;
  virtual Status OnFrame(stream::Frame&& f) = 0;
  // The connection's queue drained (also called by subclasses themselves).
  virtual void Pump() {}

  // Ends the run: ok closes the connection gracefully (its queue is written
  // first), an error drops it. Only the first call counts.
  void Finish(const Status& s);

  bool connected() const { return conn_ != nullptr && welcomed_; }
  bool finished() const { return finished_; }
  uint64_t reconnects() const { return schedule_.reconnects(); }

  boost::asio::io_context ioc_;
  std::unique_ptr<boost::asio::ssl::context> ssl_;
  std::shared_ptr<Connection> conn_;
  boost::asio::steady_timer pump_timer_;  // subclasses' pacing; cancelled on close and finish
  Clock::time_point started_;

 private:
  void Connect();
  void OnClosed(const CloseReason& r);

  const ConnectOptions copts_;
  const bool verbose_;
  boost::asio::steady_timer retry_timer_;
  ReconnectSchedule schedule_;
  bool welcomed_ = false;
  bool finished_ = false;
  Status result_;
};

}  // namespace mt::send
