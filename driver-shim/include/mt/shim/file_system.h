// FileSystem: files for journals, catalogs and state, through an interface so
// the retention store runs on MemFileSystem (power-loss simulation) in tests and
// on PosixFileSystem in production.
//
// Durability contract (what every implementation, fakes included, guarantees):
//  - File::Sync() makes every byte written to that file before it durable
//    (fdatasync). Nothing else makes file data durable.
//  - Creating a file (OpenFile with create), Rename, Remove and CreateDir are
//    durable when they return: the parent directory is fsynced.
//  - After a power loss a file holds its data as of its last Sync(), possibly
//    plus a torn prefix of later writes. Readers must tolerate that tail.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mt/shim/status.h"

namespace mt::shim {

class File {
 public:
  virtual ~File() = default;
  virtual const std::string& path() const = 0;
  // Current size, including data not yet synced.
  virtual uint64_t Size() const = 0;
  // Reads up to len bytes; fewer only at end of file.
  virtual Result<size_t> ReadAt(uint64_t offset, void* buf, size_t len) = 0;
  // Writes all len bytes at offset (extending the file if needed). A file opened
  // with `direct` requires offset, len and buf aligned to kDirectIoAlignment.
  virtual Status WriteAt(uint64_t offset, const void* buf, size_t len) = 0;
  virtual Status Sync() = 0;
  // Sets the size (cuts a torn tail, or extends with zeroes). Durable after Sync().
  virtual Status Truncate(uint64_t size) = 0;
  // Reserves space for [offset, offset+len) without changing Size().
  virtual Status Preallocate(uint64_t offset, uint64_t len) = 0;

  Status Append(const void* buf, size_t len) { return WriteAt(Size(), buf, len); }
};

struct FileOptions {
  bool writable = false;
  bool create = false;            // create if missing (durable on return)
  bool must_not_exist = false;    // with create: fail with kAlreadyExists if present
  bool direct = false;            // O_DIRECT
};

struct SpaceInfo {
  uint64_t capacity = 0;   // bytes of the file system
  uint64_t available = 0;  // bytes an unprivileged writer can still use
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  virtual Result<std::unique_ptr<File>> OpenFile(const std::string& path,
                                                 const FileOptions& options) = 0;
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status Remove(const std::string& path) = 0;
  // Creates the directory (and missing parents). Ok if it exists.
  virtual Status CreateDir(const std::string& path) = 0;
  virtual Status RemoveDir(const std::string& path) = 0;
  // Names (not paths) of the entries of a directory, sorted.
  virtual Result<std::vector<std::string>> ListDir(const std::string& path) = 0;
  virtual bool Exists(const std::string& path) = 0;
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  virtual Result<SpaceInfo> Space(const std::string& path) = 0;
};

// The real file system; a process-wide instance.
FileSystem& PosixFileSystem();

// Replaces `path` with `text` so that a crash leaves the old or the new file,
// whole: write `<path>.tmp` (a leftover one is removed first), sync it,
// rename it over `path` (durable on return, see the contract above).
Status WriteFileAtomically(FileSystem& fs, const std::string& path, const std::string& text);

// The whole content of a small file (state, keys, markers); kCorruption when
// it is larger than `max_bytes`.
Result<std::string> ReadSmallFile(FileSystem& fs, const std::string& path,
                                  uint64_t max_bytes = 1u << 20);

// The alignment rule of files opened with FileOptions::direct: offset, length
// and buffer address multiples of kDirectIoAlignment, else kMisaligned.
Status CheckDirectFileIo(const std::string& path, const char* op, uint64_t offset,
                         const void* buf, size_t len);

// "a/b/c" -> "a/b"; "c" -> "."; "/c" -> "/".
std::string ParentDir(const std::string& path);
std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace mt::shim
