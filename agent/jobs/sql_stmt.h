// Small SQLite helpers shared by the daemon's jobs.db (jobs/job_store.cc) and
// mt-cs's store (cs/cs_store.cc): a prepared statement that finalizes itself
// and one-shot statements. Header only; the includer links SQLite.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "mt/shim/status.h"

namespace mt::sql {

// One prepared statement, finalized when it goes.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql) { rc_ = sqlite3_prepare_v2(db, sql.c_str(), -1, &st_, nullptr); }
  ~Stmt() { sqlite3_finalize(st_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return st_; }
  Stmt& Text(int i, const std::string& v) {
    sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Blob(int i, const std::string& v) {
    sqlite3_bind_blob(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Int(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  std::string ColumnText(int i) {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(st_, i));
    return p == nullptr ? std::string() : std::string(p, sqlite3_column_bytes(st_, i));
  }
  int64_t ColumnInt(int i) { return sqlite3_column_int64(st_, i); }

 private:
  sqlite3_stmt* st_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

// Runs `sql` (one or more statements); kIoError "<what>: <SQLite's reason>".
inline Status Exec(sqlite3* db, const std::string& what, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) == SQLITE_OK) return Status::Ok();
  Status s(Errc::kIoError, what + ": " + (err != nullptr ? err : sqlite3_errmsg(db)));
  sqlite3_free(err);
  return s;
}

}  // namespace mt::sql
