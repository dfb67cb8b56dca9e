// Fuzzes the power-loss model every crash test relies on: for any sequence of
// writes, truncates, syncs and power cuts on a MemFileSystem file, what
// survives a cut equals a trivially correct model (a full copy of the file
// taken at every Sync).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "mt/shim/mem_file_system.h"

using namespace mt::shim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  MemFileSystem fs;
  FileOptions o;
  o.writable = o.create = true;
  auto f = std::move(fs.OpenFile("/f", o)).value();
  std::string current, durable;
  size_t i = 0;
  auto next = [&]() -> uint8_t { return i < size ? data[i++] : 0; };
  while (i < size) {
    switch (next() % 4) {
      case 0: {  // write
        const uint64_t off = next() % 64;
        const size_t len = next() % 32;
        const char c = static_cast<char>('a' + next() % 26);
        std::string buf(len, c);
        if (!f->WriteAt(off, buf.data(), len).ok()) abort();
        if (current.size() < off + len) current.resize(off + len, '\0');
        current.replace(off, len, buf);
        break;
      }
      case 1: {  // truncate
        const uint64_t n = next() % 96;
        if (!f->Truncate(n).ok()) abort();
        current.resize(n, '\0');
        break;
      }
      case 2:
        if (!f->Sync().ok()) abort();
        durable = current;
        break;
      case 3: {
        fs.PowerCut();
        current = durable;
        auto c = fs.Contents("/f");
        if (std::string(c.begin(), c.end()) != durable) abort();
        break;
      }
    }
    auto c = fs.Contents("/f");
    if (std::string(c.begin(), c.end()) != current) abort();
  }
  return 0;
}
