#include "send/replay.h"

#include <algorithm>
#include <cstdio>

#include "stream/frame_codec.h"
#include "mt/shim/clock.h"
#include "mt/shim/crc32c.h"
#include "mt/shim/file_system.h"
#include "send/reconnect.h"
#include "send/record.h"
#include "send/send_window.h"
#include "stream/validator.h"

namespace mt::send {

using Clock = std::chrono::steady_clock;
using stream::FrameHeader;
using namespace logwrites;

namespace {
constexpr uint64_t kMaxWriteBytes = 64u << 20;  // the stream's limit per write (not per discard)

void Fnv(uint64_t* h, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) {
    *h ^= b[i];
    *h *= 0x100000001b3ULL;
  }
}
void Fnv64(uint64_t* h, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
  Fnv(h, b, 8);
}
}  // namespace

Result<ReplayCursor> ReplayCursor::Open(LogSource& src, bool skip_discards) {
  MT_ASSIGN_OR_RETURN(Reader r, Reader::Open(src));
  return ReplayCursor(std::move(r), skip_discards);
}

Result<bool> ReplayCursor::Next(ReplayItem* item) {
  const uint32_t ss = reader_.super().sectorsize;
  for (;;) {
    Entry e;
    MT_ASSIGN_OR_RETURN(bool more, reader_.Next(&e));
    if (!more) return false;
    ReplayItem it;
    it.entry = e.index;
    if (e.is_mark()) {
      it.type = ReplayItem::kMark;
      std::string name = e.mark;
      for (int n = 2; names_.count(name) != 0; ++n) name = e.mark + "#" + std::to_string(n);
      names_.insert(name);
      it.name = name;
    } else if ((e.data_bytes == 0 && !e.is_discard()) || (e.is_discard() && skip_discards_)) {
      // An empty flush (or a skipped discard): its FLUSH goes onto the next
      // write or discard.
      if (!e.is_discard() || (e.flags & kFlush) != 0) pending_flags_ |= proto::WRITE_FLAG_FLUSH;
      continue;
    } else {
      it.type = e.is_discard() ? ReplayItem::kDiscard : ReplayItem::kWrite;
      it.offset = e.byte_offset(ss);
      it.length = e.byte_length(ss);
      it.flags = pending_flags_;
      pending_flags_ = 0;
      if (e.flags & kFlush) it.flags |= proto::WRITE_FLAG_FLUSH;
      if (e.flags & kFua) it.flags |= proto::WRITE_FLAG_FUA;
      if (e.is_discard()) it.flags |= proto::WRITE_FLAG_DISCARD;
    }
    it.log = std::move(e);
    it.index = next_index_++;
    *item = std::move(it);
    return true;
  }
}

Result<ReplaySummary> ScanCapture(LogSource& src, bool skip_discards) {
  MT_ASSIGN_OR_RETURN(Reader r, Reader::Open(src));
  ReplaySummary s;
  s.sectorsize = r.super().sectorsize;
  uint64_t h = 0xcbf29ce484222325ULL;
  if (skip_discards) Fnv64(&h, 0x6e6f2d646973636bULL);  // "no-disck": other items, other seqs
  Fnv64(&h, r.super().nr_entries);
  Fnv64(&h, r.super().sectorsize);
  Fnv64(&h, src.Size());
  for (;;) {
    Entry e;
    MT_ASSIGN_OR_RETURN(bool more, r.Next(&e));
    if (!more) break;
    Fnv64(&h, e.sector);
    Fnv64(&h, e.nr_sectors);
    Fnv64(&h, e.flags);
    Fnv64(&h, e.data_len);
    Fnv(&h, e.mark.data(), e.mark.size());
    if (e.is_mark()) {
      if (!stream::IsPrintableName(e.mark, 1, stream::kMaxNameBytes)) {
        return Status(Errc::kInvalidArgument, "dm-log-writes entry " + std::to_string(e.index) +
                                                  ": mark name is not 1..255 bytes of printable ASCII, "
                                                  "so it cannot be a tag name");
      }
      ++s.items;
      ++s.marks;
      continue;
    }
    if (e.data_bytes == 0 && !e.is_discard()) {
      ++s.folded_flushes;
      continue;
    }
    if (e.is_discard() && skip_discards) {
      ++s.skipped_discards;
      continue;
    }
    const uint64_t off = e.byte_offset(s.sectorsize), len = e.byte_length(s.sectorsize);
    // A discard carries a range, not data: only the disk bounds it.
    if (len > kMaxWriteBytes && !e.is_discard()) {
      return Status(Errc::kOutOfRange, "dm-log-writes entry " + std::to_string(e.index) + " covers " +
                                           std::to_string(len) + " bytes, more than the stream's " +
                                           std::to_string(kMaxWriteBytes) + " per write");
    }
    ++s.items;
    if (e.is_discard()) {
      ++s.discards;
    } else {
      ++s.writes;
      s.write_bytes += len;
    }
    s.max_end = std::max(s.max_end, off + len);
    s.align_or |= off | len;
    s.max_write = std::max(s.max_write, len);
  }
  s.fingerprint = h;
  return s;
}

