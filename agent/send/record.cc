#include "send/record.h"

#include <cinttypes>
#include <cstdio>
#include <sstream>

#include "mt/shim/crc32c.h"

namespace mt::send {

namespace {

Status ParseLine(const std::string& line, size_t lineno, const std::string& path, Record* r) {
  auto bad = [&] {
    return Status(Errc::kCorruption, path + ":" + std::to_string(lineno) + ": not a record line: " + line);
  };
  if (lineno == 1) {
    unsigned long long seed = 0, start = 0;
    int version = 0;
    if (std::sscanf(line.c_str(), "mtsend-record %d seed=%llu start=%llu", &version, &seed, &start) != 3 ||
        version != 1)
      return bad();
    r->seed = seed;
    r->start = start;
    return Status::Ok();
  }
  RecordEntry e;
  if (line.size() > 2 && line[0] == 'W' && line[1] == ' ') {
    unsigned long long seq, off, len;
    unsigned disk, crc;
    if (std::sscanf(line.c_str() + 2, "%llu %u %llu %llu %8x", &seq, &disk, &off, &len, &crc) != 5)
      return bad();
    e.type = 'W';
    e.seq = seq;
    e.disk = disk;
    e.offset = off;
    e.length = len;
    e.crc32c = crc;
  } else if (line.size() > 2 && line[0] == 'T' && line[1] == ' ') {
    std::istringstream in(line.substr(2));
    unsigned long long seq;
    if (!(in >> seq >> e.kind)) return bad();
    in.get();
    std::getline(in, e.name);
    e.type = 'T';
    e.seq = seq;
  } else {
    return bad();
  }
  if (!r->entries.empty() && e.seq <= r->entries.back().seq) return bad();
  r->entries.push_back(std::move(e));
  return Status::Ok();
}

}  // namespace

std::string FormatEntry(const RecordEntry& e) {
  char buf[160];
  if (e.type == 'W') {
    std::snprintf(buf, sizeof buf, "W %" PRIu64 " %u %" PRIu64 " %" PRIu64 " %08x\n", e.seq, e.disk,
                  e.offset, e.length, e.crc32c);
    return buf;
  }
  std::snprintf(buf, sizeof buf, "T %" PRIu64 " %s ", e.seq, e.kind.c_str());
  return buf + e.name + "\n";
}

Result<Record> ReadRecord(shim::FileSystem& fs, const std::string& path) {
  if (!fs.Exists(path)) return Status(Errc::kNotFound, "no record " + path);
  MT_ASSIGN_OR_RETURN(std::unique_ptr<shim::File> f, fs.OpenFile(path, shim::FileOptions{}));
  std::string text(f->Size(), '\0');
  MT_ASSIGN_OR_RETURN(size_t got, f->ReadAt(0, text.data(), text.size()));
  text.resize(got);
  Record r;
  size_t pos = 0, lineno = 0;
  for (;;) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // a torn last line is ignored
    MT_RETURN_IF_ERROR(ParseLine(text.substr(pos, nl - pos), ++lineno, path, &r));
    pos = nl + 1;
  }
  if (lineno == 0) return Status(Errc::kCorruption, path + ": no header line");
  return r;
}

Result<std::unique_ptr<RecordWriter>> RecordWriter::Open(shim::FileSystem& fs, const std::string& path,
                                                         uint64_t seed, uint64_t resume_seq) {
  Record old;
  old.seed = seed;
  old.start = resume_seq;
  if (fs.Exists(path)) {
    MT_ASSIGN_OR_RETURN(old, ReadRecord(fs, path));
    if (old.seed != seed) {
      return Status(Errc::kInvalidArgument, "record " + path + " is of --seed " + std::to_string(old.seed) +
                                                ", not " + std::to_string(seed));
    }
  }
  std::string text = "mtsend-record 1 seed=" + std::to_string(seed) +
                     " start=" + std::to_string(std::min(old.start, resume_seq)) + "\n";
  for (const RecordEntry& e : old.entries) {
    if (e.seq <= resume_seq) text += FormatEntry(e);
  }
  MT_RETURN_IF_ERROR(shim::WriteFileAtomically(fs, path, text));
  shim::FileOptions o;
  o.writable = true;
  MT_ASSIGN_OR_RETURN(std::unique_ptr<shim::File> f, fs.OpenFile(path, o));
  return std::unique_ptr<RecordWriter>(new RecordWriter(std::move(f), std::min(old.start, resume_seq)));
}

Status RecordWriter::Append(const std::vector<RecordEntry>& entries) {
  std::string text;
  for (const RecordEntry& e : entries) text += FormatEntry(e);
  if (text.empty()) return Status::Ok();
  return f_->Append(text.data(), text.size());
}

Status RebuildDisks(const Record& record, uint32_t disks, uint64_t disk_size, uint64_t upto_seq,
                    std::vector<std::vector<uint8_t>>* images) {
  images->assign(disks, std::vector<uint8_t>(disk_size, 0));
  std::vector<uint8_t> data;
  for (const RecordEntry& e : record.entries) {
    if (e.seq > upto_seq || e.type != 'W') continue;
    if (e.disk >= disks || e.offset + e.length > disk_size || e.offset + e.length < e.offset) {
      return Status(Errc::kOutOfRange, "record write seq " + std::to_string(e.seq) + " is outside the disks");
    }
    data.resize(e.length);
    WorkloadData(record.seed, e.seq, data.data(), e.length);
    if (crc32c::Value(data.data(), data.size()) != e.crc32c) {
      return Status(Errc::kCorruption, "record write seq " + std::to_string(e.seq) +
                                           ": regenerated data does not have the recorded CRC32C");
    }
    std::copy(data.begin(), data.end(), (*images)[e.disk].begin() + static_cast<ptrdiff_t>(e.offset));
  }
  return Status::Ok();
}

}  // namespace mt::send
