// What a receiver session needs from the rest of the agent.
//
//   StreamDirectory  stream name (from the hello) -> its StreamPort and credential
//   StreamPort       one stream: attach/detach, welcome, ingest, backpressure,
//                    resync hashes. The daemon's implementation is RuntimePort
//                    over StreamRuntime (stream_runtime.h); tests use fakes.
//
// Contracts are StreamRuntime's (stream_runtime.h); in short:
//  - Attach(session) is kBusy while another session holds the stream.
//  - Ingest() validates everything before storing (invariant 7); its errors
//    become the error frame; on_durable(ok, seq) may run on any thread, also
//    synchronously inside Ingest (a resend of durable items).
//  - Throttled(): the session stops reading while it is true, and waits for
//    WatchThrottle()'s wake-up (an event, not a poll).
//  - Failure(): while it is not ok, every refusal the session sends for the
//    stream carries ERROR_CONDITION_STREAM_FAILED (a sender stops).
// Thread safety: every method may be called from any thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "stream/frame_codec.h"
#include "daemon/hash_source.h"
#include "mt/shim/status.h"
#include "mt/shim/thread_annotations.h"
#include "mt/stream.pb.h"

namespace mt::daemon {

class StreamPort {
 public:
  using DurableFn = std::function<void(const Status&, uint64_t)>;
  virtual ~StreamPort() = default;
  virtual Status Attach(const std::string& session) = 0;
  virtual void Detach(const std::string& session) = 0;
  virtual proto::Welcome Welcome(uint32_t protocol_version) = 0;
  virtual Status Ingest(std::shared_ptr<const stream::Frame> frame, DurableFn on_durable) = 0;
  virtual bool Throttled() const = 0;
  // While Throttled(): whether the sender is told (a throttle frame: the WAL
  // quota is reached or applying is held, which lasts) or the session only
  // stops reading (the WAL writer is behind for a moment: TCP holds the
  // sender, with no round trip to resume).
  virtual bool ThrottleTellsSender() const { return true; }
  // Calls `wake` once, on any thread, when Throttled() may have become false
  // (at once if it is false now). `wake` must not block.
  virtual void WatchThrottle(std::function<void()> wake) = 0;
  // See HashSource::HashBlocks. May block; never called on a network thread.
  virtual Status HashBlocks(const proto::ResyncHashRequest& request, std::vector<uint8_t>* out) = 0;
  // The error that failed the stream (StreamRuntime::Failure), or ok.
  virtual Status Failure() const { return Status::Ok(); }
};

// StreamPort over a StreamRuntime-like object (header-only so this library
// does not link the runtime). `hashes` may be null: hash requests are then
// refused with kUnavailable. REQUIRES: runtime (and hashes) outlive the port.
template <typename Runtime>
class RuntimePort final : public StreamPort {
 public:
  explicit RuntimePort(Runtime& runtime, HashSource* hashes = nullptr)
      : runtime_(runtime), hashes_(hashes) {}
  Status Attach(const std::string& session) override { return runtime_.Attach(session); }
  void Detach(const std::string& session) override { runtime_.Detach(session); }
  proto::Welcome Welcome(uint32_t v) override { return runtime_.Welcome(v); }
  Status Ingest(std::shared_ptr<const stream::Frame> frame, DurableFn on_durable) override {
    return runtime_.Ingest(std::move(frame), std::move(on_durable));
  }
  bool Throttled() const override { return runtime_.Throttled(); }
  bool ThrottleTellsSender() const override { return runtime_.SenderThrottled(); }
  void WatchThrottle(std::function<void()> wake) override {
    runtime_.WatchThrottle(std::move(wake));
  }
  Status HashBlocks(const proto::ResyncHashRequest& request, std::vector<uint8_t>* out) override {
    if (hashes_ == nullptr) {
      return Status(Errc::kUnavailable,
                    "resync hashing is not available on this receiver for stream '" +
                        runtime_.name() + "'");
    }
    return hashes_->HashBlocks(request, out);
  }
  Status Failure() const override { return runtime_.Failure(); }

 private:
  Runtime& runtime_;
  HashSource* hashes_;
};

struct StreamEntry {
  std::shared_ptr<StreamPort> port;
  std::string credential;  // raw key bytes (CredentialStore::Get)
};

class StreamDirectory {
 public:
  virtual ~StreamDirectory() = default;
  // kNotFound for a stream this receiver does not serve. The session reports
  // it to the peer exactly like a wrong MAC (no probing for stream names).
  virtual Result<StreamEntry> Find(const std::string& stream) = 0;
};

// A directory the daemon fills as streams are protected / unprotected.
class MapStreamDirectory final : public StreamDirectory {
 public:
  void Set(const std::string& stream, StreamEntry entry) {
    MutexLock l(mu_);
    map_[stream] = std::move(entry);
  }
  void Remove(const std::string& stream) {
    MutexLock l(mu_);
    map_.erase(stream);
  }
  Result<StreamEntry> Find(const std::string& stream) override {
    MutexLock l(mu_);
    auto it = map_.find(stream);
    if (it == map_.end()) return Status(Errc::kNotFound, "no stream '" + stream + "'");
    return it->second;
  }

 private:
  Mutex mu_;
  std::map<std::string, StreamEntry> map_ MT_GUARDED_BY(mu_);
};

}  // namespace mt::daemon
