// CRC32C (Castagnoli), the checksum of every record, frame and payload.
// Computed by isa-l (hardware crc32 / pclmulqdq where the CPU has them).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mt::crc32c {

// CRC32C of data[0..n). Standard: Value("123456789") == 0xE3069283.
uint32_t Value(const void* data, size_t n);
// Continue a CRC: Extend(Value(a), b) == Value(a ++ b).
uint32_t Extend(uint32_t crc, const void* data, size_t n);

}  // namespace mt::crc32c
