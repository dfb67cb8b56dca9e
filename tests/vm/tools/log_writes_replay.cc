// log-writes-replay: the crash states of a dm-log-writes capture, for the
// VM tier's power-loss scenario (the method of fstests' generic/455 and its
// replay-log, written here over mtsend's decoder, agent/send/log_writes.h).
//
//   log-writes-replay list LOG
//       one line per crash point and mark, in log order:
//         flush INDEX        a FLUSH or FUA entry: the device as it is after
//                            entries 0..INDEX is a state a power loss may leave
//         mark INDEX NAME    a MARK entry (the scenario's "everything up to
//                            here was acknowledged" marks)
//       and a last line "entries N".
//   log-writes-replay apply LOG DEV --from A --to B
//       writes entries A..B (inclusive) onto DEV in log order: a write's data,
//       a discard as zeroes (what the agent reads back from a discarded range
//       of its targets), flushes and marks change nothing.
//
// A test tool: it writes any device it is given. Exit 0, 1 on an error (one
// line on stderr), 2 on a usage error.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "send/log_writes.h"
#include "mt/shim/block_device.h"

namespace {

using mt::Status;
namespace lw = mt::send::logwrites;

int Fail(const std::string& what) {
  std::fprintf(stderr, "log-writes-replay: %s\n", what.c_str());
  return 1;
}

int Usage() {
  std::fprintf(stderr,
               "usage: log-writes-replay list LOG\n"
               "       log-writes-replay apply LOG DEV --from A --to B\n");
  return 2;
}

// The capture (the log device or an image of it), read through a
// BlockDevice so that a device node works as well as a file.
struct Capture {
  std::unique_ptr<mt::shim::BlockDevice> dev;
  std::unique_ptr<lw::BlockDeviceSource> src;
};

mt::Result<Capture> OpenCapture(const std::string& path) {
  mt::shim::BlockDeviceOptions o;
  o.direct = false;
  MT_ASSIGN_OR_RETURN(auto dev, mt::shim::OpenBlockDevice(path, o));
  Capture c;
  c.src = std::make_unique<lw::BlockDeviceSource>(*dev);
  c.dev = std::move(dev);
  return c;
}

int List(const std::string& log) {
  auto cap = OpenCapture(log);
  if (!cap.ok()) return Fail(cap.status().ToString());
  auto reader = lw::Reader::Open(*cap->src);
  if (!reader.ok()) return Fail(reader.status().ToString());
  lw::Entry e;
  uint64_t n = 0;
  for (;;) {
    auto next = reader->Next(&e);
    if (!next.ok()) return Fail(next.status().ToString());
    if (!*next) break;
    ++n;
    if (e.is_mark())
      std::printf("mark %llu %s\n", static_cast<unsigned long long>(e.index), e.mark.c_str());
    else if ((e.flags & (lw::kFlush | lw::kFua)) != 0)
      std::printf("flush %llu\n", static_cast<unsigned long long>(e.index));
  }
  std::printf("entries %llu\n", static_cast<unsigned long long>(n));
  return 0;
}

int Apply(const std::string& log, const std::string& dev_path, uint64_t from, uint64_t to) {
  auto cap = OpenCapture(log);
  if (!cap.ok()) return Fail(cap.status().ToString());
  auto reader = lw::Reader::Open(*cap->src);
  if (!reader.ok()) return Fail(reader.status().ToString());
  const int fd = ::open(dev_path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Fail(dev_path + ": " + std::strerror(errno));
  const uint32_t ss = reader->super().sectorsize;
  std::vector<uint8_t> data;
  lw::Entry e;
  int rc = 0;
  for (;;) {
    auto next = reader->Next(&e);
    if (!next.ok()) {
      rc = Fail(next.status().ToString());
      break;
    }
    if (!*next || e.index > to) break;
    if (e.index < from || e.is_mark() || e.nr_sectors == 0) continue;
    const uint64_t off = e.byte_offset(ss), len = e.byte_length(ss);
    if (e.is_discard()) {
      data.assign(static_cast<size_t>(std::min<uint64_t>(len, 1u << 20)), 0);
      for (uint64_t done = 0; done < len && rc == 0;) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(data.size(), len - done));
        if (::pwrite(fd, data.data(), n, static_cast<off_t>(off + done)) != static_cast<ssize_t>(n))
          rc = Fail(dev_path + ": zeroing a discard: " + std::strerror(errno));
        done += n;
      }
    } else {
      Status s = reader->ReadData(e, &data);
      if (!s.ok()) {
        rc = Fail(s.ToString());
        break;
      }
      if (::pwrite(fd, data.data(), data.size(), static_cast<off_t>(off)) !=
          static_cast<ssize_t>(data.size()))
        rc = Fail(dev_path + ": write of entry " + std::to_string(e.index) + ": " +
                  std::strerror(errno));
    }
    if (rc != 0) break;
  }
  if (rc == 0 && ::fsync(fd) != 0) rc = Fail(dev_path + ": fsync: " + std::strerror(errno));
  ::close(fd);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "list") return List(args[1]);
  if (args.size() == 7 && args[0] == "apply" && args[3] == "--from" && args[5] == "--to") {
    char* end = nullptr;
    const uint64_t from = std::strtoull(args[4].c_str(), &end, 10);
    if (*end != '\0') return Usage();
    const uint64_t to = std::strtoull(args[6].c_str(), &end, 10);
    if (*end != '\0') return Usage();
    return Apply(args[1], args[2], from, to);
  }
  return Usage();
}
