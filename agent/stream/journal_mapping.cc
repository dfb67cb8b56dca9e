#include "stream/journal_mapping.h"

#include "mt/shim/crc32c.h"

namespace mt::stream {

using retention::RecordHeader;
using retention::RecordType;

// The wire's write flags are the journal's record flags, bit for bit.
constexpr bool SameBit(proto::WriteFlag w, retention::RecordFlags r) {
  return static_cast<uint32_t>(w) == static_cast<uint32_t>(r);
}
static_assert(SameBit(proto::WRITE_FLAG_FLUSH, retention::kFlagFlush), "FLUSH bit differs");
static_assert(SameBit(proto::WRITE_FLAG_FUA, retention::kFlagFua), "FUA bit differs");
static_assert(SameBit(proto::WRITE_FLAG_DISCARD, retention::kFlagDiscard), "DISCARD bit differs");

RecordHeader WriteRecord(const proto::Write& w) {
  RecordHeader h;
  h.type = RecordType::kWrite;
  h.seq = w.seq();
  h.source_time_ns = w.source_time_ns();
  h.disk = w.disk();
  h.flags = w.flags();
  h.offset = w.offset();
  h.length = w.length();
  h.stored_length = static_cast<uint32_t>(h.length);
  h.payload_crc = w.crc32c();
  if ((w.flags() & proto::WRITE_FLAG_DISCARD) != 0) {
    h.flags |= retention::kFlagZero;
    h.stored_length = 0;
  }
  return h;
}

RecordHeader ResyncDataRecord(const proto::ResyncData& d) {
  RecordHeader h;
  h.type = RecordType::kResyncData;
  h.seq = d.seq();
  h.source_time_ns = d.source_time_ns();
  h.disk = d.disk();
  h.offset = d.offset();
  h.length = d.length();
  h.stored_length = static_cast<uint32_t>(h.length);
  h.payload_crc = d.crc32c();
  return h;
}

RecordHeader ResyncCompleteRecord(const proto::ResyncComplete& c) {
  RecordHeader h;
  h.type = RecordType::kResyncComplete;
  h.seq = c.seq();
  h.source_time_ns = c.source_time_ns();
  h.disk = c.disk();
  h.payload_crc = crc32c::Value(nullptr, 0);
  return h;
}

Result<retention::TagKind> ToJournalTagKind(proto::TagKind k) {
  switch (k) {
    case proto::TAG_KIND_CRASH:
      return retention::TagKind::kCrash;
    case proto::TAG_KIND_APP:
      return retention::TagKind::kApp;
    case proto::TAG_KIND_USER:
      return retention::TagKind::kUser;
    default:
      return Status(Errc::kProtocol, "invalid tag kind " + std::to_string(k));
  }
}

proto::TagKind ToWireTagKind(retention::TagKind k) {
  switch (k) {
    case retention::TagKind::kCrash:
      return proto::TAG_KIND_CRASH;
    case retention::TagKind::kApp:
      return proto::TAG_KIND_APP;
    case retention::TagKind::kUser:
      return proto::TAG_KIND_USER;
  }
  return proto::TAG_KIND_UNSPECIFIED;
}

RecordHeader TagRecord(const proto::Tag& t, retention::TagPayload* payload) {
  Result<retention::TagKind> kind = ToJournalTagKind(t.kind());
  payload->kind = kind.ok() ? *kind : retention::TagKind::kCrash;  // admitted tags have a kind
  payload->name = t.name();
  payload->group_tag_id = t.group_tag_id();
  const std::string encoded = retention::EncodeTag(*payload);
  RecordHeader h;
  h.type = RecordType::kTag;
  h.seq = t.seq();
  h.source_time_ns = t.source_time_ns();
  h.length = encoded.size();
  h.stored_length = static_cast<uint32_t>(h.length);
  h.payload_crc = crc32c::Value(encoded.data(), encoded.size());
  return h;
}

proto::Write WriteFromRecord(const RecordHeader& h) {
  proto::Write w;
  w.set_seq(h.seq);
  w.set_source_time_ns(h.source_time_ns);
  w.set_disk(h.disk);
  w.set_flags(h.flags & (retention::kFlagFlush | retention::kFlagFua | retention::kFlagDiscard));
  w.set_offset(h.offset);
  w.set_length(h.length);
  w.set_crc32c(h.payload_crc);
  return w;
}

proto::Tag TagFromRecord(const RecordHeader& h, const retention::TagPayload& p) {
  proto::Tag t;
  t.set_seq(h.seq);
  t.set_source_time_ns(h.source_time_ns);
  t.set_name(p.name);
  t.set_kind(ToWireTagKind(p.kind));
  t.set_group_tag_id(p.group_tag_id);
  return t;
}

}  // namespace mt::stream
