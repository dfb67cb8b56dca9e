#include "cs/cs_store.h"

#include <sqlite3.h>

#include <algorithm>

#include "jobs/sql_stmt.h"

namespace mt::cs {

using sql::Stmt;

namespace {

// 1: agents, health, inventory, jobs, requests, audit. 2: samples.
constexpr int kSchemaVersion = 2;

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS agents (
  n             INTEGER PRIMARY KEY AUTOINCREMENT,
  id            TEXT    NOT NULL UNIQUE,
  hostname      TEXT    NOT NULL,
  version       TEXT    NOT NULL,
  key           BLOB    NOT NULL,
  address       TEXT    NOT NULL DEFAULT '',
  registered_ns INTEGER NOT NULL,
  last_seen_ns  INTEGER NOT NULL DEFAULT 0,
  connected     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS health (
  agent_id   TEXT PRIMARY KEY,
  status     BLOB NOT NULL,
  updated_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS inventory (
  agent_id   TEXT PRIMARY KEY,
  inventory  BLOB NOT NULL,
  updated_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
  agent_id   TEXT NOT NULL,
  id         TEXT NOT NULL,
  job        BLOB NOT NULL,
  created_ns INTEGER NOT NULL,
  updated_ns INTEGER NOT NULL,
  PRIMARY KEY (agent_id, id)
);
CREATE TABLE IF NOT EXISTS requests (
  agent_id    TEXT    NOT NULL,
  seq         INTEGER NOT NULL,
  request     BLOB    NOT NULL,
  state       TEXT    NOT NULL CHECK (state IN ('queued', 'sent', 'answered')),
  response    BLOB    NOT NULL DEFAULT x'',
  created_ns  INTEGER NOT NULL,
  answered_ns INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (agent_id, seq)
);
CREATE TABLE IF NOT EXISTS samples (
  agent_id        TEXT    NOT NULL,
  stream          TEXT    NOT NULL,
  ns              INTEGER NOT NULL,
  rpo_ns          INTEGER NOT NULL,
  backlog_records INTEGER NOT NULL,
  wal_bytes       INTEGER NOT NULL,
  bytes_ingested  INTEGER NOT NULL,
  bytes_applied   INTEGER NOT NULL,
  retention_capacity_bytes  INTEGER NOT NULL,
  retention_available_bytes INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_by_time ON samples (agent_id, ns);
CREATE TABLE IF NOT EXISTS audit (
  n        INTEGER PRIMARY KEY AUTOINCREMENT,
  ns       INTEGER NOT NULL,
  agent_id TEXT    NOT NULL,
  line     TEXT    NOT NULL
);
)sql";

Status SqlError(sqlite3* db, const std::string& what) {
  return Status(Errc::kIoError, "cs.db: " + what + ": " + sqlite3_errmsg(db));
}

Status Done(sqlite3* db, Stmt& st, const std::string& what) {
  if (!st.ok() || sqlite3_step(st.get()) != SQLITE_DONE) return SqlError(db, what);
  return Status::Ok();
}

AgentRow ReadAgent(Stmt& st) {
  AgentRow a;
  a.id = st.ColumnText(0);
  a.hostname = st.ColumnText(1);
  a.version = st.ColumnText(2);
  a.key = st.ColumnText(3);
  a.address = st.ColumnText(4);
  a.registered_ns = st.ColumnInt(5);
  a.last_seen_ns = st.ColumnInt(6);
  a.connected = st.ColumnInt(7) != 0;
  return a;
}

constexpr char kAgentColumns[] =
    "id, hostname, version, key, address, registered_ns, last_seen_ns, connected";

template <typename M>
Result<std::optional<M>> GetBlob(sqlite3* db, const std::string& sql, const std::string& id,
                                 const std::string& what) {
  Stmt st(db, sql);
  if (!st.ok()) return SqlError(db, what);
  st.Text(1, id);
  const int rc = sqlite3_step(st.get());
  if (rc == SQLITE_DONE) return std::optional<M>();
  if (rc != SQLITE_ROW) return SqlError(db, what);
  M m;
  if (!m.ParseFromString(st.ColumnText(0))) {
    return Status(Errc::kCorruption, "cs.db: " + what + ": the stored message does not parse");
  }
  return std::optional<M>(std::move(m));
}

RequestRow ReadRequest(Stmt& st) {
  RequestRow r;
  r.agent_id = st.ColumnText(0);
  r.seq = static_cast<uint64_t>(st.ColumnInt(1));
  r.request = st.ColumnText(2);
  r.state = st.ColumnText(3);
  r.response = st.ColumnText(4);
  r.created_ns = st.ColumnInt(5);
  r.answered_ns = st.ColumnInt(6);
  return r;
}

constexpr char kRequestColumns[] =
    "agent_id, seq, request, state, response, created_ns, answered_ns";

}  // namespace

Result<std::unique_ptr<CsStore>> CsStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    Status s(Errc::kIoError, "cannot open " + path + ": " + (db ? sqlite3_errmsg(db) : "no memory"));
    sqlite3_close(db);
    return s;
  }
  std::unique_ptr<CsStore> store(new CsStore(db));
  sqlite3_busy_timeout(db, 10'000);
  MT_RETURN_IF_ERROR(sql::Exec(db, "set up " + path, "PRAGMA synchronous = FULL;"));
  int64_t found = 0;
  {
    Stmt version(db, "PRAGMA user_version");
    if (!version.ok() || sqlite3_step(version.get()) != SQLITE_ROW) return SqlError(db, "read the schema version");
    found = version.ColumnInt(0);
  }
  if (found > kSchemaVersion) {
    return Status(Errc::kCorruption, path + " has schema version " + std::to_string(found) +
                                         ", newer than this mt-cs knows (" +
                                         std::to_string(kSchemaVersion) + ")");
  }
  // Only the first opener writes the schema (and WAL mode, which the file
  // keeps): the CLI's processes open the store while mt-cs serve writes to
  // it, and a schema write beside a writer can be refused as locked without
  // waiting (SQLite's deadlock rule).
  if (found < kSchemaVersion) {
    MT_RETURN_IF_ERROR(sql::Exec(db, "set up " + path, "PRAGMA journal_mode = WAL;"));
    MT_RETURN_IF_ERROR(sql::Exec(db, "set up " + path, "BEGIN IMMEDIATE"));
    Status s = sql::Exec(db, "set up " + path, kSchema);
    if (s.ok()) {
      s = sql::Exec(db, "set up " + path,
                    ("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
    }
    (void)sql::Exec(db, "set up " + path, s.ok() ? "COMMIT" : "ROLLBACK");
    MT_RETURN_IF_ERROR(s);
  }
  return store;
}

CsStore::~CsStore() { sqlite3_close(db_); }

Result<std::string> CsStore::AddAgent(const AgentRow& row) {
  std::lock_guard<std::mutex> lock(mu_);
  MT_RETURN_IF_ERROR(sql::Exec(db_, "cs.db: add an agent", "BEGIN IMMEDIATE"));
  std::string id;
  Status s = [&]() -> Status {
    Stmt next(db_, "SELECT COALESCE(MAX(n), 0) + 1 FROM agents");
    if (!next.ok() || sqlite3_step(next.get()) != SQLITE_ROW) return SqlError(db_, "number an agent");
    id = "agent-" + std::to_string(next.ColumnInt(0));
    Stmt st(db_, "INSERT INTO agents (id, hostname, version, key, address, registered_ns, last_seen_ns) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)");
    st.Text(1, id).Text(2, row.hostname).Text(3, row.version).Blob(4, row.key).Text(5, row.address);
    st.Int(6, row.registered_ns).Int(7, row.registered_ns);
    return Done(db_, st, "add agent " + id);
  }();
  if (!s.ok()) {
    (void)sql::Exec(db_, "rollback", "ROLLBACK");
    return s;
  }
  MT_RETURN_IF_ERROR(sql::Exec(db_, "cs.db: add an agent", "COMMIT"));
  return id;
}

Result<std::optional<AgentRow>> CsStore::GetAgent(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, std::string("SELECT ") + kAgentColumns + " FROM agents WHERE id = ?");
  if (!st.ok()) return SqlError(db_, "read agent " + id);
  st.Text(1, id);
  const int rc = sqlite3_step(st.get());
  if (rc == SQLITE_DONE) return std::optional<AgentRow>();
  if (rc != SQLITE_ROW) return SqlError(db_, "read agent " + id);
  return std::optional<AgentRow>(ReadAgent(st));
}

Result<std::vector<AgentRow>> CsStore::ListAgents() {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, std::string("SELECT ") + kAgentColumns + " FROM agents ORDER BY n");
  if (!st.ok()) return SqlError(db_, "list agents");
  std::vector<AgentRow> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) out.push_back(ReadAgent(st));
  if (rc != SQLITE_DONE) return SqlError(db_, "list agents");
  return out;
}

Result<AgentRow> CsStore::FindAgent(const std::string& id_or_hostname) {
  MT_ASSIGN_OR_RETURN(const std::vector<AgentRow> all, ListAgents());
  std::vector<AgentRow> by_host;
  for (const AgentRow& a : all) {
    if (a.id == id_or_hostname) return a;
    if (a.hostname == id_or_hostname) by_host.push_back(a);
  }
  if (by_host.size() == 1) return by_host[0];
  if (by_host.empty()) {
    return Status(Errc::kNotFound, "no agent '" + id_or_hostname + "' (see mt-cs agents)");
  }
  return Status(Errc::kInvalidArgument, std::to_string(by_host.size()) + " agents run on host '" +
                                            id_or_hostname + "': name one by its id (mt-cs agents)");
}

Status CsStore::SetConnected(const std::string& id, bool connected, const std::string& address,
                             int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "UPDATE agents SET connected = ?, address = ?, last_seen_ns = ? WHERE id = ?");
  st.Int(1, connected ? 1 : 0).Text(2, address).Int(3, now_ns).Text(4, id);
  return Done(db_, st, "update agent " + id);
}

