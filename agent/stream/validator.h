// StreamValidator: the receiver's complete check of every stream item (write
// batch, tag, resync data, resync complete) BEFORE anything of it is stored
// (architecture invariant 7: bad input changes nothing). Pure logic, no I/O.
//
// State: the next expected sequence number, the last durable one, and the
// stream's disks (size, logical block size, resync state). The stream has one
// sequence space: each write, tag, resync block and resync completion takes
// the next number.
//
// Each Admit* call checks everything first:
//   - structure: a batch is non-empty and its seqs are first_seq, first_seq+1, ...
//   - disks: the index is known (kNotFound); offset+length inside the disk
//     (kOutOfRange), both multiples of its logical block size (kMisaligned),
//     length 1..64 MiB (the journal's record limit; kOutOfRange) — but a
//     discard, which carries no data, may cover any range inside the disk
//   - data: the writes' payload bytes sum to the frame payload (kProtocol),
//     every slice has its declared CRC32C (kCorruption)
//   - tags: name 1..255 printable bytes, group id 0..255, kind set (kProtocol)
//   - sequence: items at or below the last durable seq are a resend, reported
//     as Verdict::kAlreadyDurable (not an error: the caller skips them); a
//     partial overlap, a resend of a not-yet-durable item or a gap is kProtocol
//   - resync: resync data / complete for a disk whose resync is complete is
//     kProtocol
// On error the validator's state is unchanged. On kStore the state has
// advanced past the item: the caller must store it or end the session (a new
// session starts from the durable state). Thread-compatible.
#pragma once

#include <cstdint>
#include <map>

#include "stream/frame_codec.h"
#include "mt/shim/status.h"
#include "mt/stream.pb.h"

namespace mt::stream {

struct DiskState {
  uint64_t size_bytes = 0;
  uint32_t logical_block_size = 512;
  proto::ResyncState resync = proto::RESYNC_STATE_COMPLETE;

  bool operator==(const DiskState& o) const {
    return size_bytes == o.size_bytes && logical_block_size == o.logical_block_size &&
           resync == o.resync;
  }
};

enum class Verdict {
  kStore,          // new: store it
  kAlreadyDurable  // a resend of items already durable: skip it
};

class StreamValidator {
 public:
  // Seqs <= last_durable_seq are durable; the next item must carry
  // last_durable_seq + 1. REQUIRES: last_durable_seq < UINT64_MAX.
  explicit StreamValidator(uint64_t last_durable_seq = 0);

  // The state a Welcome announces (resume_seq and disks). kProtocol if a disk
  // is invalid (see AddDisk) or resume_seq is UINT64_MAX.
  static Result<StreamValidator> FromWelcome(const proto::Welcome& welcome);

  // kInvalidArgument unless: logical block size a power of two in
  // 512..65536, size a non-zero multiple of it, resync state set; and
  // kAlreadyExists for a known index.
  Status AddDisk(uint32_t disk, const DiskState& state);

  Result<Verdict> AdmitWriteBatch(const proto::WriteBatch& batch, const uint8_t* payload,
                                  uint64_t payload_len);
  Result<Verdict> AdmitTag(const proto::Tag& tag);
  Result<Verdict> AdmitResyncData(const proto::ResyncData& data, const uint8_t* payload,
                                  uint64_t payload_len);
  Result<Verdict> AdmitResyncComplete(const proto::ResyncComplete& done);
  // Dispatches on the frame type; kProtocol for a frame that is not a stream
  // item (hello, ack, ping, ...).
  Result<Verdict> Admit(const Frame& frame);

  // A resync hash request the receiver may serve: disk known, range inside
  // it and aligned, block size a power of two, a multiple of the logical
  // block size and at most 64 MiB, and a reply (32 bytes per block) that fits
  // in max_payload_bytes. Does not change state.
  Status CheckHashRequest(const proto::ResyncHashRequest& request,
                          uint64_t max_payload_bytes = kDefaultMaxPayloadBytes) const;

  // Every item <= seq is durable now. Ignores a seq not above the current
  // one. REQUIRES: seq < next_seq().
  void MarkDurable(uint64_t seq);

  uint64_t next_seq() const { return next_seq_; }
  uint64_t last_durable_seq() const { return last_durable_; }
  const std::map<uint32_t, DiskState>& disks() const { return disks_; }

 private:
  // The checks shared by writes and resync data: disk, range, alignment.
  // `discard`: no 64 MiB limit (a range, not data).
  Result<const DiskState*> CheckRange(const char* what, uint64_t seq, uint32_t disk,
                                      uint64_t offset, uint64_t length,
                                      bool discard = false) const;
  // Where the items first..first+count-1 stand in the sequence space.
  Result<Verdict> ClassifySeqs(const char* what, uint64_t first, uint64_t count) const;

  uint64_t next_seq_;
  uint64_t last_durable_;
  std::map<uint32_t, DiskState> disks_;
};

// Sender side: a hash reply answers `request` (same id, disk, range, block
// size) and its payload holds one 32-byte hash per block. kProtocol if not.
Status CheckHashReply(const proto::ResyncHashRequest& request, const proto::ResyncHashReply& reply,
                      uint64_t payload_len);

}  // namespace mt::stream