Status CheckAlignment(LogSource& src, uint64_t lbs, uint32_t disk, bool skip_discards) {
  MT_ASSIGN_OR_RETURN(Reader r, Reader::Open(src));
  const uint32_t ss = r.super().sectorsize;
  for (;;) {
    Entry e;
    MT_ASSIGN_OR_RETURN(bool more, r.Next(&e));
    if (!more) return Status::Ok();
    if (e.is_mark() || (e.data_bytes == 0 && !e.is_discard())) continue;
    if (e.is_discard() && skip_discards) continue;
    const uint64_t off = e.byte_offset(ss), len = e.byte_length(ss);
    if (off % lbs != 0 || len % lbs != 0) {
      return Status(Errc::kMisaligned,
                    "dm-log-writes entry " + std::to_string(e.index) + " (" +
                        (e.is_discard() ? "discard" : "write") + " of " + std::to_string(len) +
                        " bytes at byte " + std::to_string(off) + ") is not aligned to disk " +
                        std::to_string(disk) + "'s logical block size " + std::to_string(lbs));
    }
  }
}

Status ApplyCapture(LogSource& src, std::vector<uint8_t>* image, bool skip_discards) {
  MT_ASSIGN_OR_RETURN(ReplayCursor c, ReplayCursor::Open(src, skip_discards));
  std::vector<uint8_t> data;
  for (;;) {
    ReplayItem it;
    MT_ASSIGN_OR_RETURN(bool more, c.Next(&it));
    if (!more) return Status::Ok();
    if (it.type == ReplayItem::kMark) continue;
    if (it.offset + it.length > image->size()) {
      return Status(Errc::kOutOfRange, "capture entry " + std::to_string(it.entry) + " beyond the image");
    }
    if (it.type == ReplayItem::kDiscard) {
      std::fill_n(image->begin() + static_cast<ptrdiff_t>(it.offset), it.length, 0);
      continue;
    }
    MT_RETURN_IF_ERROR(c.ReadData(it, &data));
    std::copy(data.begin(), data.end(), image->begin() + static_cast<ptrdiff_t>(it.offset));
  }
}

// ---------------------------------------------------------------------------

namespace {

double SecondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The replay over a Connection, with the reconnect discipline of every
// mtsend command (reconnect.h).
class ReplayRunner final : public ReconnectingRunner {
 public:
  ReplayRunner(const ReplayOptions& o, LogSource& src, ReplaySummary summary)
      : ReconnectingRunner(o.connect, o.retry_for, o.verbose), o_(o), src_(src) {
    res_.summary = summary;
  }

  Result<ReplayResult> Go() {
    Status s = Run();
    if (!s.ok()) return s;
    res_.run.seconds = SecondsSince(started_);
    res_.run.reconnects = reconnects();
    return res_;
  }

 private:
  struct Item {
    ReplayItem r;
    uint64_t seq = 0;
    std::vector<uint8_t> data;
    uint32_t crc = 0;
    int64_t time_ns = 0;

    bool is_tag() const { return r.type == ReplayItem::kMark; }
    uint64_t charge() const { return data.size(); }
    uint64_t write_bytes() const { return r.type == ReplayItem::kWrite ? r.length : 0; }
  };