Status CsStore::SetAgentKey(const std::string& id, const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "UPDATE agents SET key = ? WHERE id = ?");
  st.Blob(1, key).Text(2, id);
  return Done(db_, st, "store the key of " + id);
}

Status CsStore::ClearConnected() {
  std::lock_guard<std::mutex> lock(mu_);
  return sql::Exec(db_, "cs.db: reset connections", "UPDATE agents SET connected = 0");
}

Status CsStore::SaveHealth(const std::string& id, const proto::AgentStatus& status, int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "INSERT OR REPLACE INTO health (agent_id, status, updated_ns) VALUES (?, ?, ?)");
  st.Text(1, id).Blob(2, status.SerializeAsString()).Int(3, now_ns);
  MT_RETURN_IF_ERROR(Done(db_, st, "save the health of " + id));
  Stmt seen(db_, "UPDATE agents SET last_seen_ns = ? WHERE id = ?");
  seen.Int(1, now_ns).Text(2, id);
  MT_RETURN_IF_ERROR(Done(db_, seen, "update agent " + id));
  return AddSamplesLocked(id, status, now_ns);
}

Status CsStore::AddSamplesLocked(const std::string& id, const proto::AgentStatus& status, int64_t now_ns) {
  {
    Stmt last(db_, "SELECT COALESCE(MAX(ns), 0) FROM samples WHERE agent_id = ?");
    last.Text(1, id);
    if (!last.ok() || sqlite3_step(last.get()) != SQLITE_ROW) return SqlError(db_, "read the samples of " + id);
    if (now_ns - last.ColumnInt(0) < kSampleEveryNs) return Status::Ok();
  }
  MT_RETURN_IF_ERROR(sql::Exec(db_, "cs.db: samples of " + id, "BEGIN IMMEDIATE"));
  Status s = [&]() -> Status {
    auto add = [&](const std::string& stream, int64_t rpo, uint64_t backlog, uint64_t wal, uint64_t in,
                   uint64_t applied) {
      Stmt st(db_, "INSERT INTO samples (agent_id, stream, ns, rpo_ns, backlog_records, wal_bytes, "
                   "bytes_ingested, bytes_applied, retention_capacity_bytes, retention_available_bytes) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      st.Text(1, id).Text(2, stream).Int(3, now_ns).Int(4, rpo).Int(5, static_cast<int64_t>(backlog));
      st.Int(6, static_cast<int64_t>(wal)).Int(7, static_cast<int64_t>(in)).Int(8, static_cast<int64_t>(applied));
      st.Int(9, static_cast<int64_t>(status.retention_capacity_bytes()));
      st.Int(10, static_cast<int64_t>(status.retention_available_bytes()));
      return Done(db_, st, "add a sample of " + id);
    };
    MT_RETURN_IF_ERROR(add("", -1, 0, 0, 0, 0));  // the agent's own row: retention space
    for (const auto& p : status.pairs()) {
      if (p.state() == "committed") continue;
      MT_RETURN_IF_ERROR(add(p.name(), p.rpo_ns(), p.backlog_records(), p.wal_bytes(), p.bytes_ingested(),
                             p.bytes_applied()));
    }
    Stmt prune(db_, "DELETE FROM samples WHERE agent_id = ? AND ns < ?");
    prune.Text(1, id).Int(2, now_ns - kSampleKeepNs);
    return Done(db_, prune, "prune the samples of " + id);
  }();
  (void)sql::Exec(db_, "cs.db: samples of " + id, s.ok() ? "COMMIT" : "ROLLBACK");
  return s;
}

Result<std::vector<SampleRow>> CsStore::Samples(const std::string& agent_id, int64_t since_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "SELECT agent_id, stream, ns, rpo_ns, backlog_records, wal_bytes, bytes_ingested, "
               "bytes_applied, retention_capacity_bytes, retention_available_bytes FROM samples "
               "WHERE (? = '' OR agent_id = ?) AND ns >= ? ORDER BY ns, agent_id, stream");
  st.Text(1, agent_id).Text(2, agent_id).Int(3, since_ns);
  std::vector<SampleRow> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    SampleRow r;
    r.agent_id = st.ColumnText(0);
    r.stream = st.ColumnText(1);
    r.ns = st.ColumnInt(2);
    r.rpo_ns = st.ColumnInt(3);
    r.backlog_records = static_cast<uint64_t>(st.ColumnInt(4));
    r.wal_bytes = static_cast<uint64_t>(st.ColumnInt(5));
    r.bytes_ingested = static_cast<uint64_t>(st.ColumnInt(6));
    r.bytes_applied = static_cast<uint64_t>(st.ColumnInt(7));
    r.retention_capacity_bytes = static_cast<uint64_t>(st.ColumnInt(8));
    r.retention_available_bytes = static_cast<uint64_t>(st.ColumnInt(9));
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return SqlError(db_, "read the samples");
  return out;
}

