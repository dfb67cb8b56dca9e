// Decoder (and a small encoder for tests) of a Linux dm-log-writes capture:
// the log device's contents as written by drivers/md/dm-log-writes.c. The
// layout (docs/formats/dm-log-writes.md), all integers little-endian:
//
//   byte 0            super   magic u64 = 0x6a736677736872, version u64 = 1,
//                             nr_entries u64, sectorsize u32; the rest of the
//                             first sectorsize bytes is padding
//   byte sectorsize   entry 0 header: sector u64, nr_sectors u64, flags u64,
//                             data_len u64 (32 bytes), padded to sectorsize;
//                             a MARK's name (data_len bytes) follows the 32
//                             bytes inside the header block
//                     then, unless DISCARD (and for a MARK or an empty FLUSH
//                             nr_sectors is 0), nr_sectors * sectorsize bytes
//                             of the write's data
//                     entry 1 header ...
//
// `sector` and `nr_sectors` count sectorsize units (the kernel converts the
// bio's 512-byte sectors with bio_to_dev_sectors; with a sectorsize of 512
// they are 512-byte sectors). data_len is 0 for ordinary writes (the data is
// nr_sectors blocks), the name length for a MARK, and nr_sectors * sectorsize
// for writes logged with inline data.
//
// The decoder does no I/O of its own: it reads through a LogSource (bytes in
// memory, or a shim::File) and reports every inconsistency as kCorruption
// naming the entry and its byte offset.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mt/shim/block_device.h"
#include "mt/shim/file_system.h"
#include "mt/shim/status.h"

namespace mt::send::logwrites {

constexpr uint64_t kMagic = 0x6a736677736872ULL;
constexpr uint64_t kVersion = 1;
constexpr uint64_t kEntryHeaderBytes = 32;
constexpr uint64_t kSuperBytes = 28;

enum Flag : uint64_t {
  kFlush = 1,
  kFua = 2,
  kDiscard = 4,
  kMark = 8,
  kMetadata = 16,
};
constexpr uint64_t kKnownFlags = kFlush | kFua | kDiscard | kMark | kMetadata;

struct Super {
  uint64_t nr_entries = 0;
  uint32_t sectorsize = 0;
};

struct Entry {
  uint64_t index = 0;        // 0-based position in the log
  uint64_t header_offset = 0;  // byte offset of the header block in the capture
  uint64_t sector = 0, nr_sectors = 0, flags = 0, data_len = 0;
  uint64_t data_offset = 0;  // byte offset of the data (valid if data_bytes > 0)
  uint64_t data_bytes = 0;   // bytes of write data in the capture (0: none)
  std::string mark;          // MARK entries: the name

  bool is_mark() const { return (flags & kMark) != 0; }
  bool is_discard() const { return (flags & kDiscard) != 0; }
  // Byte range on the logged device (writes and discards).
  uint64_t byte_offset(uint32_t sectorsize) const { return sector * sectorsize; }
  uint64_t byte_length(uint32_t sectorsize) const { return nr_sectors * sectorsize; }
};

// Where the capture's bytes come from.
class LogSource {
 public:
  virtual ~LogSource() = default;
  virtual uint64_t Size() const = 0;
  // Exactly len bytes at offset (REQUIRES offset + len <= Size()).
  virtual Status Read(uint64_t offset, void* buf, size_t len) = 0;
};

class BytesSource final : public LogSource {
 public:
  BytesSource(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint64_t Size() const override { return size_; }
  Status Read(uint64_t offset, void* buf, size_t len) override;

 private:
  const uint8_t* data_;
  size_t size_;
};

class FileSource final : public LogSource {
 public:
  explicit FileSource(shim::File& f) : f_(f), size_(f.Size()) {}
  uint64_t Size() const override { return size_; }
  Status Read(uint64_t offset, void* buf, size_t len) override;

 private:
  shim::File& f_;
  uint64_t size_;
};

// The log device itself (st_size of a block device node is 0, so a File
// cannot be used): reads go through an aligned bounce buffer, whole logical
// blocks at a time, as BlockDevice's contract requires.
class BlockDeviceSource final : public LogSource {
 public:
  explicit BlockDeviceSource(shim::BlockDevice& d) : d_(d) {}
  uint64_t Size() const override { return d_.size(); }
  Status Read(uint64_t offset, void* buf, size_t len) override;

 private:
  shim::BlockDevice& d_;
};

// Pure decoders of one block.
Result<Super> DecodeSuper(const uint8_t* p, size_t len);
// `header` holds at least min(sectorsize, bytes left) bytes of the entry's
// header block at `offset`; checks the entry against the capture's size.
Result<Entry> DecodeEntry(const uint8_t* header, size_t len, uint32_t sectorsize, uint64_t index,
                          uint64_t offset, uint64_t capture_size);

// Sequential reader: the super, then the nr_entries entries in log order.
class Reader {
 public:
  static Result<Reader> Open(LogSource& src);
  const Super& super() const { return super_; }
  // The next entry's header (data not read); false after nr_entries entries.
  Result<bool> Next(Entry* e);
  // The data of a write entry.
  Status ReadData(const Entry& e, std::vector<uint8_t>* out);

 private:
  explicit Reader(LogSource& src) : src_(&src) {}
  LogSource* src_;
  Super super_;
  uint64_t next_index_ = 0, next_offset_ = 0;
  std::vector<uint8_t> header_;
};

// Builds a capture in memory the way the kernel lays it out (for tests and
// fuzz seeds): Super at 0, entries from sectorsize on.
class Writer {
 public:
  explicit Writer(uint32_t sectorsize = 512);
  // data.size() must be a multiple of sectorsize; sector in sectorsize units.
  void Write(uint64_t sector, const std::vector<uint8_t>& data, uint64_t flags = 0);
  void Discard(uint64_t sector, uint64_t nr_sectors, uint64_t flags = 0);
  void Flush(uint64_t flags = kFlush);  // an empty flush (no sectors)
  void Mark(const std::string& name);
  // The capture; nr_entries in the super is every entry so far unless
  // `nr_entries` overrides it.
  std::vector<uint8_t> Finish(int64_t nr_entries = -1) const;
  uint64_t entries() const { return entries_; }

 private:
  void Header(uint64_t sector, uint64_t nr, uint64_t flags, uint64_t data_len, const std::string& inline_data);
  uint32_t ss_;
  std::vector<uint8_t> log_;  // everything after the super block
  uint64_t entries_ = 0;
};

}  // namespace mt::send::logwrites
