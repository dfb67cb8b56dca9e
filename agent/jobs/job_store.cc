#include "jobs/job_store.h"

#include <google/protobuf/util/message_differencer.h>
#include <sqlite3.h>

#include "jobs/sql_stmt.h"
#include "mt/shim/thread_annotations.h"

namespace mt::jobs {

namespace {

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS jobs (
  id          TEXT    PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
  kind        TEXT    NOT NULL,
  spec        BLOB    NOT NULL,
  state       TEXT    NOT NULL
              CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'interrupted')),
  done_bytes  INTEGER NOT NULL DEFAULT 0,
  total_bytes INTEGER NOT NULL DEFAULT 0,
  message     TEXT    NOT NULL DEFAULT '',
  created_ns  INTEGER NOT NULL,
  started_ns  INTEGER NOT NULL DEFAULT 0,
  finished_ns INTEGER NOT NULL DEFAULT 0,
  result      BLOB    NOT NULL DEFAULT x'',
  vsnap       BLOB    NOT NULL DEFAULT x''
);
)sql";

// Version 1 (the first jobs.db) had no vsnap column: the vsnap a
// vsnap-create job made is kept since version 2.
constexpr int kSchemaVersion = 2;
constexpr char kAddVsnapColumn[] = "ALTER TABLE jobs ADD COLUMN vsnap BLOB NOT NULL DEFAULT x''";

constexpr char kColumns[] =
    "id, kind, spec, state, done_bytes, total_bytes, message, created_ns, started_ns, "
    "finished_ns, result, vsnap";

using sql::Stmt;

Status SqlError(sqlite3* db, const std::string& what) {
  return Status(Errc::kIoError, "jobs.db: " + what + ": " + sqlite3_errmsg(db));
}

Status Exec(sqlite3* db, const std::string& path, const char* sql) {
  return sql::Exec(db, "set up " + path, sql);
}

