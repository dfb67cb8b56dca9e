// bench_rollback --target DEV --retention-dir DIR [--workload-mib 1088]
//                [--changed-mib 16,64,128,256,512,1024] [--rounds 3] [--seed 1]
//
// Rollback time against the bytes changed after the point, and against
// rebuilding the point by replaying every write from the start (issue 7).
//
//  1. base:     the whole target is written once, sequentially, with random
//               data (the disk's content before the retention window; it
//               makes every before-image real, incompressible data).
//  2. workload: WORKLOAD_MIB of random writes (4 KiB..1 MiB, uniform in 4 KiB
//               steps, random 4 KiB-aligned offsets, random data) through
//               apply::Applier with retention on: before-images go to the undo
//               journal in DIR/undo, after-images to the target (O_DIRECT).
//               For each C in --changed-mib the point p_C is the seq after
//               which C MiB (at least) of writes follow.
//  3. rollback: recovery::Rollback to each p_C, newest point first, ROUNDS
//               times; only the Rollback call is timed (the undo segments are
//               dropped from the page cache before each call: cold reads).
//               Rollback(p) writes every undo record with seq > p whatever the
//               target holds, so its work does not depend on the state it
//               starts from; in round 1 (newest first) every call leaves the
//               exact image at p, and every round ends at the oldest point.
//  4. check:    CRC32C of the whole target at the oldest point.
//  5. replay:   the same target rebuilt from the start: the base image, then
//               every workload write in seq order, data from memory (a lower
//               bound for a system that reads them from a redo log); a flush
//               at each point, whose elapsed time since the start is the
//               replay time to that point. At the oldest point (reached first)
//               the clock is paused and the target's CRC32C must equal the
//               rollback's.
// Prints one JSON line per point, then a summary line.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "apply/applier.h"
#include "retention/journal.h"
#include "mt/shim/aligned_buffer.h"
#include "mt/shim/block_device.h"
#include "mt/shim/clock.h"
#include "mt/shim/crc32c.h"
#include "mt/shim/file_system.h"
#include "recovery/recovery.h"

using namespace mt;

