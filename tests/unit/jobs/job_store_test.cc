// The daemon's job table (jobs.db): a job is created once per id (the same
// request again returns it, another request is refused), saved with its
// progress and result, listed newest first, and the jobs an agent left
// queued or running are found again.
#include "jobs/job_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

namespace mt::jobs {
namespace {

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char d[] = "/tmp/mt-jobs-XXXXXX";
    ASSERT_NE(mkdtemp(d), nullptr);
    dir_ = d;
    auto s = JobStore::Open(path(), true);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void TearDown() override {
    store_.reset();
    for (const char* f : {"/jobs.db", "/jobs.db-wal", "/jobs.db-shm"}) unlink((dir_ + f).c_str());
    rmdir(dir_.c_str());
  }
  std::string path() const { return dir_ + "/jobs.db"; }
  static proto::JobSpec Rollback(const std::string& to) {
    proto::JobSpec spec;
    spec.mutable_rollback()->add_streams("vm1");
    spec.mutable_rollback()->set_to(to);
    return spec;
  }
  std::string dir_;
  std::unique_ptr<JobStore> store_;
};

TEST_F(JobStoreTest, AJobIsCreatedOncePerIdAndAnotherRequestUnderItIsRefused) {
  bool created = false;
  auto j = store_->Create("j1", Rollback("p1"), 100, &created);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_TRUE(created);
  EXPECT_EQ(j->kind(), "rollback");
  EXPECT_EQ(j->state(), kQueued);

  auto again = store_->Create("j1", Rollback("p1"), 200, &created);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(created);
  EXPECT_EQ(again->created_ns(), 100);

  auto other = store_->Create("j1", Rollback("latest"), 300, &created);
  EXPECT_EQ(other.status().code(), Errc::kAlreadyExists);
  EXPECT_EQ(store_->Create("bad id", Rollback("p1"), 1, &created).status().code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(store_->Create("j9", proto::JobSpec(), 1, &created).status().code(),
            Errc::kInvalidArgument);  // no kind
  EXPECT_EQ(store_->List().value().size(), 1u);
  // Each kind of job is named in the table.
  proto::JobSpec vs;
  vs.mutable_vsnap_create()->set_stream("s");
  auto v = store_->Create("v", vs, 1, &created);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->kind(), "vsnap-create");
}

TEST_F(JobStoreTest, StateProgressAndResultSurviveAReopenAndUnfinishedJobsAreFound) {
  bool created = false;
  auto j1 = store_->Create("j1", Rollback("p1"), 100, &created).value();
  auto j2 = store_->Create("j2", Rollback("p2"), 200, &created).value();
  j1.set_state(kSucceeded);
  j1.set_done_bytes(5);
  j1.set_total_bytes(10);
  j1.set_message("done");
  j1.set_finished_ns(150);
  j1.mutable_result()->set_seq(42);
  j1.mutable_vsnap()->set_device("/dev/mapper/v");  // what a vsnap-create job made
  ASSERT_TRUE(store_->Save(j1).ok());
  j2.set_state(kRunning);
  ASSERT_TRUE(store_->Save(j2).ok());
  proto::Job missing;
  missing.set_id("nope");
  EXPECT_EQ(store_->Save(missing).code(), Errc::kNotFound);

  store_.reset();
  store_ = JobStore::Open(path(), false).value();
  auto got = store_->Get("j1").value();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->state(), kSucceeded);
  EXPECT_EQ(got->done_bytes(), 5u);
  EXPECT_EQ(got->result().seq(), 42u);
  EXPECT_EQ(got->vsnap().device(), "/dev/mapper/v");
  EXPECT_EQ(got->spec().rollback().to(), "p1");
  auto list = store_->List().value();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id(), "j2");  // newest first
  auto left = store_->Unfinished().value();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].id(), "j2");
  EXPECT_FALSE(store_->Get("j3").value().has_value());
}

// A jobs.db of schema version 1 (no vsnap column) is brought up to date when
// opened, its jobs kept; one of a version newer than this code is refused.
TEST_F(JobStoreTest, AnOlderTableIsUpgradedAndANewerOneRefused) {
  store_.reset();
  const std::string old_path = dir_ + "/v1.db";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(old_path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, spec BLOB NOT "
                         "NULL, state TEXT NOT NULL, done_bytes INTEGER NOT NULL DEFAULT 0, "
                         "total_bytes INTEGER NOT NULL DEFAULT 0, message TEXT NOT NULL DEFAULT '', "
                         "created_ns INTEGER NOT NULL, started_ns INTEGER NOT NULL DEFAULT 0, "
                         "finished_ns INTEGER NOT NULL DEFAULT 0, result BLOB NOT NULL DEFAULT x'');"
                         "INSERT INTO jobs (id, kind, spec, state, created_ns) "
                         "VALUES ('old', 'rollback', x'', 'succeeded', 7);"
                         "PRAGMA user_version = 1;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto up = JobStore::Open(old_path, false);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  auto old = (*up)->Get("old").value();
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->state(), kSucceeded);
  old->mutable_vsnap()->set_name("v");
  ASSERT_TRUE((*up)->Save(*old).ok());
  EXPECT_EQ((*up)->Get("old").value()->vsnap().name(), "v");
  up->reset();

  ASSERT_EQ(sqlite3_open(old_path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto newer = JobStore::Open(old_path, false);
  EXPECT_EQ(newer.status().code(), Errc::kCorruption);
  EXPECT_NE(newer.status().message().find("newer than this mt-agent"), std::string::npos);
  for (const char* f : {"/v1.db", "/v1.db-wal", "/v1.db-shm"}) unlink((dir_ + f).c_str());
}

TEST_F(JobStoreTest, OpeningAMissingTableWithoutCreateIsNotFound) {
  EXPECT_EQ(JobStore::Open(dir_ + "/none.db", false).status().code(), Errc::kNotFound);
}

}  // namespace
}  // namespace mt::jobs
