#include "loop_device.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>

namespace mt::test {

bool IsRoot() { return geteuid() == 0; }

int Run(const std::string& command) {
  const int rc = std::system(command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

std::string Capture(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(command.c_str(), "r"), pclose);
  std::string out;
  if (!p) return out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p.get())) > 0) out.append(buf.data(), n);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string ScratchDir() {
  const char* d = std::getenv("MT_TEST_SCRATCH");
  return d != nullptr && *d != '\0' ? d : "/var/tmp";
}

LoopDevice::LoopDevice(unsigned long long size, unsigned sector_size) {
  char tmpl[256];
  std::snprintf(tmpl, sizeof tmpl, "%s/mt-loop-XXXXXX", ScratchDir().c_str());
  const int fd = mkstemp(tmpl);
  if (fd < 0) {
    error_ = std::string("mkstemp in ") + ScratchDir() + " failed";
    return;
  }
  file_ = tmpl;
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) error_ = "ftruncate " + file_ + " failed";
  close(fd);
  if (!error_.empty()) return;
  std::string cmd = "losetup --find --show --direct-io=on";
  if (sector_size != 0) cmd += " --sector-size " + std::to_string(sector_size);
  path_ = Capture(cmd + " " + file_ + " 2>&1");
  if (path_.rfind("/dev/loop", 0) != 0) {
    error_ = "losetup failed: " + path_;
    path_.clear();
  }
}

LoopDevice::~LoopDevice() {
  if (!path_.empty()) Run("losetup -d " + path_);
  if (!file_.empty()) unlink(file_.c_str());
}

}  // namespace mt::test
