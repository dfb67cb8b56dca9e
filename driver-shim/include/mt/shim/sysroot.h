// SysRoot: every sysfs / procfs / devfs lookup of the disk discovery code goes
// through a root prefix, like `lsblk --sysroot`: "" is the running system, a
// directory is a tree captured from another machine (tests/data/sysfs/).
//
// Paths given to SysRoot are absolute paths as seen on the system being
// described ("/sys/block/sda/size"); SysRoot prepends the prefix. Captured
// trees use relative symlinks (as the kernel's sysfs does), so they resolve
// inside the tree.
//
// Thread safety: const methods are safe to call concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mt/shim/status.h"

namespace mt::shim {

class SysRoot {
 public:
  SysRoot() = default;  // the running system
  explicit SysRoot(std::string prefix);

  // "" for the running system, else the prefix directory (no trailing '/').
  const std::string& prefix() const { return prefix_; }
  bool is_host() const { return prefix_.empty(); }

  // prefix + abs. REQUIRES: abs starts with '/'.
  std::string Path(std::string_view abs) const;

  // Reads a whole file of at most `limit` bytes (sysfs attributes, /proc files).
  // kNotFound when it (or the device it belongs to) does not exist.
  Result<std::string> ReadFile(std::string_view abs, size_t limit = 1 << 20) const;
  // ReadFile with trailing whitespace removed (sysfs attributes end in '\n').
  Result<std::string> ReadAttr(std::string_view abs) const;
  // ReadAttr, or `fallback` when the attribute is missing or unreadable.
  std::string ReadAttrOr(std::string_view abs, std::string fallback = {}) const;
  // A decimal attribute ("size", "queue/logical_block_size").
  Result<uint64_t> ReadUint(std::string_view abs) const;

  bool Exists(std::string_view abs) const;
  bool IsDir(std::string_view abs) const;
  // Entry names (not "." / ".."), sorted. kNotFound when the directory is gone.
  Result<std::vector<std::string>> ListDir(std::string_view abs) const;
  Result<std::string> ReadLink(std::string_view abs) const;
  // The canonical path (symlinks resolved) of abs, as seen inside the root
  // (prefix removed). kNotFound when a component is missing.
  Result<std::string> RealPath(std::string_view abs) const;

  // Writes `data` to an existing file (sysfs control files such as
  // /sys/class/scsi_host/host0/scan).
  Status WriteFile(std::string_view abs, std::string_view data) const;

 private:
  std::string prefix_;
};

// Removes trailing spaces, tabs and newlines.
std::string TrimRight(std::string_view s);

}  // namespace mt::shim
