// Catalog: the SQLite index of a retention store. Contract: catalog.h; schema,
// versioning and durability: docs/formats/catalog.md.
//
// Invariants of this file:
// - Every SQL text is a compile-time constant and every value is a bound
//   parameter. (PRAGMA arguments cannot be bound; the only ones used are
//   compile-time constants too.)
// - Impl::mu is held for the whole of every public method, so the statements of
//   one method never interleave with another thread's, and each method is one
//   SQLite transaction: a single statement, or BEGIN IMMEDIATE .. COMMIT.
// - A cached statement is reset when its Stmt lease ends, so no statement keeps
//   a read transaction open between calls (that would pin the WAL).
// - SQLite result codes become a Status in exactly one place, Impl::Error.
// - Every row read is validated before it becomes a *Row: the file may not have
//   been written by us (the loader is fuzzed).
// - uint64 values are stored as SQLite INTEGER (int64). Writes of values >= 2^63
//   are refused with kInvalidArgument; a negative value read back is corruption.
#include "retention/catalog.h"

#include <sqlite3.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "retention/catalog_internal.h"
#include "mt/shim/thread_annotations.h"

namespace mt::retention {

const char* FullActionName(FullAction a) {
  switch (a) {
    case FullAction::kPrune:
      return "prune";
    case FullAction::kStop:
      return "stop";
  }
  return "unknown";
}

const char* StreamStateName(StreamState s) {
  switch (s) {
    case StreamState::kProtected:
      return "protected";
    case StreamState::kPaused:
      return "paused";
    case StreamState::kFailed:
      return "failed";
    case StreamState::kCommitted:
      return "committed";
  }
  return "unknown";
}

Result<StreamState> ParseStreamState(std::string_view s) {
  for (StreamState v : {StreamState::kProtected, StreamState::kPaused, StreamState::kFailed,
                        StreamState::kCommitted})
    if (s == StreamStateName(v)) return v;
  return Status(Errc::kInvalidArgument, "unknown stream state '" + std::string(s) +
                                            "' (protected, paused, failed or committed)");
}

const char* ResyncStateName(ResyncState s) {
  switch (s) {
    case ResyncState::kPending:
      return "pending";
    case ResyncState::kRunning:
      return "running";
    case ResyncState::kComplete:
      return "complete";
  }
  return "unknown";
}

Result<ResyncState> ParseResyncState(std::string_view s) {
  for (ResyncState v : {ResyncState::kPending, ResyncState::kRunning, ResyncState::kComplete})
    if (s == ResyncStateName(v)) return v;
  return Status(Errc::kInvalidArgument,
                "unknown resync state '" + std::string(s) + "' (pending, running or complete)");
}

Result<FullAction> ParseFullAction(const std::string& s) {
  if (s == "prune") return FullAction::kPrune;
  if (s == "stop") return FullAction::kStop;
  return Status(Errc::kInvalidArgument,
                "unknown retention-full action '" + s + "' (prune or stop)");
}

namespace {

// How long a statement waits for a lock held by another connection (the daemon
// writing while mtctl reads, a checkpoint) before it reports kBusy.
constexpr int kBusyTimeoutMs = 5000;
// Longest string a row may hold, and longest row. Catalog values are names and
// paths; the limit also bounds what a hostile file can make us allocate.
constexpr int kMaxValueBytes = 1 << 20;
constexpr uint64_t kMaxStored = static_cast<uint64_t>(INT64_MAX);
constexpr size_t kMaxPointName = 255;  // as TagPayload

// ---------------------------------------------------------------------------
// Schema version 1; version 2 adds one column (kMigrations).
// docs/formats/catalog.md describes every line of both; keep the two in step. Old SQLite (EL8 ships 3.26) must be able to run all SQL in
// this file: no STRICT tables, no RETURNING, no sqlite_schema alias.

constexpr char kCreateStreams[] = R"sql(
CREATE TABLE streams (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT    NOT NULL UNIQUE CHECK (length(name) > 0),
  group_name  TEXT    NOT NULL DEFAULT '',
  created_ns  INTEGER NOT NULL,
  state       TEXT    NOT NULL
              CHECK (state IN ('protected', 'paused', 'failed', 'committed')),
  error       TEXT    NOT NULL DEFAULT ''
))sql";

constexpr char kCreateDisks[] = R"sql(
CREATE TABLE disks (
  stream              INTEGER NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
  disk                INTEGER NOT NULL CHECK (disk BETWEEN 0 AND 4294967295),
  target_id           TEXT    NOT NULL UNIQUE CHECK (length(target_id) > 0),
  target_device       TEXT    NOT NULL DEFAULT '',
  source_disk_id      TEXT    NOT NULL DEFAULT '',
  size_bytes          INTEGER NOT NULL CHECK (size_bytes >= 0),
  block_size          INTEGER NOT NULL
                      CHECK (block_size BETWEEN 512 AND 65536
                             AND (block_size & (block_size - 1)) = 0),
  resync_state        TEXT    NOT NULL
                      CHECK (resync_state IN ('pending', 'running', 'complete')),
  resync_complete_seq INTEGER NOT NULL DEFAULT 0 CHECK (resync_complete_seq >= 0),
  PRIMARY KEY (stream, disk)
) WITHOUT ROWID)sql";

constexpr char kCreateSegments[] = R"sql(
CREATE TABLE segments (
  stream        INTEGER NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
  kind          TEXT    NOT NULL CHECK (kind IN ('wal', 'undo')),
  number        INTEGER NOT NULL CHECK (number >= 0),
  file          TEXT    NOT NULL,
  first_seq     INTEGER NOT NULL CHECK (first_seq >= 0),
  last_seq      INTEGER NOT NULL CHECK (last_seq >= 0),
  first_time_ns INTEGER NOT NULL,
  last_time_ns  INTEGER NOT NULL,
  records       INTEGER NOT NULL CHECK (records >= 0),
  bytes         INTEGER NOT NULL CHECK (bytes >= 0),
  logical_bytes INTEGER NOT NULL CHECK (logical_bytes >= 0),
  sealed        INTEGER NOT NULL CHECK (sealed IN (0, 1)),
  PRIMARY KEY (stream, kind, number)
) WITHOUT ROWID)sql";

constexpr char kCreatePoints[] = R"sql(
CREATE TABLE points (
  stream       INTEGER NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
  seq          INTEGER NOT NULL CHECK (seq >= 0),
  time_ns      INTEGER NOT NULL,
  kind         TEXT    NOT NULL CHECK (kind IN ('crash', 'app', 'user')),
  name         TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
  group_tag_id TEXT    NOT NULL DEFAULT '',
  UNIQUE (stream, name)
))sql";
constexpr char kCreatePointsBySeq[] = "CREATE INDEX points_by_seq ON points (stream, seq)";
constexpr char kCreatePointsByKindSeq[] =
    "CREATE INDEX points_by_kind_seq ON points (stream, kind, seq)";
constexpr char kCreatePointsByTime[] =
    "CREATE INDEX points_by_time ON points (stream, time_ns, seq)";
constexpr char kCreatePointsByGroupTag[] =
    "CREATE INDEX points_by_group_tag ON points (group_tag_id, stream, seq)";

constexpr char kCreateCheckpoints[] = R"sql(
CREATE TABLE checkpoints (
  stream          INTEGER NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
  disk            INTEGER NOT NULL CHECK (disk BETWEEN 0 AND 4294967295),
  applied_seq     INTEGER NOT NULL CHECK (applied_seq >= 0),
  applied_time_ns INTEGER NOT NULL,
  updated_ns      INTEGER NOT NULL,
  PRIMARY KEY (stream, disk)
) WITHOUT ROWID)sql";

constexpr char kCreatePolicies[] = R"sql(
CREATE TABLE policies (
  stream           INTEGER PRIMARY KEY REFERENCES streams (id) ON DELETE CASCADE,
  window_ns        INTEGER NOT NULL CHECK (window_ns > 0),
  rpo_threshold_ns INTEGER NOT NULL CHECK (rpo_threshold_ns > 0),
  app_frequency_ns INTEGER NOT NULL CHECK (app_frequency_ns >= 0),
  full_action      TEXT    NOT NULL CHECK (full_action IN ('prune', 'stop'))
))sql";

// What VerifySchema expects of a catalog at kCatalogSchemaVersion: these tables
// with exactly these columns, and these indexes.
struct TableSpec {
  const char* name;
  const char* columns;  // space-separated
};
constexpr TableSpec kTables[] = {
    {"streams", "id name group_name created_ns state error"},
    {"disks",
     "stream disk target_id target_device source_disk_id size_bytes block_size resync_state "
     "resync_complete_seq target_blank"},
    {"segments",
     "stream kind number file first_seq last_seq first_time_ns last_time_ns records bytes "
     "logical_bytes sealed"},
    {"points", "stream seq time_ns kind name group_tag_id"},
    {"checkpoints", "stream disk applied_seq applied_time_ns updated_ns"},
    {"policies", "stream window_ns rpo_threshold_ns app_frequency_ns full_action"},
};
constexpr const char* kIndexes[] = {"points_by_seq", "points_by_kind_seq", "points_by_time",
                                    "points_by_group_tag"};

