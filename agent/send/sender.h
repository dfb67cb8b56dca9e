// mtsend's commands as library functions (the CLI in mtsend.cc parses flags
// into these options): a synthetic workload and a single tag, each over a
// Connection (client.h) that is re-established with back-off after a
// transient failure and resumes from the welcome's resume_seq.
//
// Workload run, in seq order:
//   welcome(R) ─▶ first time: record opened (lines > R dropped), next seq R+1
//              ─▶ again: the unacked items after R are resent as they were
//   pump: while not throttled, fewer than window_bytes unacked, the rate
//         allows and the workload is not over: next batch ─▶ record ─▶ send
//   ack(d): items <= d leave the window.  done: the last item acked ─▶ close.
// Failures: permanent ones (auth, fingerprint, protocol, validation, a
// refusal of a stream that failed on the master target) end the run at once;
// transient ones (refused, reset, busy, paused, timeouts) reconnect with
// back-off 100 ms .. 5 s until retry_for of failing passes without progress
// (reconnect.h says what counts as progress and how the time is counted).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "send/client.h"
#include "mt/shim/status.h"
#include "send/workload.h"

namespace mt::send {

struct WorkloadOptions {
  ConnectOptions connect;
  WorkloadSpec spec;
  double rate_writes = 0;  // writes per second; 0: no limit
  double rate_bytes = 0;   // bytes per second; 0: no limit
  uint64_t count = 0;      // items of the run: seqs start+1 .. start+count (0: use seconds)
  double seconds = 0;      // run time of this process (0: use count)
  double tag_every = 0;    // seconds between app tags; 0: none
  uint64_t tag_every_items = 0;  // every N-th item of the run is an app tag; 0: none
  std::string group_tags;  // non-empty: the k-th tag carries group_tag_id "<group_tags>-<k>"
  std::string record_path; // empty: no record
  uint64_t window_bytes = 64u << 20;
  uint64_t batch_bytes = 1u << 20;
  uint32_t batch_writes = 64;
  std::chrono::milliseconds retry_for{60'000};
  bool verbose = false;    // every reconnect on stderr (else at most one line per 5 s)
};

struct RunResult {
  uint64_t first_seq = 0, last_seq = 0;  // seqs this process made durable
  uint64_t writes = 0, tags = 0, bytes = 0, reconnects = 0;
  double seconds = 0;
};

Result<RunResult> RunWorkload(const WorkloadOptions& options);

struct TagOptions {
  ConnectOptions connect;
  std::string name;
  proto::TagKind kind = proto::TAG_KIND_CRASH;
  std::string group_tag_id;
  std::chrono::milliseconds retry_for{60'000};
  bool verbose = false;
};

// Sends one tag at the stream's next seq and waits until it is durable.
Result<RunResult> RunTag(const TagOptions& options);

// Resync of one disk from a source device or image file, in one of two modes:
//  - compare (default): for each chunk (chunk_bytes, a multiple of
//    block_size): hash request ─▶ compare with the source's SHA-256 per block
//    ─▶ resync_data for every run of adjacent differing blocks (one record
//    of at most kMaxRunBytes each);
//  - full: no hash requests; the whole source is read in order and
//    sent as resync_data of kFullRecordBytes each, as fast as the window
//    allows: for a target known to be blank, or when the operator asks.
// The mode (ResyncMode): kAuto takes full when the receiver's welcome says
// the target was declared blank and has never completed a resync
// (DiskInfo.target_blank), compare otherwise; kCompare and kFull force one.
// The choice is a matter of speed only: both make the target equal to the
// source whatever it held.
// Then resync_complete; done when that is acknowledged.
// At most hash_requests hash requests and window_bytes of unacknowledged
// data are in flight. After a reconnect a compare pass starts again from the beginning
// (what became durable now matches and is skipped; seqs continue after the
// welcome's resume_seq); a full copy goes on after the last block the
// receiver has durable. Comparing (or copying) further than any pass before,
// or an ack, is progress for --retry-for. Progress (bytes compared, bytes sent, ETA) goes to
// stderr: one updating line on a terminal, plain lines otherwise.
enum class ResyncMode { kAuto, kCompare, kFull };

struct ResyncOptions {
  ConnectOptions connect;
  std::string source;           // block device or image file
  uint32_t disk = 0;
  // Compared block size. Small blocks send little for a small change (a
  // 4 KiB write costs 4 KiB, not 64); adjacent differing blocks go as one
  // record, so a dense change is not cut into small ones. The hashes cost
  // 32 bytes per block on the wire (0.8% of the disk at 4 KiB).
  uint64_t block_size = 4u << 10;
  uint64_t chunk_bytes = 16u << 20;
  uint64_t window_bytes = 64u << 20;
  // Compare mode: hash requests in flight; the sender holds one chunk of the
  // source per request (4 x 16 MiB by default).
  uint32_t hash_requests = 4;
  ResyncMode mode = ResyncMode::kAuto;
  std::chrono::milliseconds retry_for{60'000};
  bool verbose = false;
  bool progress = true;
};
// The size of one resync_data record of a full copy.
inline constexpr uint64_t kFullRecordBytes = 8u << 20;
// The longest run of adjacent differing blocks sent as one record.
inline constexpr uint64_t kMaxRunBytes = 1u << 20;

struct ResyncResult {
  RunResult run;
  uint64_t compared_bytes = 0;  // bytes of the disk compared or copied (last pass)
  uint64_t sent_bytes = 0;      // resync data bytes sent (all passes)
  uint64_t blocks_sent = 0;
  bool full_copy = false;       // the mode taken: every block sent, none compared
};
Result<ResyncResult> RunResync(const ResyncOptions& options);

}  // namespace mt::send
