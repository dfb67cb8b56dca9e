// HashSource — PROPOSAL for the StreamRuntime owner: the hook the receiver
// needs to answer a ResyncHashRequest (docs/formats/stream.md, "Resync").
// The receiver's side (session.cc) is done; it asks the stream's HashSource
// and sends the reply or the error frame. Until the runtime implements this,
// RuntimePort (stream_port.h) is given no HashSource and hash requests are
// refused with error("unavailable", "resync hashing is not available ...").
//
// Suggested implementation: `class StreamRuntime : public HashSource`, with
//   Status HashBlocks(const proto::ResyncHashRequest& request,
//                     std::vector<uint8_t>* out) override;
// that (1) checks the request with its validator's CheckHashRequest under the
// runtime mutex, (2) waits until every item ingested before the call is
// applied (or overlays the durable-but-unapplied WAL writes on what it reads),
// (3) reads the target range in bounded chunks (a multiple of block_size,
// e.g. 4 MiB, aligned buffers) and calls stream::HashBlocks on each.
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
