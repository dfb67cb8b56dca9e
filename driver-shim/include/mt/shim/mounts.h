// Parsers of /proc/self/mountinfo and /proc/swaps (pure; no I/O), and readers
// that take them through a SysRoot.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mt/shim/status.h"
#include "mt/shim/sysroot.h"

namespace mt::shim {

// A device number, as in sysfs `dev` files and mountinfo ("8:2").
struct DevNumber {
  uint32_t major = 0;
  uint32_t minor = 0;
  bool operator==(const DevNumber& o) const { return major == o.major && minor == o.minor; }
  bool operator!=(const DevNumber& o) const { return !(*this == o); }
  bool operator<(const DevNumber& o) const {
    return major != o.major ? major < o.major : minor < o.minor;
  }
  std::string ToString() const { return std::to_string(major) + ":" + std::to_string(minor); }
  // Parses "MAJ:MIN"; false when malformed.
  static bool Parse(std::string_view s, DevNumber* out);
};

// One line of /proc/self/mountinfo (proc(5)); octal escapes (\040) decoded.
struct MountEntry {
  uint32_t mount_id = 0;
  DevNumber dev;            // st_dev of the mounted file system
  std::string root;         // root of the mount inside its file system
  std::string mount_point;  // where it is mounted
  std::string fs_type;      // "ext4", "xfs", "vfat", "tmpfs", ...
  std::string source;       // "/dev/sda2", "/dev/mapper/rl-root", "tmpfs", ...
};

// Lines that do not parse are skipped (the kernel format is stable; a
// captured file with damage must not stop discovery).
std::vector<MountEntry> ParseMountInfo(std::string_view text);

// One line of /proc/swaps.
struct SwapEntry {
  std::string path;  // "/dev/dm-1", "/dev/sda3", "/swapfile"; escapes decoded
  std::string type;  // "partition" or "file"
};
std::vector<SwapEntry> ParseSwaps(std::string_view text);

// <root>/proc/self/mountinfo, <root>/proc/swaps. A missing /proc/swaps (no
// swap support) is an empty list.
Result<std::vector<MountEntry>> ReadMountInfo(const SysRoot& root);
Result<std::vector<SwapEntry>> ReadSwaps(const SysRoot& root);

}  // namespace mt::shim
