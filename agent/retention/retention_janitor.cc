#include "retention/retention_janitor.h"

namespace mt::retention {

namespace {
constexpr int64_t kPruneAlertNs = 3600LL * 1'000'000'000;
std::string Kib(uint64_t b) { return std::to_string(b >> 10) + " KiB"; }
}  // namespace

uint64_t RetentionJanitor::RoomFor(uint64_t bytes) const {
  return 2 * bytes + store_.options().segment_bytes;
}

std::string RetentionJanitor::HoldFor(uint64_t capture_bytes) {
  const std::string& root = store_.options().root;
  auto space = store_.fs().Space(root);
  if (!space.ok()) return {};  // cannot tell: apply (a real ENOSPC still fails the batch)
  const uint64_t floor = LowSpaceThreshold(store_.options().space, space->capacity);
  // The catalog's reserve, if a full volume made it give its space back,
  // is needed again before anything else (RetentionStore::KeepCatalogReserve).
  const uint64_t reserve = store_.CatalogReserveShortfall();
  const uint64_t need = RoomFor(capture_bytes) + reserve;
  if (space->available >= floor && space->available >= need) {
    if (reserve != 0) (void)store_.KeepCatalogReserve();
    MutexLock l(mu_);
    hold_.clear();
    return {};
  }
  // Low on space: prune as the policy says, now rather than at the next
  // periodic pass.
  std::string dropped;
  auto plan = store_.Prune(stream_, {});
  const bool stop = plan.ok() && plan->stop_applying;
  if (plan.ok()) {
    for (const auto& a : plan->alerts)
      if (a.find("dropped recovery points") != std::string::npos) dropped = a;
  }
  if (auto again = store_.fs().Space(root); again.ok()) space = again;
  const std::string low = "retention volume " + root + " is low on space (" +
                          Kib(space->available) + " free, below " + Kib(floor) + ")";
  std::string hold;
  if (stop)
    hold = low + ": applying is held (full action: stop) until space is freed; the sender is "
                 "throttled";
  else if (space->available < need)
    hold = "retention volume " + root + " is full (" + Kib(space->available) +
           " free, the next batch needs " + Kib(need) +
           "): applying is held until space is freed; the sender is throttled";
  MutexLock l(mu_);
  hold_ = hold;
  if (!dropped.empty()) {
    prune_alert_ = dropped;
    prune_alert_ns_ = clock_.NowNs();
  }
  return hold;
}

Status RetentionJanitor::AfterStep() {
  if (++steps_ % prune_every_ != 0) return Status::Ok();
  auto plan = store_.Prune(stream_, {});
  return plan.ok() ? Status::Ok() : plan.status().WithContext("prune");
}

Status RetentionJanitor::RefuseIngest(uint64_t unwritten_bytes, uint64_t wal_bytes,
                                      const std::string& stream_name) {
  auto space = store_.fs().Space(store_.options().root);
  if (!space.ok() ||
      space->available >= unwritten_bytes + wal_bytes + RoomFor(0) + store_.CatalogReserveShortfall())
    return Status::Ok();
  return Status(Errc::kNoSpace, "stream '" + stream_name + "': the retention volume " +
                                    store_.options().root + " is full (" +
                                    std::to_string(space->available >> 10) +
                                    " KiB free); retry once space is freed");
}

std::string RetentionJanitor::Alert() const {
  MutexLock l(mu_);
  std::string alert = hold_;
  if (!prune_alert_.empty() && clock_.NowNs() - prune_alert_ns_ < kPruneAlertNs)
    alert += (alert.empty() ? "" : "; ") + prune_alert_;
  return alert;
}

bool RetentionJanitor::Held() const {
  MutexLock l(mu_);
  return !hold_.empty();
}

}  // namespace mt::retention
