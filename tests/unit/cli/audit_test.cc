// The audit trail of mtctl's data-changing operations: what each journal
// entry says and which fields it carries (audit.h).
#include "cli/audit.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <map>

namespace mt::cli {
namespace {

std::map<std::string, std::string> AsMap(const shim::JournalFields& f) {
  std::map<std::string, std::string> m;
  for (const auto& [k, v] : f) {
    EXPECT_EQ(m.count(k), 0u) << "field " << k << " twice";
    m[k] = v;
  }
  return m;
}

TEST(Audit, ARollbackNamesTheGroupThePointAndWhoAskedThroughSudo) {
  shim::Requester who;
  who.uid = 0;
  who.user = "root";
  who.sudo_user = "alice";
  who.login_uid = 1000;
  const AuditedOp op{"rollback", "", "erp", "", "latest-app", "", ""};
  EXPECT_EQ(AuditMessage(op, who, "requested"),
            "mtctl rollback group erp at latest-app: requested by root (sudo from alice)");
  auto f = AsMap(AuditFields(op, who, "requested", 0));
  EXPECT_EQ(f["SYSLOG_IDENTIFIER"], "mtctl");
  EXPECT_EQ(f["OP"], "rollback");
  EXPECT_EQ(f["GROUP"], "erp");
  EXPECT_EQ(f["POINT"], "latest-app");
  EXPECT_EQ(f["OUTCOME"], "requested");
  EXPECT_EQ(f["REQUESTED_BY"], "root");
  EXPECT_EQ(f["REQUESTED_UID"], "0");
  EXPECT_EQ(f["SUDO_USER"], "alice");
  EXPECT_EQ(f["LOGIN_UID"], "1000");
  EXPECT_EQ(f.count("STREAM"), 0u) << "empty values are left out";
  EXPECT_EQ(f.count("EXIT_STATUS"), 0u) << "a request has no outcome yet";
}

TEST(Audit, TheOutcomeCarriesTheExitStatus) {
  shim::Requester who;
  who.uid = 4242;  // no user name
  const AuditedOp op{"export", "web01", "", "naa.6000c29a1b2c3d4e", "before-upgrade",
                     "/var/tmp/sda.img", ""};
  EXPECT_EQ(AuditMessage(op, who, "refused"),
            "mtctl export stream web01 disk naa.6000c29a1b2c3d4e at before-upgrade to "
            "/var/tmp/sda.img: refused by uid 4242");
  auto f = AsMap(AuditFields(op, who, "refused", 1));
  EXPECT_EQ(f["OUTCOME"], "refused");
  EXPECT_EQ(f["EXIT_STATUS"], "1");
  EXPECT_EQ(f["OUT"], "/var/tmp/sda.img");
  EXPECT_EQ(f["DISK"], "naa.6000c29a1b2c3d4e");
  EXPECT_EQ(f.count("REQUESTED_BY"), 0u);
  EXPECT_EQ(f.count("LOGIN_UID"), 0u);
}

TEST(Audit, TheOperationRunsAndItsStatusIsReturnedWithOrWithoutAJournal) {
  int runs = 0;
  EXPECT_EQ(Audited({"commit", "web01", "", "", "", "", ""}, [&] { return ++runs, 3; }), 3);
  EXPECT_EQ(runs, 1);
}

TEST(Audit, TheRequesterIsThisProcess) {
  const shim::Requester who = shim::CurrentRequester();
  EXPECT_EQ(who.uid, getuid());
}

}  // namespace
}  // namespace mt::cli
