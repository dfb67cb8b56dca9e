#include "stream/block_hash.h"

#include <openssl/evp.h>

#include <algorithm>
#include <memory>

namespace mt::stream {

Status HashBlocks(const uint8_t* data, size_t len, uint64_t block_size, std::vector<uint8_t>* out) {
  const uint64_t blocks = HashBlockCount(len, block_size);
  const size_t start = out->size();
  out->resize(start + blocks * kBlockHashBytes);
  uint8_t* digest = out->data() + start;
  // One context for every block (a one-shot EVP_Digest per 4 KiB block
  // would make and free one each time).
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx) return Status(Errc::kInternal, "SHA-256: no digest context");
  for (uint64_t off = 0; off < len; off += block_size) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(block_size, len - off));
    unsigned int dlen = 0;
    if (EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
        EVP_DigestUpdate(ctx.get(), data + off, n) != 1 ||
        EVP_DigestFinal_ex(ctx.get(), digest, &dlen) != 1 || dlen != kBlockHashBytes) {
      out->resize(start);
      return Status(Errc::kInternal, "SHA-256 failed");
    }
    digest += kBlockHashBytes;
  }
  return Status::Ok();
}

}  // namespace mt::stream