Result<std::optional<proto::AgentStatus>> CsStore::GetHealth(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  return GetBlob<proto::AgentStatus>(db_, "SELECT status FROM health WHERE agent_id = ?", id,
                                     "read the health of " + id);
}

Status CsStore::SaveInventory(const std::string& id, const proto::Inventory& inv, int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "INSERT OR REPLACE INTO inventory (agent_id, inventory, updated_ns) VALUES (?, ?, ?)");
  st.Text(1, id).Blob(2, inv.SerializeAsString()).Int(3, now_ns);
  return Done(db_, st, "save the inventory of " + id);
}

Result<std::optional<proto::Inventory>> CsStore::GetInventory(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  return GetBlob<proto::Inventory>(db_, "SELECT inventory FROM inventory WHERE agent_id = ?", id,
                                   "read the inventory of " + id);
}

Status CsStore::SaveJob(const std::string& id, const proto::Job& job, int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "INSERT INTO jobs (agent_id, id, job, created_ns, updated_ns) VALUES (?, ?, ?, ?, ?) "
               "ON CONFLICT (agent_id, id) DO UPDATE SET job = excluded.job, updated_ns = excluded.updated_ns");
  st.Text(1, id).Text(2, job.id()).Blob(3, job.SerializeAsString()).Int(4, job.created_ns()).Int(5, now_ns);
  return Done(db_, st, "save job " + job.id() + " of " + id);
}

