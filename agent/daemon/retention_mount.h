// The retention directory must be a mounted volume of its own: mt-agent
// refuses to start otherwise, so retention data (journals, catalog) never
// fills the root file system because a mount was missing at boot.
#pragma once

#include <string>
#include <vector>

#include "mt/shim/mounts.h"
#include "mt/shim/status.h"

namespace mt::daemon {

// Ok when `dir` is itself the mount point of a file system on a block device
// ("/dev/..." source) and that file system is not the one mounted at "/".
// Otherwise kUnavailable, one line saying what is wrong and what to
// do. `mounts`: the current mount table (the last entry for a mount point
// wins, as in the kernel's view).
Status CheckRetentionMount(const std::vector<shim::MountEntry>& mounts, const std::string& dir);

}  // namespace mt::daemon
