#include "recovery/points_report.h"

#include <algorithm>

#include "recovery/recovery.h"
#include "recovery/store_ops.h"

namespace mt::recovery {

void FillPoint(const retention::PointRow& p, proto::RecoveryPoint* rp) {
  rp->set_seq(p.seq);
  rp->set_time_ns(p.time_ns);
  rp->set_time(UtcTime(p.time_ns));
  rp->set_kind(retention::TagKindName(p.kind));
  rp->set_name(p.name);
  rp->set_group_tag_id(p.group_tag_id);
}

Result<proto::StreamPoints> DescribePoints(retention::Catalog& catalog, shim::FileSystem& fs,
                                           const std::string& root, const retention::StreamRow& row,
                                           const PointFilter& filter) {
  MT_ASSIGN_OR_RETURN(StreamState st, LoadStreamState(catalog, fs, root, row));
  proto::StreamPoints sp;
  sp.set_stream_id(row.id);
  sp.set_stream(row.name);
  sp.set_group(row.group);
  uint64_t oldest = OldestPoint(st.View());
  for (const auto& d : st.disks) oldest = std::max(oldest, d.resync_complete_seq);
  sp.set_oldest_seq(oldest);
  sp.set_latest_seq(st.applied_seq);
  for (const auto& seg : st.undo)
    if (seg.records > 0) {
      sp.set_oldest_time_ns(seg.first_time_ns);
      break;
    }
  sp.set_latest_time_ns(st.applied_time_ns);
  sp.set_oldest_time(UtcTime(sp.oldest_time_ns()));
  sp.set_latest_time(UtcTime(sp.latest_time_ns()));
  auto rolled = ReadRolledBack(fs, st.dir);
  if (rolled.ok() && *rolled) sp.set_rolled_back(**rolled);
  MT_ASSIGN_OR_RETURN(auto points, catalog.ListPoints(row.id, oldest == 0 ? 0 : oldest - 1, st.applied_seq));
  for (const auto& p : points) {
    if ((filter.app_only && p.kind != retention::TagKind::kApp) || p.time_ns < filter.after_ns ||
        p.time_ns > filter.before_ns)
      continue;
    FillPoint(p, sp.add_points());
  }
  return sp;
}

}  // namespace mt::recovery