// Migrations. kMigrations[v] takes a catalog from schema version v to v + 1
// (version 0 is a file without tables). Open runs every pending step, and the
// final `PRAGMA user_version`, in one BEGIN IMMEDIATE transaction: a crash
// leaves the old version intact. To add version 2: append a step (ALTER TABLE
// ADD COLUMN, CREATE INDEX, or create-copy-drop-rename for anything else;
// EL8's SQLite 3.26 has no DROP COLUMN), bump kCatalogSchemaVersion, update
// kTables/kIndexes and docs/formats/catalog.md, and add a test that opens a
// version-1 file.
using ExecFn = std::function<Status(const char* sql)>;
struct Migration {
  const char* what;
  Status (*apply)(const ExecFn& exec);
};

Status CreateSchemaV1(const ExecFn& exec) {
  for (const char* sql : {kCreateStreams, kCreateDisks, kCreateSegments, kCreatePoints,
                          kCreatePointsBySeq, kCreatePointsByKindSeq, kCreatePointsByTime,
                          kCreatePointsByGroupTag, kCreateCheckpoints, kCreatePolicies}) {
    MT_RETURN_IF_ERROR(exec(sql));
  }
  return Status::Ok();
}

// Version 2: the operator's statement at pair add that a target is blank
// (the sender's first resync then copies every block without comparing).
// Disks of a version-1 catalog were not declared blank.
constexpr char kAddDiskTargetBlank[] =
    "ALTER TABLE disks ADD COLUMN target_blank INTEGER NOT NULL DEFAULT 0"
    " CHECK (target_blank IN (0, 1))";
Status AddTargetBlankV2(const ExecFn& exec) { return exec(kAddDiskTargetBlank); }

constexpr Migration kMigrations[] = {
    {"create schema version 1", &CreateSchemaV1},
    {"schema version 2: disks.target_blank", &AddTargetBlankV2},
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kCatalogSchemaVersion,
              "one migration step per schema version");
// PRAGMA arguments cannot be bound; this is the compile-time constant.
constexpr char kSetUserVersion[] = "PRAGMA user_version = 2";
static_assert(kCatalogSchemaVersion == 2, "update kSetUserVersion");

// ---------------------------------------------------------------------------
// Statements. Column order of every SELECT matches the Read*Row functions.

#define MT_STREAM_COLS "id, name, group_name, created_ns, state, error"
#define MT_DISK_COLS                                                                 \
  "stream, disk, target_id, target_device, source_disk_id, size_bytes, block_size, " \
  "resync_state, resync_complete_seq, target_blank"
#define MT_SEGMENT_COLS                                                                     \
  "stream, kind, number, file, first_seq, last_seq, first_time_ns, last_time_ns, records, " \
  "bytes, logical_bytes, sealed"
#define MT_POINT_COLS "stream, seq, time_ns, kind, name, group_tag_id"
#define MT_CHECKPOINT_COLS "stream, disk, applied_seq, applied_time_ns, updated_ns"

constexpr char kInsertStream[] =
    "INSERT INTO streams (name, group_name, created_ns, state, error) VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr char kSelectStreamByName[] = "SELECT " MT_STREAM_COLS " FROM streams WHERE name = ?1";
constexpr char kSelectStreamById[] = "SELECT " MT_STREAM_COLS " FROM streams WHERE id = ?1";
constexpr char kSelectStreams[] = "SELECT " MT_STREAM_COLS " FROM streams ORDER BY id";
constexpr char kUpdateStreamState[] = "UPDATE streams SET state = ?2, error = ?3 WHERE id = ?1";
constexpr char kDeleteStream[] = "DELETE FROM streams WHERE id = ?1";

constexpr char kInsertDisk[] =
    "INSERT INTO disks (" MT_DISK_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
constexpr char kUpdateDisk[] =
    "UPDATE disks SET target_id = ?3, target_device = ?4, source_disk_id = ?5, size_bytes = ?6, "
    "block_size = ?7, resync_state = ?8, resync_complete_seq = ?9, target_blank = ?10"
    " WHERE stream = ?1 AND disk = ?2";
constexpr char kSelectDisks[] =
    "SELECT " MT_DISK_COLS " FROM disks WHERE stream = ?1 ORDER BY disk";
constexpr char kSelectDiskByTarget[] = "SELECT " MT_DISK_COLS " FROM disks WHERE target_id = ?1";

constexpr char kUpsertSegment[] =
    "INSERT INTO segments (" MT_SEGMENT_COLS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    " ON CONFLICT (stream, kind, number) DO UPDATE SET file = excluded.file,"
    " first_seq = excluded.first_seq, last_seq = excluded.last_seq,"
    " first_time_ns = excluded.first_time_ns, last_time_ns = excluded.last_time_ns,"
    " records = excluded.records, bytes = excluded.bytes,"
    " logical_bytes = excluded.logical_bytes, sealed = excluded.sealed";
constexpr char kDeleteSegment[] =
    "DELETE FROM segments WHERE stream = ?1 AND kind = ?2 AND number = ?3";
constexpr char kSelectSegments[] =
    "SELECT " MT_SEGMENT_COLS " FROM segments WHERE stream = ?1 AND kind = ?2 ORDER BY number";

constexpr char kInsertPoint[] =
    "INSERT INTO points (" MT_POINT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
// Ties (several points at one seq) come in insertion order: the index entries
// end with the rowid.
constexpr char kSelectPointsBySeq[] = "SELECT " MT_POINT_COLS
                                      " FROM points WHERE stream = ?1 AND seq > ?2 AND seq <= ?3"
                                      " ORDER BY seq";
constexpr char kSelectPointByName[] =
    "SELECT " MT_POINT_COLS " FROM points WHERE stream = ?1 AND name = ?2";
constexpr char kSelectLatestPoint[] = "SELECT " MT_POINT_COLS
                                      " FROM points WHERE stream = ?1 AND seq <= ?2"
                                      " ORDER BY seq DESC LIMIT 1";
constexpr char kSelectLatestPointOfKind[] =
    "SELECT " MT_POINT_COLS
    " FROM points WHERE stream = ?1 AND kind = ?2 AND seq <= ?3 ORDER BY seq DESC LIMIT 1";
constexpr char kSelectLatestPointAtTime[] =
    "SELECT " MT_POINT_COLS
    " FROM points WHERE stream = ?1 AND time_ns <= ?2 AND (?3 IS NULL OR kind = ?3)"
    " ORDER BY time_ns DESC, seq DESC LIMIT 1";
constexpr char kSelectPointsByGroupTag[] = "SELECT " MT_POINT_COLS
                                           " FROM points WHERE group_tag_id = ?1"
                                           " ORDER BY stream, seq";
// "seq < N" as "seq <= N - 1", so that N = 2^64 - 1 still covers every stored seq.
constexpr char kDeletePointsBefore[] = "DELETE FROM points WHERE stream = ?1 AND seq <= ?2";
constexpr char kDeletePointsAfter[] = "DELETE FROM points WHERE stream = ?1 AND seq > ?2";

constexpr char kUpsertCheckpoint[] =
    "INSERT INTO checkpoints (" MT_CHECKPOINT_COLS
    ") VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (stream, disk) DO UPDATE SET applied_seq = excluded.applied_seq,"
    " applied_time_ns = excluded.applied_time_ns, updated_ns = excluded.updated_ns";
// A repeated resync keeps the disk's first completion seq: the points after
// it stay reachable (the repeated resync's data has before-images).
constexpr char kCompleteResync[] =
    "UPDATE disks SET resync_state = 'complete',"
    " resync_complete_seq = CASE WHEN resync_complete_seq = 0 THEN ?3 ELSE resync_complete_seq END"
    " WHERE stream = ?1 AND disk = ?2 AND resync_state != 'complete'";
constexpr char kRequireResync[] =
    "UPDATE disks SET resync_state = 'pending' WHERE stream = ?1 AND disk = ?2";
constexpr char kSelectCheckpoint[] =
    "SELECT " MT_CHECKPOINT_COLS " FROM checkpoints WHERE stream = ?1 AND disk = ?2";

constexpr char kUpsertPolicy[] =
    "INSERT INTO policies (stream, window_ns, rpo_threshold_ns, app_frequency_ns, full_action)"
    " VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (stream) DO UPDATE SET window_ns = excluded.window_ns,"
    " rpo_threshold_ns = excluded.rpo_threshold_ns,"
    " app_frequency_ns = excluded.app_frequency_ns, full_action = excluded.full_action";
// One statement (one read transaction) tells "no policy row" from "no stream".
constexpr char kSelectPolicy[] =
    "SELECT s.id, p.stream, p.window_ns, p.rpo_threshold_ns, p.app_frequency_ns, p.full_action"
    " FROM streams AS s LEFT JOIN policies AS p ON p.stream = s.id WHERE s.id = ?1";

#undef MT_STREAM_COLS
#undef MT_DISK_COLS
#undef MT_SEGMENT_COLS
#undef MT_POINT_COLS
#undef MT_CHECKPOINT_COLS

constexpr char kSelectUserVersion[] = "PRAGMA user_version";
constexpr char kCountTables[] = "SELECT count(*) FROM sqlite_master";
constexpr char kSelectObject[] = "SELECT type, sql FROM sqlite_master WHERE name = ?1";
constexpr char kSelectColumns[] = "SELECT name, hidden FROM pragma_table_xinfo(?1)";
constexpr char kCountCode[] =
    "SELECT count(*) FROM sqlite_master WHERE type IN ('view', 'trigger')";

