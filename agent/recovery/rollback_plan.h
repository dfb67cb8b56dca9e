// A rollback of one or more streams as mtctl (offline) and the daemon's
// rollback job both run it: every stream's point resolved and its retention
// pinned before anything is touched (PlanRollback), then each stream rolled
// back in turn (ExecuteRollback). Neither stops the streams: the caller does
// that first (the daemon stops their runtimes; mtctl offline records them
// paused), and opens the targets.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mt/recovery.pb.h"
#include "mt/shim/block_device.h"
#include "mt/shim/file_system.h"
#include "recovery/recovery.h"
#include "recovery/store_ops.h"
#include "retention/catalog.h"
#include "retention/reader_pin.h"

namespace mt::recovery {

struct RollbackPlan {
  StreamState state;  // state.row: the stream
  ResolvedPoint point;
  std::unique_ptr<retention::ReaderPin> pin;  // the undo it reads stays until it is done
};

// For each stream: its point (`to`, a selector; empty: `group`'s common
// point; "common-app": its common app-consistent point; "group-tag:ID":
// the point of group tag ID in each stream of `group`), resolved and
// pinned. The first stream that has none fails the whole plan (its name in
// the message); nothing is changed.
Result<std::vector<RollbackPlan>> PlanRollback(retention::Catalog& catalog, shim::FileSystem& fs,
                                               const std::string& root,
                                               const std::vector<retention::StreamRow>& streams,
                                               const std::string& to, const std::string& group);

// Rolls one planned stream back onto `targets` (every disk of the stream,
// opened writable): marks it rolled back, writes the undo (resumable: a
// second run with the same plan continues from the saved progress), and
// brings the store in line (FinishRollback). Fills `result` (operation,
// stream, seq, point, disks, seconds). REQUIRES: the stream is not applied.
Status ExecuteRollback(retention::Catalog& catalog, shim::FileSystem& fs, RollbackPlan& plan,
                       const std::map<uint32_t, shim::BlockDevice*>& targets,
                       const ProgressFn& on_progress, proto::RecoveryResult* result);

// The result of a rollback of several streams: the last one's fields, and
// one entry per stream when there were more than one (RecoveryResult.streams).
void AddStreamResult(const proto::RecoveryResult& one, size_t streams, proto::RecoveryResult* all);

// "stream web01: rolled back to tag 'x' (app) at seq 120 (1.20 s); the stream
// stays paused: ..." — one line per stream of `r`.
std::string RollbackText(const proto::RecoveryResult& r);

}  // namespace mt::recovery
