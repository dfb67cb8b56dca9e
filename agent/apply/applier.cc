#include "apply/applier.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "retention/journal_reader.h"
#include "mt/shim/aligned_buffer.h"

namespace mt::apply {

using retention::kFlagContinued;
using retention::kFlagDiscard;
using retention::RecordHeader;
using retention::RecordType;

struct Applier::Planned {
  const WalRecord* rec = nullptr;
  uint8_t* before = nullptr;  // the before-image (in before_bufs_), when this record gets an undo record
};

namespace {

// Records whose data the applier writes to the target (an in-place resync
// record's data is on the target already).
bool IsData(const RecordHeader& h) {
  return (h.type == RecordType::kWrite || h.type == RecordType::kResyncData) &&
         (h.flags & retention::kFlagInPlace) == 0;
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
      o_(options), encoder_(options.compress, options.zstd_level) {
  if (o_.io_depth > 1 && o_.shared_pool != nullptr) {
    pool_ = o_.shared_pool;
  } else if (o_.io_depth > 1) {
    own_pool_ = std::make_unique<IoPool>(o_.io_depth);
    pool_ = own_pool_.get();
  }
}

Status Applier::RunIo(size_t n, const std::function<Status(size_t)>& task) {
  if (pool_ && n > 1) return pool_->Run(n, task);
  for (size_t i = 0; i < n; ++i) MT_RETURN_IF_ERROR(task(i));
  return Status::Ok();
}

uint8_t* Applier::Buffer(std::vector<AlignedBuffer>& bufs, size_t i, size_t len) {
  if (bufs.size() <= i) bufs.resize(i + 1);
  if (bufs[i].size() < len) bufs[i] = AlignedBuffer::Uninitialized(len);
  return bufs[i].data();
}

Result<shim::BlockDevice*> Applier::Disk(uint32_t index, uint64_t seq) {
  auto it = disks_.find(index);
  if (it == disks_.end())
    return Status(Errc::kNotFound, "seq " + std::to_string(seq) + " names disk " +
                                       std::to_string(index) + ", which this stream does not have");
  return it->second;
}

Status Applier::ReadTarget(uint32_t disk, uint64_t offset, void* buf, size_t len) {
  auto it = disks_.find(disk);  // disks_ is fixed at construction: no lock needed
  if (it == disks_.end())
    return Status(Errc::kNotFound, "no disk " + std::to_string(disk) + " in this stream");
  std::shared_lock<std::shared_mutex> reading(target_writes_mu_);
  return it->second->ReadAt(offset, buf, len);
}

Status Applier::WriteTarget(uint32_t disk, uint64_t offset, const uint8_t* data, size_t len) {
  auto it = disks_.find(disk);
  if (it == disks_.end())
    return Status(Errc::kNotFound, "no disk " + std::to_string(disk) + " in this stream");
  AlignedBuffer bounce;
  if (!IsAligned(data, kDirectIoAlignment)) {
    bounce = AlignedBuffer::Uninitialized(len);
    std::memcpy(bounce.data(), data, len);
    data = bounce.data();
  }
  std::unique_lock<std::shared_mutex> writing(target_writes_mu_);
  return it->second->WriteAt(offset, data, len);
}

Status Applier::CaptureBeforeImages(const std::vector<WalRecord>& batch,
                                    std::vector<Planned>& plan) {
  // Records whose undo is already durable (restart recovery) are not captured
  // again: their before-image is in the undo journal.
  const uint64_t undo_durable = undo_ != nullptr ? undo_->durable_seq() : 0;
  std::vector<size_t> captured;  // indexes of the records that get a before-image
  std::vector<shim::BlockDevice*> devs;
  for (size_t i = 0; i < batch.size(); ++i) {
    const WalRecord& r = batch[i];
    plan[i].rec = &r;
    if (!o_.retention || r.h.type != RecordType::kWrite || r.h.seq <= undo_durable) continue;
    MT_ASSIGN_OR_RETURN(shim::BlockDevice * dev, Disk(r.h.disk, r.h.seq));
    plan[i].before = Buffer(before_bufs_, captured.size(), r.h.length);
    captured.push_back(i);
    devs.push_back(dev);
  }
  // Every read sees the target before this batch (no write of it has
  // started), so they may run in any order.
  MT_RETURN_IF_ERROR(RunIo(captured.size(), [&](size_t k) -> Status {
    const RecordHeader& h = batch[captured[k]].h;
    Status s = devs[k]->ReadAt(h.offset, plan[captured[k]].before, h.length);
    return s.ok() ? s : s.WithContext("capture before-image of seq " + std::to_string(h.seq));
  }));
  // Invariant 5: earlier writes of this batch are not on the target yet, but
  // they come first: lay them over the before-image, in order.
  for (size_t i : captured)
    for (size_t j = 0; j < i; ++j)
      if (IsData(batch[j].h) && batch[j].h.disk == batch[i].h.disk)
        Overlay(batch[j], batch[i].h.offset, batch[i].h.length, plan[i].before);
  return Status::Ok();
}

bool Applier::IsLongDiscard(const RecordHeader& h) const {
  if (h.type != RecordType::kWrite || (h.flags & kFlagDiscard) == 0) return false;
  // A discard whose before-image is partly kept (a restart in its middle)
  // resumes piece by piece whatever its length.
  return h.length > o_.discard_piece_bytes ||
         (o_.retention && undo_ != nullptr && h.seq == undo_->durable_seq());
}

Status Applier::Apply(const std::vector<WalRecord>& batch) {
  if (batch.empty()) return Status::Ok();
  uint64_t prev = applied_seq_;
  bool long_discard = false;
  for (const auto& r : batch) {
    if (r.h.seq <= prev)
      return Status(Errc::kInvalidArgument, "apply: seq " + std::to_string(r.h.seq) +
                                                " is not after " + std::to_string(prev));
    prev = r.h.seq;
    long_discard = long_discard || IsLongDiscard(r.h);
  }
  if (!long_discard) return ApplyBatch(batch);
  // The records before a long discard, the discard alone, the records after.
  std::vector<WalRecord> run;
  for (const auto& r : batch) {
    if (!IsLongDiscard(r.h)) {
      run.push_back(r);
      continue;
    }
    if (!run.empty()) MT_RETURN_IF_ERROR(ApplyBatch(run));
    run.clear();
    MT_RETURN_IF_ERROR(ApplyLongDiscard(r));
  }
  return run.empty() ? Status::Ok() : ApplyBatch(run);
}

Status Applier::ApplyLongDiscard(const WalRecord& r) {
  const RecordHeader& h = r.h;
  MT_ASSIGN_OR_RETURN(shim::BlockDevice * dev, Disk(h.disk, h.seq));
  const uint64_t end = h.offset + h.length;
  // [h.offset, kept): before-images already durable in the undo journal
  // (restart recovery); from `kept` on they are captured here.
  uint64_t kept = h.offset;
  const bool capture = o_.retention && undo_ != nullptr;
  if (capture) {
    const RecordHeader last = undo_->last_durable_record();
    if (last.seq > h.seq) {
      kept = end;
    } else if (last.seq == h.seq) {
      if (last.type != RecordType::kWrite || last.disk != h.disk || last.offset < h.offset ||
          last.offset + last.length > end)
        return Status(Errc::kCorruption, "undo journal: the last record of seq " +
                                             std::to_string(h.seq) +
                                             " is no piece of that discard's before-image");
      kept = last.offset + last.length;
    }
  }
  const uint64_t piece = o_.discard_piece_bytes;
  uint8_t* zeroes = Buffer(bounce_bufs_, 0, piece);
  std::memset(zeroes, 0, piece);
  uint8_t* before = capture ? Buffer(before_bufs_, 0, piece) : nullptr;
  for (uint64_t off = h.offset; off < end;) {
    // Pieces never straddle `kept`, so each one is either kept or captured.
    const uint64_t limit = off < kept ? kept : end;
    const uint64_t n = std::min(piece, limit - off);
    const std::string what = "apply discard seq " + std::to_string(h.seq) + " at byte " +
                             std::to_string(off);
    if (capture && off >= kept) {
      Status s = dev->ReadAt(off, before, n);
      if (!s.ok()) return s.WithContext("capture before-image: " + what);
      RecordHeader u = h;
      u.offset = off;
      u.length = n;
      retention::StoredForm f = encoder_.Encode(before, n);
      u.flags = f.flags | (off > h.offset ? uint32_t{kFlagContinued} : 0u);
      MT_RETURN_IF_ERROR(undo_->Append(u, f.data, f.size));
      MT_RETURN_IF_ERROR(undo_->Sync());  // invariant 2, piece by piece
    }
    Status s;
    {
      std::unique_lock<std::shared_mutex> writing(target_writes_mu_);
      s = dev->WriteAt(off, zeroes, n);
    }
    if (!s.ok()) return s.WithContext(what);
    off += n;
    bytes_applied_ += n;
    MT_RETURN_IF_ERROR(checkpoint_->PieceApplied(h.seq, off - h.offset, h.length));
  }
  Status s = dev->Flush();
  if (!s.ok()) return s.WithContext("flush after seq " + std::to_string(h.seq));
  MT_RETURN_IF_ERROR(checkpoint_->BatchApplied({r}));  // invariant 3
  MT_RETURN_IF_ERROR(checkpoint_->Record(h.seq, h.source_time_ns));
  applied_seq_ = h.seq;
  return Status::Ok();
}

Status Applier::ApplyBatch(const std::vector<WalRecord>& batch) {
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
      u.flags = h.flags & retention::kFlagNoPoint;  // a tag says the same in the undo journal
      if (h.type == RecordType::kWrite) {
        retention::StoredForm f = encoder_.Encode(p.before, h.length);
        u.flags = f.flags;
        MT_RETURN_IF_ERROR(undo_->Append(u, f.data, f.size));
      } else {
        MT_RETURN_IF_ERROR(undo_->Append(u, p.rec->data, h.stored_length));
      }
      appended = true;
    }
    if (appended) MT_RETURN_IF_ERROR(undo_->Sync());  // invariant 2
  }

