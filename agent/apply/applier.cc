#include "applier.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "journal_reader.h"
#include "mt/shim/aligned_buffer.h"

namespace mt::apply {

using retention::kFlagDiscard;
using retention::RecordHeader;
using retention::RecordType;

struct Applier::Planned {
  const WalRecord* rec = nullptr;
  AlignedBuffer before;  // the before-image, when this record gets an undo record
};

namespace {

bool IsData(const RecordHeader& h) {
  return h.type == RecordType::kWrite || h.type == RecordType::kResyncData;
}

// Copies into `dst` (covering [dst_off, dst_off+dst_len) of a disk) the part
// of write `w` that overlaps it; a discard contributes zeroes.
void Overlay(const WalRecord& w, uint64_t dst_off, uint64_t dst_len, uint8_t* dst) {
  const uint64_t lo = std::max(dst_off, w.h.offset);
  const uint64_t hi = std::min(dst_off + dst_len, w.h.offset + w.h.length);
  if (lo >= hi) return;
  uint8_t* to = dst + (lo - dst_off);
  if (w.data == nullptr || (w.h.flags & kFlagDiscard) != 0)
    std::memset(to, 0, hi - lo);
  else
    std::memcpy(to, w.data + (lo - w.h.offset), hi - lo);
}

}  // namespace

Applier::Applier(retention::Journal* undo, std::map<uint32_t, shim::BlockDevice*> disks,
                 CheckpointSink* checkpoint, uint64_t applied_seq, ApplierOptions options)
    : undo_(undo), disks_(std::move(disks)), checkpoint_(checkpoint), applied_seq_(applied_seq),
      o_(options), encoder_(options.compress, options.zstd_level) {}

Result<shim::BlockDevice*> Applier::Disk(uint32_t index, uint64_t seq) {
  auto it = disks_.find(index);
  if (it == disks_.end())
    return Status(Errc::kNotFound, "seq " + std::to_string(seq) + " names disk " +
                                       std::to_string(index) + ", which this stream does not have");
  return it->second;
}

Status Applier::CaptureBeforeImages(const std::vector<WalRecord>& batch,
                                    std::vector<Planned>& plan) {
  // Records whose undo is already durable (restart recovery) are not captured
  // again: their before-image is in the undo journal.
  const uint64_t undo_durable = undo_ != nullptr ? undo_->durable_seq() : 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const WalRecord& r = batch[i];
    plan[i].rec = &r;
    if (!o_.retention || r.h.type != RecordType::kWrite || r.h.seq <= undo_durable) continue;
    MT_ASSIGN_OR_RETURN(shim::BlockDevice * dev, Disk(r.h.disk, r.h.seq));
    plan[i].before = AlignedBuffer(r.h.length);
    Status s = dev->ReadAt(r.h.offset, plan[i].before.data(), r.h.length);
    if (!s.ok()) return s.WithContext("capture before-image of seq " + std::to_string(r.h.seq));
    // Invariant 5: earlier writes of this batch are not on the target yet, but
    // they come first: lay them over the before-image, in order.
    for (size_t j = 0; j < i; ++j)
      if (IsData(batch[j].h) && batch[j].h.disk == r.h.disk)
        Overlay(batch[j], r.h.offset, r.h.length, plan[i].before.data());
  }
  return Status::Ok();
}

Status Applier::Apply(const std::vector<WalRecord>& batch) {
  if (batch.empty()) return Status::Ok();
  uint64_t prev = applied_seq_;
  for (const auto& r : batch) {
    if (r.h.seq <= prev)
      return Status(Errc::kInvalidArgument, "apply: seq " + std::to_string(r.h.seq) +
                                                " is not after " + std::to_string(prev));
    prev = r.h.seq;
  }
  std::vector<Planned> plan(batch.size());
  MT_RETURN_IF_ERROR(CaptureBeforeImages(batch, plan));

  // Undo records (before-images, tags, resync completions), then one sync.
  bool appended = false;
  if (o_.retention && undo_ != nullptr) {
    const uint64_t undo_durable = undo_->durable_seq();
    for (const Planned& p : plan) {
      const RecordHeader& h = p.rec->h;
      if (h.seq <= undo_durable || h.type == RecordType::kResyncData) continue;
      RecordHeader u = h;
      u.flags = 0;
      if (h.type == RecordType::kWrite) {
        retention::StoredForm f = encoder_.Encode(p.before.data(), h.length);
        u.flags = f.flags;
        MT_RETURN_IF_ERROR(undo_->Append(u, f.data, f.size));
      } else {
        MT_RETURN_IF_ERROR(undo_->Append(u, p.rec->data, h.stored_length));
      }
      appended = true;
    }
    if (appended) MT_RETURN_IF_ERROR(undo_->Sync());  // invariant 2
  }

  // Target writes, in order; then flush every disk written.
  std::set<uint32_t> touched;
  AlignedBuffer bounce;
  for (const Planned& p : plan) {
    const WalRecord& r = *p.rec;
    if (!IsData(r.h)) continue;
    MT_ASSIGN_OR_RETURN(shim::BlockDevice * dev, Disk(r.h.disk, r.h.seq));
    const uint8_t* src = r.data;
    if (src == nullptr || (r.h.flags & kFlagDiscard) != 0 || !IsAligned(src, kDirectIoAlignment)) {
      if (bounce.size() < r.h.length) bounce = AlignedBuffer(r.h.length);
      if (src == nullptr || (r.h.flags & kFlagDiscard) != 0)
        std::memset(bounce.data(), 0, r.h.length);
      else
        std::memcpy(bounce.data(), src, r.h.length);
      src = bounce.data();
    }
    Status s = dev->WriteAt(r.h.offset, src, r.h.length);
    if (!s.ok()) return s.WithContext("apply seq " + std::to_string(r.h.seq));
    touched.insert(r.h.disk);
    bytes_applied_ += r.h.length;
  }
  for (uint32_t d : touched) {
    Status s = disks_[d]->Flush();
    if (!s.ok()) return s.WithContext("flush after seq " + std::to_string(batch.back().h.seq));
  }
  MT_RETURN_IF_ERROR(checkpoint_->Record(batch.back().h.seq, batch.back().h.source_time_ns));
  applied_seq_ = batch.back().h.seq;  // invariant 3: only after flush + checkpoint
  return Status::Ok();
}

Status ForEachWalBatch(shim::FileSystem& fs, const std::vector<retention::SegmentInfo>& wal,
                       uint64_t from_seq, size_t batch_records,
                       const std::function<Status(const std::vector<WalRecord>&)>& apply) {
  std::vector<std::vector<uint8_t>> payloads;  // keep the batch's data alive
  std::vector<WalRecord> batch;
  auto flush = [&]() -> Status {
    Status s = batch.empty() ? Status::Ok() : apply(batch);
    batch.clear();
    payloads.clear();
    return s;
  };
  MT_RETURN_IF_ERROR(retention::ForEachRecord(
      fs, wal, retention::Direction::kForward,
      [&](const RecordHeader& h, const std::vector<uint8_t>& payload, bool*) -> Status {
        payloads.push_back(payload);
        batch.push_back({h, payloads.back().empty() ? nullptr : payloads.back().data()});
        return batch.size() >= batch_records ? flush() : Status::Ok();
      },
      from_seq));
  return flush();
}

Status Applier::Recover(shim::FileSystem& fs, const std::vector<retention::SegmentInfo>& wal,
                        size_t batch_records) {
  return ForEachWalBatch(fs, wal, applied_seq_ + 1, batch_records,
                         [this](const std::vector<WalRecord>& b) { return Apply(b); });
}

}  // namespace mt::apply
