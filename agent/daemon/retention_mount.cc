#include "daemon/retention_mount.h"

namespace mt::daemon {

namespace {
std::string WithoutTrailingSlash(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}
}  // namespace

Status CheckRetentionMount(const std::vector<shim::MountEntry>& mounts, const std::string& dir) {
  const std::string want = WithoutTrailingSlash(dir);
  const shim::MountEntry* at = nullptr;
  const shim::MountEntry* root = nullptr;
  for (const shim::MountEntry& m : mounts) {
    if (m.mount_point == want) at = &m;
    if (m.mount_point == "/") root = &m;
  }
  const std::string fix =
      ": mount the retention volume there (mt-prepare --retention DEVICE, or mtctl retention "
      "prepare DEVICE), then start mt-agent";
  if (at == nullptr)
    return Status(Errc::kUnavailable,
                  "retention directory " + want + " is not a mount point" + fix);
  if (at->source.rfind("/dev/", 0) != 0)
    return Status(Errc::kUnavailable, "retention directory " + want + " is a " +
                                                 at->fs_type + " mount of " + at->source +
                                                 ", not a block device" + fix);
  if (want != "/" && root != nullptr && root->dev == at->dev)
    return Status(Errc::kUnavailable, "retention directory " + want +
                                                 " is on the root file system (" + at->source +
                                                 ")" + fix);
  return Status::Ok();
}

}  // namespace mt::daemon