namespace {
using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct NullCheckpoint : apply::CheckpointSink {
  Status Record(uint64_t, int64_t) override { return Status::Ok(); }
};

struct Write {
  uint64_t seq, offset, pool_off;
  uint32_t length;
};

constexpr uint64_t kPoolBytes = 64ull << 20;  // random data the writes take slices of
constexpr uint64_t kChunk = 4ull << 20;       // base image / read chunk

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "bench_rollback: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}
void Check(const std::string& what, const Status& s) {
  if (!s.ok()) Die(what, s);
}

// The base image: chunk k of the disk is a pool slice chosen by k.
const uint8_t* BaseChunk(const AlignedBuffer& pool, uint64_t k) {
  return pool.data() + (k * 2654435761ull % (kPoolBytes / kChunk - 1)) * kChunk;
}

void WriteBase(shim::BlockDevice& dev, const AlignedBuffer& pool) {
  for (uint64_t off = 0, k = 0; off < dev.size(); off += kChunk, ++k) {
    const size_t n = static_cast<size_t>(std::min(kChunk, dev.size() - off));
    Check("base write", dev.WriteAt(off, BaseChunk(pool, k), n));
  }
}

uint32_t DeviceCrc(shim::BlockDevice& dev) {
  AlignedBuffer buf(kChunk);
  uint32_t crc = 0;
  for (uint64_t off = 0; off < dev.size(); off += kChunk) {
    const size_t n = static_cast<size_t>(std::min(kChunk, dev.size() - off));
    Check("read", dev.ReadAt(off, buf.data(), n));
    crc = crc32c::Extend(crc, buf.data(), n);
  }
  return crc;
}

// Drops the undo segments from the page cache so each rollback reads them
// from the retention volume.
void DropCache(const std::vector<retention::SegmentInfo>& segs) {
  for (const auto& s : segs) {
    const int fd = ::open(s.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

struct ProcIo {
  uint64_t rchar = 0, read_bytes = 0;
};
// This process's I/O counters (proc(5)).
ProcIo ReadProcIo() {
  ProcIo io;
  std::FILE* f = std::fopen("/proc/self/io", "r");
  if (f == nullptr) return io;
  char key[64];
  unsigned long long v = 0;
  while (std::fscanf(f, "%63[^:]: %llu\n", key, &v) == 2) {
    if (std::strcmp(key, "rchar") == 0) io.rchar = v;
    if (std::strcmp(key, "read_bytes") == 0) io.read_bytes = v;
  }
  std::fclose(f);
  return io;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_rollback"};
  std::string target, dir, changed_list = "16,64,128,256,512,1024";
  uint64_t workload_mib = 1088, seed = 1;
  int rounds = 3;
  app.add_option("--target", target)->required();
  app.add_option("--retention-dir", dir)->required();
  app.add_option("--workload-mib", workload_mib);
  app.add_option("--changed-mib", changed_list);
  app.add_option("--rounds", rounds);
  app.add_option("--seed", seed);
  CLI11_PARSE(app, argc, argv);

  std::vector<uint64_t> changed;  // MiB, ascending: newest point first
  {
    std::stringstream ss(changed_list);
    for (std::string item; std::getline(ss, item, ',');) changed.push_back(std::stoull(item));
    std::sort(changed.begin(), changed.end());
  }
  if (changed.empty() || changed.back() > workload_mib) {
    std::fprintf(stderr, "bench_rollback: --changed-mib values must be <= --workload-mib\n");
    return 2;
  }

  shim::BlockDeviceOptions bo;
  bo.writable = true;
  bo.exclusive = true;
  auto devr = shim::OpenBlockDevice(target, bo);
  if (!devr.ok()) Die("open " + target, devr.status());
  shim::BlockDevice& dev = **devr;
  const uint64_t disk_bytes = dev.size() / kChunk * kChunk;

  std::mt19937_64 rng(seed);
  AlignedBuffer pool(kPoolBytes);
  {
    auto* w = reinterpret_cast<uint64_t*>(pool.data());
    for (uint64_t i = 0; i < kPoolBytes / 8; ++i) w[i] = rng();
  }

  // The workload, decided up front.
  std::vector<Write> writes;
  const uint64_t total = workload_mib << 20;
  for (uint64_t bytes = 0, seq = 1; bytes < total; ++seq) {
    const uint32_t len = static_cast<uint32_t>((1 + rng() % 256) * 4096);
    const uint64_t off = rng() % ((disk_bytes - len) / 4096 + 1) * 4096;
    const uint64_t pool_off = rng() % ((kPoolBytes - len) / 4096 + 1) * 4096;
    writes.push_back({seq, off, pool_off, len});
    bytes += len;
  }
  // Point for each C: the largest seq p with sum(len of writes > p) >= C MiB.
  struct Point {
    uint64_t changed_mib, seq, changed_bytes;
    std::vector<double> rollback_s;
    // Round 1's reads during the Rollback call (/proc/self/io): bytes the
    // storage delivered (read_bytes: the undo's cache was dropped, the target
    // is written O_DIRECT and not read) and bytes read(2) returned (rchar:
    // each part is scanned, then its payloads are read again, from the cache).
    uint64_t read_dev = 0, read_sys = 0;
    double replay_s = 0;
  };
  std::vector<Point> points;
  {
    uint64_t suffix = 0;
    size_t c = 0;
    for (size_t i = writes.size(); i-- > 0 && c < changed.size();) {
      suffix += writes[i].length;
      while (c < changed.size() && suffix >= (changed[c] << 20)) {
        points.push_back({changed[c], writes[i].seq - 1, suffix, {}, 0});
        ++c;
      }
    }
    if (points.size() != changed.size()) {
      std::fprintf(stderr, "bench_rollback: workload too small for the points\n");
      return 2;
    }
  }

  // 1. Base image.
  auto t = Clock::now();
  WriteBase(dev, pool);
  Check("flush", dev.Flush());
  const double base_s = Since(t);

  // 2. Workload through the applier, retention on.
  auto& fs = shim::PosixFileSystem();
  retention::JournalOptions jo;
  jo.kind = retention::SegmentKind::kUndo;
  jo.stream = 1;
  jo.dir = dir + "/undo";
  auto undo = retention::Journal::Open(fs, shim::SystemClock(), jo, nullptr);
  if (!undo.ok()) Die("open undo journal", undo.status());
  if ((*undo)->last_appended_seq() != 0) {
    std::fprintf(stderr, "bench_rollback: %s is not empty\n", jo.dir.c_str());
    return 2;
  }
  NullCheckpoint cp;
  t = Clock::now();
  {
    apply::Applier a(undo->get(), {{0, &dev}}, &cp, 0, apply::ApplierOptions{});
    std::vector<apply::WalRecord> batch;
    uint64_t batch_bytes = 0;
    for (size_t i = 0; i < writes.size(); ++i) {
      const Write& w = writes[i];
      retention::RecordHeader h;
      h.seq = w.seq;
      h.source_time_ns = static_cast<int64_t>(w.seq);
      h.disk = 0;
      h.offset = w.offset;
      h.length = w.length;
      batch.push_back({h, pool.data() + w.pool_off});
      batch_bytes += w.length;
      // 16 MiB batches, as the apply thread takes them (apply_batch_bytes).
      if (batch_bytes >= (16u << 20) || i + 1 == writes.size()) {
        Check("apply", a.Apply(batch));
        batch.clear();
        batch_bytes = 0;
      }
    }
  }
  Check("undo sync", (*undo)->Sync());
  const double apply_s = Since(t);
  const auto segs = (*undo)->Segments();
  Check("undo close", (*undo)->Close());
  uint64_t undo_stored = 0;
  for (const auto& s : segs) undo_stored += s.bytes;

  // 3. Rollbacks, newest point first, ROUNDS times.
  recovery::FileProgressStore progress(fs, dir + "/rollback-progress");
  for (int r = 0; r < rounds; ++r) {
    for (auto& p : points) {
      DropCache(segs);
      const ProcIo before = ReadProcIo();
      t = Clock::now();
      Check("rollback to seq " + std::to_string(p.seq),
            recovery::Rollback(fs, segs, {{0, &dev}}, p.seq, progress));
      p.rollback_s.push_back(Since(t));
      const ProcIo after = ReadProcIo();
      if (r == 0) {
        p.read_dev = after.read_bytes - before.read_bytes;
        p.read_sys = after.rchar - before.rchar;
      }
    }
  }
  // 4. The image at the oldest point, as the rollbacks left it.
  const uint32_t rollback_crc = DeviceCrc(dev);

  // 5. Replay from the start onto the same target (points oldest first).
  uint32_t replay_crc = 0;
  double paused = 0;
  t = Clock::now();
  WriteBase(dev, pool);
  {
    size_t next = points.size();  // points[next-1] is the oldest not reached yet
    size_t i = 0;
    auto at_points = [&]() {
      while (next > 0 && points[next - 1].seq == (i == 0 ? 0 : writes[i - 1].seq)) {
        Check("flush", dev.Flush());
        points[next - 1].replay_s = Since(t) - paused;
        if (next == points.size()) {
          const auto c = Clock::now();
          replay_crc = DeviceCrc(dev);
          paused += Since(c);
        }
        --next;
      }
    };
    at_points();
    for (; i < writes.size() && next > 0;) {
      const Write& w = writes[i];
      Check("replay write", dev.WriteAt(w.offset, pool.data() + w.pool_off, w.length));
      ++i;
      at_points();
    }
  }

  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  for (const auto& p : points) {
    std::string rs;
    for (double s : p.rollback_s) rs += (rs.empty() ? "" : ",") + std::to_string(s);
    const double m = median(p.rollback_s);
    std::printf("{\"disk_bytes\":%llu,\"changed_mib\":%llu,\"point_seq\":%llu,"
                "\"changed_bytes\":%llu,\"rollback_s\":[%s],\"rollback_median_s\":%.3f,"
                "\"rollback_mib_per_s\":%.1f,\"undo_read_dev_bytes\":%llu,"
                "\"undo_read_sys_bytes\":%llu,\"replay_s\":%.3f}\n",
                static_cast<unsigned long long>(disk_bytes),
                static_cast<unsigned long long>(p.changed_mib),
                static_cast<unsigned long long>(p.seq),
                static_cast<unsigned long long>(p.changed_bytes), rs.c_str(), m,
                p.changed_bytes / m / (1 << 20), static_cast<unsigned long long>(p.read_dev),
                static_cast<unsigned long long>(p.read_sys),
                p.replay_s);
  }
  std::printf("{\"disk_bytes\":%llu,\"writes\":%zu,\"workload_bytes\":%llu,\"base_s\":%.3f,"
              "\"apply_s\":%.3f,\"undo_segments\":%zu,\"undo_file_bytes\":%llu,"
              "\"rollback_crc\":\"%08x\",\"replay_crc\":\"%08x\",\"match\":%s}\n",
              static_cast<unsigned long long>(disk_bytes), writes.size(),
              static_cast<unsigned long long>(total), base_s, apply_s, segs.size(),
              static_cast<unsigned long long>(undo_stored), rollback_crc, replay_crc,
              rollback_crc == replay_crc ? "true" : "false");
  return rollback_crc == replay_crc ? 0 : 1;
}
