// Test support for the applier: a reference model of every disk image at
// every sequence number, a seeded workload generator, a checkpoint kept in a
// file (so it is under the fault model too), and the point checker.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "apply/applier.h"
#include "retention/compression.h"
#include "retention/journal_reader.h"
#include "mt/shim/file_system.h"
#include "mt/shim/mem_block_device.h"

namespace mt::apply::test {

struct Op {
  retention::RecordHeader h;
  std::vector<uint8_t> data;  // kWrite: h.length bytes (empty for a discard); kTag: payload
};

// The trivially correct model: disk images, and for every write the bytes it
// replaced (so the model can walk back to any point).
class Model {
 public:
  Model(size_t disks, uint64_t disk_size) : images_(disks, std::vector<uint8_t>(disk_size, 0)) {}
  void Apply(const Op& op) {
    if (op.h.type != retention::RecordType::kWrite) return;
    auto& img = images_[op.h.disk];
    Before b{op.h.disk, op.h.offset,
             std::vector<uint8_t>(img.begin() + op.h.offset,
                                  img.begin() + op.h.offset + op.h.length)};
    before_[op.h.seq] = std::move(b);
    if (op.data.empty())
      std::fill(img.begin() + op.h.offset, img.begin() + op.h.offset + op.h.length, 0);
    else
      std::copy(op.data.begin(), op.data.end(), img.begin() + op.h.offset);
  }
  const std::vector<std::vector<uint8_t>>& images() const { return images_; }
  struct Before {
    uint32_t disk;
    uint64_t offset;
    std::vector<uint8_t> bytes;
  };
  const std::map<uint64_t, Before>& before() const { return before_; }

 private:
  std::vector<std::vector<uint8_t>> images_;
  std::map<uint64_t, Before> before_;
};

struct WorkloadSpec {
  size_t disks = 3;
  uint64_t disk_size = 256 << 10;
  size_t ops = 200;
  uint32_t block = 512;
  double overlap = 0.5;   // probability that a write lands in the hot 16 KiB region
  double discard = 0.05;
  double whole_disk_discard = 0.0;  // probability that a discard covers the whole disk
  int tag_every = 10;
};

inline std::vector<Op> MakeWorkload(uint64_t seed, const WorkloadSpec& s) {
  std::mt19937_64 rng(seed);
  std::vector<Op> ops;
  for (uint64_t seq = 1; seq <= s.ops; ++seq) {
    Op op;
    op.h.seq = seq;
    op.h.source_time_ns = 1'000'000'000LL * static_cast<int64_t>(seq);
    if (s.tag_every > 0 && seq % static_cast<uint64_t>(s.tag_every) == 0) {
      op.h.type = retention::RecordType::kTag;
      retention::TagPayload t{retention::TagKind::kApp, "t" + std::to_string(seq), ""};
      std::string enc = retention::EncodeTag(t);
      op.data.assign(enc.begin(), enc.end());
      op.h.stored_length = static_cast<uint32_t>(op.data.size());
      ops.push_back(op);
      continue;
    }
    op.h.type = retention::RecordType::kWrite;
    op.h.disk = static_cast<uint32_t>(rng() % s.disks);
    const uint64_t blocks = s.disk_size / s.block;
    const uint64_t len_blocks = 1 + rng() % 32;
    const bool hot = std::uniform_real_distribution<double>(0, 1)(rng) < s.overlap;
    const uint64_t span = hot ? (16384 / s.block) : blocks;
    uint64_t start = rng() % span;
    if (start + len_blocks > blocks) start = blocks - len_blocks;
    op.h.offset = start * s.block;
    op.h.length = static_cast<uint32_t>(len_blocks * s.block);
    if (std::uniform_real_distribution<double>(0, 1)(rng) < s.discard) {
      op.h.flags = retention::kFlagDiscard;
      if (std::uniform_real_distribution<double>(0, 1)(rng) < s.whole_disk_discard) {
        op.h.offset = 0;
        op.h.length = s.disk_size;
      }
    } else {
      op.data.resize(op.h.length);
      for (auto& b : op.data) b = static_cast<uint8_t>(rng());
      op.h.stored_length = op.h.length;
    }
    ops.push_back(op);
  }
  return ops;
}

// A checkpoint file "<seq> <time>" replaced atomically (tmp, sync, rename).
class FileCheckpoint : public CheckpointSink {
 public:
  FileCheckpoint(shim::FileSystem& fs, std::string path) : fs_(fs), path_(std::move(path)) {}
  Status Record(uint64_t seq, int64_t time) override {
    shim::FileOptions o;
    o.writable = o.create = true;
    MT_ASSIGN_OR_RETURN(auto f, fs_.OpenFile(path_ + ".tmp", o));
    const std::string s = std::to_string(seq) + " " + std::to_string(time) + "\n";
    MT_RETURN_IF_ERROR(f->Truncate(0));
    MT_RETURN_IF_ERROR(f->WriteAt(0, s.data(), s.size()));
    MT_RETURN_IF_ERROR(f->Sync());
    return fs_.Rename(path_ + ".tmp", path_);
  }
  uint64_t Load() {
    shim::FileOptions o;
    auto f = fs_.OpenFile(path_, o);
    if (!f.ok()) return 0;
    char buf[64] = {};
    auto n = (*f)->ReadAt(0, buf, sizeof buf - 1);
    return n.ok() ? std::strtoull(buf, nullptr, 10) : 0;
  }

