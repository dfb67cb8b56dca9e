#include "recovery/store_ops.h"

#include <algorithm>

#include "retention/journal_reader.h"
#include "retention/segment_reader.h"

namespace mt::recovery {

using retention::SegmentKind;

namespace {

std::string JournalDir(const std::string& stream_dir, SegmentKind kind) {
  return shim::JoinPath(stream_dir, retention::SegmentKindName(kind));
}


}  // namespace

Result<StreamState> LoadStreamState(retention::Catalog& catalog, shim::FileSystem& fs,
                                    const std::string& root, const retention::StreamRow& row) {
  StreamState s;
  s.row = row;
  s.dir = shim::JoinPath(shim::JoinPath(root, "streams"), std::to_string(row.id));
  MT_ASSIGN_OR_RETURN(s.disks, catalog.ListDisks(row.id));
  MT_ASSIGN_OR_RETURN(auto cp, catalog.StreamCheckpoint(row.id));
  s.applied_seq = cp ? cp->applied_seq : 0;
  s.applied_time_ns = cp ? cp->applied_time_ns : 0;
  MT_ASSIGN_OR_RETURN(s.undo, retention::ReadJournalSegments(fs, JournalDir(s.dir, SegmentKind::kUndo),
                                                             SegmentKind::kUndo));
  MT_ASSIGN_OR_RETURN(s.wal, retention::ReadJournalSegments(fs, JournalDir(s.dir, SegmentKind::kWal),
                                                            SegmentKind::kWal));
  MT_ASSIGN_OR_RETURN(auto recorded, retention::ReadDamage(fs, s.dir));
  s.damaged = retention::DamageOf(recorded, s.undo);
  return s;
}

std::string RollbackProgressPathOf(const std::string& stream_dir) {
  return shim::JoinPath(stream_dir, "rollback.progress");
}

std::string RollbackProgressPath(const StreamState& s) { return RollbackProgressPathOf(s.dir); }

std::string RolledBackMarkerPath(const std::string& stream_dir) {
  return shim::JoinPath(stream_dir, "rolled-back");
}

Status FinishRollback(retention::Catalog& catalog, shim::FileSystem& fs, StreamState& s,
                      const ResolvedPoint& point, int64_t now_ns, const std::string& what) {
  const uint64_t seq = point.seq;
  // The marker first (see MarkRolledBack), then points: they must never name
  // a state the store cannot rebuild.
  MT_RETURN_IF_ERROR(MarkRolledBack(fs, s.dir, what));
  MT_RETURN_IF_ERROR(catalog.RemovePointsAfter(s.row.id, seq));
  // Undo: newest segments first, so a crash leaves a consistent prefix.
  std::vector<std::pair<SegmentKind, uint64_t>> removed;
  for (auto it = s.undo.rbegin(); it != s.undo.rend(); ++it) {
    if (it->records > 0 && it->first_seq <= seq) {
      if (it->last_seq <= seq) break;
      MT_ASSIGN_OR_RETURN(auto reader, retention::SegmentReader::Open(fs, it->path, false));
      retention::ScanReport scan;
      const uint64_t from = it->index ? retention::IndexedStart(*it->index, seq + 1)
                                      : retention::kSegmentHeaderSize;
      MT_RETURN_IF_ERROR(reader->Scan(&scan, it->bytes, from));
      uint64_t cut = retention::kSegmentHeaderSize;
      for (const auto& r : reader->records())
        if (r.header.seq <= seq) cut = r.offset + retention::EncodedRecordSize(r.header.stored_length);
      shim::FileOptions o;
      o.writable = true;
      // Its index (if sealed) describes the records cut here: gone first.
      const std::string idx = retention::SegmentIndexPath(it->path);
      if (fs.Exists(idx)) MT_RETURN_IF_ERROR(fs.Remove(idx));
      MT_ASSIGN_OR_RETURN(auto f, fs.OpenFile(it->path, o));
      MT_RETURN_IF_ERROR(f->Truncate(cut));
      MT_RETURN_IF_ERROR(f->Sync());
      break;
    }
    MT_RETURN_IF_ERROR(retention::RemoveSegmentFiles(fs, it->path));
    removed.emplace_back(SegmentKind::kUndo, it->number);
  }
  // The WAL's records are the old future of the targets: gone.
  for (const auto& w : s.wal) {
    MT_RETURN_IF_ERROR(retention::RemoveSegmentFiles(fs, w.path));
    removed.emplace_back(SegmentKind::kWal, w.number);
  }
  // Then the rows, in one transaction: the removed segments' and every
  // disk's checkpoint at the point. A crash before it leaves the old rows,
  // which the marker keeps from being used; the rollback's rerun (or
  // ReconcileCatalog when the stream is opened) puts them right.
  MT_RETURN_IF_ERROR(catalog.Transact(
      "finish the rollback of stream " + std::to_string(s.row.id),
      [&](retention::Catalog::Transaction& t) -> Status {
        for (const auto& [kind, number] : removed)
          MT_RETURN_IF_ERROR(t.RemoveSegment(s.row.id, kind, number));
        for (const auto& d : s.disks) {
          retention::CheckpointRow cp;
          cp.stream = s.row.id;
          cp.disk = d.disk;
          cp.applied_seq = seq;
          cp.applied_time_ns = point.time_ns;
          cp.updated_ns = now_ns;
          MT_RETURN_IF_ERROR(t.SetCheckpoint(cp));
        }
        return Status::Ok();
      }));
  s.applied_seq = seq;
  s.applied_time_ns = point.time_ns;
  MT_ASSIGN_OR_RETURN(s.undo, retention::ReadJournalSegments(fs, JournalDir(s.dir, SegmentKind::kUndo),
                                                             SegmentKind::kUndo));
  s.damaged = retention::DamageOf(s.damaged, s.undo);
  s.wal.clear();
  return Status::Ok();
}

Status MarkRolledBack(shim::FileSystem& fs, const std::string& dir, const std::string& what) {
  return shim::WriteFileAtomically(fs, RolledBackMarkerPath(dir), what + "\n");
}

Result<std::optional<std::string>> ReadRolledBack(shim::FileSystem& fs, const std::string& dir) {
  const std::string path = RolledBackMarkerPath(dir);
  if (!fs.Exists(path)) return std::optional<std::string>();
  MT_ASSIGN_OR_RETURN(std::string text, shim::ReadSmallFile(fs, path, 4096));
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return std::optional<std::string>(text);
}

Result<std::vector<uint32_t>> RequireResync(retention::Catalog& catalog, shim::FileSystem& fs,
                                            const std::string& stream_dir,
                                            const retention::StreamRow& row,
                                            std::vector<uint32_t> disks) {
  const std::string name = "stream '" + row.name + "'";
  if (row.state == retention::StreamState::kCommitted)
    return Status(Errc::kInvalidArgument, name + " is committed: protect its disks with a new pair");
  if (fs.Exists(RollbackProgressPathOf(stream_dir)))
    return Status(Errc::kBusy, "a rollback of " + name +
                                   " was interrupted: run mtctl rollback again with the same "
                                   "point to finish it, then ask for the resync");
  MT_ASSIGN_OR_RETURN(auto rows, catalog.ListDisks(row.id));
  if (disks.empty())
    for (const auto& d : rows) disks.push_back(d.disk);
  std::sort(disks.begin(), disks.end());
  disks.erase(std::unique(disks.begin(), disks.end()), disks.end());
  for (uint32_t d : disks)
    if (std::none_of(rows.begin(), rows.end(), [d](const auto& r) { return r.disk == d; }))
      return Status(Errc::kNotFound, name + " has no disk " + std::to_string(d) + " (see mtctl pairs)");
  MT_RETURN_IF_ERROR(catalog.RequireResync(row.id, disks));
  const std::string marker = RolledBackMarkerPath(stream_dir);
  if (fs.Exists(marker)) MT_RETURN_IF_ERROR(fs.Remove(marker));
  MT_RETURN_IF_ERROR(catalog.SetStreamState(row.id, retention::StreamState::kProtected, ""));
  return disks;
}

VerifyReport VerifyStream(shim::FileSystem& fs, const std::string& stream_dir) {
  VerifyReport r;
  for (SegmentKind kind : {SegmentKind::kWal, SegmentKind::kUndo}) {
    auto segs = retention::ReadJournalSegments(fs, JournalDir(stream_dir, kind), kind);
    if (!segs.ok()) {
      r.problems.push_back(segs.status().message());
      continue;
    }
    for (const auto& seg : *segs) {
      ++r.segments;
      Status s = retention::ForEachRecord(
          fs, {seg}, retention::Direction::kForward,
          [&](const retention::RecordHeader& h, const std::vector<uint8_t>& p, bool*) {
            ++r.records;
            r.bytes += p.size();
            return Status::Ok();
          });
      if (!s.ok()) r.problems.push_back(s.message());
    }
  }
  return r;
}

}  // namespace mt::recovery
