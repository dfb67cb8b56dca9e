#include "recovery/recovery.h"

#include <algorithm>
#include <cstring>
#include <ctime>

#include "retention/compression.h"
#include "retention/journal_reader.h"
#include "mt/shim/aligned_buffer.h"
#include "retention/retention_store.h"

namespace mt::recovery {

using retention::RecordHeader;
using retention::RecordType;

Result<PointSelector> ParsePointSelector(const std::string& text) {
  PointSelector s;
  if (text.empty()) return Status(Errc::kInvalidArgument, "empty point: use latest, latest-app, seq:N, a time or a tag name");
  if (text == "latest") return s;
  if (text == "latest-app") {
    s.kind = PointSelector::Kind::kLatestApp;
    return s;
  }
  if (text.compare(0, 4, "seq:") == 0) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(text.c_str() + 4, &end, 10);
    if (text.size() == 4 || *end != '\0' || errno != 0)
      return Status(Errc::kInvalidArgument, "bad point '" + text + "': seq:N takes a number");
    s.kind = PointSelector::Kind::kSeq;
    s.seq = v;
    return s;
  }
  if (text[0] == '@') {
    char* end = nullptr;
    const double secs = std::strtod(text.c_str() + 1, &end);
    if (text.size() == 1 || *end != '\0' || secs < 0)
      return Status(Errc::kInvalidArgument, "bad point '" + text + "': @ takes Unix seconds");
    s.kind = PointSelector::Kind::kTime;
    s.time_ns = static_cast<int64_t>(secs * 1e9);
    return s;
  }
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest != nullptr) {
    double frac = 0;
    if (*rest == '.') {
      char* end = nullptr;
      frac = std::strtod(rest, &end);
      rest = end;
    }
    if (std::strcmp(rest, "Z") != 0)
      return Status(Errc::kInvalidArgument,
                    "bad time '" + text + "': write it in UTC as 2026-11-27T10:15:00Z");
    s.kind = PointSelector::Kind::kTime;
    s.time_ns = static_cast<int64_t>(timegm(&tm)) * 1'000'000'000 + static_cast<int64_t>(frac * 1e9);
    return s;
  }
  s.kind = PointSelector::Kind::kTag;
  s.tag = text;
  return s;
}

uint64_t OldestPoint(const StreamView& v) {
  for (const auto& seg : v.undo)
    if (seg.records > 0) return std::min(retention::OldestReachablePoint(v.undo), v.applied_seq);
  return v.applied_seq;
}

namespace {

std::string Window(const StreamView& v) {
  return "the window is seq " + std::to_string(OldestPoint(v)) + " .. " +
         std::to_string(v.applied_seq);
}

// The last record with source time <= t (writes and tags), or 0.
Result<RecordHeader> LastRecordAtOrBefore(shim::FileSystem& fs, const StreamView& v, int64_t t) {
  RecordHeader found;
  for (auto it = v.undo.rbegin(); it != v.undo.rend(); ++it) {
    if (it->records == 0 || it->first_time_ns > t) continue;
    MT_RETURN_IF_ERROR(retention::ForEachRecord(
        fs, {*it}, retention::Direction::kForward,
        [&](const RecordHeader& h, const std::vector<uint8_t>&, bool* stop) {
          if (h.source_time_ns > t) *stop = true;
          else found = h;
          return Status::Ok();
        }));
    break;
  }
  return found;
}

}  // namespace

