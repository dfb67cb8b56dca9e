// Paths of the checked-in test data (tests/data), from CMake.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace mt::test {

inline std::string DataDir() {
  return MT_TEST_DATA_DIR;
}
inline std::string SysfsTree(const std::string& name) {
  return DataDir() + "/sysfs/" + name;
}

inline std::string ReadDataFile(const std::string& relative) {
  std::ifstream f(DataDir() + "/" + relative, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace mt::test
