// Fuzzes the StreamValidator (agent/stream/validator.h) with sequences of
// stream items built from the input: write batches, tags, resync data,
// resync completions, hash requests and durability marks, with values near
// the valid ones (seqs around the next expected, aligned offsets near disk
// ends, correct CRCs most of the time) so every rule is reached.
//
// Checked after every call: a rejection leaves the state exactly as it was;
// an accepted item advanced next_seq by its seq count and lies inside a known
// disk, aligned, with data of the declared CRC (an independent oracle); a
// resend recognised as durable changed nothing; last durable < next seq.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <vector>

#include "stream/messages.h"
#include "mt/shim/crc32c.h"
#include "stream/validator.h"

using namespace mt;
using namespace mt::stream;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Snapshot {
  uint64_t next, durable;
  std::map<uint32_t, DiskState> disks;
  explicit Snapshot(const StreamValidator& v)
      : next(v.next_seq()), durable(v.last_durable_seq()), disks(v.disks()) {}
  bool operator==(const Snapshot& o) const {
    return next == o.next && durable == o.durable && disks == o.disks;
  }
};

// Disks of the stream under test (index -> state at the start).
const std::map<uint32_t, DiskState> kDisks = {
    {0, {1 << 20, 512, proto::RESYNC_STATE_COMPLETE}},
    {1, {4 << 20, 4096, proto::RESYNC_STATE_PENDING}},
    {5, {64 << 10, 512, proto::RESYNC_STATE_RUNNING}},
};

uint64_t PickSeq(FuzzedDataProvider* in, const StreamValidator& v) {
  // Mostly the expected one; sometimes a replay, a gap or anything.
  switch (in->ConsumeIntegralInRange(0, 5)) {
    case 0:
      return in->ConsumeIntegral<uint64_t>();
    case 1:
      return v.next_seq() - std::min<uint64_t>(v.next_seq(), in->ConsumeIntegralInRange(0, 8));
    case 2:
      return v.next_seq() + in->ConsumeIntegralInRange(1, 3);
    default:
      return v.next_seq();
  }
}

uint32_t PickDisk(FuzzedDataProvider* in) {
  const uint32_t known[] = {0, 1, 5};
  return in->ConsumeIntegralInRange(0, 7) == 0 ? in->ConsumeIntegral<uint32_t>()
                                               : known[in->ConsumeIntegralInRange(0, 2)];
}

// An offset and length near valid ones for the disk (multiples of 512, near
// the start or the end), or anything.
void PickRange(FuzzedDataProvider* in, uint32_t disk, uint64_t* offset, uint64_t* length) {
  const uint64_t size = kDisks.count(disk) ? kDisks.at(disk).size_bytes : 1 << 20;
  if (in->ConsumeIntegralInRange(0, 9) == 0) {
    *offset = in->ConsumeIntegral<uint64_t>();
    *length = in->ConsumeIntegralInRange<uint64_t>(0, 1 << 14);
    return;
  }
  *length = 512 * in->ConsumeIntegralInRange<uint64_t>(0, 16);
  const uint64_t blocks = 512 * in->ConsumeIntegralInRange<uint64_t>(0, 32);
  *offset = in->ConsumeBool() ? blocks : (size > blocks ? size - blocks : 0);
}

void Fill(std::vector<uint8_t>* payload, uint64_t n, uint8_t seed) {
  const size_t start = payload->size();
  payload->resize(start + n);
  for (uint64_t k = 0; k < n; ++k) (*payload)[start + k] = static_cast<uint8_t>(seed + k * 7);
}

