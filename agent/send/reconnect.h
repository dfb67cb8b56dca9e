// The reconnect discipline every mtsend command follows (workload, tag,
// resync, replay): connect; after a transient failure (refused, reset, busy,
// paused, timeouts) try again after a back-off of 100 ms, doubling up to
// 5 s; give up once retry_for of failing has passed without progress; a
// permanent failure (auth, fingerprint, protocol, validation, a refusal of a
// stream that failed on the master target) ends the run at once.
//
// Progress is the receiver moving the run forward, never a welcome alone (a
// welcome followed by a refusal is a failed attempt):
//  - the receiver's durable seq advanced: an ack, or a welcome's resume_seq,
//    above every durable seq it reported before in this run (the first
//    welcome only sets that baseline);
//  - what a command counts itself (ReconnectingRunner::Progressed): resync,
//    a hash reply that takes the comparison further than any pass before.
// The give-up clock counts the time spent failing since the start or the
// last progress: from each failure (and from the start) to the next
// welcome, summed. Time connected does not count, and a welcome does not
// set the clock back; only progress does, and only progress starts the
// back-off again from 100 ms. At a failure with retry_for counted, the run
// ends; the last wait is cut to what is left of retry_for, so a run that
// keeps failing ends retry_for after it began failing (plus the time it
// spent connected).
//
// ReconnectSchedule is that policy and RetryNotices the rate of the retry
// lines on stderr, both without sockets or timers (unit-tested);
// ReconnectingRunner runs a command's Connection on them.
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

  // The run starts at `now`, not yet connected: the give-up clock runs.
  void Start(Clock::time_point now);
  // A welcome at `now`: the give-up clock stops while the connection lasts,
  // keeping what it counted. The back-off is left as it is.
  void Welcomed(Clock::time_point now);
  // Progress at `now`: the give-up clock back to zero, the back-off back to
  // kFirstDelay.
  void Progressed(Clock::time_point now);
  // After a transient failure at `now` (the give-up clock runs again): the
  // wait before the next attempt (counted as a reconnect) — the back-off,
  // cut to what is left of retry_for — or nullopt when the clock has
  // counted retry_for: give up. With retry_for 0 the first failure gives up.
  std::optional<std::chrono::milliseconds> NextDelay(Clock::time_point now);

  // Failing time counted by the give-up clock at `now`.
  Clock::duration Failing(Clock::time_point now) const;
  // Failures (NextDelay calls) since the start or the last progress.
  uint64_t failures() const { return failures_; }
  // Reconnects of the run (NextDelay calls that did not give up).
  uint64_t reconnects() const { return reconnects_; }
  std::chrono::milliseconds retry_for() const { return retry_for_; }

 private:
  const std::chrono::milliseconds retry_for_;
  std::chrono::milliseconds delay_ = kFirstDelay;
  Clock::duration counted_{0};                 // failing time before running_since_
  std::optional<Clock::time_point> running_since_;  // set while not connected
  uint64_t failures_ = 0;
  uint64_t reconnects_ = 0;
};

// How often a retry is said on stderr: every retry when `every` (--verbose);
// otherwise the first one at once, then at most one line per kEvery, each
// saying how many retries since the line before it were not shown.
class RetryNotices {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kEvery{5};

  explicit RetryNotices(bool every) : every_(every) {}
  // A retry at `now`: true when its line is due; then *unshown is the
  // number of retries since the last line that had none.
  bool Due(Clock::time_point now, uint64_t* unshown);

 private:
  const bool every_;
  std::optional<Clock::time_point> last_;
  uint64_t unshown_ = 0;
};

// A command's connection management: Run() connects and runs the io_context
// until Finish(); OnWelcome/OnFrame errors finish the run; closes are handled
// by the ReconnectSchedule: a retry is said on stderr (why, when, how much of
// retry_for is left) at RetryNotices' rate, giving up finishes the run with
// the last failure, saying how long it failed. Acks and welcomes are
// watched here for progress; a command reports its own with Progressed().
// Single-threaded: everything runs on ioc_'s thread.
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
  // The command made progress (see the file comment).
  void Progressed();

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
  // The receiver reported `seq` durable (a welcome's resume_seq or an ack).
  void SawDurable(uint64_t seq);

  const ConnectOptions copts_;
  boost::asio::steady_timer retry_timer_;
  ReconnectSchedule schedule_;
  RetryNotices notices_;
  std::optional<uint64_t> durable_;  // the highest durable seq reported in this run
  bool welcomed_ = false;
  bool finished_ = false;
  Status result_;
};

}  // namespace mt::send
