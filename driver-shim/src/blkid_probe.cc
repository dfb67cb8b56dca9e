#include "mt/shim/blkid_probe.h"

#include <blkid/blkid.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "posix_io.h"

namespace mt::shim {

namespace {

struct BlkidProbeFree {
  void operator()(blkid_struct_probe* p) const { blkid_free_probe(p); }
};
using BlkidProbePtr = std::unique_ptr<blkid_struct_probe, BlkidProbeFree>;

bool IsVanishedErrno(int err) {
  return err == ENOENT || err == ENXIO || err == ENODEV || err == ENOMEDIUM;
}

std::string Value(blkid_probe pr, const char* name) {
  const char* data = nullptr;
  size_t len = 0;
  if (blkid_probe_lookup_value(pr, name, &data, &len) != 0 || data == nullptr) return {};
  std::string v(data, len);
  while (!v.empty() && v.back() == '\0') v.pop_back();
  return v;
}

}  // namespace

Result<ContentProbe> ProbeContent(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd) {
    const int err = errno;
    if (IsVanishedErrno(err))
      return Status(Errc::kNotFound, "probe " + path + ": device is gone", err);
    return Status::FromErrno(err, "open " + path + " for probing");
  }
  errno = 0;
  BlkidProbePtr pr(blkid_new_probe());
  if (!pr) return Status::FromErrno(errno ? errno : ENOMEM, "blkid_new_probe");
  errno = 0;
  if (blkid_probe_set_device(pr.get(), fd.get(), 0, 0) != 0) {
    const int err = errno;
    if (IsVanishedErrno(err))
      return Status(Errc::kNotFound, "probe " + path + ": device is gone", err);
    return Status::FromErrno(err ? err : EIO, "blkid: set device " + path);
  }
  blkid_probe_enable_superblocks(pr.get(), 1);
  blkid_probe_set_superblocks_flags(pr.get(), BLKID_SUBLKS_TYPE | BLKID_SUBLKS_UUID |
                                                  BLKID_SUBLKS_LABEL | BLKID_SUBLKS_USAGE |
                                                  BLKID_SUBLKS_VERSION);
  blkid_probe_enable_partitions(pr.get(), 1);
  blkid_probe_set_partitions_flags(pr.get(), BLKID_PARTS_ENTRY_DETAILS);

  ContentProbe out;
  errno = 0;
  const int rc = blkid_do_safeprobe(pr.get());
  if (rc == -2) {
    out.ambiguous = true;
    spdlog::debug("probe {}: ambiguous signatures", path);
    return out;
  }
  if (rc < 0) {
    const int err = errno;
    if (IsVanishedErrno(err))
      return Status(Errc::kNotFound, "probe " + path + ": device is gone", err);
    return Status::FromErrno(err ? err : EIO, "blkid probe " + path);
  }
  if (rc == 1) return out;  // nothing found
  out.type = Value(pr.get(), "TYPE");
  out.usage = Value(pr.get(), "USAGE");
  out.uuid = Value(pr.get(), "UUID");
  out.label = Value(pr.get(), "LABEL");
  out.version = Value(pr.get(), "VERSION");
  out.pt_type = Value(pr.get(), "PTTYPE");
  out.pt_uuid = Value(pr.get(), "PTUUID");
  return out;
}

Result<bool> IsHeldExclusively(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (fd) return false;
  const int err = errno;
  if (err == EBUSY) return true;
  if (IsVanishedErrno(err))
    return Status(Errc::kNotFound, "open " + path + ": device is gone", err);
  return Status::FromErrno(err, "open " + path + " O_EXCL");
}

}  // namespace mt::shim