// The oracle for an accepted range.
void CheckRange(uint32_t disk, uint64_t offset, uint64_t length) {
  Check(kDisks.count(disk) == 1);
  const DiskState& d = kDisks.at(disk);
  Check(length > 0 && length <= (64u << 20));
  Check(offset <= d.size_bytes && length <= d.size_bytes - offset);
  Check(offset % d.logical_block_size == 0 && length % d.logical_block_size == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  StreamValidator v(in.ConsumeIntegralInRange<uint64_t>(0, 1000));
  for (const auto& [index, disk] : kDisks) Check(v.AddDisk(index, disk).ok());

  for (int step = 0; step < 64 && in.remaining_bytes() > 0; ++step) {
    const Snapshot before(v);
    Result<Verdict> r = Verdict::kAlreadyDurable;
    uint64_t count = 1;
    switch (in.ConsumeIntegralInRange(0, 5)) {
      case 0: {  // write batch
        proto::WriteBatch b;
        std::vector<uint8_t> payload;
        const uint64_t first = PickSeq(&in, v);
        b.set_first_seq(first);
        count = in.ConsumeIntegralInRange<uint64_t>(0, 4);
        for (uint64_t i = 0; i < count; ++i) {
          proto::Write* w = b.add_writes();
          w->set_seq(in.ConsumeIntegralInRange(0, 15) == 0 ? in.ConsumeIntegral<uint64_t>()
                                                           : first + i);
          w->set_disk(PickDisk(&in));
          uint64_t offset, length;
          PickRange(&in, w->disk(), &offset, &length);
          w->set_offset(offset);
          w->set_length(length);
          w->set_flags(in.ConsumeIntegralInRange(0, 7) == 0 ? in.ConsumeIntegral<uint32_t>()
                                                            : in.ConsumeIntegralInRange(0, 3) * 4);
          const size_t start = payload.size();
          Fill(&payload, WritePayloadBytes(*w), static_cast<uint8_t>(i));
          uint32_t crc = crc32c::Value(payload.data() + start, payload.size() - start);
          if (in.ConsumeIntegralInRange(0, 15) == 0) crc ^= 1;
          w->set_crc32c(crc);
        }
        if (in.ConsumeIntegralInRange(0, 15) == 0) payload.push_back(0);
        r = v.AdmitWriteBatch(b, payload.data(), payload.size());
        if (r.ok() && *r == Verdict::kStore) {
          uint64_t pos = 0;
          for (const proto::Write& w : b.writes()) {
            CheckRange(w.disk(), w.offset(), w.length());
            const uint64_t n = WritePayloadBytes(w);
            Check(crc32c::Value(payload.data() + pos, n) == w.crc32c());
            pos += n;
          }
          Check(pos == payload.size());
          Check(b.first_seq() == before.next);
        }
        break;
      }
      case 1: {  // tag
        proto::Tag t;
        t.set_seq(PickSeq(&in, v));
        t.set_name(in.ConsumeRandomLengthString(300));
        t.set_group_tag_id(in.ConsumeRandomLengthString(300));
        t.set_kind(static_cast<proto::TagKind>(in.ConsumeIntegralInRange(0, 4)));
        r = v.AdmitTag(t);
        if (r.ok() && *r == Verdict::kStore) {
          Check(IsPrintableName(t.name(), 1, 255) && IsPrintableName(t.group_tag_id(), 0, 255));
          Check(t.seq() == before.next);
        }
        break;
      }
      case 2: {  // resync data
        proto::ResyncData d;
        d.set_seq(PickSeq(&in, v));
        d.set_disk(PickDisk(&in));
        uint64_t offset, length;
        PickRange(&in, d.disk(), &offset, &length);
        d.set_offset(offset);
        d.set_length(length);
        std::vector<uint8_t> payload;
        Fill(&payload, in.ConsumeIntegralInRange(0, 15) == 0 ? length / 2 : length, 3);
        uint32_t crc = crc32c::Value(payload.data(), payload.size());
        if (in.ConsumeIntegralInRange(0, 15) == 0) crc ^= 1;
        d.set_crc32c(crc);
        r = v.AdmitResyncData(d, payload.data(), payload.size());
        if (r.ok() && *r == Verdict::kStore) {
          CheckRange(d.disk(), d.offset(), d.length());
          Check(before.disks.at(d.disk()).resync != proto::RESYNC_STATE_COMPLETE);
          Check(v.disks().at(d.disk()).resync == proto::RESYNC_STATE_RUNNING);
        }
        break;
      }
      case 3: {  // resync complete
        proto::ResyncComplete c;
        c.set_seq(PickSeq(&in, v));
        c.set_disk(PickDisk(&in));
        r = v.AdmitResyncComplete(c);
        if (r.ok() && *r == Verdict::kStore) {
          Check(before.disks.at(c.disk()).resync != proto::RESYNC_STATE_COMPLETE);
          Check(v.disks().at(c.disk()).resync == proto::RESYNC_STATE_COMPLETE);
        }
        break;
      }
      case 4: {  // hash request: never changes state
        proto::ResyncHashRequest h;
        h.set_disk(PickDisk(&in));
        uint64_t offset, length;
        PickRange(&in, h.disk(), &offset, &length);
        h.set_offset(offset);
        h.set_length(length);
        h.set_block_size(in.ConsumeBool() ? uint64_t{1} << in.ConsumeIntegralInRange(0, 30)
                                          : in.ConsumeIntegral<uint64_t>());
        const uint64_t max_payload = in.ConsumeIntegralInRange<uint64_t>(0, 1 << 20);
        if (v.CheckHashRequest(h, max_payload).ok()) {
          CheckRange(h.disk(), h.offset(), h.length());
          Check(HashBlockCount(h.length(), h.block_size()) * kBlockHashBytes <= max_payload);
        }
        Check(Snapshot(v) == before);
        continue;
      }
      default: {  // the receiver made some items durable
        if (v.next_seq() > v.last_durable_seq() + 1) {
          v.MarkDurable(in.ConsumeIntegralInRange(v.last_durable_seq() + 1, v.next_seq() - 1));
        }
        Check(v.last_durable_seq() < v.next_seq());
        continue;
      }
    }
    if (!r.ok() || *r == Verdict::kAlreadyDurable) {
      Check(Snapshot(v) == before);
    } else {
      Check(v.next_seq() == before.next + count);
      Check(v.last_durable_seq() == before.durable);
    }
    Check(v.last_durable_seq() < v.next_seq());
  }
  return 0;
}
