#include "retention/scrub.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <set>
#include <sstream>

#include "retention/segment_reader.h"

namespace mt::retention {

std::string DamagePath(const std::string& stream_dir) {
  return shim::JoinPath(stream_dir, "damaged");
}

Result<std::vector<DamagedSegment>> ReadDamage(shim::FileSystem& fs, const std::string& stream_dir) {
  std::vector<DamagedSegment> out;
  const std::string path = DamagePath(stream_dir);
  if (!fs.Exists(path)) return out;
  MT_ASSIGN_OR_RETURN(std::string text, shim::ReadSmallFile(fs, path));
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    DamagedSegment d;
    char kind[8] = {};
    unsigned long long number = 0, first = 0, last = 0;
    long long found = 0;
    int used = 0;
    if (std::sscanf(line.c_str(), "%7s %llu %llu %llu %lld %n", kind, &number, &first, &last,
                    &found, &used) != 5)
      return Status(Errc::kCorruption, path + ": unreadable line '" + line + "'");
    const std::string k = kind;
    if (k != "wal" && k != "undo") return Status(Errc::kCorruption, path + ": unknown kind " + k);
    d.kind = k == "wal" ? SegmentKind::kWal : SegmentKind::kUndo;
    d.number = number;
    d.first_seq = first;
    d.last_seq = last;
    d.found_ns = found;
    d.reason = line.substr(static_cast<size_t>(used));
    out.push_back(std::move(d));
  }
  return out;
}

Status RecordDamage(shim::FileSystem& fs, const std::string& stream_dir, const DamagedSegment& d) {
  MT_ASSIGN_OR_RETURN(auto all, ReadDamage(fs, stream_dir));
  for (const auto& e : all)
    if (e.kind == d.kind && e.number == d.number && e.first_seq == d.first_seq) return Status::Ok();
  all.push_back(d);
  std::string text;
  for (const auto& e : all) {
    std::string reason = e.reason;
    std::replace(reason.begin(), reason.end(), '\n', ' ');
    char head[128];
    std::snprintf(head, sizeof head, "%s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64 " ",
                  SegmentKindName(e.kind), e.number, e.first_seq, e.last_seq, e.found_ns);
    text += head + reason + "\n";
  }
  return shim::WriteFileAtomically(fs, DamagePath(stream_dir), text);
}

std::vector<DamagedSegment> DamageOf(const std::vector<DamagedSegment>& recorded,
                                     const std::vector<SegmentInfo>& undo) {
  std::vector<DamagedSegment> out;
  for (const auto& d : recorded) {
    if (d.kind != SegmentKind::kUndo) continue;
    for (const auto& s : undo)
      if (s.number == d.number && s.first_seq == d.first_seq) out.push_back(d);
  }
  return out;
}

Status VerifySegment(shim::FileSystem& fs, const SegmentInfo& seg) {
  MT_ASSIGN_OR_RETURN(auto reader, SegmentReader::Open(fs, seg.path, /*sealed=*/true));
  ScanReport report;
  MT_RETURN_IF_ERROR(reader->Scan(&report, seg.bytes));
  if (reader->records().size() != seg.records)
    return Status(Errc::kCorruption, seg.path + ": " + std::to_string(reader->records().size()) +
                                         " records where its index says " +
                                         std::to_string(seg.records));
  if (seg.records > 0 && (reader->records().front().header.seq != seg.first_seq ||
                          reader->records().back().header.seq != seg.last_seq))
    return Status(Errc::kCorruption, seg.path + ": its records are not seq " +
                                         std::to_string(seg.first_seq) + " .. " +
                                         std::to_string(seg.last_seq) + " as its index says");
  return Status::Ok();
}

Scrubber::Scrubber(shim::FileSystem& fs, shim::Clock& clock, Options o, ListFn list)
    : fs_(fs), clock_(clock), o_(o), list_(std::move(list)) {}

Scrubber::~Scrubber() { Stop(); }

void Scrubber::Start() {
  if (o_.bytes_per_second == 0 || thread_.joinable()) return;
  {
    MutexLock l(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] {
    while (true) {
      const size_t n = Round(/*paced=*/true);
      UniqueLock l(mu_);
      if (stopping_) return;
      if (n == 0)
        cv_.wait_for(l.native(), std::chrono::nanoseconds(o_.idle_poll_ns), [this]() MT_REQUIRES(mu_) { return stopping_; });
      if (stopping_) return;
    }
  });
}