// ---------------------------------------------------------------------------
// Small helpers.

Status Invalid(std::string msg) {
  return Status(Errc::kInvalidArgument, std::move(msg));
}

// A value from the file, fit for an error message: at most 64 bytes, printable.
std::string Shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > 64) out += "...";
  return out;
}

Status CheckStored(uint64_t v, const char* field) {
  if (v <= kMaxStored) return Status::Ok();
  return Invalid(std::string(field) + " " + std::to_string(v) +
                 " is out of range: the catalog stores values below 2^63");
}

Status CheckText(const std::string& s, const char* field, size_t min_len, size_t max_len) {
  if (s.size() < min_len) return Invalid(std::string(field) + " must not be empty");
  if (s.size() > max_len) {
    return Invalid(std::string(field) + " is " + std::to_string(s.size()) +
                   " bytes long; the limit is " + std::to_string(max_len));
  }
  return Status::Ok();
}

// An enum value a caller made up (a cast): never stored.
bool IsValid(StreamState s) { return ParseStreamState(StreamStateName(s)).ok(); }
bool IsValid(ResyncState s) { return ParseResyncState(ResyncStateName(s)).ok(); }
bool IsValid(SegmentKind k) {
  return k == SegmentKind::kWal || k == SegmentKind::kUndo;
}
bool IsValid(TagKind k) {
  return k == TagKind::kCrash || k == TagKind::kApp || k == TagKind::kUser;
}
bool IsValid(FullAction a) {
  return a == FullAction::kPrune || a == FullAction::kStop;
}
bool IsBlockSize(uint32_t b) {
  return b >= 512 && b <= 65536 && (b & (b - 1)) == 0;
}
std::optional<SegmentKind> SegmentKindFromName(std::string_view s) {
  if (s == "wal") return SegmentKind::kWal;
  if (s == "undo") return SegmentKind::kUndo;
  return std::nullopt;
}

// The Errc of an SQLite (extended) result code that is not about the OS.
// Constraint failures are the caller's fault or a duplicate; SQLITE_ERROR from
// one of our fixed, tested statements means the file's schema is not ours.
Errc ErrcFromSqlite(int rc) {
  switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return Errc::kAlreadyExists;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return Errc::kNotFound;
    default:
      break;
  }
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
      return Errc::kInvalidArgument;
    case SQLITE_ERROR:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT:
    case SQLITE_SCHEMA:
      return Errc::kCorruption;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return Errc::kPermissionDenied;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Errc::kBusy;
    case SQLITE_FULL:
      return Errc::kNoSpace;
    case SQLITE_CANTOPEN:
      return Errc::kNotFound;
    case SQLITE_INTERRUPT:
      return Errc::kAborted;
    case SQLITE_NOMEM:
    case SQLITE_MISUSE:
    case SQLITE_INTERNAL:
      return Errc::kInternal;
    default:
      return Errc::kIoError;  // SQLITE_IOERR_*, SQLITE_PROTOCOL, SQLITE_NOLFS, ...
  }
}

struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// A lease on a prepared statement: binds, steps; resets the statement (ending
// the read transaction it may hold) and clears its bindings when it ends.
class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  Stmt(Stmt&& o) noexcept : s_(std::exchange(o.s_, nullptr)), bind_rc_(o.bind_rc_) {}
  Stmt& operator=(Stmt&&) = delete;
  ~Stmt() {
    if (s_ != nullptr) {
      sqlite3_reset(s_);
      sqlite3_clear_bindings(s_);
    }
  }

  Stmt& Int(int i, int64_t v) { return Keep(sqlite3_bind_int64(s_, i, v)); }
  // REQUIRES: v <= kMaxStored (checked by the caller with CheckStored).
  Stmt& U63(int i, uint64_t v) { return Int(i, static_cast<int64_t>(v)); }
  Stmt& Text(int i, const std::string& v) {
    return Keep(sqlite3_bind_text64(s_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  Stmt& Null(int i) { return Keep(sqlite3_bind_null(s_, i)); }

  // SQLITE_ROW, SQLITE_DONE, or an error code (a failed bind's, if any).
  int Step() { return bind_rc_ != SQLITE_OK ? bind_rc_ : sqlite3_step(s_); }
  sqlite3_stmt* get() const { return s_; }

 private:
  Stmt& Keep(int rc) {
    if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
    return *this;
  }
  sqlite3_stmt* s_;
  int bind_rc_ = SQLITE_OK;
};

// Reads the columns of the current row, checking each one's type and range.
// The first bad column is remembered; status() names the table and column.
class RowReader {
 public:
  RowReader(sqlite3_stmt* s, const char* table, const std::string& path)
      : s_(s), table_(table), path_(path) {}

  bool IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  int64_t I64(int col) {
    if (sqlite3_column_type(s_, col) != SQLITE_INTEGER) {
      Bad(col, "is not an integer");
      return 0;
    }
    return sqlite3_column_int64(s_, col);
  }
  uint64_t U63(int col) {
    const int64_t v = I64(col);
    if (v >= 0) return static_cast<uint64_t>(v);
    Bad(col, "is negative (" + std::to_string(v) + ")");
    return 0;
  }
  uint32_t U32(int col) {
    const int64_t v = I64(col);
    if (v >= 0 && v <= int64_t{UINT32_MAX}) return static_cast<uint32_t>(v);
    Bad(col, "is out of range (" + std::to_string(v) + ")");
    return 0;
  }
  bool Bool(int col) {
    const int64_t v = I64(col);
    if (v != 0 && v != 1) Bad(col, "is not 0 or 1 (" + std::to_string(v) + ")");
    return v == 1;
  }
  std::string Text(int col) {
    if (sqlite3_column_type(s_, col) != SQLITE_TEXT) {
      Bad(col, "is not text");
      return {};
    }
    const unsigned char* p = sqlite3_column_text(s_, col);
    const int n = sqlite3_column_bytes(s_, col);
    if (p == nullptr) {
      Bad(col, "could not be read (out of memory)");
      return {};
    }
    return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
  }
  // Records a problem with column `col` (the first one wins).
  void Bad(int col, const std::string& why) {
    if (!ok_) return;
    ok_ = false;
    const char* name = sqlite3_column_name(s_, col);
    message_ = "catalog " + path_ + ": table " + table_ + ": column " +
               (name != nullptr ? name : "?") + " " + why;
  }
  Status status() const { return ok_ ? Status::Ok() : Status(Errc::kCorruption, message_); }

 private:
  sqlite3_stmt* s_;
  const char* table_;
  const std::string& path_;
  bool ok_ = true;
  std::string message_;
};

Result<StreamRow> ReadStreamRow(RowReader& r) {
  StreamRow s;
  s.id = r.U63(0);
  s.name = r.Text(1);
  s.group = r.Text(2);
  s.created_ns = r.I64(3);
  const std::string state = r.Text(4);
  s.error = r.Text(5);
  if (s.name.empty()) r.Bad(1, "is empty");
  if (Result<StreamState> st = ParseStreamState(state); st.ok())
    s.state = *st;
  else
    r.Bad(4, "has unknown stream state '" + Shown(state) + "'");
  MT_RETURN_IF_ERROR(r.status());
  return s;
}

Result<DiskRow> ReadDiskRow(RowReader& r) {
  DiskRow d;
  d.stream = r.U63(0);
  d.disk = r.U32(1);
  d.target_id = r.Text(2);
  d.target_device = r.Text(3);
  d.source_disk_id = r.Text(4);
  d.size_bytes = r.U63(5);
  d.block_size = r.U32(6);
  const std::string resync = r.Text(7);
  d.resync_complete_seq = r.U63(8);
  d.target_blank = r.Bool(9);
  if (d.target_id.empty()) r.Bad(2, "is empty");
  if (!IsBlockSize(d.block_size))
    r.Bad(6, "is not a block size (" + std::to_string(d.block_size) + ")");
  if (Result<ResyncState> rs = ParseResyncState(resync); rs.ok())
    d.resync_state = *rs;
  else
    r.Bad(7, "has unknown resync state '" + Shown(resync) + "'");
  MT_RETURN_IF_ERROR(r.status());
  return d;
}

Result<SegmentRow> ReadSegmentRow(RowReader& r) {
  SegmentRow g;
  g.stream = r.U63(0);
  const std::string kind = r.Text(1);
  g.number = r.U63(2);
  g.file = r.Text(3);
  g.first_seq = r.U63(4);
  g.last_seq = r.U63(5);
  g.first_time_ns = r.I64(6);
  g.last_time_ns = r.I64(7);
  g.records = r.U63(8);
  g.bytes = r.U63(9);
  g.logical_bytes = r.U63(10);
  g.sealed = r.Bool(11);
  if (auto k = SegmentKindFromName(kind)) {
    g.kind = *k;
  } else {
    r.Bad(1, "has unknown segment kind '" + Shown(kind) + "'");
  }
  MT_RETURN_IF_ERROR(r.status());
  return g;
}

Result<PointRow> ReadPointRow(RowReader& r) {
  PointRow p;
  p.stream = r.U63(0);
  p.seq = r.U63(1);
  p.time_ns = r.I64(2);
  const std::string kind = r.Text(3);
  p.name = r.Text(4);
  p.group_tag_id = r.Text(5);
  if (Result<TagKind> k = ParseTagKind(kind); k.ok()) {
    p.kind = k.value();
  } else {
    r.Bad(3, "has unknown tag kind '" + Shown(kind) + "'");
  }
  if (p.name.empty() || p.name.size() > kMaxPointName) r.Bad(4, "is not 1..255 bytes long");
  MT_RETURN_IF_ERROR(r.status());
  return p;
}

Result<CheckpointRow> ReadCheckpointRow(RowReader& r) {
  CheckpointRow c;
  c.stream = r.U63(0);
  c.disk = r.U32(1);
  c.applied_seq = r.U63(2);
  c.applied_time_ns = r.I64(3);
  c.updated_ns = r.I64(4);
  MT_RETURN_IF_ERROR(r.status());
  return c;
}

}  // namespace

// ---------------------------------------------------------------------------

struct Catalog::Impl {
  ~Impl() {
    stmts.clear();  // statements before the connection they belong to
    sqlite3_close_v2(db);
  }

  Mutex mu;
  sqlite3* db = nullptr;  // owned
  std::string path;
  bool read_only = false;
  std::unordered_map<const char*, StmtPtr> stmts MT_GUARDED_BY(mu);  // keyed by SQL text

  // The one SQLite result code -> Status conversion: "catalog <path>: <what>:
  // <sqlite message>", plus the errno text when the OS was involved.
  Status Error(int rc, std::string_view what) const {
    const char* msg = sqlite3_errstr(rc);
    if (db != nullptr && sqlite3_extended_errcode(db) == rc) msg = sqlite3_errmsg(db);
    std::string text = "catalog " + path + ": " + std::string(what) + ": " + msg;
    const int primary = rc & 0xff;
    const int sys = db != nullptr ? sqlite3_system_errno(db) : 0;
    if (sys != 0 &&
        (primary == SQLITE_CANTOPEN || primary == SQLITE_IOERR || primary == SQLITE_FULL)) {
      return Status::FromErrno(sys, text);
    }
    return Status(ErrcFromSqlite(rc), std::move(text));
  }

  Status NoStream(uint64_t id) const {
    return Status(Errc::kNotFound,
                  "stream " + std::to_string(id) + " does not exist (catalog " + path + ")");
  }

  // A cached statement for a constant SQL text. REQUIRES: the previous lease of
  // the same text has ended (its reset would otherwise cut this one short).
  Result<Stmt> Prepare(const char* sql) MT_REQUIRES(mu) {
    auto it = stmts.find(sql);
    if (it == stmts.end()) {
      sqlite3_stmt* raw = nullptr;
      const int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
      StmtPtr owned(raw);
      if (rc != SQLITE_OK) return Error(rc, "prepare");
      if (raw == nullptr) return Status(Errc::kInternal, "catalog: empty statement");
      it = stmts.emplace(sql, std::move(owned)).first;
    }
    return Stmt(it->second.get());
  }

  // Runs a statement without parameters to completion (rows are ignored).
  Status Exec(const char* sql, std::string_view what) MT_REQUIRES(mu) {
    MT_ASSIGN_OR_RETURN(Stmt st, Prepare(sql));
    for (;;) {
      const int rc = st.Step();
      if (rc == SQLITE_DONE) return Status::Ok();
      if (rc != SQLITE_ROW) return Error(rc, what);
    }
  }

  // First column of the single row of a parameterless query.
  Result<int64_t> QueryInt(const char* sql, std::string_view what) MT_REQUIRES(mu) {
    MT_ASSIGN_OR_RETURN(Stmt st, Prepare(sql));
    const int rc = st.Step();
    if (rc != SQLITE_ROW) return Error(rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, what);
    return sqlite3_column_int64(st.get(), 0);
  }

  Result<std::string> QueryText(const char* sql, std::string_view what) MT_REQUIRES(mu) {
    MT_ASSIGN_OR_RETURN(Stmt st, Prepare(sql));
    const int rc = st.Step();
    if (rc != SQLITE_ROW) return Error(rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, what);
    const unsigned char* p = sqlite3_column_text(st.get(), 0);
    return std::string(p != nullptr ? reinterpret_cast<const char*>(p) : "");
  }

  // Steps a write statement that returns no rows.
  Status Run(Stmt& st, std::string_view what) {
    const int rc = st.Step();
    return rc == SQLITE_DONE ? Status::Ok() : Error(rc, what);
  }

  // Steps a query, reading every row with `read` into `out`.
  template <typename RowT>
  Result<std::vector<RowT>> All(Stmt& st, const char* table, Result<RowT> (*read)(RowReader&)) {
    std::vector<RowT> out;
    for (;;) {
      const int rc = st.Step();
      if (rc == SQLITE_DONE) return out;
      if (rc != SQLITE_ROW) return Error(rc, std::string("read table ") + table);
      RowReader r(st.get(), table, path);
      MT_ASSIGN_OR_RETURN(RowT row, read(r));
      out.push_back(std::move(row));
    }
  }

  // Steps a query expected to return at most one row.
  template <typename RowT>
  Result<std::optional<RowT>> One(Stmt& st, const char* table, Result<RowT> (*read)(RowReader&)) {
    const int rc = st.Step();
    if (rc == SQLITE_DONE) return std::optional<RowT>();
    if (rc != SQLITE_ROW) return Error(rc, std::string("read table ") + table);
    RowReader r(st.get(), table, path);
    MT_ASSIGN_OR_RETURN(RowT row, read(r));
    return std::optional<RowT>(std::move(row));
  }

  // `body` inside BEGIN IMMEDIATE .. COMMIT (a write transaction: no other
  // writer in between), or BEGIN DEFERRED .. COMMIT for reads that must see
  // one committed state; rolled back if it fails.
  // REQUIRES: mu held, no transaction open.
  Status InTransaction(std::string_view what, const std::function<Status()>& body,
                       bool write = true) MT_REQUIRES(mu) {
    MT_RETURN_IF_ERROR(Exec(write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED",
                            std::string("begin ") + std::string(what)));
    Status s = body();
    if (s.ok()) s = Exec("COMMIT", std::string("commit ") + std::string(what));
    if (!s.ok()) (void)Exec("ROLLBACK", "roll back");
    return s;
  }

  // The statements of AddPoint and SetCheckpoint. REQUIRES: mu held.
  Status InsertPoint(const PointRow& row) MT_REQUIRES(mu) {
    if (!IsValid(row.kind)) return Invalid("unknown tag kind");
    MT_RETURN_IF_ERROR(CheckStored(row.stream, "stream id"));
    MT_RETURN_IF_ERROR(CheckStored(row.seq, "point seq"));
    MT_RETURN_IF_ERROR(CheckText(row.name, "recovery point name", 1, kMaxPointName));
    MT_RETURN_IF_ERROR(CheckText(row.group_tag_id, "group tag id", 0, kMaxValueBytes / 4));
    MT_ASSIGN_OR_RETURN(Stmt st, Prepare(kInsertPoint));
    st.U63(1, row.stream)
        .U63(2, row.seq)
        .Int(3, row.time_ns)
        .Text(4, TagKindName(row.kind))
        .Text(5, row.name)
        .Text(6, row.group_tag_id);
    const int rc = st.Step();
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
      return Status(Errc::kAlreadyExists, "a recovery point named '" + row.name +
                                              "' already exists in stream " +
                                              std::to_string(row.stream));
    }
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) return NoStream(row.stream);
    if (rc != SQLITE_DONE) {
      return Error(rc,
                   "add recovery point '" + row.name + "' to stream " + std::to_string(row.stream));
    }
    return Status::Ok();
  }
  Result<std::optional<CheckpointRow>> SelectCheckpoint(uint64_t stream, uint32_t disk)
      MT_REQUIRES(mu) {
    if (stream > kMaxStored) return std::optional<CheckpointRow>();
    MT_ASSIGN_OR_RETURN(Stmt st, Prepare(kSelectCheckpoint));
    st.U63(1, stream).Int(2, disk);
    return One(st, "checkpoints", &ReadCheckpointRow);
  }
  Status UpsertCheckpoint(const CheckpointRow& row) MT_REQUIRES(mu) {
    MT_RETURN_IF_ERROR(CheckStored(row.stream, "stream id"));
    MT_RETURN_IF_ERROR(CheckStored(row.applied_seq, "applied_seq"));
    MT_ASSIGN_OR_RETURN(Stmt st, Prepare(kUpsertCheckpoint));
    st.U63(1, row.stream)
        .Int(2, row.disk)
        .U63(3, row.applied_seq)
        .Int(4, row.applied_time_ns)
        .Int(5, row.updated_ns);
    const int rc = st.Step();
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) return NoStream(row.stream);
    if (rc != SQLITE_DONE) {
      return Error(rc, "set checkpoint of stream " + std::to_string(row.stream) + " disk " +
                           std::to_string(row.disk));
    }
    return Status::Ok();
  }

  // The statements of the segment and point changes; the public methods and
  // Transaction's run them. REQUIRES: mu held.
  Status UpsertSegment(const SegmentRow& row) MT_REQUIRES(mu) {
    if (!IsValid(row.kind)) return Invalid("unknown segment kind");
    MT_RETURN_IF_ERROR(CheckStored(row.stream, "stream id"));
    MT_RETURN_IF_ERROR(CheckStored(row.number, "segment number"));
    MT_RETURN_IF_ERROR(CheckText(row.file, "segment file", 0, kMaxValueBytes / 4));
    MT_RETURN_IF_ERROR(CheckStored(row.first_seq, "first_seq"));
    MT_RETURN_IF_ERROR(CheckStored(row.last_seq, "last_seq"));
    MT_RETURN_IF_ERROR(CheckStored(row.records, "record count"));
    MT_RETURN_IF_ERROR(CheckStored(row.bytes, "segment bytes"));
    MT_RETURN_IF_ERROR(CheckStored(row.logical_bytes, "segment logical bytes"));
    MT_ASSIGN_OR_RETURN(Stmt st, Prepare(kUpsertSegment));
    st.U63(1, row.stream)
        .Text(2, SegmentKindName(row.kind))
        .U63(3, row.number)
        .Text(4, row.file)
        .U63(5, row.first_seq)
        .U63(6, row.last_seq)
        .Int(7, row.first_time_ns)
        .Int(8, row.last_time_ns)
        .U63(9, row.records)
        .U63(10, row.bytes)
        .U63(11, row.logical_bytes)
        .Int(12, row.sealed ? 1 : 0);
    const int rc = st.Step();
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) return NoStream(row.stream);
    if (rc != SQLITE_DONE) {
      return Error(rc, std::string("record ") + SegmentKindName(row.kind) + " segment " +
                                  std::to_string(row.number) + " of stream " +
                                  std::to_string(row.stream));
    }
    return Status::Ok();
  }
  Status RemoveSegment(uint64_t stream, SegmentKind kind, uint64_t number) MT_REQUIRES(mu) {
    if (!IsValid(kind)) return Invalid("unknown segment kind");
    if (stream > kMaxStored || number > kMaxStored) return Status::Ok();  // cannot exist
    MT_ASSIGN_OR_RETURN(Stmt st, Prepare(kDeleteSegment));
    st.U63(1, stream).Text(2, SegmentKindName(kind)).U63(3, number);
    return Run(st, std::string("remove ") + SegmentKindName(kind) + " segment " +
                              std::to_string(number) + " of stream " + std::to_string(stream));
  }
  Status RemovePointsBefore(uint64_t stream, uint64_t seq) MT_REQUIRES(mu) {
    if (stream > kMaxStored) return Status::Ok();
    if (seq == 0) return Status::Ok();  // no seq is below 0
    MT_ASSIGN_OR_RETURN(Stmt st, Prepare(kDeletePointsBefore));
    st.U63(1, stream).U63(2, std::min(seq - 1, kMaxStored));
    return Run(st, "remove old recovery points of stream " + std::to_string(stream));
  }
  Status RemovePointsAfter(uint64_t stream, uint64_t seq) MT_REQUIRES(mu) {
    if (stream > kMaxStored || seq >= kMaxStored) return Status::Ok();
    MT_ASSIGN_OR_RETURN(Stmt st, Prepare(kDeletePointsAfter));
    st.U63(1, stream).U63(2, seq);
    return Run(st, "remove recovery points after seq " + std::to_string(seq) + " of stream " +
                              std::to_string(stream));
  }

  // Open and its steps run before the catalog is shared; they hold mu
  // all the same (the statements they prepare are cached).
  Status Open(const std::string& p, bool ro) MT_REQUIRES(mu);
  Status Configure() MT_REQUIRES(mu);
  Status EnableWal() MT_REQUIRES(mu);
  Status Migrate() MT_REQUIRES(mu);
  Status VerifySchema() MT_REQUIRES(mu);
  Status RefuseNewer(int64_t version) const {
    return Status(Errc::kUnavailable,
                  "catalog " + path + " has schema version " + std::to_string(version) +
                      ", newer than this mt-agent understands (" +
                      std::to_string(kCatalogSchemaVersion) + "): upgrade mt-agent");
  }
  Status NotOurs(const std::string& why) const {
    return Status(Errc::kCorruption, "catalog " + path + " is not an mt-agent catalog: " + why);
  }

  Result<std::optional<DiskRow>> FindDiskByTarget(const std::string& target_id) MT_REQUIRES(mu) {
    MT_ASSIGN_OR_RETURN(Stmt st, Prepare(kSelectDiskByTarget));
    st.Text(1, target_id);
    return One(st, "disks", &ReadDiskRow);
  }
  // kAlreadyExists naming the disk that holds `row`'s stream+disk or target.
  Status DiskTaken(const DiskRow& row) MT_REQUIRES(mu) {
    MT_ASSIGN_OR_RETURN(std::optional<DiskRow> owner, FindDiskByTarget(row.target_id));
    if (owner && (owner->stream != row.stream || owner->disk != row.disk)) {
      return Status(Errc::kAlreadyExists,
                    "target " + row.target_id + " already belongs to stream " +
                        std::to_string(owner->stream) + " disk " + std::to_string(owner->disk));
    }
    return Status(Errc::kAlreadyExists, "stream " + std::to_string(row.stream) +
                                            " already has a disk " + std::to_string(row.disk));
  }
  Status CheckDisk(const DiskRow& row) const {
    MT_RETURN_IF_ERROR(CheckStored(row.stream, "stream id"));
    MT_RETURN_IF_ERROR(CheckText(row.target_id, "target id", 1, kMaxValueBytes / 4));
    MT_RETURN_IF_ERROR(CheckText(row.target_device, "target device", 0, kMaxValueBytes / 4));
    MT_RETURN_IF_ERROR(CheckText(row.source_disk_id, "source disk id", 0, kMaxValueBytes / 4));
    MT_RETURN_IF_ERROR(CheckStored(row.size_bytes, "disk size"));
    MT_RETURN_IF_ERROR(CheckStored(row.resync_complete_seq, "resync_complete_seq"));
    if (!IsBlockSize(row.block_size)) {
      return Invalid("block size " + std::to_string(row.block_size) +
                     " is not a power of two between 512 and 65536");
    }
    if (!IsValid(row.resync_state))
      return Invalid("unknown resync state (pending, running or complete)");
    return Status::Ok();
  }
  void BindDisk(Stmt& st, const DiskRow& row) {
    st.U63(1, row.stream)
        .Int(2, row.disk)
        .Text(3, row.target_id)
        .Text(4, row.target_device)
        .Text(5, row.source_disk_id)
        .U63(6, row.size_bytes)
        .Int(7, row.block_size)
        .Text(8, ResyncStateName(row.resync_state))
        .U63(9, row.resync_complete_seq)
        .Int(10, row.target_blank ? 1 : 0);
  }
};

