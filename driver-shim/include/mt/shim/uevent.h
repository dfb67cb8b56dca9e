// Hot-add / hot-remove: kernel uevents of the block subsystem.
//
// The source is the kernel's uevent netlink group (libudev monitor "kernel"),
// not udevd's: it works in a busybox guest without udevd and on a host
// without /run/udev. Events arrive before udev (if any) has processed them, so
// they carry kernel properties only; the inventory reads sysfs afterwards.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "mt/shim/mounts.h"
#include "mt/shim/status.h"

namespace mt::shim {

struct Uevent {
  // "add", "remove", "change", "move", "online", "offline", "bind", "unbind";
  // "overflow" when the kernel dropped events (socket buffer full): the
  // consumer must rescan everything.
  std::string action;
  std::string subsystem;  // "block"
  std::string name;       // kernel name: "sdb", "sdb1", "loop3"
  std::string devtype;    // "disk" or "partition"
  DevNumber dev;
  uint64_t seqnum = 0;
};

// A source of uevents that an event loop polls.
// Thread safety: one thread at a time.
class UeventSource {
 public:
  virtual ~UeventSource() = default;
  // Becomes readable (poll POLLIN) when events are pending; -1 for sources that
  // are only drained by hand (fakes).
  virtual int fd() const = 0;
  // The next pending event, without blocking; nullopt when none is pending.
  virtual Result<std::optional<Uevent>> Next() = 0;
};

// Kernel uevents of subsystem "block" (netlink, close-on-exec, non-blocking).
// kUnavailable when the netlink socket cannot be opened (e.g. no permission).
Result<std::unique_ptr<UeventSource>> OpenKernelBlockUevents();

}  // namespace mt::shim
