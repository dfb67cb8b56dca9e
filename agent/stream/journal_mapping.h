// How admitted stream items become journal records (agent/retention/
// record_format.h). The mapping is one to one: every field of a wire item has
// its place in the record header or tag payload, and back.
//
//   Write            -> kWrite        seq, source_time_ns, disk, offset, length,
//                                     flags (same bits); payload_crc = crc32c.
//                                     A DISCARD carries no bytes: stored as
//                                     kFlagDiscard | kFlagZero, stored_length 0,
//                                     its length (any, up to the disk's size)
//                                     kept whole: one item, one record.
//   ResyncData       -> kResyncData   seq, source_time_ns, disk, offset, length, crc
//   ResyncComplete   -> kResyncComplete  seq, source_time_ns, disk
//   Tag              -> kTag          seq, source_time_ns in the header;
//                                     kind, name, group_tag_id in the TagPayload
//
// `batch` is the journal's own and left 0. REQUIRES for all: the item was
// admitted by StreamValidator (so a non-discard length fits the record's 32-bit fields).
#pragma once

#include "mt/shim/status.h"
#include "mt/stream.pb.h"
#include "retention/record_format.h"

namespace mt::stream {

retention::RecordHeader WriteRecord(const proto::Write& w);
retention::RecordHeader ResyncDataRecord(const proto::ResyncData& d);
retention::RecordHeader ResyncCompleteRecord(const proto::ResyncComplete& c);
// The kTag record header (stored_length/payload_crc describe EncodeTag(*payload)).
retention::RecordHeader TagRecord(const proto::Tag& t, retention::TagPayload* payload);

// Tag kinds: the wire has 0 = unspecified, so the values differ; the mapping
// is one to one. kProtocol for TAG_KIND_UNSPECIFIED or an unknown value.
Result<retention::TagKind> ToJournalTagKind(proto::TagKind k);
proto::TagKind ToWireTagKind(retention::TagKind k);

// The way back, used by replay and tests: the wire item a record came from.
proto::Write WriteFromRecord(const retention::RecordHeader& h);
proto::Tag TagFromRecord(const retention::RecordHeader& h, const retention::TagPayload& p);

}  // namespace mt::stream
