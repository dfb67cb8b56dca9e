// VolatileBytes: a byte array that remembers which of its changes are not yet
// durable, the common core of MemBlockDevice and MemFileSystem's files.
//
// Invariant: durable image == current bytes with every entry of `unsynced_`
// undone, newest first. Sync() empties `unsynced_`; PowerCut() rebuilds the
// durable image and re-applies the writes chosen to survive.
// Not thread-safe: the owner locks.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "mt/shim/fault.h"

namespace mt::shim {

class VolatileBytes {
 public:
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  uint64_t size() const { return bytes_.size(); }
  bool has_unsynced() const { return !unsynced_.empty(); }

  void Write(uint64_t offset, const void* data, size_t len) {
    Change c;
    c.kind = Change::kWrite;
    c.offset = offset;
    c.old_size = bytes_.size();
    c.new_bytes.assign(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + len);
    if (offset < bytes_.size()) {
      const uint64_t end = std::min<uint64_t>(offset + len, bytes_.size());
      c.old_bytes.assign(bytes_.begin() + offset, bytes_.begin() + end);
    }
    Apply(c, len);
    unsynced_.push_back(std::move(c));
  }

  void Resize(uint64_t size) {
    Change c;
    c.kind = Change::kResize;
    c.old_size = bytes_.size();
    c.offset = size;
    if (size < bytes_.size()) c.old_bytes.assign(bytes_.begin() + size, bytes_.end());
    Apply(c, 0);
    unsynced_.push_back(std::move(c));
  }

  void Sync() { unsynced_.clear(); }

  void PowerCut(const PowerCutOptions& o, std::mt19937_64& rng) {
    for (auto it = unsynced_.rbegin(); it != unsynced_.rend(); ++it) Undo(*it);
    std::bernoulli_distribution keep(o.keep_probability);
    for (size_t i = 0; i < unsynced_.size(); ++i) {
      const Change& c = unsynced_[i];
      const bool last = i + 1 == unsynced_.size();
      if (last && o.tear_last && c.kind == Change::kWrite) {
        const uint64_t units = c.new_bytes.size() / o.tear_granularity;
        const uint64_t kept = std::uniform_int_distribution<uint64_t>(0, units)(rng);
        if (kept > 0) Apply(c, kept * o.tear_granularity);
      } else if (o.keep_probability > 0 && keep(rng)) {
        Apply(c, c.new_bytes.size());
      }
    }
    unsynced_.clear();
  }

 private:
  struct Change {
    enum Kind { kWrite, kResize } kind;
    uint64_t offset = 0;  // write offset, or new size for kResize
    uint64_t old_size = 0;
    std::vector<uint8_t> old_bytes;  // bytes the change overwrote or cut
    std::vector<uint8_t> new_bytes;  // kWrite only
  };

  // Applies the first `len` bytes of a write (all of it normally), or a resize.
  void Apply(const Change& c, uint64_t len) {
    if (c.kind == Change::kResize) {
      bytes_.resize(c.offset, 0);
      return;
    }
    if (c.offset + len > bytes_.size()) bytes_.resize(c.offset + len, 0);
    if (len > 0) std::memcpy(bytes_.data() + c.offset, c.new_bytes.data(), len);
  }

  void Undo(const Change& c) {
    if (c.kind == Change::kResize) {
      bytes_.resize(c.old_size, 0);
      if (!c.old_bytes.empty())
        std::memcpy(bytes_.data() + c.offset, c.old_bytes.data(), c.old_bytes.size());
      return;
    }
    if (!c.old_bytes.empty())
      std::memcpy(bytes_.data() + c.offset, c.old_bytes.data(), c.old_bytes.size());
    bytes_.resize(c.old_size, 0);
  }

  std::vector<uint8_t> bytes_;
  std::vector<Change> unsynced_;
};

}  // namespace mt::shim
