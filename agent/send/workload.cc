#include "send/workload.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace mt::send {

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

Result<uint64_t> ParseBytes(const std::string& text) {
  size_t i = 0;
  uint64_t v = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    const uint64_t d = static_cast<uint64_t>(text[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return Status(Errc::kInvalidArgument, "size '" + text + "' is too large");
    v = v * 10 + d;
    ++i;
  }
  if (i == 0) return Status(Errc::kInvalidArgument, "'" + text + "' is not a size");
  std::string unit = text.substr(i);
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  int shift = 0;
  if (unit.empty() || unit == "b") shift = 0;
  else if (unit == "k" || unit == "kib" || unit == "kb") shift = 10;
  else if (unit == "m" || unit == "mib" || unit == "mb") shift = 20;
  else if (unit == "g" || unit == "gib" || unit == "gb") shift = 30;
  else if (unit == "t" || unit == "tib" || unit == "tb") shift = 40;
  else return Status(Errc::kInvalidArgument, "unknown unit in size '" + text + "'");
  if (shift > 0 && v > (UINT64_MAX >> shift)) return Status(Errc::kInvalidArgument, "size '" + text + "' is too large");
  return v << shift;
}

uint64_t SizeDistribution::max() const {
  return sizes.empty() ? 0 : *std::max_element(sizes.begin(), sizes.end());
}

uint64_t SizeDistribution::Pick(uint64_t r) const {
  uint64_t total = 0;
  for (uint64_t w : weights) total += w;
  uint64_t x = r % total;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (x < weights[i]) return sizes[i];
    x -= weights[i];
  }
  return sizes.back();
}

Result<SizeDistribution> ParseSizes(const std::string& text, uint64_t block) {
  SizeDistribution d;
  const size_t dots = text.find("..");
  if (dots != std::string::npos) {
    MT_ASSIGN_OR_RETURN(uint64_t lo, ParseBytes(text.substr(0, dots)));
    MT_ASSIGN_OR_RETURN(uint64_t hi, ParseBytes(text.substr(dots + 2)));
    if (lo == 0 || lo > hi) return Status(Errc::kInvalidArgument, "size range '" + text + "' is empty");
    for (uint64_t s = lo; s <= hi && s != 0; s *= 2) {
      d.sizes.push_back(s);
      d.weights.push_back(1);
    }
  } else {
    size_t pos = 0;
    while (pos <= text.size()) {
      size_t comma = text.find(',', pos);
      if (comma == std::string::npos) comma = text.size();
      const std::string part = text.substr(pos, comma - pos);
      const size_t colon = part.find(':');
      MT_ASSIGN_OR_RETURN(uint64_t s, ParseBytes(part.substr(0, colon)));
      uint64_t w = 1;
      if (colon != std::string::npos) {
        MT_ASSIGN_OR_RETURN(w, ParseBytes(part.substr(colon + 1)));
      }
      d.sizes.push_back(s);
      d.weights.push_back(w);
      pos = comma + 1;
    }
  }
  uint64_t total = 0;
  for (size_t i = 0; i < d.sizes.size(); ++i) {
    if (d.sizes[i] == 0 || block == 0 || d.sizes[i] % block != 0) {
      return Status(Errc::kInvalidArgument, "size " + std::to_string(d.sizes[i]) +
                                                " in '" + text + "' is not a multiple of the block size " +
                                                std::to_string(block));
    }
    if (d.sizes[i] > (64u << 20)) {
      return Status(Errc::kInvalidArgument, "size " + std::to_string(d.sizes[i]) + " is over 64 MiB");
    }
    total += d.weights[i];
  }
  if (d.sizes.empty() || total == 0) return Status(Errc::kInvalidArgument, "no sizes in '" + text + "'");
  return d;
}

