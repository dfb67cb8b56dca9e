// libudev enumeration of block devices (the running system only).
#include <libudev.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <memory>

#include "mt/shim/sysfs_block.h"
#include "udev_handles.h"

namespace mt::shim {

Result<std::vector<UdevBlockDevice>> UdevEnumerateBlock() {
  UdevPtr udev(udev_new());
  if (!udev) return Status::FromErrno(errno ? errno : ENOMEM, "udev_new");
  UdevEnumeratePtr en(udev_enumerate_new(udev.get()));
  if (!en) return Status::FromErrno(errno ? errno : ENOMEM, "udev_enumerate_new");
  int r = udev_enumerate_add_match_subsystem(en.get(), "block");
  if (r < 0) return Status::FromErrno(-r, "udev_enumerate_add_match_subsystem block");
  r = udev_enumerate_scan_devices(en.get());
  if (r < 0) return Status::FromErrno(-r, "udev_enumerate_scan_devices block");

  std::vector<UdevBlockDevice> out;
  udev_list_entry* entry;
  udev_list_entry_foreach(entry, udev_enumerate_get_list_entry(en.get())) {
    const char* syspath = udev_list_entry_get_name(entry);
    UdevDevicePtr dev(udev_device_new_from_syspath(udev.get(), syspath));
    if (!dev) continue;  // vanished since the scan
    UdevBlockDevice d;
    const char* sysname = udev_device_get_sysname(dev.get());
    const char* devtype = udev_device_get_devtype(dev.get());
    if (sysname == nullptr) continue;
    d.sysname = sysname;
    d.devtype = devtype != nullptr ? devtype : "";
    for (const char* key : {"ID_WWN", "ID_WWN_WITH_EXTENSION", "ID_SERIAL", "ID_SERIAL_SHORT"}) {
      const char* v = udev_device_get_property_value(dev.get(), key);
      if (v != nullptr && *v != '\0') d.properties[key] = v;
    }
    out.push_back(std::move(d));
  }
  spdlog::debug("libudev enumerated {} block devices", out.size());
  return out;
}

}  // namespace mt::shim
