// Decoders of kernel-provided disk data never crash or over-read: VPD pages
// 0x83/0x80 (binary, from devices), mountinfo and swaps text, WWID strings
// (from sysfs, udev and the configuration). Seeds: tests/data/vpd.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "inventory/wwid.h"
#include "mt/shim/mounts.h"
#include "mt/shim/scsi_vpd.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto page = mt::shim::ParseVpdPage83(in);
  if (page.ok()) {
    for (const auto& d : page->designators) {
      const std::string name = d.Name();
      if (!name.empty()) (void)mt::inventory::NormalizeWwid(name);
    }
    (void)mt::shim::PreferredLunDesignator(*page);
  }
  (void)mt::shim::ParseVpdPage80(in);
  (void)mt::shim::ParseMountInfo(in);
  (void)mt::shim::ParseSwaps(in);
  (void)mt::inventory::NormalizeWwid(in);
  return 0;
}