Result<std::optional<proto::Job>> CsStore::GetJob(const std::string& agent_id,
                                                  const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "SELECT job FROM jobs WHERE agent_id = ? AND id = ?");
  if (!st.ok()) return SqlError(db_, "read job " + job_id);
  st.Text(1, agent_id).Text(2, job_id);
  const int rc = sqlite3_step(st.get());
  if (rc == SQLITE_DONE) return std::optional<proto::Job>();
  if (rc != SQLITE_ROW) return SqlError(db_, "read job " + job_id);
  proto::Job j;
  if (!j.ParseFromString(st.ColumnText(0))) return Status(Errc::kCorruption, "cs.db: job " + job_id + " does not parse");
  return std::optional<proto::Job>(std::move(j));
}

Result<std::vector<std::pair<std::string, proto::Job>>> CsStore::ListJobs(const std::string& agent_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, agent_id.empty()
                   ? "SELECT agent_id, job FROM jobs ORDER BY created_ns DESC, id"
                   : "SELECT agent_id, job FROM jobs WHERE agent_id = ? ORDER BY created_ns DESC, id");
  if (!st.ok()) return SqlError(db_, "list jobs");
  if (!agent_id.empty()) st.Text(1, agent_id);
  std::vector<std::pair<std::string, proto::Job>> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    proto::Job j;
    if (!j.ParseFromString(st.ColumnText(1))) return Status(Errc::kCorruption, "cs.db: a job does not parse");
    out.emplace_back(st.ColumnText(0), std::move(j));
  }
  if (rc != SQLITE_DONE) return SqlError(db_, "list jobs");
  return out;
}

