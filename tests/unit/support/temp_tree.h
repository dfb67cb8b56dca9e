// Test helper: a scratch directory (removed at the end), optionally a copy of
// a captured sysfs tree that a test then changes (devices come and go).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace mt::test {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mt-test-XXXXXX";
    const char* d = mkdtemp(tmpl);
    path_ = d != nullptr ? d : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

  // Copies a directory tree here (symlinks copied as symlinks).
  void CopyFrom(const std::string& tree) {
    std::filesystem::copy(
        tree, path_,
        std::filesystem::copy_options::recursive | std::filesystem::copy_options::copy_symlinks);
  }
  void Write(const std::string& relative, const std::string& content) {
    const std::filesystem::path p = std::filesystem::path(path_) / relative;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
  }
  void Remove(const std::string& relative) {
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path(path_) / relative, ec);
  }
  void Symlink(const std::string& target, const std::string& relative) {
    const std::filesystem::path p = std::filesystem::path(path_) / relative;
    std::filesystem::create_directories(p.parent_path());
    std::filesystem::create_symlink(target, p);
  }

 private:
  std::string path_;
};

}  // namespace mt::test
