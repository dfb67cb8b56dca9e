#include "mt/shim/volume.h"

#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <vector>

#include "mt/shim/file_system.h"
#include "mt/shim/process.h"

namespace mt::shim {

Status FormatExt4(const std::string& device, const std::string& label) {
  auto r = RunProcess({"mkfs.ext4", "-q", "-F", "-L", label, device});
  if (!r.ok()) {
    if (r.status().code() == Errc::kNotFound)
      return Status(Errc::kUnavailable, "mkfs.ext4 not found: install e2fsprogs");
    return r.status();
  }
  if (r->exit_code != 0) {
    std::string why = r->err.empty() ? r->out : r->err;
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return Status(Errc::kIoError, "mkfs.ext4 " + device + " failed (exit " +
                                      std::to_string(r->exit_code) + "): " + why);
  }
  return Status::Ok();
}

Status MountExt4(const std::string& device, const std::string& dir) {
  MT_RETURN_IF_ERROR(PosixFileSystem().CreateDir(dir));
  if (::mount(device.c_str(), dir.c_str(), "ext4", MS_NOATIME, nullptr) != 0)
    return Status::FromErrno(errno, "mount " + device + " at " + dir);
  return Status::Ok();
}

namespace {

std::vector<std::string> Fields(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> f;
  std::string w;
  while (in >> w) f.push_back(w);
  return f;
}

}  // namespace

Status EnsureFstabEntry(const std::string& fstab_path, const std::string& uuid,
                        const std::string& dir, bool* changed) {
  *changed = false;
  const std::string want_source = "UUID=" + uuid;
  std::string content;
  {
    std::ifstream in(fstab_path);
    if (in) {
      std::ostringstream ss;
      ss << in.rdbuf();
      content = ss.str();
    } else if (PosixFileSystem().Exists(fstab_path)) {
      return Status::FromErrno(errno, "read " + fstab_path);
    }
  }
  std::istringstream lines(content);
  std::string line;
  while (std::getline(lines, line)) {
    auto f = Fields(line);
    if (f.size() < 2 || f[0][0] == '#') continue;
    if (f[1] != dir) continue;
    if (f[0] == want_source) return Status::Ok();
    return Status(Errc::kBusy, fstab_path + " already mounts something else at " + dir + ": '" +
                                   line + "'; remove that line first");
  }
  if (!content.empty() && content.back() != '\n') content += '\n';
  content += want_source + " " + dir + " ext4 defaults,nofail 0 2\n";

  FileSystem& fs = PosixFileSystem();
  const std::string tmp = fstab_path + ".mt-agent.tmp";
  FileOptions o;
  o.writable = o.create = true;
  if (fs.Exists(tmp)) MT_RETURN_IF_ERROR(fs.Remove(tmp));
  {
    MT_ASSIGN_OR_RETURN(auto f, fs.OpenFile(tmp, o));
    MT_RETURN_IF_ERROR(f->WriteAt(0, content.data(), content.size()));
    MT_RETURN_IF_ERROR(f->Sync());
  }
  struct stat st {};
  if (::stat(fstab_path.c_str(), &st) == 0) ::chmod(tmp.c_str(), st.st_mode & 07777);
  else ::chmod(tmp.c_str(), 0644);
  MT_RETURN_IF_ERROR(fs.Rename(tmp, fstab_path));
  *changed = true;
  return Status::Ok();
}

}  // namespace mt::shim