Result<uint64_t> CsStore::QueueRequest(const std::string& agent_id, const proto::ControlRequest& r,
                                       int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  MT_RETURN_IF_ERROR(sql::Exec(db_, "cs.db: queue a request", "BEGIN IMMEDIATE"));
  uint64_t seq = 0;
  Status s = [&]() -> Status {
    Stmt next(db_, "SELECT COALESCE(MAX(seq), 0) + 1 FROM requests WHERE agent_id = ?");
    next.Text(1, agent_id);
    if (!next.ok() || sqlite3_step(next.get()) != SQLITE_ROW) return SqlError(db_, "number a request");
    seq = static_cast<uint64_t>(next.ColumnInt(0));
    Stmt st(db_, "INSERT INTO requests (agent_id, seq, request, state, created_ns) VALUES (?, ?, ?, 'queued', ?)");
    st.Text(1, agent_id).Int(2, static_cast<int64_t>(seq)).Blob(3, r.SerializeAsString()).Int(4, now_ns);
    return Done(db_, st, "queue a request for " + agent_id);
  }();
  if (!s.ok()) {
    (void)sql::Exec(db_, "rollback", "ROLLBACK");
    return s;
  }
  MT_RETURN_IF_ERROR(sql::Exec(db_, "cs.db: queue a request", "COMMIT"));
  return seq;
}

