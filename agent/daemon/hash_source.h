// HashSource: the hook the receiver uses to answer a ResyncHashRequest
// (docs/formats/stream.md, "Resync"). StreamRuntime implements it
// (stream_runtime.cc): it checks the request with its validator, waits until
// every item ingested before the call is applied, then reads the target range
// in 4 MiB chunks through the apply pipeline and hashes each block. A port
// given no HashSource refuses hash requests with error("unavailable").
#pragma once

#include <cstdint>
#include <vector>

#include "mt/shim/status.h"
#include "mt/stream.pb.h"

namespace mt::daemon {

class HashSource {
 public:
  virtual ~HashSource() = default;

  // Appends HashBlockCount(request.length, request.block_size) SHA-256
  // digests (32 bytes each, block order, the last block possibly shorter) of
  // the stream's copy of disk request.disk over [offset, offset + length) to
  // *out: the disk as it is after every item Ingest()ed before this call.
  // Errors are sent to the peer as the error frame (code = ErrcName):
  // StreamValidator::CheckHashRequest's (kNotFound, kProtocol, kOutOfRange,
  // kMisaligned) or a target read error.
  // Called on a receiver worker thread (never on a network thread), possibly
  // concurrently with Ingest() of the same stream; may block on disk I/O.
  virtual Status HashBlocks(const proto::ResyncHashRequest& request, std::vector<uint8_t>* out) = 0;
};

}  // namespace mt::daemon
