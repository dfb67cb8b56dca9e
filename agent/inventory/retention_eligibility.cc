#include "inventory/retention_eligibility.h"

#include <algorithm>
#include <cctype>

namespace mt::inventory {

namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool IsFat(const std::string& type) {
  const std::string t = Lower(type);
  return t == "vfat" || t == "msdos" || t == "fat" || t == "fat12" || t == "fat16" || t == "fat32";
}

bool IsRetentionFs(const std::string& type) {
  return type == "ext4" || type == "xfs";
}

// Whether `dir` is `mount_point` or below it (path components, not prefixes).
bool IsUnder(const std::string& dir, const std::string& mount_point) {
  if (mount_point == "/") return !dir.empty() && dir[0] == '/';
  return dir == mount_point ||
         (dir.size() > mount_point.size() && dir.compare(0, mount_point.size(), mount_point) == 0 &&
          dir[mount_point.size()] == '/');
}

// The mount that holds `dir`: the longest mount point above it (the last one
// when several are stacked on the same point).
const shim::MountEntry* MountOf(const std::vector<shim::MountEntry>& mounts,
                                const std::string& dir) {
  const shim::MountEntry* best = nullptr;
  for (const shim::MountEntry& m : mounts)
    if (IsUnder(dir, m.mount_point) &&
        (best == nullptr || m.mount_point.size() >= best->mount_point.size()))
      best = &m;
  return best;
}

bool IsMemberDev(const Disk& d, const shim::DevNumber& dev) {
  return std::find(d.member_devs.begin(), d.member_devs.end(), dev) != d.member_devs.end();
}

std::string FsDescription(const shim::ContentProbe& c) {
  return c.version.empty() ? c.type : c.type + " (" + c.version + ")";
}

}  // namespace

Status RetentionVerdict::ToStatus(const Disk& disk) const {
  if (eligible) return Status::Ok();
  std::string msg = disk.Describe() + " cannot be the retention volume: ";
  for (size_t i = 0; i < problems.size(); ++i) {
    if (i > 0) msg += "; ";
    msg += problems[i];
  }
  return Status(Errc::kInvalidArgument, msg);
}

RetentionVerdict CheckRetentionVolume(const Inventory& inventory, const Disk& disk,
                                      const RetentionRequirements& req, shim::DiskSystem* sys) {
  RetentionVerdict v;
  auto problem = [&](std::string p) {
    if (std::find(v.problems.begin(), v.problems.end(), p) == v.problems.end())
      v.problems.push_back(std::move(p));
  };

  if (disk.named_target) problem("it is a protection target");
  for (const Finding& f : disk.findings) {
    if (f.role == Role::kOs) problem("it is the OS disk: " + f.reason);
    if (f.role == Role::kInUse) problem(f.reason);  // swap, LVM, md, holders, O_EXCL
  }
  // Signatures of things that are not file systems, even when not active.
  auto content_problems = [&](const std::string& name, const shim::ContentProbe& c) {
    if (c.type == "swap") problem("swap space (" + name + ")");
    if (c.type == "LVM2_member") problem("LVM physical volume (" + name + ")");
    if (c.usage == "raid") problem("RAID member (" + c.type + " on " + name + ")");
    if (IsFat(c.type))
      problem("file system " + FsDescription(c) + " on " + name +
              ": FAT cannot hold the retention journal");
  };
  content_problems(disk.name, disk.content);
  for (const Partition& p : disk.partitions) content_problems(p.name, p.content);

  for (const std::string& dir : req.agent_dirs) {
    const shim::MountEntry* m = MountOf(inventory.mounts(), dir);
    if (m != nullptr && IsMemberDev(disk, m->dev))
      problem("it holds the agent's install/cache directory " + dir);
  }
  // Not locked: held exclusively by another process (checked when nothing
  // visible uses it; a mounted file system holds its device exclusively).
  if (!disk.exclusive_checked && disk.mounts.empty() && disk.holders.empty() && sys != nullptr) {
    auto held = sys->IsHeldExclusively("/dev/" + disk.name);
    if (held.ok() && *held)
      problem("held open exclusively by another process");
    else if (!held.ok())
      v.notes.push_back("exclusive-open check not possible: " + held.status().message());
  }
  if (disk.size_bytes == 0) problem("capacity is zero");
  if (disk.read_only) problem("the device is read-only");

  // Mounted: only exactly at the retention mount point, with ext4 or xfs.
  for (const MountUse& m : disk.mounts) {
    if (m.mount_point == req.mount_point && IsRetentionFs(m.fs_type)) {
      v.mounted_at_mount_point = true;
    } else if (m.mount_point == req.mount_point) {
      problem("mounted at " + m.mount_point + " with " + m.fs_type +
              ": the retention volume needs ext4 or xfs");
    } else if (m.mount_point != "/" && m.mount_point != "/boot" && m.mount_point != "/boot/efi") {
      // (/ and /boot are reported as "it is the OS disk" above.)
      problem("mounted at " + m.mount_point);
    }
  }

  if (!v.mounted_at_mount_point) {
    if (!disk.partitions.empty()) {
      problem("it has a partition table" +
              (disk.content.pt_type.empty() ? std::string() : " (" + disk.content.pt_type + ")") +
              " with " + std::to_string(disk.partitions.size()) +
              " partition(s): the retention volume is a whole-disk file system (wipe it first)");
    } else if (IsRetentionFs(disk.content.type)) {
      v.notes.push_back("has an " + disk.content.type + " file system: prepare mounts it at " +
                        req.mount_point);
    } else if (disk.content.type.empty()) {
      v.needs_format = true;
      v.notes.push_back("no file system: `retention prepare --force` will format it");
    } else if (v.problems.empty()) {
      v.needs_format = true;
      v.notes.push_back("has a " + FsDescription(disk.content) +
                        " file system: `retention prepare --force` will reformat it (its data "
                        "will be lost)");
    }
  }
  for (const std::string& n : disk.notes) v.notes.push_back(n);
  v.eligible = v.problems.empty();
  return v;
}

}  // namespace mt::inventory