  MT_RETURN_IF_ERROR(WriteTargets(plan));
  std::set<uint32_t> touched_set;
  for (const Planned& p : plan)
    if (IsData(p.rec->h)) touched_set.insert(p.rec->h.disk);
  const std::vector<uint32_t> touched(touched_set.begin(), touched_set.end());
  MT_RETURN_IF_ERROR(RunIo(touched.size(), [&](size_t k) -> Status {
    Status s = disks_[touched[k]]->Flush();
    return s.ok() ? s : s.WithContext("flush after seq " + std::to_string(batch.back().h.seq));
  }));
  MT_RETURN_IF_ERROR(checkpoint_->BatchApplied(batch));  // before the checkpoint: invariant 3
  MT_RETURN_IF_ERROR(checkpoint_->Record(batch.back().h.seq, batch.back().h.source_time_ns));
  applied_seq_ = batch.back().h.seq;  // invariant 3: only after flush + checkpoint
  return Status::Ok();
}

// Target writes of the batch; in order unless no two of them overlap on a
// disk (then their order cannot matter and they run concurrently).
Status Applier::WriteTargets(const std::vector<Planned>& plan) {
  std::vector<const WalRecord*> writes;
  std::vector<shim::BlockDevice*> devs;
  std::map<uint32_t, std::vector<std::pair<uint64_t, uint64_t>>> ranges;
  for (const Planned& p : plan) {
    const WalRecord& r = *p.rec;
    if (!IsData(r.h)) continue;
    MT_ASSIGN_OR_RETURN(shim::BlockDevice * dev, Disk(r.h.disk, r.h.seq));
    writes.push_back(&r);
    devs.push_back(dev);
    ranges[r.h.disk].push_back({r.h.offset, r.h.offset + r.h.length});
  }
  bool disjoint = true;
  for (auto& [disk, rs] : ranges) {
    std::sort(rs.begin(), rs.end());
    for (size_t i = 1; disjoint && i < rs.size(); ++i) disjoint = rs[i].first >= rs[i - 1].second;
  }
  auto write = [&](size_t k) -> Status {
    const WalRecord& r = *writes[k];
    const uint8_t* src = r.data;
    if (src == nullptr || (r.h.flags & kFlagDiscard) != 0 || !IsAligned(src, kDirectIoAlignment)) {
      uint8_t* bounce = Buffer(bounce_bufs_, k, r.h.length);
      if (src == nullptr || (r.h.flags & kFlagDiscard) != 0)
        std::memset(bounce, 0, r.h.length);
      else
        std::memcpy(bounce, src, r.h.length);
      src = bounce;
    }
    Status s = devs[k]->WriteAt(r.h.offset, src, r.h.length);
    return s.ok() ? s : s.WithContext("apply seq " + std::to_string(r.h.seq));
  };
  if (disjoint) {
    // Bounce buffers are per write: allocate them before the tasks run.
    for (size_t k = 0; k < writes.size(); ++k) {
      const WalRecord& r = *writes[k];
      if (r.data == nullptr || (r.h.flags & kFlagDiscard) != 0 ||
          !IsAligned(r.data, kDirectIoAlignment))
        (void)Buffer(bounce_bufs_, k, r.h.length);
    }
    std::unique_lock<std::shared_mutex> writing(target_writes_mu_);
    MT_RETURN_IF_ERROR(RunIo(writes.size(), write));
  } else {
    std::unique_lock<std::shared_mutex> writing(target_writes_mu_);
    for (size_t k = 0; k < writes.size(); ++k) MT_RETURN_IF_ERROR(write(k));
  }
  for (const WalRecord* r : writes) bytes_applied_ += r->h.length;
  return Status::Ok();
}

Status ForEachWalBatch(shim::FileSystem& fs, const std::vector<retention::SegmentInfo>& wal,
                       uint64_t from_seq, size_t batch_records, uint64_t batch_bytes,
                       const std::function<Status(const std::vector<WalRecord>&)>& apply) {
  std::vector<std::vector<uint8_t>> payloads;  // keep the batch's data alive
  std::vector<WalRecord> batch;
  uint64_t bytes = 0;
  auto flush = [&]() -> Status {
    Status s = batch.empty() ? Status::Ok() : apply(batch);
    batch.clear();
    payloads.clear();
    bytes = 0;
    return s;
  };
  MT_RETURN_IF_ERROR(retention::ForEachRecord(
      fs, wal, retention::Direction::kForward,
      [&](const RecordHeader& h, const std::vector<uint8_t>& payload, bool*) -> Status {
        if (!batch.empty() && bytes + h.length > batch_bytes) MT_RETURN_IF_ERROR(flush());
        bytes += h.length;
        payloads.push_back(payload);
        batch.push_back({h, payloads.back().empty() ? nullptr : payloads.back().data()});
        return batch.size() >= batch_records ? flush() : Status::Ok();
      },
      from_seq));
  return flush();
}

Status Applier::Recover(shim::FileSystem& fs, const std::vector<retention::SegmentInfo>& wal,
                        size_t batch_records) {
  return ForEachWalBatch(fs, wal, applied_seq_ + 1, batch_records, UINT64_MAX,
                         [this](const std::vector<WalRecord>& b) { return Apply(b); });
}

}  // namespace mt::apply