Result<ResolvedPoint> ResolvePoint(retention::Catalog& catalog, shim::FileSystem& fs,
                                   const StreamView& v, const PointSelector& sel) {
  MT_ASSIGN_OR_RETURN(auto disks, catalog.ListDisks(v.stream));
  uint64_t oldest = OldestPoint(v);
  for (const auto& d : disks) {
    if (d.resync_state != retention::ResyncState::kComplete)
      return Status(Errc::kUnavailable, "disk " + std::to_string(d.disk) + " (" + d.target_id +
                                            ") has not finished its resync: no recovery point yet");
    oldest = std::max(oldest, d.resync_complete_seq);
  }
  ResolvedPoint p;
  switch (sel.kind) {
    case PointSelector::Kind::kLatest: {
      p.seq = v.applied_seq;
      MT_ASSIGN_OR_RETURN(auto cp, catalog.StreamCheckpoint(v.stream));
      if (cp) p.time_ns = cp->applied_time_ns;
      p.description = "latest (seq " + std::to_string(p.seq) + ")";
      break;
    }
    case PointSelector::Kind::kLatestApp:
    case PointSelector::Kind::kTag: {
      std::optional<retention::PointRow> row;
      if (sel.kind == PointSelector::Kind::kLatestApp) {
        MT_ASSIGN_OR_RETURN(row, catalog.LatestPoint(v.stream, retention::TagKind::kApp, v.applied_seq));
        if (!row) return Status(Errc::kNotFound, "no app-consistent point has been applied yet");
      } else {
        MT_ASSIGN_OR_RETURN(row, catalog.FindPoint(v.stream, sel.tag));
        if (!row)
          return Status(Errc::kNotFound, "no point named '" + sel.tag +
                                             "' (see mtctl points; a time is written 2026-11-27T10:15:00Z)");
      }
      p.seq = row->seq;
      p.time_ns = row->time_ns;
      p.description = "tag '" + row->name + "' (" + retention::TagKindName(row->kind) + ") at seq " +
                      std::to_string(row->seq);
      break;
    }
    case PointSelector::Kind::kSeq:
      p.seq = sel.seq;
      p.description = "seq " + std::to_string(sel.seq);
      break;
    case PointSelector::Kind::kTime: {
      MT_ASSIGN_OR_RETURN(RecordHeader h, LastRecordAtOrBefore(fs, v, sel.time_ns));
      if (h.seq == 0 || h.seq > v.applied_seq) {
        // Later than everything in the undo journal: the newest applied state
        // is the answer if it is not older than T.
        if (v.applied_seq > 0 && h.seq == 0 && !v.undo.empty() && v.undo.back().records > 0 &&
            v.undo.back().last_time_ns <= sel.time_ns) {
          p.seq = v.applied_seq;
        } else {
          return Status(Errc::kOutOfRange,
                        "no applied write at or before that time inside the window; " + Window(v));
        }
      } else {
        p.seq = h.seq;
        p.time_ns = h.source_time_ns;
      }
      p.description = "the last write at or before that time (seq " + std::to_string(p.seq) + ")";
      break;
    }
  }
  if (p.seq < oldest || p.seq > v.applied_seq)
    return Status(Errc::kOutOfRange, p.description + " is outside the retention window: " +
                                         "the window is seq " + std::to_string(oldest) + " .. " +
                                         std::to_string(v.applied_seq));
  // Refused before anything is written: reaching p reads every undo record
  // after it, so every undo segment whose last seq is past p.
  const retention::DamagedSegment* needed = nullptr;
  uint64_t clear_from = 0;  // points at or after this read no damaged segment
  for (const auto& d : v.damaged) {
    clear_from = std::max(clear_from, d.last_seq);
    if (d.last_seq > p.seq && needed == nullptr) needed = &d;
  }
  if (needed != nullptr)
    return Status(Errc::kCorruption,
                  p.description + " cannot be recovered: reaching it reads undo segment " +
                      std::to_string(needed->number) + " (seq " + std::to_string(needed->first_seq) +
                      " .. " + std::to_string(needed->last_seq) +
                      "), which failed its check: " + needed->reason +
                      ". Points at or after seq " + std::to_string(clear_from) +
                      " do not read damaged segments (mtctl verify lists the damage)");
  return p;
}

// ---------------------------------------------------------------------------

Result<std::optional<RollbackProgress>> FileProgressStore::Load() {
  if (!fs_.Exists(path_)) return std::optional<RollbackProgress>();
  MT_ASSIGN_OR_RETURN(std::string text, shim::ReadSmallFile(fs_, path_, 128));
  RollbackProgress p;
  unsigned long long to = 0, done = 0;
  if (std::sscanf(text.c_str(), "rollback %llu %llu", &to, &done) != 2)
    return Status(Errc::kCorruption, path_ + ": unreadable rollback progress");
  p.to_seq = to;
  p.done_above = done;
  return std::optional<RollbackProgress>(p);
}

Status FileProgressStore::Save(const RollbackProgress& p) {
  return shim::WriteFileAtomically(
      fs_, path_, "rollback " + std::to_string(p.to_seq) + " " + std::to_string(p.done_above) + "\n");
}

