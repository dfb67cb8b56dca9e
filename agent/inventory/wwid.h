// WWID and disk identity normalisation.
//
// One spelling per disk, whatever source it came from:
//   naa.<16 or 32 lower-case hex>   NAA (VMware: naa.6000c29... with disk.EnableUUID=TRUE)
//   eui.<16, 24 or 32 lower-case hex>
//   t10.<vendor id text>            trailing spaces removed, case kept
//   iqn.... / other SCSI name strings, lower-cased
// Accepted inputs: the kernel's forms above in any case, udev ID_WWN
// ("0x6000c29a1b2c3d4e"), by-id names ("wwn-0x6000c29..."), the scsi_id /
// multipath form with the designator type digit in front ("36000c29..." NAA,
// "2..." EUI-64, "1..." T10, "8..." name string), and bare NAA hex.
#pragma once

#include <string>
#include <string_view>

#include "mt/shim/status.h"

namespace mt::inventory {

// kInvalidArgument when `wwid` is not a WWID in any accepted form.
Result<std::string> NormalizeWwid(std::string_view wwid);

// Identities of non-SCSI devices ("loop:...", "virtio:...", "nvme:...",
// "dev:...") are kept as they are; anything else must be a WWID.
Result<std::string> NormalizeIdentity(std::string_view identity);

}  // namespace mt::inventory