void Scrubber::Stop() {
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

size_t Scrubber::RunOnce() { return Round(/*paced=*/false); }

size_t Scrubber::Round(bool paced) {
  size_t checked = 0;
  const std::vector<StreamJournals> streams = list_();
  {
    // Forget segments no longer listed (pruned, or their stream closed): the
    // map stays the size of what is open.
    std::set<std::string> listed;
    for (const StreamJournals& s : streams)
      for (const auto* segs : {&s.undo, &s.wal})
        for (const SegmentInfo& seg : *segs) listed.insert(seg.path);
    MutexLock l(mu_);
    for (auto it = checked_at_.begin(); it != checked_at_.end();)
      it = listed.count(it->first) != 0 ? std::next(it) : checked_at_.erase(it);
  }
  for (const StreamJournals& s : streams) {
    for (SegmentKind kind : {SegmentKind::kUndo, SegmentKind::kWal}) {
      for (const SegmentInfo& seg : kind == SegmentKind::kUndo ? s.undo : s.wal) {
        if (!seg.sealed) continue;
        const int64_t now = clock_.NowNs();
        {
          MutexLock l(mu_);
          if (stopping_) return checked;
          auto it = checked_at_.find(seg.path);
          if (it != checked_at_.end() && now - it->second < o_.every_ns) continue;
        }
        const auto t0 = std::chrono::steady_clock::now();
        Check(s, kind, seg);
        ++checked;
        if (!paced) continue;
        // The rate limit: this segment's bytes take at least bytes / rate.
        const auto due = t0 + std::chrono::nanoseconds(static_cast<int64_t>(
                                  1e9 * static_cast<double>(seg.bytes) / o_.bytes_per_second));
        UniqueLock l(mu_);
        cv_.wait_until(l.native(), due, [this]() MT_REQUIRES(mu_) { return stopping_; });
        if (stopping_) return checked;
      }
    }
  }
  return checked;
}

void Scrubber::Check(const StreamJournals& s, SegmentKind kind, const SegmentInfo& seg) {
  if (!fs_.Exists(seg.path)) return;  // pruned since it was listed
  Status v = VerifySegment(fs_, seg);
  const int64_t now = clock_.NowNs();
  if (!v.ok() && v.code() != Errc::kCorruption) return;  // not damage: next round
  if (!v.ok() && !StillListed(s.stream, kind, seg)) return;  // pruned, or a rollback cut it
  if (!v.ok() && VerifySegment(fs_, seg).ok()) return;  // changed while it was read
  std::string alert;
  if (!v.ok()) {
    DamagedSegment d;
    d.kind = kind;
    d.number = seg.number;
    d.first_seq = seg.first_seq;
    d.last_seq = seg.last_seq;
    d.found_ns = now;
    d.reason = v.message();
    Status r = RecordDamage(fs_, s.dir, d);
    alert = std::string(SegmentKindName(kind)) + " segment " + std::to_string(seg.number) +
            " (seq " + std::to_string(seg.first_seq) + " .. " + std::to_string(seg.last_seq) +
            ") failed its check: " + v.message() +
            (kind == SegmentKind::kUndo
                 ? "; points before seq " + std::to_string(seg.last_seq) +
                       " cannot be recovered (mtctl verify lists the damage)"
                 : "; mtctl verify lists the damage") +
            (r.ok() ? "" : " (recording it failed: " + r.message() + ")");
  }
  if (!alert.empty() && o_.on_damage) o_.on_damage(s.stream, alert);
  MutexLock l(mu_);
  checked_at_[seg.path] = now;
  ++checked_segments_;
  checked_bytes_ += seg.bytes;
  if (!alert.empty()) {
    std::string& a = alerts_[s.stream];
    a = a.empty() ? alert : a + "; " + alert;
  }
}

bool Scrubber::StillListed(uint64_t stream, SegmentKind kind, const SegmentInfo& seg) const {
  if (!fs_.Exists(seg.path)) return false;
  for (const StreamJournals& s : list_()) {
    if (s.stream != stream) continue;
    for (const SegmentInfo& now : kind == SegmentKind::kUndo ? s.undo : s.wal)
      if (now.number == seg.number && now.sealed && now.created_ns == seg.created_ns &&
          now.bytes == seg.bytes)
        return true;
  }
  return false;
}

std::string Scrubber::Alert(uint64_t stream) const {
  MutexLock l(mu_);
  auto it = alerts_.find(stream);
  return it == alerts_.end() ? "" : it->second;
}

uint64_t Scrubber::checked_segments() const {
  MutexLock l(mu_);
  return checked_segments_;
}

uint64_t Scrubber::checked_bytes() const {
  MutexLock l(mu_);
  return checked_bytes_;
}

}  // namespace mt::retention
