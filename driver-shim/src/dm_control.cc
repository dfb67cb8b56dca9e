#include "mt/shim/dm_control.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstring>

#include "dm_internal.h"
#include "mt/shim/devmapper.h"

namespace mt::shim {
namespace {

const char* OpName(int type) {
  switch (type) {
    case DM_DEVICE_CREATE: return "create";
    case DM_DEVICE_RELOAD: return "reload";
    case DM_DEVICE_SUSPEND: return "suspend";
    case DM_DEVICE_RESUME: return "resume";
    case DM_DEVICE_REMOVE: return "remove";
    case DM_DEVICE_INFO: return "info";
    case DM_DEVICE_TABLE: return "table";
    case DM_DEVICE_STATUS: return "status";
    default: return "operation";
  }
}

Status Unavailable() {
  return Status(Errc::kUnavailable,
                "device-mapper is not available in this kernel (no device-mapper in /proc/misc: "
                "load dm-mod)");
}

std::string TableText(const std::vector<DmTableLine>& table) {
  std::string s;
  for (const auto& l : table) {
    if (!s.empty()) s += "; ";
    s += std::to_string(l.start) + " " + std::to_string(l.sectors) + " " + l.type + " " + l.params;
  }
  return s;
}

// The status of a failed task: errno from the ioctl, libdevmapper's last line.
Status TaskError(dm_task* t, int type, const std::string& name, const std::string& detail = "") {
  const DmError e = TakeDmError();
  int err = t != nullptr ? dm_task_get_errno(t) : 0;
  if (err == 0) err = e.err;
  Errc code = Errc::kUnavailable;
  if (err == EBUSY) code = Errc::kBusy;
  if (err == ENXIO || err == ENODEV) code = Errc::kNotFound;
  std::string msg = std::string("device-mapper ") + OpName(type) + " of map " + name + " failed";
  if (!detail.empty()) msg += " (" + detail + ")";
  msg += ": " + (e.message.empty() ? std::string(err != 0 ? std::strerror(err) : "unknown error")
                                   : e.message);
  return Status(code, msg);
}

// Builds a task of `type` on `name` with `table`, runs it, updates /dev/mapper.
Result<DmTaskPtr> Run(int type, const std::string& name, const std::string& uuid = "",
                      const std::vector<DmTableLine>& table = {}) {
  if (!DeviceMapperAvailable()) return Unavailable();
  InitDmLogging();
  (void)TakeDmError();
  DmTaskPtr t(dm_task_create(type));
  if (!t) return Status(Errc::kInternal, std::string("dm_task_create(") + OpName(type) + ") failed");
  if (!name.empty() && !dm_task_set_name(t.get(), name.c_str()))
    return Status(Errc::kInvalidArgument, "bad device-mapper map name '" + name + "'");
  if (!uuid.empty() && !dm_task_set_uuid(t.get(), uuid.c_str()))
    return Status(Errc::kInvalidArgument, "bad device-mapper uuid '" + uuid + "'");
  for (const auto& l : table) {
    if (!dm_task_add_target(t.get(), l.start, l.sectors, l.type.c_str(), l.params.c_str()))
      return Status(Errc::kInvalidArgument, "bad device-mapper table line for " + name + ": " +
                                                TableText({l}));
  }
  if (type == DM_DEVICE_REMOVE) (void)dm_task_retry_remove(t.get());
  const bool ok = dm_task_run(t.get()) != 0;
  if (type == DM_DEVICE_CREATE || type == DM_DEVICE_REMOVE || type == DM_DEVICE_RESUME)
    dm_task_update_nodes();
  if (!ok) return TaskError(t.get(), type, name, table.empty() ? "" : "table " + TableText(table));
  return t;
}

std::vector<DmTableLine> Lines(dm_task* t) {
  std::vector<DmTableLine> out;
  void* next = nullptr;
  do {
    uint64_t start = 0, length = 0;
    char* type = nullptr;
    char* params = nullptr;
    next = dm_get_next_target(t, next, &start, &length, &type, &params);
    if (type == nullptr) break;
    out.push_back(DmTableLine{start, length, type, params != nullptr ? params : ""});
  } while (next != nullptr);
  return out;
}

Status Done(const Result<DmTaskPtr>& r) { return r.ok() ? Status::Ok() : r.status(); }

}  // namespace

Status DmCreate(const std::string& name, const std::string& uuid,
                const std::vector<DmTableLine>& table) {
  // libdevmapper creates, loads and resumes; when the load fails it removes
  // the empty map again, so a failure leaves nothing behind.
  return Done(Run(DM_DEVICE_CREATE, name, uuid, table));
}

Status DmReload(const std::string& name, const std::vector<DmTableLine>& table) {
  return Done(Run(DM_DEVICE_RELOAD, name, "", table));
}

Status DmSuspend(const std::string& name) { return Done(Run(DM_DEVICE_SUSPEND, name)); }
Status DmResume(const std::string& name) { return Done(Run(DM_DEVICE_RESUME, name)); }
Status DmRemove(const std::string& name) { return Done(Run(DM_DEVICE_REMOVE, name)); }

Result<std::optional<DmMapState>> DmInfo(const std::string& name) {
  MT_ASSIGN_OR_RETURN(auto t, Run(DM_DEVICE_INFO, name));
  dm_info info{};
  if (!dm_task_get_info(t.get(), &info)) return TaskError(t.get(), DM_DEVICE_INFO, name);
  if (!info.exists) return std::optional<DmMapState>{};
  DmMapState s;
  s.dev = DevNumber{info.major, info.minor};
  const char* uuid = dm_task_get_uuid(t.get());
  if (uuid != nullptr) s.uuid = uuid;
  s.suspended = info.suspended != 0;
  s.live_table = info.live_table != 0;
  s.inactive_table = info.inactive_table != 0;
  s.open_count = info.open_count;
  return std::optional<DmMapState>(s);
}

Result<std::vector<DmTableLine>> DmTable(const std::string& name) {
  MT_ASSIGN_OR_RETURN(auto t, Run(DM_DEVICE_TABLE, name));
  return Lines(t.get());
}

Result<std::vector<DmTableLine>> DmStatus(const std::string& name) {
  MT_ASSIGN_OR_RETURN(auto t, Run(DM_DEVICE_STATUS, name));
  return Lines(t.get());
}

Result<std::vector<std::string>> DmNamesWithPrefix(const std::string& prefix) {
  MT_ASSIGN_OR_RETURN(auto t, Run(DM_DEVICE_LIST, ""));
  std::vector<std::string> out;
  dm_names* names = dm_task_get_names(t.get());
  if (names == nullptr || names->dev == 0) return out;
  for (;;) {
    const std::string n = names->name;
    if (n.compare(0, prefix.size(), prefix) == 0) out.push_back(n);
    if (names->next == 0) break;
    names = reinterpret_cast<dm_names*>(reinterpret_cast<char*>(names) + names->next);
  }
  return out;
}

std::string DmDevicePath(const std::string& name, const DevNumber& dev) {
  const std::string mapper = "/dev/mapper/" + name;
  struct stat st {};
  if (::stat(mapper.c_str(), &st) == 0 && S_ISBLK(st.st_mode) && major(st.st_rdev) == dev.major &&
      minor(st.st_rdev) == dev.minor)
    return mapper;
  return "/dev/dm-" + std::to_string(dev.minor);
}

}  // namespace mt::shim
