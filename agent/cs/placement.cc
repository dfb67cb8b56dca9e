#include "cs/placement.h"

#include <tuple>

namespace mt::cs {

AgentLoad LoadOf(const proto::AgentStatus& status) {
  AgentLoad l;
  l.streams = status.pairs_size();
  for (const auto& p : status.pairs())
    if (p.state() != "committed") l.protected_disks += p.disks_size();
  l.retention_free_bytes = status.retention_available_bytes();
  l.retention_capacity_bytes = status.retention_capacity_bytes();
  return l;
}

bool DiskMatches(const proto::Disk& disk, const std::string& target) {
  return (!disk.wwid().empty() && disk.wwid() == target) ||
         (!disk.identity().empty() && disk.identity() == target) ||
         (!disk.device().empty() && disk.device() == target);
}

Result<AgentRow> PlaceProtection(CsStore& store, const std::vector<std::string>& targets) {
  MT_ASSIGN_OR_RETURN(const std::vector<AgentRow> agents, store.ListAgents());
  std::string why;
  const AgentRow* best = nullptr;
  std::tuple<int, uint64_t> best_key{0, 0};
  for (const AgentRow& a : agents) {
    auto note = [&](const std::string& reason) { why += "; " + a.id + ": " + reason; };
    if (!a.connected) {
      note("not connected");
      continue;
    }
    MT_ASSIGN_OR_RETURN(auto inv, store.GetInventory(a.id));
    MT_ASSIGN_OR_RETURN(auto health, store.GetHealth(a.id));
    if (!inv || !health) {
      note("has not reported yet");
      continue;
    }
    std::string missing;
    for (const std::string& t : targets) {
      const proto::Disk* found = nullptr;
      for (const auto& d : inv->disks())
        if (DiskMatches(d, t)) found = &d;
      if (found == nullptr) {
        missing = "does not see " + t;
        break;
      }
      if (found->role() != "free") {
        missing = t + " is " + found->role() + (found->reason().empty() ? "" : " (" + found->reason() + ")");
        break;
      }
      if (!found->can_be_target()) {
        missing = t + " cannot be a target there" +
                  (found->target_blocker().empty() ? "" : ": " + found->target_blocker());
        break;
      }
    }
    if (!missing.empty()) {
      note(missing);
      continue;
    }
    const AgentLoad load = LoadOf(*health);
    // Fewest protected disks first, then most free retention.
    const std::tuple<int, uint64_t> key{-load.protected_disks, load.retention_free_bytes};
    if (best == nullptr || key > best_key) {
      best = &a;
      best_key = key;
    }
  }
  if (best == nullptr) {
    return Status(Errc::kNotFound, "no agent can take these targets" +
                                       (why.empty() ? std::string(": no agent is registered") : why));
  }
  return *best;
}

}  // namespace mt::cs