Status Catalog::Impl::Open(const std::string& p, bool ro) {
  path = p;
  read_only = ro;
  if (p.empty()) return Invalid("catalog path is empty");
  // SQLite opens its files with O_CLOEXEC on Linux. FULLMUTEX on top of `mu`
  // costs little and keeps the connection safe should a call ever escape it.
  const int flags = SQLITE_OPEN_FULLMUTEX |
                    (ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  const int rc = sqlite3_open_v2(p.c_str(), &db, flags, nullptr);
  if (db == nullptr) return Status(Errc::kInternal, "catalog " + p + ": open: out of memory");
  sqlite3_extended_result_codes(db, 1);
  if (rc != SQLITE_OK) {
    if (ro && (rc & 0xff) == SQLITE_CANTOPEN && sqlite3_system_errno(db) == ENOENT) {
      return Status(Errc::kNotFound, "catalog " + p + " does not exist", ENOENT);
    }
    return Error(rc, "open");
  }
  MT_RETURN_IF_ERROR(Configure());

  // Version first: nothing is written to a file from a newer mt-agent, and a
  // file that is not a database at all fails here (kCorruption).
  MT_ASSIGN_OR_RETURN(const int64_t version, QueryInt(kSelectUserVersion, "read schema version"));
  if (version > kCatalogSchemaVersion) return RefuseNewer(version);
  if (version < 0) return NotOurs("negative schema version " + std::to_string(version));
  if (ro) {
    if (version == 0) {
      MT_ASSIGN_OR_RETURN(const int64_t objects, QueryInt(kCountTables, "read schema"));
      if (objects == 0) {
        return Status(Errc::kNotFound, "catalog " + path + " is empty (never initialized)");
      }
      return NotOurs("it has tables but no schema version");
    }
    if (version < kCatalogSchemaVersion) {
      return Status(Errc::kUnavailable,
                    "catalog " + path + " has schema version " + std::to_string(version) +
                        ", older than this mt-agent's (" + std::to_string(kCatalogSchemaVersion) +
                        "): open it read-write once (start mt-agentd) to migrate it");
    }
  } else {
    MT_RETURN_IF_ERROR(EnableWal());
    // Only a file that needs it takes the write lock at open.
    if (version < kCatalogSchemaVersion) MT_RETURN_IF_ERROR(Migrate());
  }
  return VerifySchema();
}

Status Catalog::Impl::EnableWal() {
  MT_ASSIGN_OR_RETURN(std::string mode, QueryText("PRAGMA journal_mode", "read journal mode"));
  if (mode == "wal") return Status::Ok();  // every open but a new file's first ones
  // The switch needs an exclusive lock, and SQLite reports SQLITE_BUSY for it
  // without calling the busy handler while another connection holds a lock
  // (several processes opening a new catalog at once). Retry it for as long as
  // the busy timeout; SQLite's own busy handler polls the same way.
  constexpr int kPollMs = 5;
  for (int waited_ms = 0;; waited_ms += kPollMs) {
    Result<std::string> set = QueryText("PRAGMA journal_mode = WAL", "enable WAL journal mode");
    if (set.ok() && set.value() == "wal") return Status::Ok();
    if (waited_ms >= kBusyTimeoutMs) {
      if (!set.ok()) return set.status();
      return Status(Errc::kUnavailable, "catalog " + path +
                                            ": the file system does not support WAL journal "
                                            "mode (journal mode stays '" +
                                            set.value() + "')");
    }
    if (!set.ok() && set.status().code() != Errc::kBusy) return set.status();
    sqlite3_sleep(kPollMs);
  }
}

Status Catalog::Impl::Configure() {
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  // Hardening for a file that may not be ours ("defense against the dark arts"):
  // no schema corruption through the SQL interface, no functions with side
  // effects from schema objects, bounded value sizes, no ATTACH.
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
#ifdef SQLITE_DBCONFIG_TRUSTED_SCHEMA
  sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
#endif
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, kMaxValueBytes);
  sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, kMaxValueBytes);
  sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
  MT_RETURN_IF_ERROR(Exec("PRAGMA foreign_keys = ON", "enable foreign keys"));
  MT_RETURN_IF_ERROR(Exec("PRAGMA synchronous = FULL", "set synchronous"));
  MT_RETURN_IF_ERROR(Exec("PRAGMA cell_size_check = ON", "enable cell size checks"));
  MT_RETURN_IF_ERROR(Exec("PRAGMA mmap_size = 0", "disable mmap"));
  if (read_only) MT_RETURN_IF_ERROR(Exec("PRAGMA query_only = ON", "set query_only"));
  return Status::Ok();
}

