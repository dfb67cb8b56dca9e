// Pair operations on the captured vmware-mt tree (tests/data/sysfs): what
// may become a target and what is recorded; alerts; the retention device.
#include "control/pairs.h"

#include <gtest/gtest.h>

#include "../inventory/fake_disks.h"
#include "mt/shim/clock.h"
#include "mt/shim/mem_file_system.h"
#include "temp_tree.h"

namespace mt::control {
namespace {

constexpr int64_t kS = 1'000'000'000;
constexpr int64_t kMin = 60 * kS;

std::string Wwid(int i) {
  char b[8];
  std::snprintf(b, sizeof b, "%02x", i);
  return std::string("naa.6000c2951a0b2c3d4e5f60718293a4") + b;
}

class AddPairTest : public ::testing::Test {
 protected:
  AddPairTest() : sys_("vmware-mt"), credentials_(fs_, "/creds") {
    sys_.content["/dev/sdb"] = test::Fs("ext4", "0b9e8f6a-1c2d-4e3f-8a9b-0c1d2e3f4a5b");
    sys_.content["/dev/sdf1"] = test::Fs("ext4");
    sys_.content["/dev/sdl"] = test::Fs("vfat");
    sys_.held.insert("/dev/sdk");
  }
  void SetUp() override {
    auto c = retention::Catalog::Open(dir_.path() + "/catalog.db");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    catalog_ = std::move(c).value();
    env_.catalog = catalog_.get();
    env_.credentials = &credentials_;
    env_.disks = &sys_;
    env_.clock = &clock_;
    auto mounts = sys_.ReadMounts();
    ASSERT_TRUE(mounts.ok());
    env_.inventory.retention_identity = DeviceOfDirectory(*mounts, "/mnt/retention");
    env_.geometry = [this](const std::string& dev) -> Result<Geometry> {
      opened_.push_back(dev);
      return Geometry{8ull << 30, 512};
    };
  }

  static proto::PairAdd Request(const std::string& name,
                                std::vector<std::pair<uint32_t, std::string>> disks) {
    proto::PairAdd r;
    r.set_stream(name);
    for (const auto& [i, t] : disks) {
      auto* d = r.add_disks();
      d->set_disk(i);
      d->set_target(t);
      d->set_source_disk_id("src" + std::to_string(i));
    }
    return r;
  }

  void ExpectNothingRecorded() {
    auto streams = catalog_->ListStreams();
    ASSERT_TRUE(streams.ok());
    EXPECT_TRUE(streams->empty());
    EXPECT_FALSE(fs_.Exists("/creds/vm1.key"));
  }

