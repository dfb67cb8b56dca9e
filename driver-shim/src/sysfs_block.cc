// Block device facts from sysfs. Every path goes through SysRoot.
#include "mt/shim/sysfs_block.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace mt::shim {

const char* BlockKindName(BlockKind kind) {
  switch (kind) {
    case BlockKind::kScsi:
      return "scsi";
    case BlockKind::kVirtio:
      return "virtio";
    case BlockKind::kNvme:
      return "nvme";
    case BlockKind::kLoop:
      return "loop";
    case BlockKind::kDm:
      return "dm";
    case BlockKind::kMd:
      return "md";
    case BlockKind::kRam:
      return "ram";
    case BlockKind::kOther:
      return "other";
  }
  return "other";
}

namespace {

bool StartsWith(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

std::string Basename(std::string_view path) {
  const size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// "/dev/" + DEVNAME from the uevent file (the kernel's node name), else /dev/<name>.
std::string DevNode(const SysRoot& root, const std::string& base, const std::string& name) {
  auto uevent = root.ReadFile(base + "/uevent", 65536);
  if (uevent.ok()) {
    const std::string& u = *uevent;
    size_t pos = 0;
    while (pos < u.size()) {
      size_t nl = u.find('\n', pos);
      if (nl == std::string::npos) nl = u.size();
      const std::string_view line(u.data() + pos, nl - pos);
      if (StartsWith(line, "DEVNAME=") && line.size() > 8)
        return "/dev/" + std::string(line.substr(8));
      pos = nl + 1;
    }
  }
  return "/dev/" + name;
}

std::vector<std::string> ListOrEmpty(const SysRoot& root, const std::string& dir) {
  auto r = root.ListDir(dir);
  return r.ok() ? std::move(r).value() : std::vector<std::string>{};
}

bool ReadBool(const SysRoot& root, const std::string& path) {
  return root.ReadAttrOr(path) == "1";
}

Status ReadDev(const SysRoot& root, const std::string& base, DevNumber* dev) {
  MT_ASSIGN_OR_RETURN(std::string s, root.ReadAttr(base + "/dev"));
  if (!DevNumber::Parse(s, dev))
    return Status(Errc::kCorruption, root.Path(base + "/dev") + ": not MAJ:MIN: '" + s + "'");
  return Status::Ok();
}

BlockKind Classify(const SysRoot& root, const std::string& base, const std::string& name) {
  if (root.IsDir(base + "/dm")) return BlockKind::kDm;
  if (root.IsDir(base + "/md")) return BlockKind::kMd;
  if (StartsWith(name, "loop")) return BlockKind::kLoop;
  if (StartsWith(name, "zram") || StartsWith(name, "ram")) return BlockKind::kRam;
  // The bus of the parent device: bus/scsi, bus/virtio, class/nvme.
  auto sub = root.ReadLink(base + "/device/subsystem");
  if (sub.ok()) {
    const std::string bus = Basename(*sub);
    if (bus == "scsi") return BlockKind::kScsi;
    if (bus == "virtio") return BlockKind::kVirtio;
    if (bus == "nvme") return BlockKind::kNvme;
  }
  return BlockKind::kOther;
}

void ReadScsi(const SysRoot& root, const std::string& base, BlockDeviceFacts* f) {
  const std::string dev = base + "/device";
  auto type = root.ReadUint(dev + "/type");
  f->scsi_type = type.ok() ? static_cast<int>(*type) : -1;
  auto link = root.ReadLink(dev);
  if (link.ok()) f->scsi_address = Basename(*link);
  f->vendor = root.ReadAttrOr(dev + "/vendor");
  f->model = root.ReadAttrOr(dev + "/model");
  f->revision = root.ReadAttrOr(dev + "/rev");
  // The kernel refuses to show wwid (EINVAL) when page 0x83 has no usable
  // designator: then it is simply absent.
  f->wwid = root.ReadAttrOr(dev + "/wwid");
  auto pg83 = root.ReadFile(dev + "/vpd_pg83", 65536);
  if (pg83.ok()) {
    auto parsed = ParseVpdPage83(*pg83);
    if (parsed.ok()) {
      f->has_vpd_pg83 = true;
      f->vpd_pg83 = std::move(parsed).value();
    } else {
      spdlog::debug("{}: {}", root.Path(dev + "/vpd_pg83"), parsed.status().message());
    }
  }
  auto pg80 = root.ReadFile(dev + "/vpd_pg80", 65536);
  if (pg80.ok()) {
    auto serial = ParseVpdPage80(*pg80);
    if (serial.ok()) f->serial = std::move(serial).value();
  }
}

}  // namespace

Result<BlockDeviceFacts> ReadBlockDevice(const SysRoot& root, const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
    return Status(Errc::kInvalidArgument, "not a block device name: '" + name + "'");
  const std::string base = "/sys/class/block/" + name;
  BlockDeviceFacts f;
  f.name = name;
  MT_RETURN_IF_ERROR(ReadDev(root, base, &f.dev));
  if (root.Exists(base + "/partition"))
    return Status(Errc::kInvalidArgument, name + " is a partition, not a whole device");
  MT_ASSIGN_OR_RETURN(f.syspath, root.RealPath(base));
  MT_ASSIGN_OR_RETURN(uint64_t sectors, root.ReadUint(base + "/size"));
  f.size_bytes = sectors * 512;
  f.devnode = DevNode(root, base, name);
  auto lbs = root.ReadUint(base + "/queue/logical_block_size");
  if (lbs.ok() && *lbs > 0) f.logical_block_size = static_cast<uint32_t>(*lbs);
  auto pbs = root.ReadUint(base + "/queue/physical_block_size");
  if (pbs.ok() && *pbs > 0) f.physical_block_size = static_cast<uint32_t>(*pbs);
  f.rotational = ReadBool(root, base + "/queue/rotational");
  f.removable = ReadBool(root, base + "/removable");
  f.read_only = ReadBool(root, base + "/ro");
  f.holders = ListOrEmpty(root, base + "/holders");
  f.slaves = ListOrEmpty(root, base + "/slaves");
  f.kind = Classify(root, base, name);

  switch (f.kind) {
    case BlockKind::kScsi:
      ReadScsi(root, base, &f);
      break;
    case BlockKind::kVirtio:
      f.serial = root.ReadAttrOr(base + "/serial");
      break;
    case BlockKind::kNvme:
      f.wwid = root.ReadAttrOr(base + "/wwid");
      f.serial = root.ReadAttrOr(base + "/device/serial");
      f.model = root.ReadAttrOr(base + "/device/model");
      break;
    case BlockKind::kLoop:
      f.loop_backing_file = root.ReadAttrOr(base + "/loop/backing_file");
      break;
    case BlockKind::kDm:
      f.dm_name = root.ReadAttrOr(base + "/dm/name");
      f.dm_uuid = root.ReadAttrOr(base + "/dm/uuid");
      break;
    default:
      break;
  }

  // Partitions: subdirectories with a `partition` file.
  for (const std::string& entry : ListOrEmpty(root, base)) {
    const std::string pbase = base + "/" + entry;
    if (!root.Exists(pbase + "/partition")) continue;
    PartitionFacts p;
    p.name = entry;
    if (!ReadDev(root, pbase, &p.dev).ok()) continue;  // vanished
    auto psize = root.ReadUint(pbase + "/size");
    if (!psize.ok()) continue;
    p.size_bytes = *psize * 512;
    auto num = root.ReadUint(pbase + "/partition");
    p.number = num.ok() ? static_cast<uint32_t>(*num) : 0;
    auto start = root.ReadUint(pbase + "/start");
    p.start_bytes = start.ok() ? *start * 512 : 0;
    p.devnode = DevNode(root, pbase, entry);
    p.holders = ListOrEmpty(root, pbase + "/holders");
    f.partitions.push_back(std::move(p));
  }
  std::sort(f.partitions.begin(), f.partitions.end(),
            [](const PartitionFacts& a, const PartitionFacts& b) { return a.number < b.number; });

  // Gone while we read it: not an error, just not there.
  if (!root.Exists(base + "/dev"))
    return Status(Errc::kNotFound, name + " vanished while it was being read");
  return f;
}

Result<std::vector<std::string>> ListWholeBlockDevices(const SysRoot& root) {
  std::string dir = "/sys/class/block";
  auto names = root.ListDir(dir);
  if (!names.ok() && names.status().code() == Errc::kNotFound) {
    dir = "/sys/block";
    names = root.ListDir(dir);
  }
  if (!names.ok()) return names.status();
  std::vector<std::string> out;
  for (const std::string& n : *names) {
    if (root.Exists(dir + "/" + n + "/partition")) continue;
    out.push_back(n);
  }
  return out;
}

Result<std::vector<BlockDeviceFacts>> ScanBlockDevicesSysfs(const SysRoot& root) {
  MT_ASSIGN_OR_RETURN(std::vector<std::string> names, ListWholeBlockDevices(root));
  std::vector<BlockDeviceFacts> out;
  for (const std::string& n : names) {
    auto f = ReadBlockDevice(root, n);
    if (!f.ok()) {
      // Vanished (or turned out to be a partition): skip it. Anything else is
      // a damaged entry we cannot describe: skip it too, with a debug note.
      if (f.status().code() != Errc::kNotFound)
        spdlog::debug("block device {}: {}", n, f.status().message());
      continue;
    }
    out.push_back(std::move(f).value());
  }
  return out;
}

Result<int> RescanScsiHosts(const SysRoot& root) {
  auto hosts = root.ListDir("/sys/class/scsi_host");
  if (!hosts.ok()) {
    if (hosts.status().code() == Errc::kNotFound) return 0;  // no SCSI on this machine
    return hosts.status();
  }
  int n = 0;
  for (const std::string& h : *hosts) {
    Status s = root.WriteFile("/sys/class/scsi_host/" + h + "/scan", "- - -");
    if (!s.ok()) {
      if (s.code() == Errc::kNotFound) continue;  // host went away
      return s.WithContext("SCSI rescan");
    }
    ++n;
  }
  return n;
}

}  // namespace mt::shim
