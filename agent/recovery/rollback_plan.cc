#include "recovery/rollback_plan.h"

#include <chrono>
#include <iomanip>
#include <sstream>

#include "mt/shim/clock.h"

namespace mt::recovery {

namespace {

Result<std::unique_ptr<retention::ReaderPin>> Pin(shim::FileSystem& fs, const std::string& root,
                                                  const retention::StreamRow& row, uint64_t seq) {
  auto pin = retention::ReaderPin::Take(fs, root, row.id, seq);
  if (!pin.ok()) return pin.status().WithContext("pin the retention of stream '" + row.name + "'");
  return pin;
}

}  // namespace

Result<std::vector<RollbackPlan>> PlanRollback(retention::Catalog& catalog, shim::FileSystem& fs,
                                               const std::string& root,
                                               const std::vector<retention::StreamRow>& streams,
                                               const std::string& to, const std::string& group) {
  std::map<uint64_t, retention::PointRow> group_points;
  // "" and "common-app": the group's common point (any / app-consistent
  // only); "group-tag:ID": each stream's point of that group tag.
  const std::string kGroupTag = "group-tag:";
  const bool by_tag_id = to.compare(0, kGroupTag.size(), kGroupTag) == 0;
  const bool common = to.empty() || to == "common-app" || by_tag_id;
  if (common) {
    if (group.empty())
      return Status(Errc::kInvalidArgument,
                    by_tag_id ? "a group-tag: point needs the group (--group)"
                              : "--to POINT is required (latest, latest-app, a tag, a time or seq:N)");
    auto cp = CommonPoint(catalog, group, to == "common-app", by_tag_id ? to.substr(kGroupTag.size()) : "");
    if (!cp.ok()) return cp.status().WithContext("common point of group '" + group + "'");
    group_points = cp->per_stream;
  }
  std::vector<RollbackPlan> plans;
  for (const auto& row : streams) {
    MT_ASSIGN_OR_RETURN(auto pin, Pin(fs, root, row, 0));  // everything, until the point is known
    MT_ASSIGN_OR_RETURN(StreamState st, LoadStreamState(catalog, fs, root, row));
    std::string selector = to;
    auto it = group_points.find(row.id);
    if (common) {
      if (it == group_points.end())
        return Status(Errc::kNotFound, "stream '" + row.name + "' has no common point");
      selector = "seq:" + std::to_string(it->second.seq);
    }
    auto sel = ParsePointSelector(selector);
    if (!sel.ok()) return sel.status();
    auto point = ResolvePoint(catalog, fs, st.View(), *sel);
    if (!point.ok()) return point.status().WithContext(row.name);
    RollbackPlan p{std::move(st), std::move(point).value(), nullptr};
    if (common)
      p.point.description = "group tag '" + it->second.group_tag_id + "' (seq " +
                            std::to_string(it->second.seq) + ")";
    MT_ASSIGN_OR_RETURN(p.pin, Pin(fs, root, row, p.point.seq));  // taken before the old one goes
    plans.push_back(std::move(p));
  }
  return plans;
}

Status ExecuteRollback(retention::Catalog& catalog, shim::FileSystem& fs, RollbackPlan& p,
                       const std::map<uint32_t, shim::BlockDevice*>& targets,
                       const ProgressFn& on_progress, proto::RecoveryResult* result) {
  const retention::StreamRow& row = p.state.row;
  const auto start = std::chrono::steady_clock::now();
  shim::Clock& clock = shim::SystemClock();
  Status marked = MarkRolledBack(fs, p.state.dir,
                                 "a rollback to " + p.point.description + " began on " +
                                     UtcTime(clock.NowNs()) + " and has not finished");
  if (!marked.ok()) return marked.WithContext("rollback '" + row.name + "'");
  FileProgressStore progress(fs, RollbackProgressPath(p.state));
  Status s = Rollback(fs, p.state.undo, targets, p.point.seq, progress, on_progress);
  if (!s.ok())
    return s.WithContext("rollback of '" + row.name +
                         "' stopped (run the same command again to finish it)");
  const std::string what = "rolled back to " + p.point.description + " on " + UtcTime(clock.NowNs());
  s = FinishRollback(catalog, fs, p.state, p.point, clock.NowNs(), what);
  if (!s.ok()) return s.WithContext("rollback of '" + row.name + "' (bookkeeping; run it again)");
  result->Clear();
  result->set_operation("rollback");
  result->set_stream(row.name);
  result->set_seq(p.point.seq);
  result->set_point(p.point.description);
  for (const auto& d : p.state.disks) result->add_disks(d.target_id);
  result->set_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return Status::Ok();
}

void AddStreamResult(const proto::RecoveryResult& one, size_t streams, proto::RecoveryResult* all) {
  auto kept = all->streams();
  *all = one;
  if (streams > 1) {
    *all->mutable_streams() = kept;
    *all->add_streams() = one;
  }
}

std::string RollbackText(const proto::RecoveryResult& r) {
  std::ostringstream text;
  auto line = [&](const proto::RecoveryResult& one) {
    text << "stream " << one.stream() << ": rolled back to " << one.point() << " (" << std::fixed
         << std::setprecision(2) << one.seconds()
         << " s); the stream stays paused: commit it when failback is done, or mtctl resync it\n";
  };
  if (r.streams_size() == 0) line(r);
  for (const auto& one : r.streams()) line(one);
  return text.str();
}

}  // namespace mt::recovery
