// MemFileSystem: an in-memory FileSystem for tests, with the durability
// contract of file_system.h and a simulated power loss.
//
// Namespace changes (create, rename, remove, mkdir) are durable on return, as
// in PosixFileSystem; file data is durable only after File::Sync(). PowerCut()
// drops unsynced data of every file (or keeps a torn prefix, see
// PowerCutOptions). Open handles stay valid across a PowerCut, but a restarted
// component should reopen its files as a real one would.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>

#include "mt/shim/fault.h"
#include "mt/shim/file_system.h"

namespace mt::shim {

class MemFileSystem final : public FileSystem {
 public:
  // `capacity`: total bytes the files may hold; writes beyond it fail with kNoSpace.
  explicit MemFileSystem(uint64_t capacity = UINT64_MAX / 2);
  ~MemFileSystem() override;

  Result<std::unique_ptr<File>> OpenFile(const std::string& path,
                                         const FileOptions& options) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;
  Status CreateDir(const std::string& path) override;
  Status RemoveDir(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& path) override;
  bool Exists(const std::string& path) override;
  Result<uint64_t> FileSize(const std::string& path) override;
  Result<SpaceInfo> Space(const std::string& path) override;

  // Test helpers.
  void PowerCut(const PowerCutOptions& options = {});
  // Whole content of a file (including unsynced data); empty if missing.
  std::vector<uint8_t> Contents(const std::string& path);
  void set_capacity(uint64_t capacity);

  struct Node;  // a file's bytes, shared by its open handles

 private:
  uint64_t UsedLocked() const;
  std::shared_ptr<std::mutex> mu_;
  uint64_t capacity_;
  std::map<std::string, std::shared_ptr<Node>> files_;
  std::set<std::string> dirs_;
  std::mt19937_64 rng_;
};

}  // namespace mt::shim
