#include "inventory/inventory_proto.h"

namespace mt::inventory {

proto::Disk ToProto(const Disk& d) {
  proto::Disk p;
  p.set_identity(d.identity);
  p.set_identity_source(d.identity_source);
  p.set_wwid(d.wwid);
  p.set_name(d.name);
  p.set_device(d.devnode);
  p.set_transport(shim::BlockKindName(d.transport));
  p.set_size_bytes(d.size_bytes);
  p.set_logical_block_size(d.logical_block_size);
  p.set_physical_block_size(d.physical_block_size);
  p.set_rotational(d.rotational);
  p.set_read_only(d.read_only);
  p.set_vendor(d.vendor);
  p.set_model(d.model);
  p.set_serial(d.serial);
  p.set_scsi_address(d.scsi_address);
  p.set_role(RoleName(d.role));
  p.set_reason(d.reason);
  for (const Finding& f : d.findings) p.add_reasons(f.reason);
  if (d.role == Role::kTarget || d.role == Role::kFree)
    p.add_reasons(d.reason);
  else if (!d.target_capable)
    p.add_reasons(d.not_capable_reason);
  p.set_safe_target(IsSafeTarget(d).ok());
  p.set_can_be_target(d.CanBeTarget());
  p.set_target_blocker(d.TargetBlocker());
  p.set_fs_type(d.content.type);
  p.set_fs_uuid(d.content.uuid);
  p.set_fs_label(d.content.label);
  p.set_pt_type(d.content.pt_type);
  for (const Partition& part : d.partitions) {
    proto::Partition* pp = p.add_partitions();
    pp->set_name(part.name);
    pp->set_device(part.devnode);
    pp->set_number(part.number);
    pp->set_size_bytes(part.size_bytes);
    pp->set_fs_type(part.content.type);
    pp->set_fs_uuid(part.content.uuid);
    pp->set_fs_label(part.content.label);
    for (const std::string& m : part.mount_points) pp->add_mount_points(m);
    for (const std::string& h : part.holders) pp->add_holders(h);
  }
  for (const MountUse& m : d.mounts) {
    proto::Mount* pm = p.add_mounts();
    pm->set_mount_point(m.mount_point);
    pm->set_device(m.device);
    pm->set_fs_type(m.fs_type);
  }
  for (const Holder& h : d.holders) {
    proto::Holder* ph = p.add_holders();
    ph->set_name(h.name);
    ph->set_kind(h.kind);
    ph->set_dm_name(h.dm_name);
    ph->set_dm_uuid(h.dm_uuid);
  }
  p.set_multipath_map(d.multipath_map);
  for (const std::string& path : d.paths) p.add_paths(path);
  for (const shim::ScsiDesignator& s : d.designators) {
    proto::ScsiDesignator* ps = p.add_designators();
    ps->set_type(shim::DesignatorTypeName(s.type));
    ps->set_association(shim::AssociationName(s.association));
    ps->set_code_set(shim::CodeSetName(s.code_set));
    ps->set_name(s.Name());
    ps->set_hex(shim::HexLower(s.identifier));
  }
  for (const std::string& n : d.notes) p.add_notes(n);
  return p;
}

proto::Inventory ToProto(const Inventory& inventory, const std::string& sysroot) {
  proto::Inventory p;
  for (const Disk& d : inventory.disks()) *p.add_disks() = ToProto(d);
  p.set_sysroot(sysroot);
  return p;
}

proto::DiskEvent ToProto(const DiskEvent& event, int64_t time_unix_ms) {
  proto::DiskEvent p;
  p.set_event(DiskEventKindName(event.kind));
  *p.mutable_disk() = ToProto(event.disk);
  p.set_time_unix_ms(time_unix_ms);
  return p;
}

}  // namespace mt::inventory