  test::TempDir dir_;
  test::TreeDiskSystem sys_;
  shim::MemFileSystem fs_;
  daemon::CredentialStore credentials_;
  shim::FakeClock clock_;
  std::unique_ptr<retention::Catalog> catalog_;
  PairEnvironment env_;
  std::vector<std::string> opened_;
};

TEST_F(AddPairTest, RecordsTheStreamItsDisksPolicyAndCredential) {
  proto::PairAdd req = Request("vm1", {{0, Wwid(3)}, {1, "/dev/sdh"}});
  req.set_group("g1");
  req.mutable_policy()->set_rpo_threshold_ns(5 * kMin);
  auto r = AddPair(req, env_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const proto::Pair& p = r->pair();
  EXPECT_EQ(p.name(), "vm1");
  EXPECT_EQ(p.group(), "g1");
  EXPECT_EQ(p.state(), "protected");
  EXPECT_EQ(p.created_ns(), clock_.NowNs());
  ASSERT_EQ(p.disks_size(), 2);
  EXPECT_EQ(p.disks(0).target_id(), Wwid(3));
  EXPECT_EQ(p.disks(0).target_device(), "/dev/sdd");
  EXPECT_EQ(p.disks(0).source_disk_id(), "src0");
  EXPECT_EQ(p.disks(0).size_bytes(), 8ull << 30);
  EXPECT_EQ(p.disks(0).block_size(), 512u);
  EXPECT_EQ(p.disks(0).resync_state(), "pending");
  EXPECT_EQ(p.disks(1).target_id(), Wwid(7));  // named by device path, recorded by WWID
  EXPECT_EQ(p.policy().rpo_threshold_ns(), 5 * kMin);
  EXPECT_EQ(p.policy().window_ns(), 24 * 60 * kMin);  // the default
  EXPECT_EQ(p.policy().full_action(), "prune");
  EXPECT_EQ(p.rpo_ns(), -1);
  EXPECT_EQ(opened_, (std::vector<std::string>{"/dev/sdd", "/dev/sdh"}));
  // The credential: 64 hex digits, and the same key in the store.
  ASSERT_EQ(r->credential_hex().size(), 64u);
  EXPECT_EQ(r->credential_file(), "/creds/vm1.key");
  auto key = credentials_.Get("vm1");
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(daemon::ToHex(*key), r->credential_hex());
  // And in the catalog.
  auto policy = catalog_->GetPolicy(p.stream_id());
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(policy->rpo_threshold_ns, 5 * kMin);
  auto owner = catalog_->FindDiskByTarget(Wwid(7));
  ASSERT_TRUE(owner.ok() && owner->has_value());
  EXPECT_EQ((*owner)->disk, 1u);
}

// pair add --blank: each disk declared blank is recorded so, and listed so.
TEST_F(AddPairTest, ADiskDeclaredBlankIsRecordedAndListedSo) {
  proto::PairAdd req = Request("vm1", {{0, Wwid(3)}, {1, "/dev/sdh"}});
  req.mutable_disks(1)->set_blank(true);
  auto r = AddPair(req, env_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->pair().disks(0).target_blank());
  EXPECT_TRUE(r->pair().disks(1).target_blank());
  auto owner = catalog_->FindDiskByTarget(Wwid(7));
  ASSERT_TRUE(owner.ok() && owner->has_value());
  EXPECT_TRUE((*owner)->target_blank);
  EXPECT_FALSE((*catalog_->FindDiskByTarget(Wwid(3)))->target_blank);
}

TEST_F(AddPairTest, AnyWwidSpellingNamesTheSameDisk) {
  // The scsi_id form with the NAA type digit, upper case.
  std::string id = "36000C2951A0B2C3D4E5F60718293A403";
  auto r = AddPair(Request("vm1", {{0, id}}), env_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->pair().disks(0).target_id(), Wwid(3));
}

TEST_F(AddPairTest, UnsafeTargetsAreRefusedWithTheirRoleAndNothingIsRecorded) {
  const struct {
    std::string target;
    const char* why;
  } cases[] = {
      {"/dev/sda", "os"},                               // holds /
      {"/dev/sdb", "retention"},                        // the retention volume
      {"/dev/sdf", "mounted"},                          // mounted at /data files
      {"/dev/sdk", "held open exclusively by another"},  // another process' O_EXCL
      {"/dev/sdg", "md RAID"},
  };
  for (const auto& c : cases) {
    auto r = AddPair(Request("vm1", {{0, Wwid(3)}, {1, c.target}}), env_);
    ASSERT_FALSE(r.ok()) << c.target;
    EXPECT_EQ(r.status().code(), Errc::kUnsafeTarget) << c.target << ": " << r.status().ToString();
    EXPECT_NE(r.status().message().find(c.why), std::string::npos) << r.status().message();
    EXPECT_EQ(r.status().message().find("disk 1 (" + c.target + ")"), 0u) << r.status().message();
    ExpectNothingRecorded();
  }
  EXPECT_TRUE(opened_.empty()) << "a device was opened before every check passed";
}

TEST_F(AddPairTest, DisksThatCannotBeTargetsSayWhy) {
  auto no_wwid = AddPair(Request("vm1", {{0, "/dev/sde"}}), env_);
  EXPECT_EQ(no_wwid.status().code(), Errc::kUnsafeTarget);
  EXPECT_NE(no_wwid.status().message().find("disk.EnableUUID"), std::string::npos)
      << no_wwid.status().message();
  auto loop = AddPair(Request("vm1", {{0, "/dev/loop0"}}), env_);
  EXPECT_EQ(loop.status().code(), Errc::kUnsafeTarget);
  EXPECT_NE(loop.status().message().find("allow_non_scsi"), std::string::npos);
  ExpectNothingRecorded();
}

// The OS disk or the retention volume of a VM whose disks are not SCSI
// (virtio here) is refused for what it is, not for its transport: pointing
// the operator at allow_non_scsi would point at the setting that lets the
// disk through to the next check.
TEST_F(AddPairTest, TheStrongestRoleIsNamedBeforeTheTransport) {
  sys_.edit_facts = [](std::vector<shim::BlockDeviceFacts>* facts) {
    for (auto& f : *facts) {
      if (f.name != "sda" && f.name != "sdb") continue;
      f.kind = shim::BlockKind::kVirtio;
      f.wwid.clear();
      f.has_vpd_pg83 = false;
    }
  };
  const struct {
    std::string target;
    const char* role;
  } cases[] = {{"/dev/sda", "role os: holds /"}, {"/dev/sdb", "role retention: "}};
  for (const auto& c : cases) {
    auto r = AddPair(Request("vm1", {{0, c.target}}), env_);
    ASSERT_FALSE(r.ok()) << c.target;
    EXPECT_EQ(r.status().code(), Errc::kUnsafeTarget);
    EXPECT_NE(r.status().message().find(c.role), std::string::npos) << r.status().message();
    EXPECT_EQ(r.status().message().find("allow_non_scsi"), std::string::npos)
        << r.status().message();
    ExpectNothingRecorded();
  }
}

TEST_F(AddPairTest, AnAllowedNonScsiDeviceMayBeATarget) {
  env_.inventory.allow_non_scsi = {"/dev/loop0"};
  auto r = AddPair(Request("vm1", {{0, "/dev/loop0"}}), env_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->pair().disks(0).target_device(), "/dev/loop0");
}

// The daemon and mtctl scan the disks with one set-up: the catalog's
// targets, the retention volume as the device holding the retention
// directory (not the directory itself, which names no disk), and the
// configuration's allow_non_scsi.
TEST_F(AddPairTest, TheAgentsInventorySetUpNamesTheRetentionVolumeByItsDevice) {
  ASSERT_TRUE(AddPair(Request("vm1", {{0, Wwid(3)}}), env_).ok());
  auto cfg = AgentInventoryConfig(*catalog_, sys_, "/mnt/retention", {"/dev/loop0"});
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->retention_identity, "/dev/sdb");
  EXPECT_EQ(cfg->target_identities, std::vector<std::string>{Wwid(3)});
  EXPECT_EQ(cfg->allow_non_scsi, std::vector<std::string>{"/dev/loop0"});
  EXPECT_TRUE(cfg->held_by_us.empty());
  auto inv = inventory::Inventory::Scan(sys_, *cfg);
  ASSERT_TRUE(inv.ok()) << inv.status().ToString();
  const inventory::Disk* retention = inv->Find("/dev/sdb");
  ASSERT_NE(retention, nullptr);
  EXPECT_EQ(retention->role, inventory::Role::kRetention) << retention->reason;
  const inventory::Disk* target = inv->Find(Wwid(3));
  ASSERT_NE(target, nullptr);
  EXPECT_EQ(target->role, inventory::Role::kTarget) << target->reason;
}

TEST_F(AddPairTest, UnknownTargetsAndBadRequestsChangeNothing) {
  const struct {
    proto::PairAdd req;
    Errc code;
    const char* text;
  } cases[] = {
      {Request("vm1", {{0, "naa.6000c29aaaaaaaaa"}}), Errc::kNotFound, "no such disk"},
      {Request("vm1", {{0, "sdq"}}), Errc::kNotFound, "not a WWID or device path"},
      {Request("vm1", {{0, "/dev/sdd"}, {0, "/dev/sdh"}}), Errc::kInvalidArgument,
       "disk index 0 is given twice"},
      {Request("vm1", {{0, "/dev/sdd"}, {1, Wwid(3)}}), Errc::kInvalidArgument,
       "is the same disk as disk 0"},
      {Request("vm1", {}), Errc::kInvalidArgument, "at least one disk"},
      {Request("vm 1", {{0, "/dev/sdd"}}), Errc::kInvalidArgument, "printable ASCII"},
      {Request("a/b", {{0, "/dev/sdd"}}), Errc::kInvalidArgument, "printable ASCII"},
      {Request(".hidden", {{0, "/dev/sdd"}}), Errc::kInvalidArgument, "must not start with"},
      {Request("", {{0, "/dev/sdd"}}), Errc::kInvalidArgument, "1..255"},
  };
  for (const auto& c : cases) {
    auto r = AddPair(c.req, env_);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), c.code) << r.status().ToString();
    EXPECT_NE(r.status().message().find(c.text), std::string::npos) << r.status().message();
  }
  ExpectNothingRecorded();
}

