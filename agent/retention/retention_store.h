// RetentionStore: everything the agent keeps on the retention volume.
//
//   <root>/catalog.db                       the index (catalog.h)
//   <root>/catalog.reserve                  space kept for the catalog (below)
//   <root>/streams/<id>/wal/wal-*.seg       after-images not yet applied
//   <root>/streams/<id>/undo/undo-*.seg     before-images: the retention window
//   <root>/pins/*.pin                       readers' pins, honoured by Prune (reader_pin.h)
//
// Journals are the truth, the catalog their index: opening a stream's journals
// (which recovers them) rewrites the stream's segment rows from what is on
// disk, and drops points that are no longer reachable. That reconciliation is
// what makes Prune crash-safe and resumable: it deletes oldest-first, files
// before rows, and a restart finishes the bookkeeping.
// Thread safety: methods may be called from several threads.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "retention/catalog.h"
#include "retention/journal.h"
#include "retention/scrub.h"
#include "mt/shim/clock.h"
#include "mt/shim/file_system.h"
#include "mt/shim/thread_annotations.h"
#include "retention/policy.h"

namespace mt::retention {

struct StoreOptions {
  std::string root;          // retention directory (the mounted retention volume)
  std::string catalog_path;  // default: <root>/catalog.db
  SpacePolicy space;
  uint64_t segment_bytes = 256ull << 20;
  size_t max_batch_bytes = 16u << 20;
  bool direct = true;        // O_DIRECT journal writes
  bool preallocate = true;
  // The threads the streams' journal committers run on (journal.h), shared
  // by every stream; null: each journal has a thread of its own. The WAL and
  // the undo journals need different pools. REQUIRES: outlive the store.
  WorkerPool* wal_committers = nullptr;
  WorkerPool* undo_committers = nullptr;
};

struct StreamUsage {
  uint64_t stream = 0;
  std::string name;
  uint64_t wal_bytes = 0, undo_bytes = 0;
  // Bytes of disk data the undo journal covers; undo_logical_bytes / undo_bytes
  // is the ratio retention achieves (zero blocks, compression, minus headers).
  uint64_t undo_logical_bytes = 0;
  uint64_t wal_segments = 0, undo_segments = 0;
  uint64_t oldest_point_seq = 0;     // oldest reachable crash-consistent point
  int64_t window_start_ns = 0;       // source time of the oldest undo record (0: none yet)
  int64_t window_end_ns = 0;         // source time of the newest undo record
  uint64_t points = 0;               // tags (app/user/crash) inside the window
};

struct StoreUsage {
  shim::SpaceInfo volume;
  uint64_t low_space_threshold = 0;
  bool low_space = false;
  std::vector<StreamUsage> streams;
};

class RetentionStore {
 public:
  static Result<std::unique_ptr<RetentionStore>> Open(shim::FileSystem& fs, shim::Clock& clock,
                                                      const StoreOptions& o);
  ~RetentionStore();

  Catalog& catalog() { return *catalog_; }
  shim::FileSystem& fs() { return fs_; }
  const StoreOptions& options() const { return o_; }

  // The stream's journals, opened (and recovered) on first use. `report`, if
  // given, receives the recovery reports of a first open.
  struct Journals {
    Journal* wal = nullptr;
    Journal* undo = nullptr;
    RecoveryReport wal_report, undo_report;
  };
  Result<Journals> OpenStream(uint64_t stream);
  // Closes the stream's journals (syncing what is pending).
  Status CloseStream(uint64_t stream);
  // The segments of every open stream's journals (what the scrubber checks).
  std::vector<Scrubber::StreamJournals> OpenJournalSegments() const;

  // Rewrites the stream's catalog segment rows from its journals and drops
  // points older than the oldest reachable one.
  Status ReconcileCatalog(uint64_t stream);

  // Plans and carries out pruning for the stream (policy.h). Honours
  // `pinned_seqs` and every live reader pin of the stream (reader_pin.h).
  // Returns what it did.
  Result<PrunePlan> Prune(uint64_t stream, const std::vector<uint64_t>& pinned_seqs);

  // Deletes every file and row of the stream (commit / unprotect): its
  // journals, then its catalog rows, then any other file of its directory
  // (a rollback's marker: never gone while the stream is listed). Safe to run
  // again after a failure or a crash at any step.
  Status DropStream(uint64_t stream);

  Result<StoreUsage> Usage();

  std::string StreamDir(uint64_t stream) const;

  // The catalog's space reserve: <root>/catalog.reserve, kCatalogReserveBytes
  // preallocated. When a catalog write fails for want of space the file is
  // removed and the write runs again (Catalog::SetSpaceReserve), so the
  // catalog never fails first on a full volume; the bytes missing from the
  // reserve then count as space needed by the journals (RetentionJanitor),
  // which are refused before the catalog would need it again, and
  // KeepCatalogReserve takes the space back once the volume has it.
  static constexpr uint64_t kCatalogReserveBytes = 16ull << 20;
  // Creates the reserve if it is not held (best effort: false if the
  // volume has not the room now).
  bool KeepCatalogReserve();
  // Bytes of the reserve not held now (0 when held).
  uint64_t CatalogReserveShortfall() const;

 private:
  RetentionStore(shim::FileSystem& fs, shim::Clock& clock, StoreOptions o,
                 std::unique_ptr<Catalog> catalog);
  JournalOptions JournalOpts(uint64_t stream, SegmentKind kind) const;

  shim::FileSystem& fs_;
  shim::Clock& clock_;
  const StoreOptions o_;
  std::unique_ptr<Catalog> catalog_;
  mutable Mutex mu_;
  struct OpenJournals {
    std::unique_ptr<Journal> wal, undo;
  };
  std::map<uint64_t, OpenJournals> open_ MT_GUARDED_BY(mu_);
  // Not mu_: the catalog calls ReleaseCatalogReserve from inside writes made
  // with mu_ held.
  bool ReleaseCatalogReserve();
  std::string ReservePath() const;
  mutable Mutex reserve_mu_;
  bool reserve_held_ MT_GUARDED_BY(reserve_mu_) = false;
};

// Usage figures of the store at `root` from its catalog; read-only, so mtctl
// can report them while the daemon runs (RetentionStore::Usage uses it too).
Result<StoreUsage> ComputeUsage(Catalog& catalog, shim::FileSystem& fs, const std::string& root,
                                const SpacePolicy& space);

// Oldest reachable point of a stream whose undo journal has these segments
// (oldest first): the state just before its first undo record, i.e. that
// record's seq - 1 — or that seq itself when the record only continues the
// before-image of an item whose first pieces were pruned; 0 when there is
// no undo record.
uint64_t OldestReachablePoint(const std::vector<SegmentInfo>& undo);

}  // namespace mt::retention
