// ResidentBytes: this process's resident memory (VmRSS), for tests that bound
// what an object or a load costs in memory.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

namespace mt::test {

inline uint64_t ResidentBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

}  // namespace mt::test
