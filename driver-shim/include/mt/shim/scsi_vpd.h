// Decoders of the SCSI VPD pages the kernel exposes in sysfs
// (/sys/block/sdX/device/vpd_pg83, vpd_pg80): the raw page as the device
// returned it, including its 4-byte header (SPC-4 §7.8).
//
// Page 0x83 (Device Identification):
//   byte 0      peripheral qualifier (bits 7-5) | peripheral device type (4-0)
//   byte 1      page code (0x83)
//   bytes 2-3   page length n (big-endian), bytes that follow the header
//   then designators, each:
//   byte 0      protocol identifier (7-4) | code set (3-0: 1 binary, 2 ASCII, 3 UTF-8)
//   byte 1      PIV (7) | association (5-4: 0 LU, 1 target port, 2 target device)
//               | designator type (3-0: 1 T10 vendor id, 2 EUI-64, 3 NAA,
//                 8 SCSI name string, ...)
//   byte 2      reserved
//   byte 3      designator length m, then m bytes of identifier
//
// Pure functions, no I/O: fuzzed by tests/fuzz/fuzz_scsi_vpd.cc.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mt/shim/status.h"

namespace mt::shim {

struct ScsiDesignator {
  uint8_t protocol_id = 0;
  uint8_t code_set = 0;
  bool piv = false;
  uint8_t association = 0;  // 0 logical unit, 1 target port, 2 target device
  uint8_t type = 0;         // 1 T10 vendor id, 2 EUI-64, 3 NAA, 8 SCSI name string, ...
  std::string identifier;   // the raw identifier bytes

  // The kernel's text form of an LU designator ("naa.<hex>", "eui.<hex>",
  // "t10.<ascii>", or the SCSI name string itself), the form of
  // /sys/block/sdX/device/wwid. "" for designator types and lengths the
  // kernel does not name (vendor specific, relative target port, ...).
  std::string Name() const;
};

struct VpdPage83 {
  uint8_t device_type = 0;
  std::vector<ScsiDesignator> designators;
  // The page length or a designator ran past the end of the data; the
  // designators that fit are kept.
  bool truncated = false;
};

// Parses page 0x83. kCorruption when the data is shorter than the header or
// is not page 0x83.
Result<VpdPage83> ParseVpdPage83(std::string_view page);

// The designator the kernel picks for the LU's wwid (scsi_vpd_lun_id):
// SCSI name string > NAA registered extended > EUI-64 16 > EUI-64 12 >
// NAA registered > NAA extended > EUI-64 8 > NAA local / T10 vendor id; only
// designators associated with the logical unit; on a tie the later one wins.
// Returns nullptr when none qualifies (e.g. a VMware disk without
// disk.EnableUUID, a QEMU disk without wwn=).
const ScsiDesignator* PreferredLunDesignator(const VpdPage83& page);

// Page 0x80 (Unit Serial Number): the serial with surrounding spaces removed.
// kCorruption when the data is not page 0x80.
Result<std::string> ParseVpdPage80(std::string_view page);

// "t10-vendor-id", "eui-64", "naa", "scsi-name-string", "vendor-specific", ...
const char* DesignatorTypeName(uint8_t type);
// "logical-unit", "target-port", "target-device", "reserved".
const char* AssociationName(uint8_t association);
// "binary", "ascii", "utf-8", or "reserved".
const char* CodeSetName(uint8_t code_set);

// Lower-case hex of bytes.
std::string HexLower(std::string_view bytes);

}  // namespace mt::shim