// Creates the table, or brings a jobs.db of an older version up to this
// one, in one transaction; refuses one made by a newer mt-agent.
Status SetUpSchema(sqlite3* db, const std::string& path) {
  MT_RETURN_IF_ERROR(Exec(db, path, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"));
  MT_RETURN_IF_ERROR(Exec(db, path, "BEGIN IMMEDIATE"));
  Status s = [&]() -> Status {
    Stmt version(db, "PRAGMA user_version");
    if (!version.ok() || sqlite3_step(version.get()) != SQLITE_ROW)
      return SqlError(db, "read the schema version");
    const int64_t found = sqlite3_column_int64(version.get(), 0);
    if (found > kSchemaVersion)
      return Status(Errc::kCorruption,
                    path + " has schema version " + std::to_string(found) +
                        ", newer than this mt-agent knows (" + std::to_string(kSchemaVersion) +
                        "): run the mt-agent that wrote it, or a newer one");
    MT_RETURN_IF_ERROR(Exec(db, path, kSchema));
    if (found == 1) MT_RETURN_IF_ERROR(Exec(db, path, kAddVsnapColumn));
    return Exec(db, path, ("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
  }();
  if (!s.ok()) {
    (void)Exec(db, path, "ROLLBACK");
    return s;
  }
  return Exec(db, path, "COMMIT");
}

}  // namespace

std::string KindOf(const proto::JobSpec& spec) {
  switch (spec.kind_case()) {
    case proto::JobSpec::kRollback:
      return "rollback";
    case proto::JobSpec::kExportDisk:
      return "export";
    case proto::JobSpec::kVsnapCreate:
      return "vsnap-create";
    case proto::JobSpec::kCommit:
      return "commit";
    case proto::JobSpec::kVsnapRemove:
      return "vsnap-remove";
    case proto::JobSpec::kRelease:
      return "release";
    case proto::JobSpec::kAttach:
      return "attach";
    case proto::JobSpec::kResync:
      return "resync";
    case proto::JobSpec::KIND_NOT_SET:
      break;
  }
  return "";
}

Status CheckJobId(const std::string& id) {
  if (id.empty() || id.size() > 128)
    return Status(Errc::kInvalidArgument, "a job id has 1 to 128 characters");
  for (unsigned char c : id)
    if (c <= ' ' || c >= 127)
      return Status(Errc::kInvalidArgument, "a job id is printable ASCII without spaces");
  return Status::Ok();
}

struct JobStore::Impl {
  Mutex mu;
  sqlite3* db MT_GUARDED_BY(mu) = nullptr;

  Result<std::vector<proto::Job>> Select(const std::string& tail, const std::string& id,
                                         size_t limit) MT_REQUIRES(mu) {
    Stmt st(db, std::string("SELECT ") + kColumns + " FROM jobs " + tail);
    if (!st.ok()) return SqlError(db, "read jobs");
    if (!id.empty()) st.Text(1, id);
    std::vector<proto::Job> out;
    int rc;
    while (out.size() < limit && (rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      proto::Job j;
      j.set_id(st.ColumnText(0));
      j.set_kind(st.ColumnText(1));
      if (!j.mutable_spec()->ParseFromString(st.ColumnText(2)))
        return Status(Errc::kCorruption, "jobs.db: job '" + j.id() + "' has a spec that does not parse");
      j.set_state(st.ColumnText(3));
      j.set_done_bytes(sqlite3_column_int64(st.get(), 4));
      j.set_total_bytes(sqlite3_column_int64(st.get(), 5));
      j.set_message(st.ColumnText(6));
      j.set_created_ns(sqlite3_column_int64(st.get(), 7));
      j.set_started_ns(sqlite3_column_int64(st.get(), 8));
      j.set_finished_ns(sqlite3_column_int64(st.get(), 9));
      if (!j.mutable_result()->ParseFromString(st.ColumnText(10)))
        return Status(Errc::kCorruption, "jobs.db: job '" + j.id() + "' has a result that does not parse");
      if (!j.mutable_vsnap()->ParseFromString(st.ColumnText(11)))
        return Status(Errc::kCorruption, "jobs.db: job '" + j.id() + "' has a vsnap that does not parse");
      out.push_back(std::move(j));
    }
    return out;
  }
};

JobStore::JobStore(sqlite3* db) : impl_(std::make_unique<Impl>()) {
  MutexLock l(impl_->mu);
  impl_->db = db;
}

JobStore::~JobStore() {
  MutexLock l(impl_->mu);
  sqlite3_close(impl_->db);
}

Result<std::unique_ptr<JobStore>> JobStore::Open(const std::string& path, bool create) {
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    Status s(create ? Errc::kIoError : Errc::kNotFound,
             "open " + path + ": " + (db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, 5000);
  Status set_up = SetUpSchema(db, path);
  if (!set_up.ok()) {
    sqlite3_close(db);
    return set_up;
  }
  return std::unique_ptr<JobStore>(new JobStore(db));
}

Result<proto::Job> JobStore::Create(const std::string& id, const proto::JobSpec& spec,
                                   int64_t now_ns, bool* created) {
  MT_RETURN_IF_ERROR(CheckJobId(id));
  const std::string kind = KindOf(spec);
  if (kind.empty()) return Status(Errc::kInvalidArgument, "job '" + id + "' names no kind of job");
  MutexLock l(impl_->mu);
  MT_ASSIGN_OR_RETURN(auto existing, impl_->Select("WHERE id = ?1", id, 1));
  if (!existing.empty()) {
    if (!google::protobuf::util::MessageDifferencer::Equals(existing[0].spec(), spec))
      return Status(Errc::kAlreadyExists, "job '" + id + "' exists with another request (" +
                                              existing[0].kind() + ", " + existing[0].state() +
                                              "): give a new job id");
    *created = false;
    return existing[0];
  }
  Stmt st(impl_->db, "INSERT INTO jobs (id, kind, spec, state, created_ns) VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!st.ok()) return SqlError(impl_->db, "add job");
  st.Text(1, id).Text(2, kind).Blob(3, spec.SerializeAsString()).Text(4, kQueued).Int(5, now_ns);
  if (sqlite3_step(st.get()) != SQLITE_DONE) return SqlError(impl_->db, "add job '" + id + "'");
  *created = true;
  proto::Job j;
  j.set_id(id);
  j.set_kind(kind);
  j.set_state(kQueued);
  j.set_created_ns(now_ns);
  *j.mutable_spec() = spec;
  return j;
}

Status JobStore::Save(const proto::Job& j) {
  MutexLock l(impl_->mu);
  Stmt st(impl_->db,
          "UPDATE jobs SET state = ?2, done_bytes = ?3, total_bytes = ?4, message = ?5,"
          " started_ns = ?6, finished_ns = ?7, result = ?8, vsnap = ?9 WHERE id = ?1");
  if (!st.ok()) return SqlError(impl_->db, "save job");
  st.Text(1, j.id()).Text(2, j.state()).Int(3, static_cast<int64_t>(j.done_bytes()))
      .Int(4, static_cast<int64_t>(j.total_bytes())).Text(5, j.message()).Int(6, j.started_ns())
      .Int(7, j.finished_ns()).Blob(8, j.result().SerializeAsString())
      .Blob(9, j.vsnap().SerializeAsString());
  if (sqlite3_step(st.get()) != SQLITE_DONE) return SqlError(impl_->db, "save job '" + j.id() + "'");
  if (sqlite3_changes(impl_->db) == 0) return Status(Errc::kNotFound, "no job '" + j.id() + "'");
  return Status::Ok();
}

Result<std::optional<proto::Job>> JobStore::Get(const std::string& id) {
  MutexLock l(impl_->mu);
  MT_ASSIGN_OR_RETURN(auto rows, impl_->Select("WHERE id = ?1", id, 1));
  if (rows.empty()) return std::optional<proto::Job>();
  return std::optional<proto::Job>(std::move(rows[0]));
}

Result<std::vector<proto::Job>> JobStore::List(size_t limit) {
  MutexLock l(impl_->mu);
  return impl_->Select("ORDER BY created_ns DESC, rowid DESC", "", limit);
}

Result<std::vector<proto::Job>> JobStore::Unfinished() {
  MutexLock l(impl_->mu);
  return impl_->Select("WHERE state IN ('queued', 'running') ORDER BY created_ns, rowid", "",
                       SIZE_MAX);
}

}  // namespace mt::jobs
