// bench_journal_append DIR TOTAL_MIB [RECORD_KIB] [COMMIT_EVERY] [BATCH_MIB]
// Appends RECORD_KIB (default 1024) records to a WAL Journal in DIR with group
// commit: a Commit is requested every COMMIT_EVERY records (default 4) without
// waiting, as a receiver acknowledging batches does; one Sync at the end.
// Prints {"bytes":..,"seconds":..,"mib_per_s":..,"segments":..}.
// TOTAL_MIB 0: appends nothing and times Journal::Open of the journal already
// in DIR (what starting or resuming a stream costs): prints
// {"open_seconds":..,"bytes":..,"segments":..}.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "retention/journal.h"

using namespace mt;
using namespace mt::retention;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_journal_append DIR TOTAL_MIB [RECORD_KIB] [COMMIT_EVERY] [BATCH_MIB]\n");
    return 2;
  }
  JournalOptions o;
  o.dir = argv[1];
  o.stream = 1;
  o.kind = SegmentKind::kWal;
  const uint64_t total = std::strtoull(argv[2], nullptr, 10) << 20;
  const size_t rec = (argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1024) << 10;
  const int every = argc > 4 ? std::atoi(argv[4]) : 4;
  if (argc > 5) o.max_batch_bytes = std::strtoull(argv[5], nullptr, 10) << 20;
  const auto opening = std::chrono::steady_clock::now();
  auto j = Journal::Open(shim::PosixFileSystem(), shim::SystemClock(), o, nullptr);
  if (!j.ok()) {
    std::fprintf(stderr, "bench_journal_append: %s\n", j.status().ToString().c_str());
    return 1;
  }
  if (total == 0) {
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - opening).count();
    uint64_t bytes = 0;
    for (const auto& seg : (*j)->Segments()) bytes += seg.bytes;
    std::printf("{\"open_seconds\":%.4f,\"bytes\":%llu,\"segments\":%zu}\n", secs,
                static_cast<unsigned long long>(bytes), (*j)->Segments().size());
    return 0;
  }
  std::vector<uint8_t> payload(rec);
  for (size_t i = 0; i < rec; ++i) payload[i] = static_cast<uint8_t>(i * 131 + 17);
  std::atomic<int> failed{0};
  const auto start = std::chrono::steady_clock::now();
  uint64_t seq = 0;
  for (uint64_t done = 0; done + rec <= total; done += rec) {
    RecordHeader h;
    h.seq = ++seq;
    h.length = static_cast<uint32_t>(rec);
    h.offset = done;
    Status s = (*j)->Append(h, payload.data(), payload.size());
    if (!s.ok()) {
      std::fprintf(stderr, "bench_journal_append: %s\n", s.ToString().c_str());
      return 1;
    }
    if (seq % every == 0)
      (*j)->Commit([&failed](const Status& st) { if (!st.ok()) ++failed; });
  }
  Status s = (*j)->Sync();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!s.ok() || failed > 0) {
    std::fprintf(stderr, "bench_journal_append: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("{\"bytes\":%llu,\"seconds\":%.4f,\"mib_per_s\":%.1f,\"segments\":%zu}\n",
              static_cast<unsigned long long>(seq * rec), secs, seq * rec / secs / (1 << 20),
              (*j)->Segments().size());
  return 0;
}