Status Catalog::Impl::Migrate() {
  MT_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE", "begin schema transaction"));
  bool done = false;
  // Roll back on every early return.
  struct Rollback {
    Impl* impl;
    bool* done;
    ~Rollback() {
      if (!*done) sqlite3_exec(impl->db, "ROLLBACK", nullptr, nullptr, nullptr);
    }
  } rollback{this, &done};

  // Read again under the write lock: another process may have migrated.
  MT_ASSIGN_OR_RETURN(const int64_t version, QueryInt(kSelectUserVersion, "read schema version"));
  if (version > kCatalogSchemaVersion) return RefuseNewer(version);
  if (version == kCatalogSchemaVersion) {
    done = true;
    return Exec("COMMIT", "commit");
  }
  if (version == 0) {
    MT_ASSIGN_OR_RETURN(const int64_t objects, QueryInt(kCountTables, "read schema"));
    if (objects != 0) return NotOurs("it has tables but no schema version");
  }
  const ExecFn exec = [this](const char* sql) {
    // Migration SQL runs once: do not keep it in the statement cache.
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
    StmtPtr st(raw);
    if (rc == SQLITE_OK) {
      while ((rc = sqlite3_step(raw)) == SQLITE_ROW) {
      }
      if (rc == SQLITE_DONE) return Status::Ok();
    }
    return Error(rc, "migrate schema");
  };
  for (int64_t v = version; v < kCatalogSchemaVersion; ++v) {
    const Migration& m = kMigrations[v];
    Status s = m.apply(exec);
    if (!s.ok()) return s.WithContext(m.what);
  }
  MT_RETURN_IF_ERROR(exec(kSetUserVersion));
  MT_RETURN_IF_ERROR(Exec("COMMIT", "commit schema"));
  done = true;
  return Status::Ok();
}

Status Catalog::Impl::VerifySchema() {
  for (const TableSpec& t : kTables) {
    MT_ASSIGN_OR_RETURN(Stmt obj, Prepare(kSelectObject));
    obj.Text(1, t.name);
    int rc = obj.Step();
    if (rc == SQLITE_DONE) return NotOurs(std::string("table ") + t.name + " is missing");
    if (rc != SQLITE_ROW) return Error(rc, "read schema");
    RowReader r(obj.get(), "sqlite_master", path);
    const std::string type = r.Text(0);
    const std::string sql = r.IsNull(1) ? std::string() : r.Text(1);
    MT_RETURN_IF_ERROR(r.status());
    if (type != "table" || sql.rfind("CREATE TABLE", 0) != 0) {
      return NotOurs(std::string(t.name) + " is not a plain table");
    }

    std::set<std::string> expected;
    std::istringstream words(t.columns);
    for (std::string w; words >> w;) expected.insert(w);
    std::set<std::string> found;
    MT_ASSIGN_OR_RETURN(Stmt cols, Prepare(kSelectColumns));
    cols.Text(1, t.name);
    while ((rc = cols.Step()) == SQLITE_ROW) {
      RowReader c(cols.get(), "sqlite_master", path);
      std::string name = c.Text(0);
      const int64_t hidden = c.I64(1);
      MT_RETURN_IF_ERROR(c.status());
      if (hidden != 0) return NotOurs("table " + std::string(t.name) + " has generated columns");
      found.insert(std::move(name));
    }
    if (rc != SQLITE_DONE) return Error(rc, "read schema");
    if (found != expected) {
      return NotOurs("table " + std::string(t.name) + " does not have the columns of version " +
                     std::to_string(kCatalogSchemaVersion));
    }
  }
  for (const char* index : kIndexes) {
    MT_ASSIGN_OR_RETURN(Stmt obj, Prepare(kSelectObject));
    obj.Text(1, index);
    const int rc = obj.Step();
    if (rc == SQLITE_DONE) return NotOurs(std::string("index ") + index + " is missing");
    if (rc != SQLITE_ROW) return Error(rc, "read schema");
    const unsigned char* type = sqlite3_column_text(obj.get(), 0);
    if (type == nullptr || std::string_view(reinterpret_cast<const char*>(type)) != "index") {
      return NotOurs(std::string(index) + " is not an index");
    }
  }
  // Views and triggers would run code of the file's choosing when we read or write.
  MT_ASSIGN_OR_RETURN(const int64_t code, QueryInt(kCountCode, "read schema"));
  if (code != 0) return NotOurs("it has views or triggers");
  return Status::Ok();
}

// ---------------------------------------------------------------------------

Catalog::Catalog(sqlite3* db) : impl_(std::make_unique<Impl>()) {
  impl_->db = db;
}
Catalog::~Catalog() = default;

Result<std::unique_ptr<Catalog>> Catalog::Open(const std::string& path) {
  std::unique_ptr<Catalog> c(new Catalog(nullptr));
  MutexLock lock(c->impl_->mu);
  MT_RETURN_IF_ERROR(c->impl_->Open(path, /*ro=*/false));
  return Result<std::unique_ptr<Catalog>>(std::move(c));
}

Result<std::unique_ptr<Catalog>> Catalog::OpenReadOnly(const std::string& path) {
  std::unique_ptr<Catalog> c(new Catalog(nullptr));
  MutexLock lock(c->impl_->mu);
  MT_RETURN_IF_ERROR(c->impl_->Open(path, /*ro=*/true));
  return Result<std::unique_ptr<Catalog>>(std::move(c));
}

// Streams and disks.

Result<uint64_t> Catalog::AddStreamOnce(const StreamRow& row) {
  MutexLock lock(impl_->mu);
  MT_RETURN_IF_ERROR(CheckText(row.name, "stream name", 1, kMaxValueBytes / 4));
  MT_RETURN_IF_ERROR(CheckText(row.group, "group name", 0, kMaxValueBytes / 4));
  MT_RETURN_IF_ERROR(CheckText(row.error, "stream error", 0, kMaxValueBytes / 4));
  if (!IsValid(row.state))
    return Invalid("unknown stream state (protected, paused, failed or committed)");
  MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kInsertStream));
  st.Text(1, row.name)
      .Text(2, row.group)
      .Int(3, row.created_ns)
      .Text(4, StreamStateName(row.state))
      .Text(5, row.error);
  const int rc = st.Step();
  if (rc == SQLITE_CONSTRAINT_UNIQUE) {
    return Status(Errc::kAlreadyExists, "stream '" + row.name + "' already exists");
  }
  if (rc != SQLITE_DONE) return impl_->Error(rc, "add stream '" + row.name + "'");
  return static_cast<uint64_t>(sqlite3_last_insert_rowid(impl_->db));
}

Result<std::optional<StreamRow>> Catalog::FindStream(const std::string& name) {
  MutexLock lock(impl_->mu);
  MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kSelectStreamByName));
  st.Text(1, name);
  return impl_->One(st, "streams", &ReadStreamRow);
}

Result<std::optional<StreamRow>> Catalog::GetStream(uint64_t id) {
  MutexLock lock(impl_->mu);
  if (id > kMaxStored) return std::optional<StreamRow>();
  MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kSelectStreamById));
  st.U63(1, id);
  return impl_->One(st, "streams", &ReadStreamRow);
}

Result<std::vector<StreamRow>> Catalog::ListStreams() {
  MutexLock lock(impl_->mu);
  MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kSelectStreams));
  return impl_->All(st, "streams", &ReadStreamRow);
}

Status Catalog::SetStreamStateOnce(uint64_t id, StreamState state, const std::string& error) {
  MutexLock lock(impl_->mu);
  if (!IsValid(state))
    return Invalid("unknown stream state (protected, paused, failed or committed)");
  MT_RETURN_IF_ERROR(CheckText(error, "stream error", 0, kMaxValueBytes / 4));
  if (id > kMaxStored) return impl_->NoStream(id);
  MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kUpdateStreamState));
  st.U63(1, id).Text(2, StreamStateName(state)).Text(3, error);
  MT_RETURN_IF_ERROR(impl_->Run(st, "set state of stream " + std::to_string(id)));
  if (sqlite3_changes(impl_->db) == 0) return impl_->NoStream(id);
  return Status::Ok();
}

