// How an undo (before-image) payload is stored: all-zero blocks store nothing
// (kFlagZero), compressible ones are stored zstd-compressed (kFlagZstd) when
// that saves at least 1/8 of the bytes, everything else raw.
#pragma once

#include <cstdint>
#include <vector>

#include "mt/shim/status.h"
#include "retention/record_format.h"

struct ZSTD_CCtx_s;
struct ZSTD_DCtx_s;

namespace mt::retention {

struct StoredForm {
  uint32_t flags = 0;             // 0, kFlagZero or kFlagZstd
  const uint8_t* data = nullptr;  // what to store (size bytes)
  size_t size = 0;
};

// Not thread-safe: one per applier thread.
class PayloadEncoder {
 public:
  // level: zstd level (1 is fast; negative levels are faster still).
  explicit PayloadEncoder(bool compress = true, int level = 1);
  ~PayloadEncoder();
  PayloadEncoder(const PayloadEncoder&) = delete;
  PayloadEncoder& operator=(const PayloadEncoder&) = delete;

  // The stored form of data[0..len). The result points into `data` or into
  // this encoder's buffer: valid until the next call.
  StoredForm Encode(const uint8_t* data, size_t len);

  uint64_t bytes_in() const { return bytes_in_; }
  uint64_t bytes_stored() const { return bytes_stored_; }

 private:
  bool compress_;
  int level_;
  ZSTD_CCtx_s* cctx_ = nullptr;
  std::vector<uint8_t> buf_;
  uint64_t bytes_in_ = 0, bytes_stored_ = 0;
};

// Expands a stored payload into out[0..h.length). kCorruption if the stored
// bytes do not expand to exactly h.length bytes.
Status ExpandPayload(const RecordHeader& h, const uint8_t* stored, size_t stored_len, uint8_t* out);

bool IsAllZero(const uint8_t* data, size_t len);

}  // namespace mt::retention
