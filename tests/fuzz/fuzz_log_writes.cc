// Fuzzes the dm-log-writes decoder and the replay cursor
// (agent/send/log_writes.h, replay.h).
//
// Input byte 0 picks the mode: odd: the rest is the whole capture; even: the
// rest follows a valid super block (sectorsize 512 << (byte 1 % 4),
// nr_entries from bytes 2..3), so the entries get fuzzed rather than the
// magic. Checked: no crash, over-read or hang; every error is kCorruption
// (or a refused mark name / oversized write from the scan); every decoded
// entry lies inside the capture, after the previous one, with data only for
// writes; the cursor, the scan and ApplyCapture agree on the item count and
// ApplyCapture stays inside an image of the scanned size.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "send/log_writes.h"
#include "send/replay.h"

using namespace mt;
using namespace mt::send;
using namespace mt::send::logwrites;

namespace {
void Check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  std::vector<uint8_t> cap;
  if (data[0] & 1) {
    cap.assign(data + 1, data + size);
  } else {
    const uint32_t ss = 512u << (data[1] % 4);
    Writer w(ss);
    cap = w.Finish(static_cast<int64_t>(data[2] | (data[3] << 8)));
    cap.insert(cap.end(), data + 4, data + size);
  }
  BytesSource src(cap.data(), cap.size());

  uint64_t entries = 0;
  {
    Result<Reader> r = Reader::Open(src);
    if (!r.ok()) {
      Check(r.status().code() == Errc::kCorruption);
      return 0;
    }
    const uint32_t ss = r->super().sectorsize;
    uint64_t last = 0;
    for (;;) {
      Entry e;
      Result<bool> more = r->Next(&e);
      if (!more.ok()) {
        Check(more.status().code() == Errc::kCorruption);
        break;
      }
      if (!*more) break;
      Check(e.index == entries);
      Check(e.header_offset >= last + ss || entries == 0);
      Check(e.header_offset + ss <= cap.size());
      if (e.data_bytes > 0) {
        Check(!e.is_mark() && !e.is_discard());
        Check(e.data_offset == e.header_offset + ss);
        Check(e.data_offset + e.data_bytes <= cap.size());
        Check(e.data_bytes == e.nr_sectors * ss);
        std::vector<uint8_t> d;
        Check(r->ReadData(e, &d).ok());
      }
      if (e.is_mark()) Check(!e.mark.empty() && e.mark.size() <= ss - kEntryHeaderBytes);
      last = e.header_offset;
      ++entries;
    }
    Check(entries <= r->super().nr_entries);
  }

  Result<ReplaySummary> s = ScanCapture(src);
  if (!s.ok()) return 0;
  Result<ReplayCursor> c = ReplayCursor::Open(src);
  Check(c.ok());
  uint64_t items = 0;
  for (;;) {
    ReplayItem it;
    Result<bool> more = c->Next(&it);
    Check(more.ok());
    if (!*more) break;
    Check(it.index == items);
    if (it.type != ReplayItem::kMark) Check(it.offset + it.length <= s->max_end);
    ++items;
  }
  Check(items == s->items);
  if (s->max_end <= (16u << 20)) {
    std::vector<uint8_t> image(s->max_end, 0);
    Check(ApplyCapture(src, &image).ok());
  }
  return 0;
}
