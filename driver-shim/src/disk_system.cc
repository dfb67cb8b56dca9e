#include "mt/shim/disk_system.h"

#include <spdlog/spdlog.h>

namespace mt::shim {

namespace {

class HostDiskSystem final : public DiskSystem {
 public:
  HostDiskSystem(SysRoot root, bool use_udev) : root_(std::move(root)), use_udev_(use_udev) {}

  Result<std::vector<BlockDeviceFacts>> ScanBlockDevices() override {
    if (!root_.is_host() || !use_udev_) return ScanBlockDevicesSysfs(root_);
    auto listed = UdevEnumerateBlock();
    if (!listed.ok() || listed->empty()) {
      spdlog::debug("libudev listed no block devices ({}); reading /sys/class/block",
                    listed.ok() ? "empty" : listed.status().message());
      return ScanBlockDevicesSysfs(root_);
    }
    std::vector<BlockDeviceFacts> out;
    for (UdevBlockDevice& d : *listed) {
      if (d.devtype == "partition") continue;
      auto f = ReadBlockDevice(root_, d.sysname);
      if (!f.ok()) {
        if (f.status().code() != Errc::kNotFound)
          spdlog::debug("block device {}: {}", d.sysname, f.status().message());
        continue;
      }
      f->udev_properties = std::move(d.properties);
      out.push_back(std::move(f).value());
    }
    return out;
  }

  bool BlockDeviceExists(const std::string& name) override {
    return root_.Exists("/sys/class/block/" + name + "/dev");
  }
  Result<std::vector<MountEntry>> ReadMounts() override { return ReadMountInfo(root_); }
  Result<std::vector<SwapEntry>> ReadSwaps() override { return shim::ReadSwaps(root_); }
  Result<ContentProbe> ProbeContent(const std::string& devnode) override {
    return shim::ProbeContent(root_.Path(devnode));
  }
  Result<bool> IsHeldExclusively(const std::string& devnode) override {
    return shim::IsHeldExclusively(root_.Path(devnode));
  }
  Result<std::vector<DmMap>> ListDmMaps() override { return shim::ListDmMaps(root_); }
  Result<int> RescanScsiHosts() override { return shim::RescanScsiHosts(root_); }

 private:
  SysRoot root_;
  bool use_udev_;
};

}  // namespace

Result<std::unique_ptr<DiskSystem>> OpenHostDiskSystem(const HostDiskSystemOptions& options) {
  SysRoot root(options.sysroot);
  if (!root.is_host() && !root.IsDir("/"))
    return Status(Errc::kNotFound, "sysroot " + options.sysroot + " is not a directory");
  if (!root.IsDir("/sys/class/block") && !root.IsDir("/sys/block"))
    return Status(Errc::kNotFound,
                  (root.is_host() ? std::string() : "sysroot " + root.prefix() + ": ") +
                      "no /sys/class/block or /sys/block (is sysfs mounted?)");
  return std::unique_ptr<DiskSystem>(new HostDiskSystem(std::move(root), options.use_udev));
}

}  // namespace mt::shim