  Status OnWelcome(const proto::Welcome& w) override {
    const uint32_t d = o_.disk;
    auto it = std::find_if(w.disks().begin(), w.disks().end(),
                           [d](const proto::DiskInfo& i) { return i.disk() == d; });
    if (it == w.disks().end()) {
      return Status(Errc::kNotFound, "the receiver's stream '" + o_.connect.stream + "' has no disk " +
                                         std::to_string(d) + " (--disk " + std::to_string(d) + ")");
    }
    const ReplaySummary& s = res_.summary;
    if (it->size_bytes() < s.max_end) {
      return Status(Errc::kOutOfRange, "the capture writes up to byte " + std::to_string(s.max_end) +
                                           " but the receiver's disk " + std::to_string(d) + " has " +
                                           std::to_string(it->size_bytes()) + " bytes");
    }
    const uint64_t lbs = it->logical_block_size();
    if (lbs == 0 || (lbs & (lbs - 1)) != 0) {
      return Status(Errc::kProtocol, "disk " + std::to_string(d) + " reports logical block size " +
                                         std::to_string(lbs));
    }
    if ((s.align_or & (lbs - 1)) != 0) {
      MT_RETURN_IF_ERROR(CheckAlignment(src_, lbs, d, o_.skip_discards));
    }
    const uint64_t r = w.resume_seq();
    if (!opened_) {
      opened_ = true;
      uint64_t start = r;
      if (!o_.record_path.empty()) {
        MT_ASSIGN_OR_RETURN(record_, RecordWriter::Open(shim::PosixFileSystem(), o_.record_path,
                                                        s.fingerprint, r));
        start = record_->start();
      }
      res_.start = start;
      end_seq_ = start + s.items;
      res_.run.first_seq = r + 1;
      res_.run.last_seq = r;
      MT_ASSIGN_OR_RETURN(ReplayCursor c, ReplayCursor::Open(src_, o_.skip_discards));
      cursor_ = std::make_unique<ReplayCursor>(std::move(c));
      // Skip the items that are durable already (seq <= r).
      next_seq_ = start + 1;
      while (next_seq_ <= r && next_seq_ <= end_seq_) {
        ReplayItem skip;
        MT_ASSIGN_OR_RETURN(bool more, cursor_->Next(&skip));
        if (!more) break;
        ++next_seq_;
      }
      if (r > end_seq_) next_seq_ = r + 1;  // the stream went on after the replay
    }
    // Resend what is not durable, exactly as it was.
    MT_RETURN_IF_ERROR(window_.Resume(
        r, o_.batch_writes, &res_.run, [this](const std::vector<const Item*>& b) { return SendBatch(b); },
        [this](const Item& i) { return SendTag(i); }));
    Pump();
    return Status::Ok();
  }

  Status OnFrame(stream::Frame&& f) override {
    MT_ASSIGN_OR_RETURN(const bool pump, window_.OnFrame(f, &res_.run));
    if (pump) Pump();
    return Status::Ok();
  }

  bool Done() const { return next_seq_ > end_seq_; }

  void Pump() override {
    if (!opened_ || finished()) return;
    if (Done() && window_.empty()) return Finish(Status::Ok());
    if (!connected()) return;
    while (conn_ && window_.HasRoom(conn_->queued_bytes()) && !Done()) {
      Status s = SendNext();
      if (!s.ok()) return Finish(s);
    }
  }