TEST_F(AddPairTest, ATargetBelongsToOneStreamAndANameToOnePair) {
  ASSERT_TRUE(AddPair(Request("vm1", {{0, "/dev/sdd"}}), env_).ok());
  auto again = AddPair(Request("vm1", {{0, "/dev/sdh"}}), env_);
  EXPECT_EQ(again.status().code(), Errc::kAlreadyExists);
  EXPECT_NE(again.status().message().find("stream 'vm1' already exists"), std::string::npos);
  auto taken = AddPair(Request("vm2", {{0, Wwid(3)}}), env_);
  EXPECT_EQ(taken.status().code(), Errc::kAlreadyExists);
  EXPECT_NE(taken.status().message().find("is already disk 0 of stream 'vm1'"), std::string::npos)
      << taken.status().message();
}

TEST_F(AddPairTest, ALeftoverCredentialIsNotOverwrittenAndTheStreamIsRemovedAgain) {
  ASSERT_TRUE(credentials_.Create("vm1").ok());
  auto r = AddPair(Request("vm1", {{0, "/dev/sdd"}}), env_);
  EXPECT_EQ(r.status().code(), Errc::kAlreadyExists);
  EXPECT_NE(r.status().message().find("/creds/vm1.key"), std::string::npos);
  auto streams = catalog_->ListStreams();
  ASSERT_TRUE(streams.ok());
  EXPECT_TRUE(streams->empty());
}

