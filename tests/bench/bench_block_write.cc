// bench_block_write DEVICE TOTAL_MIB [BLOCK_KIB]
// Sequential O_DIRECT writes of BLOCK_KIB (default 1024) through the real
// BlockDevice, one I/O in flight (like fio --ioengine=psync --iodepth=1), then
// one Flush. Prints {"bytes":..,"seconds":..,"mib_per_s":..}.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "mt/shim/aligned_buffer.h"
#include "mt/shim/block_device.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_block_write DEVICE TOTAL_MIB [BLOCK_KIB]\n");
    return 2;
  }
  const std::string path = argv[1];
  const uint64_t total = std::strtoull(argv[2], nullptr, 10) << 20;
  const uint64_t block = (argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1024) << 10;
  mt::shim::BlockDeviceOptions o;
  o.writable = true;
  auto dev = mt::shim::OpenBlockDevice(path, o);
  if (!dev.ok()) {
    std::fprintf(stderr, "bench_block_write: %s\n", dev.status().ToString().c_str());
    return 1;
  }
  if (total > (*dev)->size()) {
    std::fprintf(stderr, "bench_block_write: %s is smaller than %llu bytes\n", path.c_str(),
                 static_cast<unsigned long long>(total));
    return 1;
  }
  mt::AlignedBuffer buf(block);
  for (size_t i = 0; i < buf.size(); ++i) buf.data()[i] = static_cast<uint8_t>(i * 31 + 7);
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t off = 0; off + block <= total; off += block) {
    mt::Status s = (*dev)->WriteAt(off, buf.data(), block);
    if (!s.ok()) {
      std::fprintf(stderr, "bench_block_write: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  mt::Status s = (*dev)->Flush();
  if (!s.ok()) {
    std::fprintf(stderr, "bench_block_write: %s\n", s.ToString().c_str());
    return 1;
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"bytes\":%llu,\"seconds\":%.4f,\"mib_per_s\":%.1f}\n",
              static_cast<unsigned long long>(total), secs, total / secs / (1 << 20));
  return 0;
}
