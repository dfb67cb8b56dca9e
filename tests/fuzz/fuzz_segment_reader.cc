// Fuzzes the journal segment reader: any bytes after a valid segment header
// (and, with the first input byte odd, in place of it) must give records or a
// precise error, never a crash, an over-read or a hang.
#include <cstdint>
#include <cstring>
#include <vector>

#include "mt/shim/mem_file_system.h"
#include "retention/record_format.h"
#include "retention/segment_reader.h"

using namespace mt;
using namespace mt::retention;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  shim::MemFileSystem fs;
  shim::FileOptions o;
  o.writable = o.create = true;
  auto f = std::move(fs.OpenFile("/seg", o)).value();
  std::vector<uint8_t> file;
  if ((data[0] & 1) == 0) {
    SegmentHeader h;
    h.kind = SegmentKind::kUndo;
    h.number = 1;
    h.first_batch = 1;
    file.resize(kSegmentHeaderSize);
    EncodeSegmentHeader(h, file.data());
  }
  file.insert(file.end(), data + 1, data + size);
  (void)f->Append(file.data(), file.size());
  for (bool sealed : {false, true}) {
    auto r = SegmentReader::Open(fs, "/seg", sealed);
    if (!r.ok()) continue;
    ScanReport report;
    (void)(*r)->Scan(&report);
    std::vector<uint8_t> payload;
    for (size_t i = 0; i < (*r)->records().size(); ++i) {
      if (!(*r)->ReadPayload(i, &payload).ok()) abort();  // Scan verified it
    }
    if (report.valid_end > file.size()) abort();
  }
  return 0;
}
