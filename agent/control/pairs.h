// Pairs: the control operations on protected streams that the daemon and
// mtctl (offline, against the catalog) share — creating a pair with its
// target disks and credential, describing pairs from the catalog, and the
// health alerts of `mtctl status`.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "retention/catalog.h"
#include "config/credential_store.h"
#include "inventory/inventory.h"
#include "mt/control.pb.h"
#include "mt/shim/clock.h"
#include "mt/shim/disk_system.h"
#include "mt/shim/mounts.h"
#include "mt/shim/status.h"

namespace mt::control {

struct Geometry {
  uint64_t size_bytes = 0;
  uint32_t logical_block_size = 0;
};

// Size and logical block size of a device, opened read-only (no O_EXCL).
Result<Geometry> ReadDeviceGeometry(const std::string& devnode);

// What AddPair works with. REQUIRES: the pointers outlive the call.
struct PairEnvironment {
  retention::Catalog* catalog = nullptr;
  daemon::CredentialStore* credentials = nullptr;
  shim::DiskSystem* disks = nullptr;
  shim::Clock* clock = nullptr;
  // The inventory configuration apart from targets (AddPair names them):
  // retention identity, allow_non_scsi, identities the daemon holds open.
  inventory::InventoryConfig inventory;
  // Policy fields the request leaves zero / empty.
  retention::PolicyRow default_policy;
  std::function<Result<Geometry>(const std::string& devnode)> geometry = ReadDeviceGeometry;
};

// Validates the request and records the new pair: the stream (state
// "protected"), its disks (size and logical block size read from the device;
// resync pending), its policy and its credential. Every target must be a disk
// of this machine named by WWID (any spelling) or device path, belong to no
// other stream, and pass inventory::IsSafeTarget once it is named a target
// with the other targets of the catalog; otherwise nothing is recorded and
// the error names the target (kNotFound, kAlreadyExists, kUnsafeTarget,
// kInvalidArgument). A failure after the stream row was written removes it
// again. The result carries the credential in hex, shown only this once.
Result<proto::PairAddResult> AddPair(const proto::PairAdd& request, PairEnvironment& env);

// Stream names: 1..255 printable ASCII bytes, no '/', not starting with '.'
// (the protocol's rule plus what a credential file name needs).
Status CheckStreamName(const std::string& name);

// Every target identity the catalog records (the inventory's target set).
Result<std::vector<std::string>> CatalogTargets(retention::Catalog& catalog);

// A stream as the catalog records it: disks, policy, checkpoints (applied
// seq, and the RPO it implies at `now_ns`), newest app point. running=false.
Result<proto::Pair> PairFromCatalog(retention::Catalog& catalog, const retention::StreamRow& row,
                                    int64_t now_ns);
Result<proto::PairList> ListPairsFromCatalog(retention::Catalog& catalog, int64_t now_ns);

proto::Policy PolicyToProto(const retention::PolicyRow& p);
// Zero / empty fields take `defaults`; kInvalidArgument for negative
// durations or an unknown full action.
Result<retention::PolicyRow> PolicyFromProto(const proto::Policy& p,
                                             const retention::PolicyRow& defaults);

// The device holding `dir` (the source of the longest mount point above it),
// "" when it is not on a block device. The inventory's retention identity.
std::string DeviceOfDirectory(const std::vector<shim::MountEntry>& mounts, const std::string& dir);

// The inventory configuration of this agent, one set-up for the daemon and
// for mtctl: every target the catalog records, the retention volume (the
// device holding `retention_dir`, from the mount table of `disks`) and the
// configuration's allow_non_scsi. held_by_us is the caller's to add.
Result<inventory::InventoryConfig> AgentInventoryConfig(
    retention::Catalog& catalog, shim::DiskSystem& disks, const std::string& retention_dir,
    const std::vector<std::string>& allow_non_scsi);

struct RetentionSpace {
  std::string dir;
  uint64_t available_bytes = 0;
  uint64_t threshold_bytes = 0;
  bool low_space = false;
};

// The alerts of `mtctl status` (architecture §6), one per problem:
//   stream-failed    the stream is failed (its error);
//   rpo              RPO above the stream's threshold;
//   app-point        no app-consistent point within twice the app frequency
//                    (counted from the stream's creation when it has none);
//   retention-space  the retention volume is low on space;
//   retention-full   the stream's applying is held for space, or a low-space
//                    prune dropped its oldest points (Pair.retention_alert).
// Paused and committed streams raise none.
std::vector<proto::Alert> ComputeAlerts(const std::vector<proto::Pair>& pairs, int64_t now_ns,
                                        const RetentionSpace& space);

// "2h30m", "45s": a duration for messages (whole seconds).
std::string HumanDuration(int64_t ns);

}  // namespace mt::control
