#include "retention/compression.h"

#include <zstd.h>

#include <cstring>

namespace mt::retention {

bool IsAllZero(const uint8_t* data, size_t len) {
  if (len == 0) return true;
  return data[0] == 0 && std::memcmp(data, data + 1, len - 1) == 0;
}

PayloadEncoder::PayloadEncoder(bool compress, int level) : compress_(compress), level_(level) {
  if (compress_) cctx_ = ZSTD_createCCtx();
}

PayloadEncoder::~PayloadEncoder() { ZSTD_freeCCtx(cctx_); }

StoredForm PayloadEncoder::Encode(const uint8_t* data, size_t len) {
  bytes_in_ += len;
  StoredForm f;
  if (IsAllZero(data, len)) {
    f.flags = kFlagZero;
    return f;
  }
  f.data = data;
  f.size = len;
  if (compress_ && cctx_ != nullptr) {
    buf_.resize(ZSTD_compressBound(len));
    const size_t n = ZSTD_compressCCtx(cctx_, buf_.data(), buf_.size(), data, len, level_);
    if (!ZSTD_isError(n) && n <= len - len / 8) {
      f.flags = kFlagZstd;
      f.data = buf_.data();
      f.size = n;
    }
  }
  bytes_stored_ += f.size;
  return f;
}

Status ExpandPayload(const RecordHeader& h, const uint8_t* stored, size_t stored_len,
                     uint8_t* out) {
  if ((h.flags & kFlagZero) != 0) {
    std::memset(out, 0, h.length);
    return Status::Ok();
  }
  if ((h.flags & kFlagZstd) == 0) {
    if (stored_len != h.length)
      return Status(Errc::kCorruption, "raw payload of seq " + std::to_string(h.seq) +
                                           " has the wrong length");
    std::memcpy(out, stored, stored_len);
    return Status::Ok();
  }
  const size_t n = ZSTD_decompress(out, h.length, stored, stored_len);
  if (ZSTD_isError(n) || n != h.length)
    return Status(Errc::kCorruption, "compressed payload of seq " + std::to_string(h.seq) +
                                         " does not expand to " + std::to_string(h.length) +
                                         " bytes" +
                                         (ZSTD_isError(n) ? std::string(": ") + ZSTD_getErrorName(n)
                                                          : std::string()));
  return Status::Ok();
}

}  // namespace mt::retention