Status FileProgressStore::Clear() {
  if (!fs_.Exists(path_)) return Status::Ok();
  return fs_.Remove(path_);
}

namespace {

// Writes data at any offset that is a multiple of 512 on a device whose
// logical block size may be larger (a 4096-byte image file): read, patch,
// write the covering aligned window.
Status WriteAnyAligned(shim::BlockDevice& dev, uint64_t off, const uint8_t* data, size_t len,
                       AlignedBuffer& scratch) {
  const uint64_t lbs = dev.logical_block_size();
  const uint64_t lo = off / lbs * lbs;
  const uint64_t hi = AlignUp(off + len, lbs);
  if (scratch.size() < hi - lo) scratch = AlignedBuffer(hi - lo);
  if (lo != off || hi != off + len) MT_RETURN_IF_ERROR(dev.ReadAt(lo, scratch.data(), hi - lo));
  std::memcpy(scratch.data() + (off - lo), data, len);
  return dev.WriteAt(lo, scratch.data(), hi - lo);
}

uint64_t BytesAbove(const std::vector<retention::SegmentInfo>& undo, uint64_t seq) {
  uint64_t total = 0;
  for (const auto& s : undo)
    if (s.records > 0 && s.last_seq > seq) total += s.logical_bytes;
  return total;
}

}  // namespace

Status Rollback(shim::FileSystem& fs, const std::vector<retention::SegmentInfo>& undo,
                const std::map<uint32_t, shim::BlockDevice*>& disks, uint64_t to_seq,
                ProgressStore& progress, const ProgressFn& on_progress,
                uint64_t flush_every_bytes) {
  MT_ASSIGN_OR_RETURN(auto saved, progress.Load());
  if (saved && saved->to_seq != to_seq)
    return Status(Errc::kBusy, "a rollback to seq " + std::to_string(saved->to_seq) +
                                   " was interrupted: finish it first (roll back to the same point)");
  const uint64_t skip_from = saved && saved->done_above != 0 ? saved->done_above : UINT64_MAX;
  if (!saved) MT_RETURN_IF_ERROR(progress.Save({to_seq, 0}));
  const uint64_t total = BytesAbove(undo, to_seq);
  uint64_t done = 0, since_flush = 0;
  AlignedBuffer buf, scratch;
  auto flush_all = [&]() -> Status {
    for (const auto& [d, dev] : disks) MT_RETURN_IF_ERROR(dev->Flush());
    return Status::Ok();
  };
  MT_RETURN_IF_ERROR(retention::ForEachRecord(
      fs, undo, retention::Direction::kBackward,
      [&](const RecordHeader& h, const std::vector<uint8_t>& stored, bool*) -> Status {
        if (h.type != RecordType::kWrite) return Status::Ok();
        done += h.length;
        auto it = disks.find(h.disk);
        if (it == disks.end() || h.seq >= skip_from) return Status::Ok();
        if (buf.size() < h.length) buf = AlignedBuffer(h.length);
        MT_RETURN_IF_ERROR(retention::ExpandPayload(h, stored.data(), stored.size(), buf.data()));
        Status s = WriteAnyAligned(*it->second, h.offset, buf.data(), h.length, scratch);
        if (!s.ok()) return s.WithContext("rollback: undo seq " + std::to_string(h.seq));
        since_flush += h.length;
        if (since_flush >= flush_every_bytes) {
          MT_RETURN_IF_ERROR(flush_all());
          // Every record of a seq above h.seq is written back, and of h.seq
          // too unless more pieces of its before-image lie before this one.
          const bool more_of_seq = (h.flags & retention::kFlagContinued) != 0;
          MT_RETURN_IF_ERROR(progress.Save({to_seq, more_of_seq ? h.seq + 1 : h.seq}));
          since_flush = 0;
          if (on_progress) on_progress(done, total);
        }
        return Status::Ok();
      },
      to_seq + 1));
  MT_RETURN_IF_ERROR(flush_all());
  if (on_progress) on_progress(total, total);
  return progress.Clear();
}

