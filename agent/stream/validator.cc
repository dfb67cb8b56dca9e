#include "stream/validator.h"

#include <cstdio>
#include <limits>
#include <string>

#include "stream/messages.h"
#include "mt/shim/crc32c.h"
#include "retention/record_format.h"

namespace mt::stream {

namespace {

// A write or resync block becomes one journal record, whose length is at most
// the journal's payload limit. A discard carries a range, not data: any
// length that fits the disk.
constexpr uint64_t kMaxItemLength = retention::kMaxPayload;
constexpr uint32_t kMinLogicalBlock = 512;
constexpr uint32_t kMaxLogicalBlock = 64u << 10;

std::string Hex32(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}

std::string Item(const char* what, uint64_t seq) {
  return std::string(what) + " seq " + std::to_string(seq);
}

bool IsPowerOfTwo(uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

std::string DiskList(const std::map<uint32_t, DiskState>& disks) {
  if (disks.empty()) return "none";
  std::string s;
  for (const auto& d : disks) s += (s.empty() ? "" : ", ") + std::to_string(d.first);
  return s;
}

}  // namespace

StreamValidator::StreamValidator(uint64_t last_durable_seq)
    : next_seq_(last_durable_seq + 1), last_durable_(last_durable_seq) {}

Result<StreamValidator> StreamValidator::FromWelcome(const proto::Welcome& welcome) {
  if (welcome.resume_seq() == std::numeric_limits<uint64_t>::max()) {
    return Status(Errc::kProtocol, "welcome: resume seq out of range");
  }
  StreamValidator v(welcome.resume_seq());
  for (const proto::DiskInfo& d : welcome.disks()) {
    DiskState s;
    s.size_bytes = d.size_bytes();
    s.logical_block_size = d.logical_block_size();
    s.resync = d.resync_state();
    Status st = v.AddDisk(d.disk(), s);
    if (!st.ok()) return Status(Errc::kProtocol, "welcome: " + st.message());
  }
  return v;
}

Status StreamValidator::AddDisk(uint32_t disk, const DiskState& s) {
  const std::string name = "disk " + std::to_string(disk);
  if (disks_.count(disk) != 0) return Status(Errc::kAlreadyExists, name + " is listed twice");
  if (!IsPowerOfTwo(s.logical_block_size) || s.logical_block_size < kMinLogicalBlock ||
      s.logical_block_size > kMaxLogicalBlock) {
    return Status(Errc::kInvalidArgument, name + ": logical block size " +
                                              std::to_string(s.logical_block_size) +
                                              " is not a power of two in 512..65536");
  }
  if (s.size_bytes == 0 || s.size_bytes % s.logical_block_size != 0) {
    return Status(Errc::kInvalidArgument, name + ": size " + std::to_string(s.size_bytes) +
                                              " is not a non-zero multiple of its block size");
  }
  if (s.resync != proto::RESYNC_STATE_PENDING && s.resync != proto::RESYNC_STATE_RUNNING &&
      s.resync != proto::RESYNC_STATE_COMPLETE) {
    return Status(Errc::kInvalidArgument, name + ": resync state not set");
  }
  disks_[disk] = s;
  return Status::Ok();
}

Result<const DiskState*> StreamValidator::CheckRange(const char* what, uint64_t seq, uint32_t disk,
                                                     uint64_t offset, uint64_t length,
                                                     bool discard) const {
  auto it = disks_.find(disk);
  if (it == disks_.end()) {
    return Status(Errc::kNotFound, Item(what, seq) + ": unknown disk " + std::to_string(disk) +
                                       " (the stream has disks " + DiskList(disks_) + ")");
  }
  const DiskState& d = it->second;
  const std::string where = Item(what, seq) + " on disk " + std::to_string(disk);
  if (length == 0) return Status(Errc::kOutOfRange, where + ": zero length");
  if (length > kMaxItemLength && !discard) {
    return Status(Errc::kOutOfRange, where + ": length " + std::to_string(length) +
                                         " over the limit of " + std::to_string(kMaxItemLength) +
                                         " bytes");
  }
  if (offset > d.size_bytes || length > d.size_bytes - offset) {
    return Status(Errc::kOutOfRange, where + ": range at " + std::to_string(offset) + " of " +
                                         std::to_string(length) + " bytes ends beyond the disk (" +
                                         std::to_string(d.size_bytes) + " bytes)");
  }
  if (offset % d.logical_block_size != 0 || length % d.logical_block_size != 0) {
    return Status(Errc::kMisaligned, where + ": offset " + std::to_string(offset) + " or length " +
                                         std::to_string(length) +
                                         " is not a multiple of the logical block size " +
                                         std::to_string(d.logical_block_size));
  }
  return &d;
}

Result<Verdict> StreamValidator::ClassifySeqs(const char* what, uint64_t first,
                                              uint64_t count) const {
  // REQUIRES count >= 1 and first + count - 1 does not overflow (checked by callers).
  const uint64_t last = first + (count - 1);
  if (last <= last_durable_) return Verdict::kAlreadyDurable;
  const std::string range = count == 1 ? Item(what, first)
                                       : std::string(what) + " seqs " + std::to_string(first) +
                                             ".." + std::to_string(last);
  if (first < next_seq_) {
    return Status(Errc::kProtocol, range + " overlap items already received: durable up to " +
                                       std::to_string(last_durable_) + ", next expected " +
                                       std::to_string(next_seq_));
  }
  if (first > next_seq_) {
    return Status(Errc::kProtocol,
                  "sequence gap: expected seq " + std::to_string(next_seq_) + ", got " + range);
  }
  return Verdict::kStore;
}

Result<Verdict> StreamValidator::AdmitWriteBatch(const proto::WriteBatch& batch,
                                                 const uint8_t* payload, uint64_t payload_len) {
  const auto& writes = batch.writes();
  if (writes.empty()) return Status(Errc::kProtocol, "empty write batch");
  const uint64_t first = batch.first_seq();
  const uint64_t count = static_cast<uint64_t>(writes.size());
  if (first == 0 || first > std::numeric_limits<uint64_t>::max() - (count - 1)) {
    return Status(Errc::kProtocol,
                  "write batch: first seq " + std::to_string(first) + " out of range");
  }
  // Structure and ranges of every write, then the payload, then the seqs.
  uint64_t needed = 0;
  for (uint64_t i = 0; i < count; ++i) {
    const proto::Write& w = writes[static_cast<int>(i)];
    if (w.seq() != first + i) {
      return Status(Errc::kProtocol, "write batch starting at seq " + std::to_string(first) +
                                         ": write " + std::to_string(i) + " has seq " +
                                         std::to_string(w.seq()) + ", expected " +
                                         std::to_string(first + i));
    }
    if ((w.flags() & ~kWireWriteFlags) != 0) {
      return Status(Errc::kProtocol, Item("write", w.seq()) + ": unknown flags " +
                                         Hex32(w.flags() & ~kWireWriteFlags));
    }
    const bool discard = (w.flags() & proto::WRITE_FLAG_DISCARD) != 0;
    MT_RETURN_IF_ERROR(
        CheckRange(discard ? "discard" : "write", w.seq(), w.disk(), w.offset(), w.length(),
                   discard)
            .status());
    needed += WritePayloadBytes(w);  // each <= 64 MiB (0 for a discard), so no overflow
  }
  if (needed != payload_len) {
    return Status(Errc::kProtocol, "write batch starting at seq " + std::to_string(first) +
                                       ": writes cover " + std::to_string(needed) +
                                       " payload bytes, the frame carries " +
                                       std::to_string(payload_len));
  }
  uint64_t pos = 0;
  for (const proto::Write& w : writes) {
    const uint64_t n = WritePayloadBytes(w);
    const uint32_t crc = crc32c::Value(payload + pos, static_cast<size_t>(n));
    if (crc != w.crc32c()) {
      return Status(Errc::kCorruption, Item("write", w.seq()) + ": data CRC mismatch: declared " +
                                           Hex32(w.crc32c()) + ", the " + std::to_string(n) +
                                           " bytes have " + Hex32(crc));
    }
    pos += n;
  }
  MT_ASSIGN_OR_RETURN(const Verdict v, ClassifySeqs("write", first, count));
  if (v == Verdict::kStore) next_seq_ = first + count;
  return v;
}

Result<Verdict> StreamValidator::AdmitTag(const proto::Tag& tag) {
  const std::string what = Item("tag", tag.seq());
  if (!IsPrintableName(tag.name(), 1, kMaxNameBytes)) {
    return Status(Errc::kProtocol, what + ": name must be 1..255 bytes of printable ASCII (has " +
                                       std::to_string(tag.name().size()) + " bytes)");
  }
  if (!IsPrintableName(tag.group_tag_id(), 0, kMaxNameBytes)) {
    return Status(Errc::kProtocol, what + " '" + tag.name() +
                                       "': group tag id must be 0..255 bytes of printable ASCII");
  }
  if (tag.kind() != proto::TAG_KIND_CRASH && tag.kind() != proto::TAG_KIND_APP &&
      tag.kind() != proto::TAG_KIND_USER) {
    return Status(Errc::kProtocol,
                  what + " '" + tag.name() + "': invalid kind " + std::to_string(tag.kind()));
  }
  if (tag.seq() == 0) return Status(Errc::kProtocol, what + ": seq 0 is not a stream seq");
  MT_ASSIGN_OR_RETURN(const Verdict v, ClassifySeqs("tag", tag.seq(), 1));
  if (v == Verdict::kStore) next_seq_ = tag.seq() + 1;
  return v;
}

Result<Verdict> StreamValidator::AdmitResyncData(const proto::ResyncData& data,
                                                 const uint8_t* payload, uint64_t payload_len) {
  const uint64_t seq = data.seq();
  if (seq == 0) return Status(Errc::kProtocol, "resync data seq 0 is not a stream seq");
  MT_ASSIGN_OR_RETURN(const DiskState* d,
                      CheckRange("resync data", seq, data.disk(), data.offset(), data.length()));
  if (payload_len != data.length()) {
    return Status(Errc::kProtocol, Item("resync data", seq) + ": length " +
                                       std::to_string(data.length()) + ", the frame carries " +
                                       std::to_string(payload_len) + " payload bytes");
  }
  const uint32_t crc = crc32c::Value(payload, static_cast<size_t>(payload_len));
  if (crc != data.crc32c()) {
    return Status(Errc::kCorruption, Item("resync data", seq) + ": data CRC mismatch: declared " +
                                         Hex32(data.crc32c()) + ", the data has " + Hex32(crc));
  }
  MT_ASSIGN_OR_RETURN(const Verdict v, ClassifySeqs("resync data", seq, 1));
  if (v == Verdict::kAlreadyDurable) return v;
  if (d->resync == proto::RESYNC_STATE_COMPLETE) {
    return Status(Errc::kProtocol, Item("resync data", seq) + ": disk " +
                                       std::to_string(data.disk()) + " is not resyncing");
  }
  disks_[data.disk()].resync = proto::RESYNC_STATE_RUNNING;
  next_seq_ = seq + 1;
  return v;
}

Result<Verdict> StreamValidator::AdmitResyncComplete(const proto::ResyncComplete& done) {
  const uint64_t seq = done.seq();
  if (seq == 0) return Status(Errc::kProtocol, "resync complete seq 0 is not a stream seq");
  auto it = disks_.find(done.disk());
  if (it == disks_.end()) {
    return Status(Errc::kNotFound, Item("resync complete", seq) + ": unknown disk " +
                                       std::to_string(done.disk()) + " (the stream has disks " +
                                       DiskList(disks_) + ")");
  }
  MT_ASSIGN_OR_RETURN(const Verdict v, ClassifySeqs("resync complete", seq, 1));
  if (v == Verdict::kAlreadyDurable) return v;
  if (it->second.resync == proto::RESYNC_STATE_COMPLETE) {
    return Status(Errc::kProtocol, Item("resync complete", seq) + ": disk " +
                                       std::to_string(done.disk()) + " is not resyncing");
  }
  it->second.resync = proto::RESYNC_STATE_COMPLETE;
  next_seq_ = seq + 1;
  return v;
}

Result<Verdict> StreamValidator::Admit(const Frame& frame) {
  const FrameHeader& h = frame.header;
  switch (frame.type()) {
    case FrameHeader::kWriteBatch:
      return AdmitWriteBatch(h.write_batch(), frame.payload.data(), frame.payload.size());
    case FrameHeader::kTag:
      if (!frame.payload.empty()) return Status(Errc::kProtocol, "tag frame with a payload");
      return AdmitTag(h.tag());
    case FrameHeader::kResyncData:
      return AdmitResyncData(h.resync_data(), frame.payload.data(), frame.payload.size());
    case FrameHeader::kResyncComplete:
      if (!frame.payload.empty()) {
        return Status(Errc::kProtocol, "resync-complete frame with a payload");
      }
      return AdmitResyncComplete(h.resync_complete());
    default:
      return Status(Errc::kProtocol, std::string("a ") + FrameTypeName(frame.type()) +
                                         " frame is not a stream item");
  }
}

Status StreamValidator::CheckHashRequest(const proto::ResyncHashRequest& r,
                                         uint64_t max_payload_bytes) const {
  const std::string what = "resync hash request " + std::to_string(r.request_id());
  auto it = disks_.find(r.disk());
  if (it == disks_.end()) {
    return Status(Errc::kNotFound, what + ": unknown disk " + std::to_string(r.disk()) +
                                       " (the stream has disks " + DiskList(disks_) + ")");
  }
  const DiskState& d = it->second;
  const uint64_t bs = r.block_size();
  if (!IsPowerOfTwo(bs) || bs < d.logical_block_size || bs > kMaxItemLength) {
    return Status(Errc::kProtocol,
                  what + ": block size " + std::to_string(bs) + " is not a power of two in " +
                      std::to_string(d.logical_block_size) + ".." + std::to_string(kMaxItemLength));
  }
  if (r.length() == 0) return Status(Errc::kOutOfRange, what + ": zero length");
  if (r.offset() > d.size_bytes || r.length() > d.size_bytes - r.offset()) {
    return Status(Errc::kOutOfRange, what + ": range at " + std::to_string(r.offset()) + " of " +
                                         std::to_string(r.length()) +
                                         " bytes ends beyond the disk (" +
                                         std::to_string(d.size_bytes) + " bytes)");
  }
  if (r.offset() % d.logical_block_size != 0 || r.length() % d.logical_block_size != 0) {
    return Status(Errc::kMisaligned, what + ": offset or length is not a multiple of the " +
                                         "logical block size " +
                                         std::to_string(d.logical_block_size));
  }
  const uint64_t blocks = HashBlockCount(r.length(), bs);
  if (blocks > max_payload_bytes / kBlockHashBytes) {
    return Status(Errc::kOutOfRange, what + ": " + std::to_string(blocks) +
                                         " block hashes would not fit in one reply of at most " +
                                         std::to_string(max_payload_bytes) + " bytes");
  }
  return Status::Ok();
}

void StreamValidator::MarkDurable(uint64_t seq) {
  if (seq > last_durable_ && seq < next_seq_) last_durable_ = seq;
}

Status CheckHashReply(const proto::ResyncHashRequest& req, const proto::ResyncHashReply& rep,
                      uint64_t payload_len) {
  if (rep.request_id() != req.request_id() || rep.disk() != req.disk() ||
      rep.offset() != req.offset() || rep.length() != req.length() ||
      rep.block_size() != req.block_size()) {
    return Status(Errc::kProtocol, "resync hash reply " + std::to_string(rep.request_id()) +
                                       " does not answer request " +
                                       std::to_string(req.request_id()));
  }
  const uint64_t blocks =
      req.block_size() == 0 ? 0 : HashBlockCount(req.length(), req.block_size());
  if (blocks == 0 || blocks > std::numeric_limits<uint64_t>::max() / kBlockHashBytes ||
      payload_len != blocks * kBlockHashBytes) {
    return Status(Errc::kProtocol, "resync hash reply " + std::to_string(rep.request_id()) +
                                       ": payload of " + std::to_string(payload_len) +
                                       " bytes is not one 32-byte hash per block");
  }
  return Status::Ok();
}

}  // namespace mt::stream
