// SendWindow: the send window of mtsend's item streams (workload, replay):
// the items sent but not yet durable, in seq order, and what the receiver's
// frames do to them.
//
// Contract:
// - Push() appends an item as it is first sent; it charges item.charge()
//   bytes to the window until the item is durable.
// - Resume(r, ...) on every welcome: pops the items with seq <= r (durable),
//   requires the first one left to be r + 1 (else kProtocol "the receiver
//   resumes after seq r but this <what>'s unacknowledged items start at s"),
//   clears the throttle and resends the rest exactly as they were, in order:
//   a tag alone, runs of writes in batches of at most batch_writes. The
//   caller pumps afterwards.
// - OnFrame(): an ack pops the items it makes durable, a throttle stops or
//   restarts sending; any other frame is a kProtocol error. True: the caller
//   should pump.
// - HasRoom(): may more be sent now (not throttled, the connection's queue
//   under kMaxQueuedBytes, the window's bytes under its limit)?
// Every popped item is counted into the RunResult: last_seq, tags or writes,
// and its write_bytes() into bytes.
//
// Item: a struct with `uint64_t seq` and const members is_tag(), charge()
// (bytes it holds against the window limit) and write_bytes() (what it adds
// to RunResult::bytes once durable). Items are not moved once pushed (a
// deque), so pointers to them stay valid until they are popped.
// Single-threaded, no I/O of its own: sending is the caller's callbacks'.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "stream/frame_codec.h"
#include "mt/shim/status.h"
#include "send/sender.h"

namespace mt::send {

// The connection's queue (frames handed to it, not yet sent) above which a
// sender sends nothing more until it drains: what is queued is memory, and
// the socket's buffers already keep the link busy.
inline constexpr uint64_t kMaxQueuedBytes = 4u << 20;

template <typename Item>
class SendWindow {
 public:
  static constexpr uint64_t kMaxQueuedBytes = send::kMaxQueuedBytes;

  // `what` names the run in the resume error ("run", "replay"); limit_bytes
  // is --window.
  SendWindow(std::string what, uint64_t limit_bytes) : what_(std::move(what)), limit_(limit_bytes) {}

  // Appends an item just made (sent by the caller); returns it in place.
  const Item& Push(Item&& it) {
    bytes_ += it.charge();
    items_.push_back(std::move(it));
    return items_.back();
  }

  // The items from index `first` on (those of the batch just pushed).
  std::vector<const Item*> Since(size_t first) const {
    std::vector<const Item*> v;
    for (size_t i = first; i < items_.size(); ++i) v.push_back(&items_[i]);
    return v;
  }

  // After a welcome resuming after seq r: see the contract above.
  // send_batch(const std::vector<const Item*>&) and send_tag(const Item&)
  // send as the runner does; send_batch may be given an empty batch (then
  // it sends nothing and returns Ok).
  template <typename SendBatch, typename SendTag>
  Status Resume(uint64_t r, size_t batch_writes, RunResult* res, SendBatch&& send_batch,
                SendTag&& send_tag) {
    while (!items_.empty() && items_.front().seq <= r) PopFront(res);
    if (!items_.empty() && items_.front().seq != r + 1) {
      return Status(Errc::kProtocol, "the receiver resumes after seq " + std::to_string(r) + " but this " +
                                         what_ + "'s unacknowledged items start at " +
                                         std::to_string(items_.front().seq));
    }
    acked_ = r;
    throttled_ = false;
    std::vector<const Item*> batch;
    for (const Item& it : items_) {
      if (it.is_tag()) {
        MT_RETURN_IF_ERROR(send_batch(batch));
        batch.clear();
        MT_RETURN_IF_ERROR(send_tag(it));
      } else {
        batch.push_back(&it);
        if (batch.size() >= batch_writes) {
          MT_RETURN_IF_ERROR(send_batch(batch));
          batch.clear();
        }
      }
    }
    return send_batch(batch);
  }

  // A frame from the receiver after the welcome: see the contract above.
  Result<bool> OnFrame(const stream::Frame& f, RunResult* res) {
    switch (f.type()) {
      case stream::FrameHeader::kAck:
        acked_ = std::max(acked_, f.header.ack().durable_seq());
        while (!items_.empty() && items_.front().seq <= acked_) PopFront(res);
        return true;
      case stream::FrameHeader::kThrottle:
        throttled_ = f.header.throttle().on();
        return !throttled_;
      default:
        return Status(Errc::kProtocol,
                      std::string("unexpected ") + stream::FrameTypeName(f.type()) + " frame from the receiver");
    }
  }

  // May the next batch or tag go, with `queued` bytes in the connection's queue?
  bool HasRoom(uint64_t queued) const { return !throttled_ && queued < kMaxQueuedBytes && bytes_ < limit_; }

  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  uint64_t bytes() const { return bytes_; }
  bool throttled() const { return throttled_; }

 private:
  void PopFront(RunResult* res) {
    const Item& it = items_.front();
    bytes_ -= it.charge();
    res->last_seq = it.seq;
    if (it.is_tag()) {
      ++res->tags;
    } else {
      ++res->writes;
      res->bytes += it.write_bytes();
    }
    items_.pop_front();
  }

  const std::string what_;
  const uint64_t limit_;
  std::deque<Item> items_;
  uint64_t bytes_ = 0;  // sum of the items' charge()
  uint64_t acked_ = 0;  // the highest durable seq the receiver has told
  bool throttled_ = false;
};

}  // namespace mt::send
