// The inventory as protobuf messages (proto/mt/inventory.proto): what
// `mtctl disks --json` prints and what the agent sends the CS.
#pragma once

#include <cstdint>
#include <string>

#include "inventory/disk.h"
#include "inventory/inventory.h"
#include "mt/inventory.pb.h"
#include "inventory/watcher.h"

namespace mt::inventory {

proto::Disk ToProto(const Disk& disk);
proto::Inventory ToProto(const Inventory& inventory, const std::string& sysroot);
proto::DiskEvent ToProto(const DiskEvent& event, int64_t time_unix_ms);

}  // namespace mt::inventory