Result<std::optional<RequestRow>> CsStore::NextRequest(const std::string& agent_id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, std::string("SELECT ") + kRequestColumns +
                   " FROM requests WHERE agent_id = ? AND state != 'answered' ORDER BY seq LIMIT 1");
  if (!st.ok()) return SqlError(db_, "read the request queue");
  st.Text(1, agent_id);
  const int rc = sqlite3_step(st.get());
  if (rc == SQLITE_DONE) return std::optional<RequestRow>();
  if (rc != SQLITE_ROW) return SqlError(db_, "read the request queue");
  return std::optional<RequestRow>(ReadRequest(st));
}

Status CsStore::MarkSent(const std::string& agent_id, uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "UPDATE requests SET state = 'sent' WHERE agent_id = ? AND seq = ? AND state = 'queued'");
  st.Text(1, agent_id).Int(2, static_cast<int64_t>(seq));
  return Done(db_, st, "mark request " + std::to_string(seq) + " sent");
}

Status CsStore::Answer(const std::string& agent_id, uint64_t seq,
                       const proto::ControlResponse& response, int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "UPDATE requests SET state = 'answered', response = ?, answered_ns = ? "
               "WHERE agent_id = ? AND seq = ?");
  st.Blob(1, response.SerializeAsString()).Int(2, now_ns).Text(3, agent_id).Int(4, static_cast<int64_t>(seq));
  return Done(db_, st, "store the answer to request " + std::to_string(seq));
}

Result<std::optional<RequestRow>> CsStore::GetRequest(const std::string& agent_id, uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, std::string("SELECT ") + kRequestColumns + " FROM requests WHERE agent_id = ? AND seq = ?");
  if (!st.ok()) return SqlError(db_, "read request " + std::to_string(seq));
  st.Text(1, agent_id).Int(2, static_cast<int64_t>(seq));
  const int rc = sqlite3_step(st.get());
  if (rc == SQLITE_DONE) return std::optional<RequestRow>();
  if (rc != SQLITE_ROW) return SqlError(db_, "read request " + std::to_string(seq));
  return std::optional<RequestRow>(ReadRequest(st));
}

Status CsStore::Audit(const std::string& agent_id, const std::string& line, int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "INSERT INTO audit (ns, agent_id, line) VALUES (?, ?, ?)");
  st.Int(1, now_ns).Text(2, agent_id).Text(3, line);
  return Done(db_, st, "write an audit line");
}

Result<std::vector<std::string>> CsStore::AuditLines(size_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt st(db_, "SELECT agent_id, line FROM (SELECT * FROM audit ORDER BY n DESC LIMIT ?) ORDER BY n");
  st.Int(1, static_cast<int64_t>(limit));
  std::vector<std::string> out;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    const std::string agent = st.ColumnText(0);
    out.push_back((agent.empty() ? "-" : agent) + ": " + st.ColumnText(1));
  }
  if (rc != SQLITE_DONE) return SqlError(db_, "read the audit lines");
  return out;
}

Result<std::vector<std::pair<std::string, proto::Alert>>> AgentAlerts(CsStore& store, int64_t now_ns) {
  MT_ASSIGN_OR_RETURN(const std::vector<AgentRow> agents, store.ListAgents());
  std::vector<std::pair<std::string, proto::Alert>> all;
  for (const AgentRow& a : agents) {
    if (!a.connected) {
      proto::Alert down;
      down.set_kind("agent-down");
      const std::string since =
          a.last_seen_ns <= 0 ? "(never seen)" : "since " + std::to_string(std::max<int64_t>(0, (now_ns - a.last_seen_ns) / 1'000'000'000)) + " s ago";
      down.set_message("the link of " + a.id + " (" + a.hostname + ") is down " + since);
      all.emplace_back(a.id, down);
    }
    MT_ASSIGN_OR_RETURN(const auto health, store.GetHealth(a.id));
    if (health)
      for (const auto& al : health->alerts()) all.emplace_back(a.id, al);
  }
  return all;
}

}  // namespace mt::cs
