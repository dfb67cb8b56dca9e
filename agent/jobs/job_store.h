// The daemon's job table: <retention>/jobs.db, a small SQLite file of its own
// (the catalog's schema is versioned and checked strictly; jobs change more
// often and are the daemon's alone). One row per job, keyed by the caller's
// id: kind, the spec as given (serialized JobSpec), state, progress, a
// message, times, and the result of a job that succeeded. Format:
// docs/formats/control.md, "jobs".
//
// Thread safety: one connection behind a mutex; every call is one statement.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mt/control.pb.h"
#include "mt/shim/status.h"

struct sqlite3;

namespace mt::jobs {

// Job states, as stored and shown.
inline constexpr char kQueued[] = "queued";
inline constexpr char kRunning[] = "running";
inline constexpr char kSucceeded[] = "succeeded";
inline constexpr char kFailed[] = "failed";
inline constexpr char kInterrupted[] = "interrupted";

// The kind a spec names ("rollback", "export"), "" when it names none.
std::string KindOf(const proto::JobSpec& spec);

// Caller ids: 1..128 bytes of printable ASCII without spaces.
Status CheckJobId(const std::string& id);

class JobStore {
 public:
  // Opens (creating when `create`) the job table at `path`.
  static Result<std::unique_ptr<JobStore>> Open(const std::string& path, bool create);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // A new job, queued. The same id again with the same spec returns the job
  // as stored (`*created` false); with another spec kAlreadyExists.
  Result<proto::Job> Create(const std::string& id, const proto::JobSpec& spec, int64_t now_ns,
                            bool* created);
  // Stores the job's state, progress, message, times and result.
  Status Save(const proto::Job& job);
  Result<std::optional<proto::Job>> Get(const std::string& id);
  // Newest first; at most `limit`.
  Result<std::vector<proto::Job>> List(size_t limit = 100);
  // Jobs left queued or running (by an agent that stopped), oldest first.
  Result<std::vector<proto::Job>> Unfinished();

 private:
  explicit JobStore(sqlite3* db);
  struct Impl;  // job_store.cc: the connection and its mutex
  std::unique_ptr<Impl> impl_;
};

}  // namespace mt::jobs
