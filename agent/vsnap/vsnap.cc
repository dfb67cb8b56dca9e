#include "vsnap/vsnap.h"

#include <cstdio>
#include <ctime>
#include <optional>

#include "mt/shim/block_device.h"
#include "mt/shim/devmapper.h"
#include "mt/shim/dm_control.h"
#include "mt/shim/loop_device.h"
#include "vsnap/target_map.h"

namespace mt::vsnap {
namespace {

constexpr const char* kInfoSuffix = ".vsnap";
constexpr uint32_t kChunkSectors = 8;  // 4 KiB copy-on-write chunks

std::string Dir(const std::string& root) { return root + "/vsnap"; }
std::string InfoPath(const std::string& root, const std::string& name) {
  return Dir(root) + "/" + name + kInfoSuffix;
}
std::string CowPath(const std::string& root, const std::string& name) {
  return Dir(root) + "/" + name + ".cow";
}

std::string Utc(int64_t ns) {
  const std::time_t t = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Status Save(shim::FileSystem& fs, const std::string& root, const proto::VsnapInfo& info) {
  std::string bytes;
  if (!info.SerializeToString(&bytes)) return Status(Errc::kInternal, "cannot encode vsnap info");
  return shim::WriteFileAtomically(fs, InfoPath(root, info.name()), bytes);
}

Result<proto::VsnapInfo> Load(shim::FileSystem& fs, const std::string& path) {
  MT_ASSIGN_OR_RETURN(std::string bytes, shim::ReadSmallFile(fs, path, 1 << 16));
  proto::VsnapInfo info;
  if (!info.ParseFromString(bytes) || info.name().empty())
    return Status(Errc::kCorruption, path + " is not a vsnap description");
  return info;
}

// The copy-on-write store may take a copy of every chunk plus one 16-byte
// exception per chunk (in metadata chunks) and a header chunk: the disk's
// size, 1/64 of it and 8 MiB is more than enough, so it never overflows. The
// file is sparse: it uses what is copied.
uint64_t CowBytes(uint64_t disk_bytes) { return disk_bytes + disk_bytes / 64 + (8ull << 20); }

// The bytes a snapshot's COW store holds, from its status line
// ("used/total metadata" in sectors); nullopt when the kernel reports it
// invalid (store full or failed), with that status in *status_text.
Result<std::optional<uint64_t>> CowUsedBytes(const std::string& dm_name, std::string* status_text) {
  MT_ASSIGN_OR_RETURN(auto status, shim::DmStatus(dm_name));
  *status_text = status.empty() ? "" : status[0].params;
  unsigned long long used = 0, total = 0;
  if (std::sscanf(status_text->c_str(), "%llu/%llu", &used, &total) != 2)
    return std::optional<uint64_t>{};
  return std::optional<uint64_t>(used * 512);
}

// The origin map back to one linear line over its disk (no snapshot left).
Status OriginToLinear(const std::string& origin) {
  MT_ASSIGN_OR_RETURN(auto info, shim::DmInfo(origin));
  if (!info) return Status::Ok();
  MT_ASSIGN_OR_RETURN(auto table, shim::DmTable(origin));
  if (table.size() != 1 || table[0].type != "snapshot-origin") return Status::Ok();
  const std::string dev = table[0].params.substr(0, table[0].params.find(' '));
  MT_RETURN_IF_ERROR(shim::DmSuspend(origin));
  Status s = shim::DmReload(origin, {{0, table[0].sectors, "linear", dev + " 0"}});
  Status r = shim::DmResume(origin);
  return s.ok() ? r : s;
}

// Takes down what exists of vsnap `info`: snapshot map, origin (to linear
// when no other vsnap of the disk is left), COW file, metadata.
Status TakeDown(shim::FileSystem& fs, const std::string& root, const proto::VsnapInfo& info) {
  MT_ASSIGN_OR_RETURN(auto snap, shim::DmInfo(info.dm_name()));
  if (snap) {
    Status s = shim::DmRemove(info.dm_name());
    if (s.code() == Errc::kBusy)
      return Status(Errc::kBusy, "vsnap " + info.name() + " (" + info.device() +
                                     ") is in use (mounted or open): unmount or close it first");
    MT_RETURN_IF_ERROR(s);
  }
  if (!info.origin_dm_name().empty()) {
    // A create killed between suspending and resuming the origin left it
    // suspended (writes to the disk wait): resume it.
    MT_ASSIGN_OR_RETURN(auto origin, shim::DmInfo(info.origin_dm_name()));
    if (origin && origin->suspended) MT_RETURN_IF_ERROR(shim::DmResume(info.origin_dm_name()));
    MT_ASSIGN_OR_RETURN(auto others, shim::DmNamesWithPrefix(info.origin_dm_name() + "-vs-"));
    if (others.empty()) MT_RETURN_IF_ERROR(OriginToLinear(info.origin_dm_name()));
  }
  // The loop device under the snapshot was attached with autoclear: the
  // kernel detached it when the snapshot map let it go.
  if (fs.Exists(info.cow_file())) MT_RETURN_IF_ERROR(fs.Remove(info.cow_file()));
  const std::string path = InfoPath(root, info.name());
  if (fs.Exists(path)) MT_RETURN_IF_ERROR(fs.Remove(path));
  return Status::Ok();
}

// Suspends the origin, makes it snapshot-origin if it is linear, creates the
// snapshot map over the same disk with `cow` as its store, resumes the
// origin. The origin is resumed whatever fails.
Status Activate(const TargetMap& origin, const std::string& snap_name, const std::string& uuid,
                const shim::DevNumber& cow) {
  MT_RETURN_IF_ERROR(shim::DmSuspend(origin.name));
  Status s = Status::Ok();
  if (origin.line.type == "linear")
    s = shim::DmReload(origin.name, {{0, origin.line.sectors, "snapshot-origin", origin.device}});
  if (s.ok())
    s = shim::DmCreate(snap_name, uuid,
                       {{0, origin.line.sectors, "snapshot",
                         origin.device + " " + cow.ToString() + " P " + std::to_string(kChunkSectors)}});
  Status r = shim::DmResume(origin.name);
  return s.ok() ? r : s;
}

}  // namespace

Status CheckName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 40 && name[0] != '.' && name[0] != '-';
  for (char c : name)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-');
  if (!ok)
    return Status(Errc::kInvalidArgument, "bad vsnap name '" + name +
                                              "': use 1..40 of A-Z a-z 0-9 . _ - (not first . or -)");
  return Status::Ok();
}

namespace {
// A create step failed: take down what was made; the error names the vsnap.
Status Undo(shim::FileSystem& fs, const CreateSpec& spec, const proto::VsnapInfo& info,
            const Status& failed) {
  Status down = TakeDown(fs, spec.retention_dir, info);
  if (!down.ok())
    return failed.WithContext("vsnap " + spec.name + " (and taking it down again failed: " +
                              down.message() + "; see mtctl vsnap list)");
  return failed.WithContext("vsnap " + spec.name);
}
}  // namespace

Result<proto::VsnapInfo> Begin(shim::FileSystem& fs, const CreateSpec& spec) {
  MT_RETURN_IF_ERROR(CheckName(spec.name));
  if (!shim::DeviceMapperAvailable())
    return Status(Errc::kUnavailable,
                  "vsnap needs device-mapper and this kernel has none (no device-mapper in "
                  "/proc/misc: load dm-mod and dm-snapshot); rollback and export work without it");
  const inventory::Disk& disk = *spec.disk;
  if (disk.wwid.empty() || !disk.multipath_map.empty())
    return Status(Errc::kUnavailable, "vsnap needs a SCSI target with a WWID written through the "
                                      "agent's map; " + disk.Describe() + " is not one");
  MT_ASSIGN_OR_RETURN(auto same_name, shim::DmInfo(VsnapMapName(disk.wwid, spec.name)));
  if (fs.Exists(InfoPath(spec.retention_dir, spec.name)) || same_name)
    return Status(Errc::kAlreadyExists,
                  "a vsnap named " + spec.name + " exists (mtctl vsnap list)");
  if (spec.point.seq > spec.base_seq)
    return Status(Errc::kOutOfRange, "point " + spec.point.description +
                                         " is not applied yet (applied up to seq " +
                                         std::to_string(spec.base_seq) + ")");
  MT_RETURN_IF_ERROR(fs.CreateDir(Dir(spec.retention_dir)));

  proto::VsnapInfo info;
  info.set_name(spec.name);
  info.set_stream(spec.stream);
  info.set_disk(spec.disk_index);
  info.set_target_id(disk.identity);
  info.set_seq(spec.point.seq);
  info.set_point(spec.point.description);
  info.set_point_time_ns(spec.point.time_ns);
  info.set_base_seq(spec.base_seq);
  info.set_state("creating");
  info.set_dm_name(VsnapMapName(disk.wwid, spec.name));
  info.set_origin_dm_name(TargetMapName(disk.wwid));
  info.set_cow_file(CowPath(spec.retention_dir, spec.name));
  info.set_size_bytes(disk.size_bytes);
  info.set_cow_size_bytes(CowBytes(disk.size_bytes));
  info.set_created_ns(spec.now_ns);
  info.set_created(Utc(spec.now_ns));
  MT_RETURN_IF_ERROR(Save(fs, spec.retention_dir, info));

  auto made = [&]() -> Status {
    // The origin map (created here when the daemon never ran on this disk).
    MT_RETURN_IF_ERROR(TargetWritePath(disk, true, spec.retention_dir).status());
    MT_ASSIGN_OR_RETURN(TargetMap origin, GetTargetMap(disk));
    {
      shim::FileOptions fo;
      fo.writable = fo.create = true;
      MT_ASSIGN_OR_RETURN(auto cow, fs.OpenFile(info.cow_file(), fo));
      MT_RETURN_IF_ERROR(cow->Truncate(info.cow_size_bytes()));
      MT_RETURN_IF_ERROR(cow->Sync());
    }
    {
      MT_ASSIGN_OR_RETURN(auto loop, shim::AttachLoop(info.cow_file(), /*autoclear=*/true));
      MT_RETURN_IF_ERROR(Activate(origin, info.dm_name(),
                                  "MTAGENT-VSNAP-" + disk.wwid + "-" + spec.name, loop->dev()));
    }  // the snapshot map holds the loop device now
    MT_ASSIGN_OR_RETURN(auto snap, shim::DmInfo(info.dm_name()));
    if (!snap) return Status(Errc::kInternal, "snapshot map " + info.dm_name() + " vanished");
    info.set_device(shim::DmDevicePath(info.dm_name(), snap->dev));
    info.set_state("filling");
    return Save(fs, spec.retention_dir, info);
  }();
  if (!made.ok()) return Undo(fs, spec, info, made);
  return info;
}

Result<proto::VsnapInfo> Fill(shim::FileSystem& fs, const CreateSpec& spec,
                              proto::VsnapInfo info, const recovery::ProgressFn& on_progress) {
  auto filled = [&]() -> Status {
    shim::BlockDeviceOptions bo;
    bo.writable = bo.exclusive = bo.direct = true;
    MT_ASSIGN_OR_RETURN(auto dev, shim::OpenBlockDevice(info.device(), bo));
    MT_RETURN_IF_ERROR(recovery::OverlayUndo(fs, *spec.undo, spec.disk_index, spec.point.seq,
                                             *dev, on_progress));
    info.set_state("ready");
    MT_RETURN_IF_ERROR(Save(fs, spec.retention_dir, info));
    // What the copy-on-write store holds now (the before-images written).
    std::string text;
    auto used = CowUsedBytes(info.dm_name(), &text);
    if (used.ok() && *used) info.set_cow_used_bytes(**used);
    return Status::Ok();
  }();
  if (!filled.ok()) return Undo(fs, spec, info, filled);
  return info;
}

Result<proto::VsnapInfo> Create(shim::FileSystem& fs, const CreateSpec& spec,
                                const recovery::ProgressFn& on_progress) {
  MT_ASSIGN_OR_RETURN(proto::VsnapInfo info, Begin(fs, spec));
  return Fill(fs, spec, std::move(info), on_progress);
}

Result<std::vector<proto::VsnapInfo>> List(shim::FileSystem& fs, const std::string& root) {
  std::vector<proto::VsnapInfo> out;
  if (!fs.Exists(Dir(root))) return out;
  MT_ASSIGN_OR_RETURN(auto names, fs.ListDir(Dir(root)));
  const bool dm = shim::DeviceMapperAvailable();
  for (const auto& n : names) {
    if (n.size() <= 6 || n.compare(n.size() - 6, 6, kInfoSuffix) != 0) continue;
    MT_ASSIGN_OR_RETURN(auto info, Load(fs, Dir(root) + "/" + n));
    std::optional<shim::DmMapState> snap;
    if (dm) {
      MT_ASSIGN_OR_RETURN(snap, shim::DmInfo(info.dm_name()));
    }
    if (info.state() != "ready") {
      info.set_detail("creation did not finish (or is running now): mtctl vsnap remove " +
                      info.name() + ", then create it again");
      info.set_state("interrupted");
    } else if (!snap) {
      info.set_state("inactive");
      info.set_detail("its device-mapper maps are gone (the machine restarted?): mt-agent attaches "
                      "it again from its COW file when it next opens the disk (start it, or resume "
                      "the stream); to drop it instead: mtctl vsnap remove " + info.name());
    } else {
      info.set_device(shim::DmDevicePath(info.dm_name(), snap->dev));
      std::string st;
      MT_ASSIGN_OR_RETURN(auto used, CowUsedBytes(info.dm_name(), &st));
      if (used) {
        info.set_cow_used_bytes(*used);
      } else {
        info.set_state("invalid");
        info.set_detail("the kernel dropped the snapshot (" + st +
                        "): copy-on-write store full or failed; remove it");
      }
    }
    out.push_back(std::move(info));
  }
  return out;
}

Result<int> Reattach(shim::FileSystem& fs, const std::string& root, const inventory::Disk& disk) {
  if (disk.wwid.empty() || !fs.Exists(Dir(root))) return 0;
  MT_ASSIGN_OR_RETURN(auto names, fs.ListDir(Dir(root)));
  std::vector<proto::VsnapInfo> wanted;
  for (const auto& n : names) {
    if (n.size() <= 6 || n.compare(n.size() - 6, 6, kInfoSuffix) != 0) continue;
    MT_ASSIGN_OR_RETURN(auto info, Load(fs, Dir(root) + "/" + n));
    if (info.state() == "ready" && info.target_id() == disk.identity &&
        info.origin_dm_name() == TargetMapName(disk.wwid))
      wanted.push_back(std::move(info));
  }
  if (wanted.empty()) return 0;
  const std::string origin = TargetMapName(disk.wwid);
  MT_ASSIGN_OR_RETURN(auto exists, shim::DmInfo(origin));
  if (exists)
    return Status(Errc::kInternal, "vsnap reattach: the map " + origin + " exists already");
  const uint64_t sectors = disk.size_bytes / 512;
  const std::string& dev = disk.devnode;  // as the linear map is made (target_map.cc)
  MT_RETURN_IF_ERROR(shim::DmCreate(origin, "MTAGENT-TARGET-" + disk.wwid,
                                    {{0, sectors, "snapshot-origin", dev}}));
  int n = 0;
  for (const auto& info : wanted) {
    Status s = [&]() -> Status {
      MT_ASSIGN_OR_RETURN(auto loop, shim::AttachLoop(info.cow_file(), /*autoclear=*/true));
      return shim::DmCreate(info.dm_name(), "MTAGENT-VSNAP-" + disk.wwid + "-" + info.name(),
                            {{0, sectors, "snapshot",
                              dev + " " + loop->dev().ToString() + " P " +
                                  std::to_string(kChunkSectors)}});
    }();
    // The origin stays snapshot-origin whatever happens: a vsnap that could
    // not be attached must not see writes it would have had to copy.
    if (!s.ok())
      return s.WithContext("attach vsnap " + info.name() + " of " + disk.Describe() +
                           " again (the disk is not written until it is: remove the vsnap "
                           "with mtctl vsnap remove " + info.name() + ")");
    ++n;
  }
  return n;
}

Status Remove(shim::FileSystem& fs, const std::string& root, const std::string& name) {
  MT_RETURN_IF_ERROR(CheckName(name));
  const std::string path = InfoPath(root, name);
  if (!fs.Exists(path))
    return Status(Errc::kNotFound, "no vsnap named " + name + " (mtctl vsnap list)");
  MT_ASSIGN_OR_RETURN(auto info, Load(fs, path));
  if (!shim::DeviceMapperAvailable()) {
    // Nothing of it can be active: only the files are left.
    if (fs.Exists(info.cow_file())) MT_RETURN_IF_ERROR(fs.Remove(info.cow_file()));
    return fs.Remove(path);
  }
  return TakeDown(fs, root, info);
}

}  // namespace mt::vsnap