Status Catalog::RemoveStreamOnce(uint64_t id) {
  MutexLock lock(impl_->mu);
  if (id > kMaxStored) return impl_->NoStream(id);
  MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kDeleteStream));
  st.U63(1, id);
  MT_RETURN_IF_ERROR(impl_->Run(st, "remove stream " + std::to_string(id)));
  if (sqlite3_changes(impl_->db) == 0) return impl_->NoStream(id);
  return Status::Ok();
}

Status Catalog::AddDiskOnce(const DiskRow& row) {
  MutexLock lock(impl_->mu);
  MT_RETURN_IF_ERROR(impl_->CheckDisk(row));
  MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kInsertDisk));
  impl_->BindDisk(st, row);
  const int rc = st.Step();
  if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
    return impl_->DiskTaken(row);
  }
  if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) return impl_->NoStream(row.stream);
  if (rc != SQLITE_DONE) {
    return impl_->Error(
        rc, "add disk " + std::to_string(row.disk) + " to stream " + std::to_string(row.stream));
  }
  return Status::Ok();
}

Status Catalog::UpdateDiskOnce(const DiskRow& row) {
  MutexLock lock(impl_->mu);
  MT_RETURN_IF_ERROR(impl_->CheckDisk(row));
  MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kUpdateDisk));
  impl_->BindDisk(st, row);
  const int rc = st.Step();
  if (rc == SQLITE_CONSTRAINT_UNIQUE) return impl_->DiskTaken(row);
  const std::string what =
      "stream " + std::to_string(row.stream) + " disk " + std::to_string(row.disk);
  if (rc != SQLITE_DONE) return impl_->Error(rc, "update " + what);
  if (sqlite3_changes(impl_->db) == 0) {
    return Status(Errc::kNotFound, what + " does not exist (catalog " + impl_->path + ")");
  }
  return Status::Ok();
}

Result<std::vector<DiskRow>> Catalog::ListDisks(uint64_t stream) {
  MutexLock lock(impl_->mu);
  if (stream > kMaxStored) return std::vector<DiskRow>();
  MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kSelectDisks));
  st.U63(1, stream);
  return impl_->All(st, "disks", &ReadDiskRow);
}

Result<std::optional<DiskRow>> Catalog::FindDiskByTarget(const std::string& target_id) {
  MutexLock lock(impl_->mu);
  return impl_->FindDiskByTarget(target_id);
}

// Segments.

Status Catalog::UpsertSegmentOnce(const SegmentRow& row) {
  MutexLock lock(impl_->mu);
  return impl_->UpsertSegment(row);
}

Status Catalog::RemoveSegmentOnce(uint64_t stream, SegmentKind kind, uint64_t number) {
  MutexLock lock(impl_->mu);
  return impl_->RemoveSegment(stream, kind, number);
}

Result<std::vector<SegmentRow>> Catalog::ListSegments(uint64_t stream, SegmentKind kind) {
  MutexLock lock(impl_->mu);
  if (!IsValid(kind)) return Invalid("unknown segment kind");
  if (stream > kMaxStored) return std::vector<SegmentRow>();
  MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kSelectSegments));
  st.U63(1, stream).Text(2, SegmentKindName(kind));
  return impl_->All(st, "segments", &ReadSegmentRow);
}

// Recovery points.

Status Catalog::AddPointOnce(const PointRow& row) {
  MutexLock lock(impl_->mu);
  return impl_->InsertPoint(row);
}

Result<std::vector<PointRow>> Catalog::ListPoints(uint64_t stream, uint64_t after_seq,
                                                  uint64_t before_seq) {
  MutexLock lock(impl_->mu);
  // Every stored seq is < 2^63: clamp the bounds into the stored range.
  if (stream > kMaxStored || after_seq >= kMaxStored || after_seq >= before_seq) {
    return std::vector<PointRow>();
  }
  MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kSelectPointsBySeq));
  st.U63(1, stream).U63(2, after_seq).U63(3, std::min(before_seq, kMaxStored));
  return impl_->All(st, "points", &ReadPointRow);
}

Result<std::optional<PointRow>> Catalog::FindPoint(uint64_t stream, const std::string& name) {
  MutexLock lock(impl_->mu);
  if (stream > kMaxStored) return std::optional<PointRow>();
  MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kSelectPointByName));
  st.U63(1, stream).Text(2, name);
  return impl_->One(st, "points", &ReadPointRow);
}

Result<std::optional<PointRow>> Catalog::LatestPoint(uint64_t stream, std::optional<TagKind> kind,
                                                     uint64_t max_seq) {
  MutexLock lock(impl_->mu);
  if (kind && !IsValid(*kind)) return Invalid("unknown tag kind");
  if (stream > kMaxStored) return std::optional<PointRow>();
  max_seq = std::min(max_seq, kMaxStored);
  if (kind) {
    MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kSelectLatestPointOfKind));
    st.U63(1, stream).Text(2, TagKindName(*kind)).U63(3, max_seq);
    return impl_->One(st, "points", &ReadPointRow);
  }
  MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kSelectLatestPoint));
  st.U63(1, stream).U63(2, max_seq);
  return impl_->One(st, "points", &ReadPointRow);
}

Result<std::optional<PointRow>> Catalog::LatestPointAtTime(uint64_t stream, int64_t time_ns,
                                                           std::optional<TagKind> kind) {
  MutexLock lock(impl_->mu);
  if (kind && !IsValid(*kind)) return Invalid("unknown tag kind");
  if (stream > kMaxStored) return std::optional<PointRow>();
  MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kSelectLatestPointAtTime));
  st.U63(1, stream).Int(2, time_ns);
  if (kind) {
    st.Text(3, TagKindName(*kind));
  } else {
    st.Null(3);
  }
  return impl_->One(st, "points", &ReadPointRow);
}

Result<std::vector<PointRow>> Catalog::PointsWithGroupTag(const std::string& group_tag_id) {
  MutexLock lock(impl_->mu);
  if (group_tag_id.empty()) return std::vector<PointRow>();  // "no group tag" is not a tag
  MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kSelectPointsByGroupTag));
  st.Text(1, group_tag_id);
  return impl_->All(st, "points", &ReadPointRow);
}

Status Catalog::RemovePointsBeforeOnce(uint64_t stream, uint64_t seq) {
  MutexLock lock(impl_->mu);
  return impl_->RemovePointsBefore(stream, seq);
}

Status Catalog::RemovePointsAfterOnce(uint64_t stream, uint64_t seq) {
  MutexLock lock(impl_->mu);
  return impl_->RemovePointsAfter(stream, seq);
}

// Checkpoints.

Status Catalog::SetCheckpointOnce(const CheckpointRow& row) {
  MutexLock lock(impl_->mu);
  return impl_->UpsertCheckpoint(row);
}

Status Catalog::RecordBatchOnce(const BatchRecord& b) {
  MutexLock lock(impl_->mu);
  MT_RETURN_IF_ERROR(CheckStored(b.stream, "stream id"));
  return impl_->InTransaction("batch of stream " + std::to_string(b.stream),
                              [&]() MT_REQUIRES(impl_->mu) -> Status {
    for (const auto& p : b.points) {
      // kAlreadyExists: the same tag applied again after a restart (ingest
      // refuses a name taken at another seq). SQLite undoes only the failed
      // statement; the transaction goes on.
      Status s = impl_->InsertPoint(p);
      if (!s.ok() && s.code() != Errc::kAlreadyExists) return s;
    }
    for (const auto& [disk, seq] : b.resync_completed) {
      MT_RETURN_IF_ERROR(CheckStored(seq, "resync_complete_seq"));
      MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kCompleteResync));
      st.U63(1, b.stream).Int(2, disk).U63(3, seq);
      MT_RETURN_IF_ERROR(impl_->Run(st, "complete the resync of stream " +
                                            std::to_string(b.stream) + " disk " +
                                            std::to_string(disk)));
    }
    for (uint32_t disk : b.disks) {
      CheckpointRow row;
      row.stream = b.stream;
      row.disk = disk;
      row.applied_seq = b.applied_seq;
      row.applied_time_ns = b.applied_time_ns;
      row.updated_ns = b.updated_ns;
      MT_RETURN_IF_ERROR(impl_->UpsertCheckpoint(row));
    }
    return Status::Ok();
  });
}

Status Catalog::RequireResyncOnce(uint64_t stream, const std::vector<uint32_t>& disks) {
  MutexLock lock(impl_->mu);
  MT_RETURN_IF_ERROR(CheckStored(stream, "stream id"));
  return impl_->InTransaction("require a resync of stream " + std::to_string(stream),
                              [&]() MT_REQUIRES(impl_->mu) -> Status {
    for (uint32_t disk : disks) {
      MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kRequireResync));
      st.U63(1, stream).Int(2, disk);
      MT_RETURN_IF_ERROR(impl_->Run(st, "require a resync of stream " + std::to_string(stream) +
                                            " disk " + std::to_string(disk)));
      if (sqlite3_changes(impl_->db) == 0)
        return Status(Errc::kNotFound, "stream " + std::to_string(stream) + " has no disk " +
                                           std::to_string(disk));
    }
    return Status::Ok();
  });
}

