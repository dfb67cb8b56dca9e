#include "retention/reader_pin.h"

#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <random>

namespace mt::retention {
namespace {

constexpr char kTakingPrefix[] = ".taking-";

// A name no other pin of this or another process has: pid, a per-process
// counter and a random part (a pid is reused after its process dies).
std::string Nonce() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t random = [] {
    std::random_device rd;
    return (uint64_t{rd()} << 32) ^ rd();
  }();
  char buf[64];
  std::snprintf(buf, sizeof buf, "p%d-%" PRIu64 "-%016" PRIx64, static_cast<int>(::getpid()),
                counter.fetch_add(1), random);
  return buf;
}

// Parses "s<stream>-q<seq>-<nonce>.pin"; false for any other name.
bool ParsePinName(const std::string& name, uint64_t* stream, uint64_t* seq) {
  const std::string suffix = ".pin";
  if (name.size() <= suffix.size() ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return false;
  int used = 0;
  if (std::sscanf(name.c_str(), "s%" SCNu64 "-q%" SCNu64 "-%n", stream, seq, &used) != 2)
    return false;
  return used > 0;
}

Status RemoveIfPresent(shim::FileSystem& fs, const std::string& path) {
  Status s = fs.Remove(path);
  return s.ok() || s.code() == Errc::kNotFound ? Status::Ok() : s;
}

}  // namespace

std::string PinDir(const std::string& root) { return shim::JoinPath(root, "pins"); }

Result<std::unique_ptr<ReaderPin>> ReaderPin::Take(shim::FileSystem& fs, const std::string& root,
                                                   uint64_t stream, uint64_t seq) {
  const std::string dir = PinDir(root);
  MT_RETURN_IF_ERROR(fs.CreateDir(dir));
  const std::string nonce = Nonce();
  const std::string taking = shim::JoinPath(dir, kTakingPrefix + nonce);
  const std::string path = shim::JoinPath(
      dir, "s" + std::to_string(stream) + "-q" + std::to_string(seq) + "-" + nonce + ".pin");
  // Locked before it gets a name prune honours: a prune never sees the pin
  // unlocked (it would take it for a dead holder's).
  MT_ASSIGN_OR_RETURN(auto lock, shim::TryLockFile(taking));
  Status s = fs.Rename(taking, path);
  if (!s.ok()) {
    (void)RemoveIfPresent(fs, taking);
    return s.WithContext("pin seq " + std::to_string(seq) + " of stream " + std::to_string(stream));
  }
  return std::unique_ptr<ReaderPin>(new ReaderPin(fs, path, std::move(lock), stream, seq));
}

ReaderPin::~ReaderPin() {
  // Removed while still locked: nobody finds this pin unlocked and named.
  (void)RemoveIfPresent(fs_, path_);
  lock_.reset();
}

Result<std::vector<uint64_t>> LivePins(shim::FileSystem& fs, const std::string& root,
                                       uint64_t stream) {
  std::vector<uint64_t> seqs;
  const std::string dir = PinDir(root);
  if (!fs.Exists(dir)) return seqs;
  MT_ASSIGN_OR_RETURN(auto names, fs.ListDir(dir));
  for (const auto& name : names) {
    uint64_t pin_stream = 0, pin_seq = 0;
    const bool pin = ParsePinName(name, &pin_stream, &pin_seq);
    if (!pin && name.rfind(kTakingPrefix, 0) != 0) continue;  // not ours
    const std::string path = shim::JoinPath(dir, name);
    auto lock = shim::TryLockFile(path);
    if (!lock.ok() && lock.status().code() == Errc::kBusy) {  // its holder lives
      if (pin && pin_stream == stream) seqs.push_back(pin_seq);
      continue;
    }
    if (!lock.ok()) return lock.status().WithContext("check reader pin " + path);
    // Unlocked: its holder is gone (or it was released just now). Removed
    // while we hold the lock, so a holder never loses a pin it holds.
    MT_RETURN_IF_ERROR(RemoveIfPresent(fs, path));
  }
  return seqs;
}

}  // namespace mt::retention
