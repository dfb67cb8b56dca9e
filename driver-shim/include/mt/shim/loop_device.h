// Loop devices: a regular file presented as a block device (vsnap copy-on-
// write stores live in files on the retention volume and are handed to
// device-mapper as loop devices).
#pragma once

#include <memory>
#include <string>

#include "mt/shim/mounts.h"
#include "mt/shim/status.h"

namespace mt::shim {

// An attached loop device, held open. With autoclear the kernel detaches it
// when its last user closes it: keep this object until another holder (a
// device-mapper table) has opened the device, then drop it.
class LoopDevice {
 public:
  virtual ~LoopDevice() = default;
  virtual const std::string& path() const = 0;  // "/dev/loop3"
  virtual DevNumber dev() const = 0;
};

// Attaches `file` (read-write) to a free loop device. kUnavailable when the
// kernel has no loop driver (no /dev/loop-control).
Result<std::unique_ptr<LoopDevice>> AttachLoop(const std::string& file, bool autoclear);

}  // namespace mt::shim
