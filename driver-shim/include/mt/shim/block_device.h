// BlockDevice: the only way mt-agent reads or writes a disk.
//
// Implementations: the real one (OpenBlockDevice: a block device node or a
// regular image file, normally O_DIRECT), MemBlockDevice (fake, in memory) and
// FaultInjectingBlockDevice (wraps any other).
//
// I/O contract, identical for every implementation:
//  - offset and length are multiples of logical_block_size(), the buffer address
//    is aligned to logical_block_size(), and offset+length <= size(); otherwise
//    the call returns kMisaligned / kOutOfRange naming the device and touches
//    nothing.
//  - ReadAt/WriteAt transfer all bytes or fail (EINTR and short transfers are
//    retried inside).
//  - Flush() returns ok only when every write that returned before it is on
//    stable storage.
// Thread safety: concurrent ReadAt/WriteAt on disjoint ranges are allowed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "mt/shim/status.h"

namespace mt::shim {

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;

  // Name used in every message about this device (its path for real ones).
  virtual const std::string& name() const = 0;
  virtual uint64_t size() const = 0;
  virtual uint32_t logical_block_size() const = 0;
  virtual uint32_t physical_block_size() const = 0;

  virtual Status ReadAt(uint64_t offset, void* buf, size_t len) = 0;
  virtual Status WriteAt(uint64_t offset, const void* buf, size_t len) = 0;
  virtual Status Flush() = 0;
  // Tell the device the range is no longer needed; reads of it then return
  // zeroes on devices that guarantee that, unspecified data otherwise.
  virtual Status Discard(uint64_t offset, uint64_t len) = 0;
};

// The argument check of the I/O contract above. `op` is "read"/"write"/"discard";
// `buf` may be null for discard.
Status CheckBlockIo(const BlockDevice& dev, const char* op, uint64_t offset, const void* buf,
                    uint64_t len);

struct BlockDeviceOptions {
  bool writable = false;
  // O_EXCL on a block device: fail with kBusy if it is mounted or held by
  // another exclusive opener (device-mapper, md, another agent).
  bool exclusive = false;
  // O_DIRECT: bypass the page cache. Always on for targets.
  bool direct = true;
};

// Opens a block device node or a regular file used as a disk image. Regular
// files report a logical and physical block size of 4096 bytes, the strictest
// O_DIRECT alignment any Linux file system asks for.
Result<std::unique_ptr<BlockDevice>> OpenBlockDevice(const std::string& path,
                                                     const BlockDeviceOptions& options);

// Whether `path` (links followed) is a block device node; false for anything
// else, a missing path included.
bool IsBlockDeviceNode(const std::string& path);

}  // namespace mt::shim