TEST_F(AddPairTest, ADeviceThatCannotBeReadIsNamed) {
  env_.geometry = [](const std::string& dev) -> Result<Geometry> {
    return Status(Errc::kIoError, "open " + dev + ": Input/output error");
  };
  auto r = AddPair(Request("vm1", {{0, "/dev/sdd"}}), env_);
  EXPECT_EQ(r.status().code(), Errc::kIoError);
  EXPECT_NE(r.status().message().find("disk 0 (/dev/sdd): open /dev/sdd"), std::string::npos)
      << r.status().message();
  ExpectNothingRecorded();
}

TEST_F(AddPairTest, TheCatalogListsWhatWasAdded) {
  ASSERT_TRUE(AddPair(Request("vm1", {{0, "/dev/sdd"}}), env_).ok());
  ASSERT_TRUE(AddPair(Request("vm2", {{0, "/dev/sdh"}, {1, "/dev/sdc"}}), env_).ok());
  auto list = ListPairsFromCatalog(*catalog_, clock_.NowNs());
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(list->source(), "catalog");
  ASSERT_EQ(list->pairs_size(), 2);
  EXPECT_EQ(list->pairs(1).name(), "vm2");
  EXPECT_EQ(list->pairs(1).disks_size(), 2);
  EXPECT_FALSE(list->pairs(1).running());
}

TEST(PolicyFromProto, ZeroMeansTheDefaultAndBadValuesAreRefused) {
  retention::PolicyRow d;
  proto::Policy p;
  auto same = PolicyFromProto(p, d);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->window_ns, d.window_ns);
  p.set_app_frequency_ns(10 * kMin);
  p.set_full_action("stop");
  auto set = PolicyFromProto(p, d);
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->app_frequency_ns, 10 * kMin);
  EXPECT_EQ(set->full_action, retention::FullAction::kStop);
  p.set_full_action("drop");
  EXPECT_EQ(PolicyFromProto(p, d).status().code(), Errc::kInvalidArgument);
  p.set_full_action("");
  p.set_window_ns(-1);
  EXPECT_EQ(PolicyFromProto(p, d).status().code(), Errc::kInvalidArgument);
}

TEST(DeviceOfDirectory, TheLongestMountPointAboveTheDirectoryWins) {
  std::vector<shim::MountEntry> m(4);
  m[0].mount_point = "/";
  m[0].source = "/dev/sda2";
  m[1].mount_point = "/mnt/retention";
  m[1].source = "/dev/sdb";
  m[2].mount_point = "/mnt/ret";
  m[2].source = "/dev/sdc";
  m[3].mount_point = "/run";
  m[3].source = "tmpfs";
  EXPECT_EQ(DeviceOfDirectory(m, "/mnt/retention"), "/dev/sdb");
  EXPECT_EQ(DeviceOfDirectory(m, "/mnt/retention/x"), "/dev/sdb");
  EXPECT_EQ(DeviceOfDirectory(m, "/mnt/retentionx"), "/dev/sda2");
  EXPECT_EQ(DeviceOfDirectory(m, "/var/tmp"), "/dev/sda2");
  EXPECT_EQ(DeviceOfDirectory(m, "/run/mt"), "");  // not a block device
}