Status Export(shim::FileSystem& fs, const std::vector<retention::SegmentInfo>& undo,
              shim::BlockDevice& source, uint32_t disk, uint64_t at_seq, shim::BlockDevice& out,
              const ProgressFn& on_progress) {
  if (out.size() < source.size())
    return Status(Errc::kOutOfRange, "export: " + out.name() + " (" + std::to_string(out.size()) +
                                         " bytes) is smaller than " + source.name() + " (" +
                                         std::to_string(source.size()) + " bytes)");
  const uint64_t undo_bytes = BytesAbove(undo, at_seq);
  const uint64_t total = source.size() + undo_bytes;
  constexpr size_t kChunk = 1 << 20;
  AlignedBuffer buf(kChunk), scratch;
  for (uint64_t off = 0; off < source.size(); off += kChunk) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, source.size() - off));
    MT_RETURN_IF_ERROR(source.ReadAt(off, buf.data(), n));
    MT_RETURN_IF_ERROR(WriteAnyAligned(out, off, buf.data(), n, scratch));
    if (on_progress && (off / kChunk) % 64 == 63) on_progress(off + n, total);
  }
  return OverlayUndo(fs, undo, disk, at_seq, out, on_progress, source.size(), total);
}

Status OverlayUndo(shim::FileSystem& fs, const std::vector<retention::SegmentInfo>& undo,
                   uint32_t disk, uint64_t at_seq, shim::BlockDevice& out,
                   const ProgressFn& on_progress, uint64_t done_before, uint64_t total) {
  if (total == 0) total = done_before + BytesAbove(undo, at_seq);
  uint64_t done = done_before;
  AlignedBuffer rec, scratch;
  MT_RETURN_IF_ERROR(retention::ForEachRecord(
      fs, undo, retention::Direction::kBackward,
      [&](const RecordHeader& h, const std::vector<uint8_t>& stored, bool*) -> Status {
        if (h.type != RecordType::kWrite || h.disk != disk) return Status::Ok();
        if (rec.size() < h.length) rec = AlignedBuffer(h.length);
        MT_RETURN_IF_ERROR(retention::ExpandPayload(h, stored.data(), stored.size(), rec.data()));
        done += h.length;
        if (on_progress && ((done - h.length) >> 26) != (done >> 26)) on_progress(done, total);
        return WriteAnyAligned(out, h.offset, rec.data(), h.length, scratch);
      },
      at_seq + 1));
  MT_RETURN_IF_ERROR(out.Flush());
  if (on_progress) on_progress(total, total);
  return Status::Ok();
}

Result<GroupPoint> CommonPoint(retention::Catalog& catalog, const std::string& group,
                               bool app_only, const std::string& only_id) {
  MT_ASSIGN_OR_RETURN(auto streams, catalog.ListStreams());
  std::vector<retention::StreamRow> members;
  for (const auto& s : streams)
    if (s.group == group) members.push_back(s);
  if (members.empty()) return Status(Errc::kNotFound, "no stream belongs to group '" + group + "'");
  // group tag id -> stream -> point
  std::map<std::string, std::map<uint64_t, retention::PointRow>> seen;
  for (const auto& s : members) {
    MT_ASSIGN_OR_RETURN(auto points, catalog.ListPoints(s.id));
    for (const auto& p : points) {
      if (p.group_tag_id.empty() || (app_only && p.kind != retention::TagKind::kApp)) continue;
      seen[p.group_tag_id][s.id] = p;
    }
  }
  GroupPoint best;
  int64_t best_time = INT64_MIN;
  for (auto& [id, per] : seen) {
    if (per.size() != members.size() || (!only_id.empty() && id != only_id)) continue;
    int64_t t = INT64_MAX;
    for (const auto& [sid, p] : per) t = std::min(t, p.time_ns);
    if (t > best_time) {
      best_time = t;
      best.group_tag_id = id;
      best.per_stream = per;
    }
  }
  if (best.group_tag_id.empty() && !only_id.empty())
    return Status(Errc::kNotFound, "group tag '" + only_id + "' is not a point of every stream of group '" +
                                       group + "' (mtctl points --group " + group + ")");
  if (best.group_tag_id.empty())
    return Status(Errc::kNotFound, "the streams of group '" + group + "' share no " +
                                       (app_only ? "app-consistent " : "") + "group tag yet");
  return best;
}

std::string UtcTime(int64_t ns, const char* none) {
  if (ns <= 0) return none;
  const time_t t = static_cast<time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace mt::recovery
