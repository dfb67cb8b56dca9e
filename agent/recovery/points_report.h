// The points of a stream as mtctl points and the daemon's ListPoints show
// them (proto StreamPoints): the window of crash-consistent points (every
// write boundary from the oldest restorable seq to the applied one) and the
// tagged points in it. Only reads: the catalog, the stream's journals.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "mt/recovery.pb.h"
#include "retention/catalog.h"
#include "mt/shim/file_system.h"
#include "mt/shim/status.h"

namespace mt::recovery {

struct PointFilter {
  bool app_only = false;  // tagged points of kind app only
  int64_t after_ns = std::numeric_limits<int64_t>::min();
  int64_t before_ns = std::numeric_limits<int64_t>::max();
};

// REQUIRES: the caller holds a reader pin on the stream's retention (a
// prune meanwhile would show as missing segments), or accepts that risk.
Result<proto::StreamPoints> DescribePoints(retention::Catalog& catalog, shim::FileSystem& fs,
                                           const std::string& root, const retention::StreamRow& row,
                                           const PointFilter& filter);

void FillPoint(const retention::PointRow& p, proto::RecoveryPoint* rp);

}  // namespace mt::recovery
