#include "mt/shim/devmapper.h"

#include <libdevmapper.h>
#include <spdlog/spdlog.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

#include "dm_internal.h"

namespace mt::shim {

bool DeviceMapperAvailable() {
  // The kernel lists its misc devices; /dev/mapper/control alone proves
  // nothing (libdevmapper creates the node even where dm-mod is absent).
  FILE* f = std::fopen("/proc/misc", "re");
  if (f == nullptr) return false;
  char line[128];
  bool found = false;
  while (!found && std::fgets(line, sizeof line, f) != nullptr)
    found = std::strstr(line, " device-mapper") != nullptr;
  std::fclose(f);
  return found;
}

bool IsMultipathUuid(const std::string& uuid) {
  return uuid.rfind("mpath-", 0) == 0;
}

namespace {
thread_local DmError g_last_error;

// libdevmapper prints to stderr by default; library code logs at debug level
// and keeps the last error of this thread for the caller's message.
void DmLog(int level, const char* file, int line, int dm_errno_or_class, const char* f, ...) {
  (void)file;
  (void)line;
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  spdlog::debug("libdevmapper: {}", buf);
  if ((level & 7) <= 3) {  // _LOG_ERR and worse
    g_last_error.message = buf;
    if (dm_errno_or_class > 0) g_last_error.err = dm_errno_or_class;
  }
}
}  // namespace

void InitDmLogging() {
  static std::once_flag once;
  std::call_once(once, [] {
    dm_log_with_errno_init(DmLog);
    // No udev cookies anywhere: libdevmapper manages /dev/mapper nodes itself.
    dm_udev_set_sync_support(0);
  });
}

DmError TakeDmError() {
  DmError e = g_last_error;
  g_last_error = DmError{};
  return e;
}

namespace {

bool DeviceMapperAvailable(const SysRoot& root, std::string* why) {
  if (!root.is_host()) {
    *why = "not the running system (sysroot " + root.prefix() + ")";
    return false;
  }
  auto misc = root.ReadFile("/proc/misc", 1 << 16);
  if (misc.ok() && misc->find("device-mapper") == std::string::npos) {
    *why = "the kernel has no device-mapper driver (not in /proc/misc)";
    return false;
  }
  if (!root.Exists("/dev/mapper/control")) {
    *why = "/dev/mapper/control is absent";
    return false;
  }
  return true;
}

// Runs a task of `type` on the map `name`. nullptr (with a debug note) when the
// map vanished or the kernel refused.
DmTaskPtr RunOn(int type, const char* name) {
  DmTaskPtr t(dm_task_create(type));
  if (!t) return nullptr;
  if (!dm_task_set_name(t.get(), name) || !dm_task_run(t.get())) {
    spdlog::debug("libdevmapper: task {} on {} failed", type, name);
    return nullptr;
  }
  return t;
}

}  // namespace

Result<std::vector<DmMap>> ListDmMaps(const SysRoot& root) {
  std::vector<DmMap> out;
  std::string why;
  if (!DeviceMapperAvailable(root, &why)) {
    spdlog::debug("device-mapper maps: none ({})", why);
    return out;
  }
  InitDmLogging();
  DmTaskPtr list(dm_task_create(DM_DEVICE_LIST));
  if (!list) return Status(Errc::kInternal, "dm_task_create(DM_DEVICE_LIST) failed");
  if (!dm_task_run(list.get()))
    return Status(Errc::kUnavailable, "device-mapper: listing maps failed (see debug log)");
  dm_names* names = dm_task_get_names(list.get());
  if (names == nullptr || names->dev == 0) return out;
  for (;;) {
    DmMap m;
    m.name = names->name;
    m.dev.major = major(static_cast<dev_t>(names->dev));
    m.dev.minor = minor(static_cast<dev_t>(names->dev));
    if (DmTaskPtr info = RunOn(DM_DEVICE_INFO, names->name)) {
      const char* uuid = dm_task_get_uuid(info.get());
      if (uuid != nullptr) m.uuid = uuid;
    }
    if (DmTaskPtr table = RunOn(DM_DEVICE_TABLE, names->name)) {
      uint64_t start = 0, length = 0;
      char* type = nullptr;
      char* params = nullptr;
      dm_get_next_target(table.get(), nullptr, &start, &length, &type, &params);
      if (type != nullptr) m.target_type = type;
    }
    if (DmTaskPtr deps = RunOn(DM_DEVICE_DEPS, names->name)) {
      const dm_deps* d = dm_task_get_deps(deps.get());
      for (uint32_t i = 0; d != nullptr && i < d->count; ++i) {
        m.deps.push_back(DevNumber{major(static_cast<dev_t>(d->device[i])),
                                   minor(static_cast<dev_t>(d->device[i]))});
      }
    }
    out.push_back(std::move(m));
    if (names->next == 0) break;
    names = reinterpret_cast<dm_names*>(reinterpret_cast<char*>(names) + names->next);
  }
  return out;
}

}  // namespace mt::shim