 private:
  shim::FileSystem& fs_;
  std::string path_;
};

// Walks the undo journal newest-first from the current target images, and the
// model back from its final images, comparing after every item's undo: every
// point from the newest down to `oldest` must be byte-identical. An item whose
// before-image is kept in pieces (a long discard: records of one seq, all but
// the first kFlagContinued) is compared once its first piece is written back.
// Returns the number of points checked, or fails the test.
inline size_t CheckEveryPoint(shim::FileSystem& fs,
                              const std::vector<retention::SegmentInfo>& undo,
                              const std::vector<shim::MemBlockDevice*>& disks,
                              const Model& model, const std::string& context) {
  std::vector<std::vector<uint8_t>> s, m = model.images();
  for (auto* d : disks) s.push_back(d->Contents());
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] != m[i]) {
      ADD_FAILURE() << context << ": disk " << i << " differs from the model at the newest point";
      return 0;
    }
  size_t checked = 1;
  Status st = retention::ForEachRecord(
      fs, undo, retention::Direction::kBackward,
      [&](const retention::RecordHeader& h, const std::vector<uint8_t>& payload, bool* stop) {
        if (h.type != retention::RecordType::kWrite) return Status::Ok();
        std::vector<uint8_t> before(h.length);
        MT_RETURN_IF_ERROR(retention::ExpandPayload(h, payload.data(), payload.size(), before.data()));
        std::copy(before.begin(), before.end(), s[h.disk].begin() + h.offset);
        if ((h.flags & retention::kFlagContinued) != 0) return Status::Ok();  // more of h.seq
        auto it = model.before().find(h.seq);
        if (it == model.before().end()) {
          ADD_FAILURE() << context << ": undo record for seq " << h.seq << " the model never wrote";
          *stop = true;
          return Status::Ok();
        }
        std::copy(it->second.bytes.begin(), it->second.bytes.end(),
                  m[it->second.disk].begin() + it->second.offset);
        if (s[h.disk] != m[h.disk]) {
          ADD_FAILURE() << context << ": point " << h.seq - 1 << " differs on disk " << h.disk;
          *stop = true;
        }
        ++checked;
        return Status::Ok();
      });
  EXPECT_TRUE(st.ok()) << context << ": " << st.ToString();
  return checked;
}

}  // namespace mt::apply::test
