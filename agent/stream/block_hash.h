// Resync block hashes: SHA-256 (OpenSSL) of each block of a range, 32 bytes
// per block, concatenated: the payload of a ResyncHashReply.
//
// Why SHA-256: the sender skips a block whose hash matches, so a collision
// silently leaves a stale block on the target. CRC32C (32 bits) is far too
// weak for that over millions of blocks; xxhash is not available on the
// target platforms; SHA-256 is in libcrypto everywhere and fast with SHA-NI.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "stream/messages.h"

namespace mt::stream {

// Appends HashBlockCount(len, block_size) SHA-256 digests of data[0..len),
// block by block (the last block may be shorter), to *out.
// kInternal (and *out unchanged) if libcrypto fails. REQUIRES: block_size > 0.
Status HashBlocks(const uint8_t* data, size_t len, uint64_t block_size, std::vector<uint8_t>* out);

}  // namespace mt::stream