Status CheckSpec(const WorkloadSpec& s) {
  if (s.disks == 0) return Status(Errc::kInvalidArgument, "--disks must be at least 1");
  if (s.block < 512 || (s.block & (s.block - 1)) != 0)
    return Status(Errc::kInvalidArgument, "--block must be a power of two >= 512");
  if (s.disk_size == 0 || s.disk_size % s.block != 0)
    return Status(Errc::kInvalidArgument, "--disk-size must be a non-zero multiple of --block");
  if (s.sizes.sizes.empty()) return Status(Errc::kInvalidArgument, "no write sizes");
  if (s.sizes.max() > s.disk_size)
    return Status(Errc::kInvalidArgument, "the largest write size is over --disk-size");
  if (!(s.overlap >= 0.0 && s.overlap <= 1.0))
    return Status(Errc::kInvalidArgument, "--overlap must be within 0..1");
  return Status::Ok();
}

WriteItem WriteAt(const WorkloadSpec& spec, uint64_t seq) {
  uint64_t st = spec.seed ^ (seq * 0x9e3779b97f4a7c15ull);
  WriteItem w;
  w.seq = seq;
  w.disk = static_cast<uint32_t>(SplitMix64(&st) % spec.disks);
  w.length = spec.sizes.Pick(SplitMix64(&st));
  const double u = static_cast<double>(SplitMix64(&st) >> 11) / static_cast<double>(1ull << 53);
  uint64_t zone = spec.disk_size;
  if (u < spec.overlap) zone = std::min(spec.disk_size, std::max(w.length, 64 * spec.sizes.max()));
  const uint64_t slots = (zone - w.length) / spec.block + 1;
  w.offset = (SplitMix64(&st) % slots) * spec.block;
  return w;
}

// Four independent xorshift64* lanes, one per 8-byte word in turn: the same
// quality as one lane, but the CPU runs the four dependency chains side by
// side (the single-lane loop was a third of mtsend's CPU in the ingest
// benchmark). Format: docs/formats/mtsend-record.md.
void WorkloadData(uint64_t seed, uint64_t seq, uint8_t* out, uint64_t len) {
  uint64_t st = seed ^ ~seq;
  uint64_t x[4];
  for (auto& lane : x) lane = SplitMix64(&st) | 1;
  auto next = [](uint64_t& v) {
    v ^= v >> 12;
    v ^= v << 25;
    v ^= v >> 27;
    return v * 0x2545f4914f6cdd1dull;
  };
  // Little-endian store: one 8-byte move where the host is little-endian
  // (the byte loop was not merged by the compiler: a third of the time).
  auto store_le = [](uint8_t* p, uint64_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    std::memcpy(p, &v, sizeof v);
#else
    for (int b = 0; b < 8; ++b) p[b] = static_cast<uint8_t>(v >> (8 * b));
#endif
  };
  uint64_t i = 0;
  for (; i + 32 <= len; i += 32) {
    const uint64_t v0 = next(x[0]), v1 = next(x[1]), v2 = next(x[2]), v3 = next(x[3]);
    store_le(out + i, v0);
    store_le(out + i + 8, v1);
    store_le(out + i + 16, v2);
    store_le(out + i + 24, v3);
  }
  for (int k = 0; i + 8 <= len; i += 8, ++k) store_le(out + i, next(x[k]));
}

bool IsCountedTag(uint64_t start, uint64_t every_items, uint64_t seq) {
  return every_items > 0 && seq > start && (seq - start) % every_items == 0;
}

uint64_t CountedTagOrdinal(uint64_t start, uint64_t every_items, uint64_t seq) {
  return (seq - start) / every_items;
}

std::string WorkloadTagName(uint64_t seq) { return "mtsend-" + std::to_string(seq); }

std::string GroupTagId(const std::string& prefix, uint64_t k) {
  if (prefix.empty()) return "";
  return prefix + "-" + std::to_string(k);
}

Status CheckGroupTagPrefix(const std::string& prefix) {
  if (prefix.size() > 200)
    return Status(Errc::kInvalidArgument, "--group-tags prefix is over 200 bytes");
  for (char c : prefix) {
    if (c < 0x21 || c > 0x7e)
      return Status(Errc::kInvalidArgument,
                    "--group-tags prefix '" + prefix + "' is not printable ASCII without blanks");
  }
  return Status::Ok();
}

}  // namespace mt::send
