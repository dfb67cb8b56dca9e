#include <cstdlib>

#include "mt/shim/mounts.h"

namespace mt::shim {

bool DevNumber::Parse(std::string_view s, DevNumber* out) {
  const size_t colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= s.size()) return false;
  uint64_t v[2] = {0, 0};
  const std::string_view parts[2] = {s.substr(0, colon), s.substr(colon + 1)};
  for (int i = 0; i < 2; ++i) {
    if (parts[i].empty() || parts[i].size() > 10) return false;
    for (char c : parts[i]) {
      if (c < '0' || c > '9') return false;
      v[i] = v[i] * 10 + static_cast<uint64_t>(c - '0');
    }
    if (v[i] > 0xffffffffu) return false;
  }
  out->major = static_cast<uint32_t>(v[0]);
  out->minor = static_cast<uint32_t>(v[1]);
  return true;
}

namespace {

// Decodes the kernel's octal escapes (\040 space, \011 tab, \012 newline, \134 backslash).
std::string Unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::vector<std::string_view> SplitWs(std::string_view line) {
  std::vector<std::string_view> f;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size()) break;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    f.push_back(line.substr(i, j - i));
    i = j;
  }
  return f;
}

template <typename Fn>
void ForEachLine(std::string_view text, Fn fn) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    fn(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
}

}  // namespace

std::vector<MountEntry> ParseMountInfo(std::string_view text) {
  // 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
  std::vector<MountEntry> out;
  ForEachLine(text, [&](std::string_view line) {
    const auto f = SplitWs(line);
    if (f.size() < 7) return;
    size_t sep = 6;
    while (sep < f.size() && f[sep] != "-") ++sep;
    if (sep + 2 >= f.size()) return;
    MountEntry m;
    m.mount_id = static_cast<uint32_t>(std::strtoul(std::string(f[0]).c_str(), nullptr, 10));
    if (!DevNumber::Parse(f[2], &m.dev)) return;
    m.root = Unescape(f[3]);
    m.mount_point = Unescape(f[4]);
    m.fs_type = Unescape(f[sep + 1]);
    m.source = Unescape(f[sep + 2]);
    out.push_back(std::move(m));
  });
  return out;
}

std::vector<SwapEntry> ParseSwaps(std::string_view text) {
  // Filename  Type  Size  Used  Priority   (header line first)
  std::vector<SwapEntry> out;
  bool header = true;
  ForEachLine(text, [&](std::string_view line) {
    if (header) {
      header = false;
      if (line.rfind("Filename", 0) == 0) return;
    }
    const auto f = SplitWs(line);
    if (f.size() < 2) return;
    out.push_back(SwapEntry{Unescape(f[0]), std::string(f[1])});
  });
  return out;
}

Result<std::vector<MountEntry>> ReadMountInfo(const SysRoot& root) {
  MT_ASSIGN_OR_RETURN(std::string text, root.ReadFile("/proc/self/mountinfo", 16 << 20));
  return ParseMountInfo(text);
}

Result<std::vector<SwapEntry>> ReadSwaps(const SysRoot& root) {
  auto text = root.ReadFile("/proc/swaps", 1 << 20);
  if (!text.ok()) {
    if (text.status().code() == Errc::kNotFound) return std::vector<SwapEntry>{};
    return text.status();
  }
  return ParseSwaps(*text);
}

}  // namespace mt::shim
