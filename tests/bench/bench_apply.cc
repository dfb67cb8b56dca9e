// bench_apply --retention-dir DIR --target DEV [--target DEV...] --mib N [--write-kib K]
//             [--retention on|off] [--compress on|off] [--stage apply|e2e]
//
// Throughput of the agent's data path on real devices, without the network:
//  e2e:   frames -> StreamRuntime (validate, WAL group commit, ack) -> applier
//         (before-image, undo, target write, flush, checkpoint); time until
//         everything is applied.
//  apply: the applier alone on records already in memory (what the apply
//         thread does once the WAL holds them).
// Writes are sequential WRITE_KIB blocks over the targets round robin, data
// random (incompressible: the worst case for undo compression).
// Prints one JSON line with MiB/s and the peak RSS of the process.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "apply/applier.h"
#include "mt/shim/crc32c.h"
#include "mt/shim/file_system.h"
#include "retention/retention_store.h"
#include "daemon/stream_runtime.h"

using namespace mt;

namespace {
struct NullCheckpoint : apply::CheckpointSink {
  Status Record(uint64_t, int64_t) override { return Status::Ok(); }
};
long PeakRssKib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_apply"};
  std::string dir, retention = "on", compress = "on", stage = "e2e";
  std::vector<std::string> targets;
  uint64_t mib = 1024, kib = 1024;
  app.add_option("--retention-dir", dir)->required();
  app.add_option("--target", targets)->required();
  app.add_option("--mib", mib);
  app.add_option("--write-kib", kib);
  app.add_option("--retention", retention);
  app.add_option("--compress", compress);
  app.add_option("--stage", stage);
  size_t io_depth = 4;
  app.add_option("--io-depth", io_depth, "target I/Os in flight per apply batch (the daemon's: 4)");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::unique_ptr<shim::BlockDevice>> devs;
  std::map<uint32_t, shim::BlockDevice*> disks;
  for (size_t i = 0; i < targets.size(); ++i) {
    shim::BlockDeviceOptions o;
    o.writable = true;
    o.exclusive = true;
    auto d = shim::OpenBlockDevice(targets[i], o);
    if (!d.ok()) {
      std::fprintf(stderr, "bench_apply: %s\n", d.status().ToString().c_str());
      return 1;
    }
    disks[static_cast<uint32_t>(i)] = d->get();
    devs.push_back(std::move(d).value());
  }
  const uint64_t len = kib << 10;
  const uint64_t total = mib << 20;
  std::vector<uint8_t> data(len * 8);
  std::mt19937_64 rng(1);
  for (auto& b : data) b = static_cast<uint8_t>(rng());

  apply::ApplierOptions ao;
  ao.retention = retention == "on";
  ao.compress = compress == "on";
  ao.io_depth = io_depth;
  const auto start = std::chrono::steady_clock::now();
  uint64_t seq = 0, written = 0;
  std::vector<uint64_t> next_off(devs.size(), 0);
  auto next_write = [&](proto::Write* w) {
    const uint32_t d = static_cast<uint32_t>(seq % devs.size());
    if (next_off[d] + len > devs[d]->size()) next_off[d] = 0;
    w->set_seq(++seq);
    w->set_disk(d);
    w->set_offset(next_off[d]);
    w->set_length(len);
    w->set_source_time_ns(static_cast<int64_t>(seq));
    next_off[d] += len;
    written += len;
    return data.data() + (seq % 8) * len;
  };

  if (stage == "apply") {
    retention::JournalOptions jo;
    jo.kind = retention::SegmentKind::kUndo;
    jo.stream = 1;
    jo.dir = dir + "/undo";
    auto undo = retention::Journal::Open(shim::PosixFileSystem(), shim::SystemClock(), jo, nullptr);
    if (!undo.ok()) {
      std::fprintf(stderr, "bench_apply: %s\n", undo.status().ToString().c_str());
      return 1;
    }
    NullCheckpoint cp;
    apply::Applier a(undo->get(), disks, &cp, 0, ao);
    while (written < total) {
      std::vector<apply::WalRecord> batch;
      for (int i = 0; i < 16 && written < total; ++i) {
        proto::Write w;
        const uint8_t* p = next_write(&w);
        retention::RecordHeader h;
        h.seq = w.seq();
        h.disk = w.disk();
        h.offset = w.offset();
        h.length = static_cast<uint32_t>(len);
        batch.push_back({h, p});
      }
      Status s = a.Apply(batch);
      if (!s.ok()) {
        std::fprintf(stderr, "bench_apply: %s\n", s.ToString().c_str());
        return 1;
      }
    }
  } else {
    retention::StoreOptions so;
    so.root = dir;
    auto store = retention::RetentionStore::Open(shim::PosixFileSystem(), shim::SystemClock(), so);
    if (!store.ok()) {
      std::fprintf(stderr, "bench_apply: %s\n", store.status().ToString().c_str());
      return 1;
    }
    retention::StreamRow row;
    row.name = "bench";
    const uint64_t id = (*store)->catalog().AddStream(row).value();
    for (uint32_t d = 0; d < devs.size(); ++d) {
      retention::DiskRow dr;
      dr.stream = id;
      dr.disk = d;
      dr.target_id = targets[d];
      dr.size_bytes = devs[d]->size();
      dr.block_size = devs[d]->logical_block_size();
      dr.resync_state = retention::ResyncState::kComplete;
      (void)(*store)->catalog().AddDisk(dr);
    }
    daemon::RuntimeOptions ro;
    ro.applier = ao;
    auto rt = daemon::StreamRuntime::Start(**store, shim::SystemClock(), id, disks, ro);
    if (!rt.ok() || !(*rt)->Attach("bench").ok()) {
      std::fprintf(stderr, "bench_apply: %s\n", rt.status().ToString().c_str());
      return 1;
    }
    while (written < total) {
      auto f = std::make_shared<stream::Frame>();
      f->payload.reserve(4 * len);
      auto* b = f->header.mutable_write_batch();
      b->set_first_seq(seq + 1);
      for (int i = 0; i < 4 && written < total; ++i) {
        proto::Write* w = b->add_writes();
        const uint8_t* p = next_write(w);
        w->set_crc32c(crc32c::Value(p, len));
        const size_t at = f->payload.size();  // resize + memcpy: see PageAlignedAllocator
        f->payload.resize(at + len);
        std::memcpy(f->payload.data() + at, p, len);
      }
      f->header.set_payload_length(f->payload.size());
      while ((*rt)->Throttled()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      Status s = (*rt)->Ingest(f, [](const Status&, uint64_t) {});
      if (!s.ok()) {
        std::fprintf(stderr, "bench_apply: %s\n", s.ToString().c_str());
        return 1;
      }
    }
    // Wait for the last acknowledgement, then for the applier.
    for (int i = 0; i < 60000 && (*rt)->Health().durable_seq < seq; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    Status s = (*rt)->WaitApplied(600'000);
    if (!s.ok()) {
      std::fprintf(stderr, "bench_apply: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"stage\":\"%s\",\"retention\":\"%s\",\"bytes\":%llu,\"seconds\":%.3f,"
              "\"mib_per_s\":%.1f,\"peak_rss_kib\":%ld}\n",
              stage.c_str(), retention.c_str(), static_cast<unsigned long long>(written), secs,
              written / secs / (1 << 20), PeakRssKib());
  return 0;
}