// --- alerts ---------------------------------------------------------------

proto::Pair Healthy(const std::string& name, int64_t now) {
  proto::Pair p;
  p.set_name(name);
  p.set_state("protected");
  p.set_created_ns(now - 10 * kMin);
  p.set_rpo_ns(30 * kS);
  p.set_last_app_point_ns(now - 20 * kMin);
  p.mutable_policy()->set_rpo_threshold_ns(15 * kMin);
  p.mutable_policy()->set_app_frequency_ns(60 * kMin);
  return p;
}

TEST(Alerts, AHealthyAgentHasNone) {
  const int64_t now = 1'800'000'000 * kS;
  EXPECT_TRUE(ComputeAlerts({Healthy("vm1", now)}, now, {}).empty());
}

TEST(Alerts, RpoOverItsThreshold) {
  const int64_t now = 1'800'000'000 * kS;
  proto::Pair p = Healthy("vm1", now);
  p.set_rpo_ns(20 * kMin);
  auto a = ComputeAlerts({p}, now, {});
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind(), "rpo");
  EXPECT_EQ(a[0].stream(), "vm1");
  EXPECT_EQ(a[0].message(), "stream 'vm1': RPO 20m is above its threshold 15m");
}

TEST(Alerts, NoAppPointWithinTwiceTheFrequency) {
  const int64_t now = 1'800'000'000 * kS;
  proto::Pair p = Healthy("vm1", now);
  p.set_last_app_point_ns(now - 121 * kMin);
  auto a = ComputeAlerts({p}, now, {});
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind(), "app-point");
  EXPECT_NE(a[0].message().find("no app-consistent point for 2h1m"), std::string::npos)
      << a[0].message();
  // Exactly at twice the frequency: not yet.
  p.set_last_app_point_ns(now - 120 * kMin);
  EXPECT_TRUE(ComputeAlerts({p}, now, {}).empty());
  // Never had one: counted from the pair's creation.
  p.set_last_app_point_ns(0);
  p.set_created_ns(now - 3 * 60 * kMin);
  a = ComputeAlerts({p}, now, {});
  ASSERT_EQ(a.size(), 1u);
  EXPECT_NE(a[0].message().find("none since the pair was created"), std::string::npos);
}

TEST(Alerts, AFailedStreamSaysWhyAndRaisesNothingElse) {
  const int64_t now = 1'800'000'000 * kS;
  proto::Pair p = Healthy("vm1", now);
  p.set_state("failed");
  p.set_error("target of disk 0 is not attached");
  p.set_rpo_ns(60 * kMin);
  auto a = ComputeAlerts({p}, now, {});
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind(), "stream-failed");
  EXPECT_EQ(a[0].message(), "stream 'vm1' failed: target of disk 0 is not attached");
}

TEST(Alerts, PausedStreamsRaiseNone) {
  const int64_t now = 1'800'000'000 * kS;
  proto::Pair p = Healthy("vm1", now);
  p.set_state("paused");
  p.set_rpo_ns(60 * kMin);
  p.set_last_app_point_ns(1);
  EXPECT_TRUE(ComputeAlerts({p}, now, {}).empty());
}

TEST(Alerts, ARetentionFullStreamSaysWhyApplyingIsHeld) {
  const int64_t now = 1'800'000'000 * kS;
  proto::Pair p = Healthy("vm1", now);
  p.set_retention_alert("retention volume /mnt/retention is low on space (1 KiB free, below 2 KiB): "
                        "applying is held (full action: stop) until space is freed");
  auto a = ComputeAlerts({p}, now, {});
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind(), "retention-full");
  EXPECT_EQ(a[0].stream(), "vm1");
  EXPECT_EQ(a[0].message(), "stream 'vm1': " + p.retention_alert());
}

TEST(Alerts, RetentionLowOnSpace) {
  RetentionSpace s;
  s.dir = "/mnt/retention";
  s.low_space = true;
  s.available_bytes = 512ull << 20;
  s.threshold_bytes = 1ull << 30;
  auto a = ComputeAlerts({}, 1, s);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind(), "retention-space");
  EXPECT_EQ(a[0].stream(), "");
  EXPECT_EQ(a[0].message(),
            "retention volume /mnt/retention is low on space: 512 MiB free, below 1024 MiB");
}

}  // namespace
}  // namespace mt::control
