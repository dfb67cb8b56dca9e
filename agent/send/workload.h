// Synthetic workload of mtsend: every item is a pure function of (seed, seq),
// so a run is reproducible from its seed and a restarted mtsend regenerates
// exactly the items it has to resend. Tags (time-driven) take a seq of their
// own; the write that would have had that seq is simply not part of the run.
//
// Write at seq s (docs/formats/mtsend-record.md has the exact algorithm):
//   r = SplitMix64 stream seeded with seed ^ (s * 0x9e3779b97f4a7c15)
//   disk   = r() % disks
//   length = a size drawn from the SizeDistribution with r()
//   offset = with probability `overlap` (r() / 2^64 < overlap) a block in the
//            hot zone (the first min(disk_size, 64 * max size) bytes), else a
//            block anywhere; offset + length <= disk_size
//   data   = WorkloadData(seed, s, length)
//
// App tags of a run are time-driven (every S seconds) or count-driven (every
// N-th item of the run is a tag: item i = seq - start, start being the run's
// start seq, is a tag when i % N == 0). Either kind is named "mtsend-<seq>".
// With a group-tag prefix P the k-th tag of the run carries group_tag_id
// "P-k" (count-driven: k = i / N), so streams of a replication group whose
// workloads run with the same N and P share their group tags.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mt/shim/status.h"

namespace mt::send {

// "4k..1M" (every power of two in between, equally likely), "64k" (one size)
// or "4k:60,64k:30,1M:10" (weights). Units k/K/m/M/g/G (binary), optional "iB"/"B".
struct SizeDistribution {
  std::vector<uint64_t> sizes;
  std::vector<uint64_t> weights;  // same length, sum > 0
  uint64_t max() const;
  uint64_t Pick(uint64_t r) const;
};
Result<SizeDistribution> ParseSizes(const std::string& text, uint64_t block);
// "4096", "4k", "1M", "2GiB" -> bytes.
Result<uint64_t> ParseBytes(const std::string& text);

struct WorkloadSpec {
  uint64_t seed = 1;
  uint32_t disks = 1;
  uint64_t disk_size = 0;
  uint32_t block = 4096;
  SizeDistribution sizes;  // multiples of block, each <= disk_size
  double overlap = 0.0;    // 0..1
};
Status CheckSpec(const WorkloadSpec& spec);

struct WriteItem {
  uint64_t seq = 0;
  uint32_t disk = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
};
WriteItem WriteAt(const WorkloadSpec& spec, uint64_t seq);

// Deterministic data of the write at seq: xorshift64* from SplitMix64(seed ^
// ~seq), 8 little-endian bytes per step. REQUIRES: len % 8 == 0.
void WorkloadData(uint64_t seed, uint64_t seq, uint8_t* out, uint64_t len);

uint64_t SplitMix64(uint64_t* state);

// Count-driven tags: is the item at `seq` of a run that started after `start`
// a tag when every `every_items`-th item is one (false when every_items is 0
// or seq <= start)?
bool IsCountedTag(uint64_t start, uint64_t every_items, uint64_t seq);
// Its ordinal k (1 for the first tag of the run). REQUIRES: IsCountedTag.
uint64_t CountedTagOrdinal(uint64_t start, uint64_t every_items, uint64_t seq);
// "mtsend-<seq>": the name of every workload tag.
std::string WorkloadTagName(uint64_t seq);
// "<prefix>-<k>", or "" when the prefix is empty (no group tag).
std::string GroupTagId(const std::string& prefix, uint64_t k);
// A prefix is printable ASCII, at most 200 bytes (room for "-<k>" within the
// 255 bytes of a group tag id); empty means no group tags.
Status CheckGroupTagPrefix(const std::string& prefix);

}  // namespace mt::send