  // Reads, records and sends the next run of writes/discards, or one mark.
  Status SendNext() {
    const int64_t now_ns = shim::SystemClock().NowNs();
    std::vector<RecordEntry> rec;
    const size_t first = window_.size();
    uint64_t bytes = 0;
    while (!Done() && bytes < o_.batch_bytes && window_.size() - first < o_.batch_writes) {
      if (!peeked_) {
        MT_ASSIGN_OR_RETURN(bool more, cursor_->Next(&peek_));
        if (!more) {
          return Status(Errc::kInternal, "the capture ended before seq " + std::to_string(next_seq_));
        }
        peeked_ = true;
      }
      if (peek_.type == ReplayItem::kMark && window_.size() > first) break;  // a tag goes alone
      Item i;
      i.r = std::move(peek_);
      peeked_ = false;
      i.seq = next_seq_++;
      i.time_ns = now_ns;
      RecordEntry e;
      e.seq = i.seq;
      if (i.r.type == ReplayItem::kMark) {
        e.type = 'T';
        e.kind = o_.mark_kind == proto::TAG_KIND_USER ? "user" : o_.mark_kind == proto::TAG_KIND_CRASH ? "crash" : "app";
        e.name = i.r.name;
        rec.push_back(e);
        if (record_) MT_RETURN_IF_ERROR(record_->Append(rec));
        return SendTag(window_.Push(std::move(i)));
      }
      if (i.r.type == ReplayItem::kWrite) {
        MT_RETURN_IF_ERROR(cursor_->ReadData(i.r, &i.data));
        i.crc = crc32c::Value(i.data.data(), i.data.size());
      }
      e.disk = o_.disk;
      e.offset = i.r.offset;
      e.length = i.r.length;
      e.crc32c = i.crc;
      rec.push_back(e);
      bytes += i.data.size();
      window_.Push(std::move(i));
    }
    if (record_) MT_RETURN_IF_ERROR(record_->Append(rec));
    return SendBatch(window_.Since(first));
  }

  Status SendBatch(const std::vector<const Item*>& items) {
    if (items.empty() || !conn_) return Status::Ok();
    FrameHeader h;
    proto::WriteBatch* b = h.mutable_write_batch();
    b->set_first_seq(items.front()->seq);
    std::vector<stream::ConstSlice> payload;
    for (const Item* i : items) {
      proto::Write* w = b->add_writes();
      w->set_seq(i->seq);
      w->set_disk(o_.disk);
      w->set_offset(i->r.offset);
      w->set_length(i->r.length);
      w->set_flags(i->r.flags);
      w->set_source_time_ns(i->time_ns);
      w->set_crc32c(i->crc);
      if (!i->data.empty()) payload.push_back({i->data.data(), i->data.size()});
    }
    return conn_->Send(h, payload);
  }

  Status SendTag(const Item& i) {
    if (!conn_) return Status::Ok();
    FrameHeader h;
    proto::Tag* t = h.mutable_tag();
    t->set_seq(i.seq);
    t->set_name(i.r.name);
    t->set_kind(o_.mark_kind);
    t->set_source_time_ns(i.time_ns);
    return conn_->Send(h);
  }

  const ReplayOptions o_;
  LogSource& src_;
  bool opened_ = false, peeked_ = false;
  std::unique_ptr<RecordWriter> record_;
  std::unique_ptr<ReplayCursor> cursor_;
  ReplayItem peek_;
  uint64_t next_seq_ = 1, end_seq_ = 0;
  SendWindow<Item> window_{"replay", o_.window_bytes};  // sent, not yet durable
  ReplayResult res_;
};

}  // namespace

Result<ReplayResult> RunReplay(const ReplayOptions& options) {
  shim::FileSystem& fs = shim::PosixFileSystem();
  if (!fs.Exists(options.path)) return Status(Errc::kNotFound, "no capture " + options.path);
  std::unique_ptr<shim::File> f;
  std::unique_ptr<shim::BlockDevice> dev;
  std::unique_ptr<LogSource> src;
  if (shim::IsBlockDeviceNode(options.path)) {
    shim::BlockDeviceOptions bo;
    bo.writable = false;
    bo.direct = false;
    MT_ASSIGN_OR_RETURN(dev, shim::OpenBlockDevice(options.path, bo));
    src = std::make_unique<BlockDeviceSource>(*dev);
  } else {
    MT_ASSIGN_OR_RETURN(f, fs.OpenFile(options.path, shim::FileOptions{}));
    src = std::make_unique<FileSource>(*f);
  }
  Result<ReplaySummary> s = ScanCapture(*src, options.skip_discards);
  if (!s.ok()) return s.status().WithContext(options.path);
  return ReplayRunner(options, *src, *s).Go();
}

}  // namespace mt::send