Result<std::optional<CheckpointRow>> Catalog::GetCheckpoint(uint64_t stream, uint32_t disk) {
  MutexLock lock(impl_->mu);
  return impl_->SelectCheckpoint(stream, disk);
}

Result<std::optional<CheckpointRow>> Catalog::StreamCheckpoint(uint64_t stream) {
  MutexLock lock(impl_->mu);
  if (stream > kMaxStored) return std::optional<CheckpointRow>();
  // One read transaction: the rows are those of one committed state.
  std::optional<CheckpointRow> lowest;
  MT_RETURN_IF_ERROR(impl_->InTransaction("read the checkpoint of stream " + std::to_string(stream),
                                          [&]() MT_REQUIRES(impl_->mu) -> Status {
    MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kSelectDisks));
    st.U63(1, stream);
    MT_ASSIGN_OR_RETURN(auto disks, impl_->All(st, "disks", &ReadDiskRow));
    for (const auto& d : disks) {
      MT_ASSIGN_OR_RETURN(auto row, impl_->SelectCheckpoint(stream, d.disk));
      if (!row) {
        row = CheckpointRow{};
        row->stream = stream;
        row->disk = d.disk;
      }
      if (!lowest || row->applied_seq < lowest->applied_seq) lowest = row;
    }
    return Status::Ok();
  }, /*write=*/false));
  return lowest;
}

// Transactions.

Status Catalog::TransactOnce(std::string_view what, const std::function<Status(Transaction&)>& body) {
  MutexLock lock(impl_->mu);
  return impl_->InTransaction(what, [&]() MT_REQUIRES(impl_->mu) -> Status {
    Transaction t(impl_.get());
    return body(t);
  });
}


// ---------------------------------------------------------------------------
// Writes, each tried once more after the space reserve was given back when
// it failed for want of space (SetSpaceReserve). A failed write changed
// nothing (a statement or a transaction rolled back), so it can run again.

namespace {
const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}
}  // namespace

void Catalog::SetSpaceReserve(std::function<bool()> release) { release_reserve_ = std::move(release); }

template <typename F>
auto Catalog::WithReserve(F&& write) -> decltype(write()) {
  auto r = write();
  if (r.ok() || !release_reserve_) return r;
  if (StatusOf(r).code() != Errc::kNoSpace || !release_reserve_()) return r;
  return write();
}

Result<uint64_t> Catalog::AddStream(const StreamRow& row) {
  return WithReserve([&] { return AddStreamOnce(row); });
}

Status Catalog::SetStreamState(uint64_t id, StreamState state, const std::string& error) {
  return WithReserve([&] { return SetStreamStateOnce(id, state, error); });
}

Status Catalog::RemoveStream(uint64_t id) {
  return WithReserve([&] { return RemoveStreamOnce(id); });
}

Status Catalog::AddDisk(const DiskRow& row) {
  return WithReserve([&] { return AddDiskOnce(row); });
}

Status Catalog::UpdateDisk(const DiskRow& row) {
  return WithReserve([&] { return UpdateDiskOnce(row); });
}

Status Catalog::UpsertSegment(const SegmentRow& row) {
  return WithReserve([&] { return UpsertSegmentOnce(row); });
}

Status Catalog::RemoveSegment(uint64_t stream, SegmentKind kind, uint64_t number) {
  return WithReserve([&] { return RemoveSegmentOnce(stream, kind, number); });
}

Status Catalog::AddPoint(const PointRow& row) {
  return WithReserve([&] { return AddPointOnce(row); });
}

Status Catalog::RemovePointsBefore(uint64_t stream, uint64_t seq) {
  return WithReserve([&] { return RemovePointsBeforeOnce(stream, seq); });
}

Status Catalog::RemovePointsAfter(uint64_t stream, uint64_t seq) {
  return WithReserve([&] { return RemovePointsAfterOnce(stream, seq); });
}

Status Catalog::SetCheckpoint(const CheckpointRow& row) {
  return WithReserve([&] { return SetCheckpointOnce(row); });
}

Status Catalog::RecordBatch(const BatchRecord& b) {
  return WithReserve([&] { return RecordBatchOnce(b); });
}

Status Catalog::RequireResync(uint64_t stream, const std::vector<uint32_t>& disks) {
  return WithReserve([&] { return RequireResyncOnce(stream, disks); });
}

Status Catalog::Transact(std::string_view what, const std::function<Status(Transaction&)>& body) {
  return WithReserve([&] { return TransactOnce(what, body); });
}

Status Catalog::SetPolicy(const PolicyRow& row) {
  return WithReserve([&] { return SetPolicyOnce(row); });
}

Status Catalog::Transaction::UpsertSegment(const SegmentRow& row) {
  impl_->mu.AssertHeld();
  return impl_->UpsertSegment(row);
}

Status Catalog::Transaction::RemoveSegment(uint64_t stream, SegmentKind kind, uint64_t number) {
  impl_->mu.AssertHeld();
  return impl_->RemoveSegment(stream, kind, number);
}

Status Catalog::Transaction::RemovePointsBefore(uint64_t stream, uint64_t seq) {
  impl_->mu.AssertHeld();
  return impl_->RemovePointsBefore(stream, seq);
}

Status Catalog::Transaction::RemovePointsAfter(uint64_t stream, uint64_t seq) {
  impl_->mu.AssertHeld();
  return impl_->RemovePointsAfter(stream, seq);
}

Status Catalog::Transaction::SetCheckpoint(const CheckpointRow& row) {
  impl_->mu.AssertHeld();
  return impl_->UpsertCheckpoint(row);
}

// Policy.

Status Catalog::SetPolicyOnce(const PolicyRow& row) {
  MutexLock lock(impl_->mu);
  MT_RETURN_IF_ERROR(CheckStored(row.stream, "stream id"));
  if (row.window_ns <= 0) return Invalid("retention window must be positive");
  if (row.rpo_threshold_ns <= 0) return Invalid("RPO threshold must be positive");
  if (row.app_frequency_ns < 0)
    return Invalid("app-consistent point frequency must not be negative");
  if (!IsValid(row.full_action)) return Invalid("unknown retention-full action");
  MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kUpsertPolicy));
  st.U63(1, row.stream)
      .Int(2, row.window_ns)
      .Int(3, row.rpo_threshold_ns)
      .Int(4, row.app_frequency_ns)
      .Text(5, FullActionName(row.full_action));
  const int rc = st.Step();
  if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) return impl_->NoStream(row.stream);
  if (rc != SQLITE_DONE) {
    return impl_->Error(rc, "set policy of stream " + std::to_string(row.stream));
  }
  return Status::Ok();
}

Result<PolicyRow> Catalog::GetPolicy(uint64_t stream) {
  MutexLock lock(impl_->mu);
  if (stream > kMaxStored) return impl_->NoStream(stream);
  MT_ASSIGN_OR_RETURN(Stmt st, impl_->Prepare(kSelectPolicy));
  st.U63(1, stream);
  const int rc = st.Step();
  if (rc == SQLITE_DONE) return impl_->NoStream(stream);
  if (rc != SQLITE_ROW) return impl_->Error(rc, "read table policies");
  PolicyRow p;
  p.stream = stream;
  RowReader r(st.get(), "policies", impl_->path);
  if (r.IsNull(1)) return p;  // no row: the defaults
  p.window_ns = r.I64(2);
  p.rpo_threshold_ns = r.I64(3);
  p.app_frequency_ns = r.I64(4);
  const std::string action = r.Text(5);
  if (Result<FullAction> a = ParseFullAction(action); a.ok()) {
    p.full_action = a.value();
  } else {
    r.Bad(5, "has unknown retention-full action '" + Shown(action) + "'");
  }
  if (p.window_ns <= 0) r.Bad(2, "is not positive");
  if (p.rpo_threshold_ns <= 0) r.Bad(3, "is not positive");
  if (p.app_frequency_ns < 0) r.Bad(4, "is negative");
  MT_RETURN_IF_ERROR(r.status());
  return p;
}

// ---------------------------------------------------------------------------

namespace internal {

std::vector<CatalogQuery> CatalogIndexedQueries() {
  return {
      {"FindStream (by name)", kSelectStreamByName},
      {"GetStream (by id)", kSelectStreamById},
      {"ListDisks", kSelectDisks},
      {"FindDiskByTarget", kSelectDiskByTarget},
      {"ListSegments", kSelectSegments},
      {"RemoveSegment", kDeleteSegment},
      {"ListPoints (by seq range)", kSelectPointsBySeq},
      {"FindPoint (by name)", kSelectPointByName},
      {"LatestPoint (by seq)", kSelectLatestPoint},
      {"LatestPoint (by kind and seq)", kSelectLatestPointOfKind},
      {"LatestPointAtTime (by time)", kSelectLatestPointAtTime},
      {"PointsWithGroupTag", kSelectPointsByGroupTag},
      {"RemovePointsBefore", kDeletePointsBefore},
      {"RemovePointsAfter", kDeletePointsAfter},
      {"GetCheckpoint", kSelectCheckpoint},
      {"GetPolicy", kSelectPolicy},
  };
}

}  // namespace internal
}  // namespace mt::retention
