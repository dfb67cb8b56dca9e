#include "send/mtsend.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "config/credential_store.h"
#include "mt/shim/file_system.h"
#include "send/record.h"
#include "send/replay.h"
#include "send/sender.h"
#include "config/tls_identity.h"

namespace mt::send {

namespace {

struct Common {
  std::string to, stream, key_file, key_hex, fingerprint, sender_id = "mtsend";
  double retry_for = 60;
  bool verbose = false;
};

void AddCommon(CLI::App* app, Common* c) {
  app->add_option("--to", c->to, "receiver address HOST:PORT (port 9443 if omitted)")->required();
  app->add_option("--stream", c->stream, "stream name")->required();
  auto* kf = app->add_option("--key", c->key_file, "file with the stream credential (64 hex digits)");
  auto* kh = app->add_option("--key-hex", c->key_hex, "the stream credential as 64 hex digits");
  kf->excludes(kh);
  app->add_option("--fingerprint", c->fingerprint,
                  "SHA-256 fingerprint of the receiver's certificate (hex, colons allowed)")
      ->required();
  app->add_option("--sender-id", c->sender_id, "name of this sender in the receiver's logs");
  app->add_option("--retry-for", c->retry_for,
                  "seconds of failing without progress (an ack, or resync comparing further) "
                  "after which reconnecting stops (default 60; 0: no retry)")
      ->check(CLI::NonNegativeNumber);
  app->add_flag("--verbose,-v", c->verbose,
                "a line on stderr for every reconnect (without it: at most one every 5 s)");
}

Result<ConnectOptions> ToConnect(const Common& c) {
  ConnectOptions o;
  std::string host = c.to, port = "9443";
  if (!host.empty() && host[0] == '[') {
    const size_t close = host.find(']');
    if (close == std::string::npos) return Status(Errc::kInvalidArgument, "--to '" + c.to + "': missing ']'");
    if (close + 1 < host.size()) {
      if (host[close + 1] != ':') return Status(Errc::kInvalidArgument, "--to '" + c.to + "' is not HOST:PORT");
      port = host.substr(close + 2);
    }
    host = host.substr(1, close - 1);
  } else if (host.find(':') != std::string::npos && host.find(':') == host.rfind(':')) {
    port = host.substr(host.find(':') + 1);
    host = host.substr(0, host.find(':'));
  }
  char* end = nullptr;
  const unsigned long p = std::strtoul(port.c_str(), &end, 10);
  if (host.empty() || port.empty() || *end != '\0' || p == 0 || p > 65535) {
    return Status(Errc::kInvalidArgument, "--to '" + c.to + "' is not HOST:PORT");
  }
  o.host = host;
  o.port = static_cast<uint16_t>(p);
  o.stream = c.stream;
  o.sender_id = c.sender_id;
  std::string hex = c.key_hex;
  if (!c.key_file.empty()) {
    shim::FileSystem& fs = shim::PosixFileSystem();
    MT_ASSIGN_OR_RETURN(std::unique_ptr<shim::File> f, fs.OpenFile(c.key_file, shim::FileOptions{}));
    hex.assign(std::min<uint64_t>(f->Size(), 4096), '\0');
    MT_ASSIGN_OR_RETURN(size_t got, f->ReadAt(0, hex.data(), hex.size()));
    hex.resize(got);
  }
  if (hex.empty()) return Status(Errc::kInvalidArgument, "give the stream credential: --key FILE or --key-hex HEX");
  Result<std::string> key = daemon::FromHex(hex);
  if (!key.ok() || key->empty()) {
    return Status(Errc::kInvalidArgument, "the stream credential is not hex digits");
  }
  o.key = *key;
  MT_ASSIGN_OR_RETURN(o.fingerprint, daemon::NormalizeFingerprint(c.fingerprint));
  return o;
}

// "100" or "100/s": writes per second; "50MiB/s", "1G/s": bytes per second.
Status ParseRate(const std::string& text, WorkloadOptions* o) {
  std::string t = text;
  if (t.size() > 2 && t.compare(t.size() - 2, 2, "/s") == 0) t.resize(t.size() - 2);
  const bool bytes = t.find_first_not_of("0123456789.") != std::string::npos;
  if (!bytes) {
    char* end = nullptr;
    const double v = std::strtod(t.c_str(), &end);
    if (t.empty() || *end != '\0' || v <= 0) return Status(Errc::kInvalidArgument, "--rate '" + text + "' is not a rate");
    o->rate_writes = v;
    return Status::Ok();
  }
  Result<uint64_t> b = ParseBytes(t);
  if (!b.ok() || *b == 0) return Status(Errc::kInvalidArgument, "--rate '" + text + "' is not a rate (e.g. 200 or 50MiB/s)");
  o->rate_bytes = static_cast<double>(*b);
  return Status::Ok();
}

// Writes a rebuilt disk image to `path` as fopen(path, "wb") + fwrite did:
// created if missing (owner-only, the shim's mode), its old content replaced
// (a longer old file is cut to the image's size), not synced.
Status WriteImage(const std::string& path, const std::vector<uint8_t>& image) {
  shim::FileOptions o;
  o.writable = true;
  o.create = true;
  Status s = [&]() -> Status {
    MT_ASSIGN_OR_RETURN(std::unique_ptr<shim::File> f, shim::PosixFileSystem().OpenFile(path, o));
    MT_RETURN_IF_ERROR(f->WriteAt(0, image.data(), image.size()));
    if (f->Size() > image.size()) MT_RETURN_IF_ERROR(f->Truncate(image.size()));
    return Status::Ok();
  }();
  if (!s.ok()) return s.WithContext("cannot write " + path);
  return Status::Ok();
}

int Fail(const Status& s) {
  std::fprintf(stderr, "mtsend: %s\n", s.ToString().c_str());
  return 1;
}

void PrintResult(const char* what, const RunResult& r) {
  const double mib = static_cast<double>(r.bytes) / (1 << 20);
  std::printf("mtsend %s: seqs %llu..%llu durable: %llu writes (%.1f MiB), %llu tags in %.2f s "
              "(%.1f MiB/s), %llu reconnects\n",
              what, static_cast<unsigned long long>(r.first_seq),
              static_cast<unsigned long long>(r.last_seq), static_cast<unsigned long long>(r.writes),
              mib, static_cast<unsigned long long>(r.tags), r.seconds,
              r.seconds > 0 ? mib / r.seconds : 0.0, static_cast<unsigned long long>(r.reconnects));
  std::fflush(stdout);
}

}  // namespace

int MtsendMain(int argc, char** argv) {
  CLI::App app{"mtsend: reference sender of the mt-agent change stream (a process server's part)"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");

  Common wc;
  WorkloadOptions wo;
  std::string disk_size, sizes = "4k..1M", rate;
  auto* work = app.add_subcommand("workload", "send a synthetic, seed-reproducible write workload");
  AddCommon(work, &wc);
  work->add_option("--disks", wo.spec.disks, "number of disks of the stream (0..N-1)")->required();
  work->add_option("--disk-size", disk_size, "bytes per disk (units k, M, G)")->required();
  work->add_option("--block", wo.spec.block, "offset and size granularity in bytes (default 4096)");
  work->add_option("--rate", rate, "writes per second (e.g. 200) or bytes per second (e.g. 50MiB/s)");
  auto* count = work->add_option("--count", wo.count, "items of the run (a restart continues to the same end)");
  auto* secs = work->add_option("--seconds", wo.seconds, "run for S seconds");
  count->excludes(secs);
  work->add_option("--sizes", sizes, "write sizes: 4k..1M, 64k or 4k:60,64k:30,1M:10 (default 4k..1M)");
  work->add_option("--overlap", wo.spec.overlap, "probability 0..1 that a write lands in a small hot zone");
  auto* tag_secs = work->add_option("--tag-every", wo.tag_every, "seconds between app-consistent tags");
  auto* tag_items = work->add_option("--tag-every-items", wo.tag_every_items,
                                     "every N-th item of the run is an app-consistent tag "
                                     "(deterministic: item i = seq - start is a tag when i % N == 0)");
  tag_secs->excludes(tag_items);
  work->add_option("--group-tags", wo.group_tags,
                   "replication-group tags: the k-th tag of the run carries group_tag_id PREFIX-k "
                   "(with --tag-every-items N: k = i / N, the same in every stream run with the same N)")
      ->type_name("PREFIX");
  work->add_option("--seed", wo.spec.seed, "seed of the workload (default 1)");
  work->add_option("--record", wo.record_path, "record every item sent in FILE (docs/formats/mtsend-record.md)");
  work->add_option("--window", wo.window_bytes, "bytes sent but not yet acknowledged at most");

  Common tc;
  TagOptions to;
  bool app_kind = false, user_kind = false;
  auto* tag = app.add_subcommand("tag", "mark a recovery point at the stream's next seq");
  AddCommon(tag, &tc);
  tag->add_option("name", to.name, "tag name (unique in the stream)")->required();
  auto* fa = tag->add_flag("--app", app_kind, "application-consistent point");
  auto* fu = tag->add_flag("--user", user_kind, "operator-named point");
  fa->excludes(fu);
  tag->add_option("--group-tag-id", to.group_tag_id, "shared id of a replication-group point");

  Common rc;
  ResyncOptions ro;
  std::string block_size = "4k", chunk = "16M";
  bool no_progress = false;
  auto* resync = app.add_subcommand(
      "resync", "make a disk of the receiver equal to a source device or image, sending only the "
                "blocks whose SHA-256 differs, or every block when the target is blank (--full)");
  AddCommon(resync, &rc);
  resync->add_option("--source", ro.source, "source block device or image file")->required();
  resync->add_option("--disk", ro.disk, "disk index in the stream")->required();
  resync->add_option("--block-size", block_size,
                     "compared block size (default 4k); adjacent differing blocks are sent as one "
                     "record of up to 1 MiB");
  resync->add_option("--chunk", chunk, "bytes per hash request (default 16M)");
  resync->add_option("--requests", ro.hash_requests,
                     "hash requests in flight (default 4; the sender holds one chunk each)")
      ->check(CLI::Range(1, 64));
  bool force_full = false, force_compare = false;
  auto* full_flag = resync->add_flag(
      "--full", force_full,
      "send every block without comparing hashes first: the fast first copy onto a blank target "
      "(or when most of it differs). The default when the receiver says the target was declared "
      "blank at pair add and has never completed a resync");
  resync->add_flag("--compare", force_compare,
                   "compare hashes and send only the differing blocks, even onto a target declared blank")
      ->excludes(full_flag);
  resync->add_flag("--no-progress", no_progress, "no progress on stderr");

  // rebuild: the oracle of tests and the demo — a disk image at a seq (or
  // tag) from a --record file alone, without the agent.
  std::string rb_record, rb_out, rb_tag, rb_disk_size;
  uint32_t rb_disk = 0, rb_disks = 1;
  uint64_t rb_seq = 0;
  auto* rebuild = app.add_subcommand(
      "rebuild", "write a disk image as a --record file says it was at a seq or tag (an oracle)");
  rebuild->add_option("--record", rb_record, "the record of workload runs")->required();
  rebuild->add_option("--disks", rb_disks, "number of disks of the stream")->required();
  rebuild->add_option("--disk-size", rb_disk_size, "bytes per disk (units k, M, G)")->required();
  rebuild->add_option("--disk", rb_disk, "which disk to write")->required();
  auto* at_seq = rebuild->add_option("--seq", rb_seq, "state after every item <= SEQ");
  auto* at_tag = rebuild->add_option("--tag", rb_tag, "state at this tag");
  at_seq->excludes(at_tag);
  rebuild->add_option("--out", rb_out, "output image file")->required();

  // replay: a dm-log-writes capture, in log order, onto one disk; marks become tags.
  Common pc;
  ReplayOptions po;
  std::string mark_kind = "app";
  auto* replay = app.add_subcommand(
      "replay", "replay a Linux dm-log-writes capture onto one disk of the stream, its marks as tags "
                "(docs/formats/dm-log-writes.md)");
  AddCommon(replay, &pc);
  replay->add_option("--log-writes", po.path, "the capture: the dm-log-writes log device or an image of it")
      ->required();
  replay->add_option("--disk", po.disk, "disk index in the stream (default 0)");
  replay->add_option("--mark-kind", mark_kind, "tag kind of the capture's marks: app (default), user or crash")
      ->check(CLI::IsMember({"app", "user", "crash"}));
  replay->add_option("--record", po.record_path,
                     "record every item sent in FILE (docs/formats/mtsend-record.md); a restart with the same "
                     "FILE continues the replay");
  replay->add_option("--window", po.window_bytes, "bytes sent but not yet acknowledged at most");
  replay->add_flag("--no-discard", po.skip_discards,
                   "skip the capture's discards (as replay-log --no-discard): they are not sent and "
                   "take no seq; their ranges keep their data");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (*work) {
    Result<ConnectOptions> c = ToConnect(wc);
    if (!c.ok()) return Fail(c.status());
    wo.connect = *c;
    wo.retry_for = std::chrono::milliseconds(static_cast<int64_t>(wc.retry_for * 1000));
    wo.verbose = wc.verbose;
    Result<uint64_t> ds = ParseBytes(disk_size);
    if (!ds.ok()) return Fail(ds.status().WithContext("--disk-size"));
    wo.spec.disk_size = *ds;
    Result<SizeDistribution> sd = ParseSizes(sizes, wo.spec.block);
    if (!sd.ok()) return Fail(sd.status().WithContext("--sizes"));
    wo.spec.sizes = *sd;
    if (!rate.empty()) {
      Status s = ParseRate(rate, &wo);
      if (!s.ok()) return Fail(s);
    }
    Result<RunResult> r = RunWorkload(wo);
    if (!r.ok()) return Fail(r.status());
    PrintResult("workload", *r);
    return 0;
  }
  if (*replay) {
    Result<ConnectOptions> c = ToConnect(pc);
    if (!c.ok()) return Fail(c.status());
    po.connect = *c;
    po.retry_for = std::chrono::milliseconds(static_cast<int64_t>(pc.retry_for * 1000));
    po.verbose = pc.verbose;
    po.mark_kind = mark_kind == "user" ? proto::TAG_KIND_USER
                   : mark_kind == "crash" ? proto::TAG_KIND_CRASH
                                          : proto::TAG_KIND_APP;
    Result<ReplayResult> r = RunReplay(po);
    if (!r.ok()) return Fail(r.status());
    const ReplaySummary& s = r->summary;
    std::printf("mtsend replay: %llu log items (%llu writes, %llu discards, %llu marks; %llu empty "
                "flushes folded; %llu discards skipped) are seqs %llu..%llu of disk %u\n",
                static_cast<unsigned long long>(s.items), static_cast<unsigned long long>(s.writes),
                static_cast<unsigned long long>(s.discards), static_cast<unsigned long long>(s.marks),
                static_cast<unsigned long long>(s.folded_flushes),
                static_cast<unsigned long long>(s.skipped_discards),
                static_cast<unsigned long long>(r->start + 1),
                static_cast<unsigned long long>(r->start + s.items), po.disk);
    PrintResult("replay", r->run);
    return 0;
  }
  if (*rebuild) {
    Result<Record> rec = ReadRecord(shim::PosixFileSystem(), rb_record);
    if (!rec.ok()) return Fail(rec.status());
    Result<uint64_t> ds = ParseBytes(rb_disk_size);
    if (!ds.ok()) return Fail(ds.status().WithContext("--disk-size"));
    uint64_t upto = rb_seq;
    if (!rb_tag.empty()) {
      upto = 0;
      for (const auto& e : rec->entries)
        if (e.type == 'T' && e.name == rb_tag) upto = e.seq;
      if (upto == 0) return Fail(Status(Errc::kNotFound, "no tag '" + rb_tag + "' in " + rb_record));
    } else if (upto == 0 && !rec->entries.empty()) {
      upto = rec->entries.back().seq;
    }
    if (rb_disk >= rb_disks) return Fail(Status(Errc::kInvalidArgument, "--disk must be below --disks"));
    std::vector<std::vector<uint8_t>> images;
    Status s = RebuildDisks(*rec, rb_disks, *ds, upto, &images);
    if (!s.ok()) return Fail(s);
    Status w = WriteImage(rb_out, images[rb_disk]);
    if (!w.ok()) return Fail(w);
    std::printf("mtsend rebuild: disk %u at seq %llu -> %s\n", rb_disk,
                static_cast<unsigned long long>(upto), rb_out.c_str());
    return 0;
  }
  if (*tag) {
    Result<ConnectOptions> c = ToConnect(tc);
    if (!c.ok()) return Fail(c.status());
    to.connect = *c;
    to.retry_for = std::chrono::milliseconds(static_cast<int64_t>(tc.retry_for * 1000));
    to.verbose = tc.verbose;
    to.kind = app_kind ? proto::TAG_KIND_APP : user_kind ? proto::TAG_KIND_USER : proto::TAG_KIND_CRASH;
    Result<RunResult> r = RunTag(to);
    if (!r.ok()) return Fail(r.status());
    PrintResult("tag", *r);
    return 0;
  }
  if (*resync) {
    Result<ConnectOptions> c = ToConnect(rc);
    if (!c.ok()) return Fail(c.status());
    ro.connect = *c;
    ro.retry_for = std::chrono::milliseconds(static_cast<int64_t>(rc.retry_for * 1000));
    ro.verbose = rc.verbose;
    ro.progress = !no_progress;
    ro.mode = force_full ? ResyncMode::kFull : force_compare ? ResyncMode::kCompare : ResyncMode::kAuto;
    Result<uint64_t> bs = ParseBytes(block_size);
    if (!bs.ok()) return Fail(bs.status().WithContext("--block-size"));
    ro.block_size = *bs;
    Result<uint64_t> ch = ParseBytes(chunk);
    if (!ch.ok()) return Fail(ch.status().WithContext("--chunk"));
    ro.chunk_bytes = *ch;
    Result<ResyncResult> r = RunResync(ro);
    if (!r.ok()) return Fail(r.status());
    std::printf("mtsend resync: disk %u in sync at seq %llu: %.1f MiB %s, %llu blocks "
                "(%.1f MiB) sent in %.2f s, %llu reconnects\n",
                ro.disk, static_cast<unsigned long long>(r->run.last_seq),
                static_cast<double>(r->compared_bytes) / (1 << 20), r->full_copy ? "copied" : "compared",
                static_cast<unsigned long long>(r->blocks_sent),
                static_cast<double>(r->sent_bytes) / (1 << 20), r->run.seconds,
                static_cast<unsigned long long>(r->run.reconnects));
    return 0;
  }
  return 2;
}

}  // namespace mt::send
