// Reader pins: what protects the undo a reader is reading from a prune.
//
// A reader of a stream's retention (export, vsnap fill, rollback, `mtctl
// points`) takes a pin on the oldest seq it needs before it reads the
// journals, and keeps it until it is done. RetentionStore::Prune keeps every
// undo segment a pinned seq needs (policy.h: a segment is needed by a point
// p < its last_seq), whoever prunes: the daemon's janitor or another process.
//
// On disk (docs/formats/reader-pins.md): one file per pin,
//   <root>/pins/s<stream>-q<seq>-p<pid>-<nonce>.pin
// empty, its name says everything, locked with flock(LOCK_EX) by its holder
// for as long as the pin lives. A pin whose holder died (crash, kill -9) is
// unlocked — the kernel drops a dead process's locks — so LivePins() can tell
// it from a live one without trusting pids, and removes it.
//
// Contracts:
//  - Take() returns once the pin is visible to every later prune: the file is
//    created and locked under a temporary name (".taking-…", which prune
//    ignores unless it is stale) and renamed into place.
//  - A prune that had already listed the pins when a pin was taken may still
//    delete what that pin asks for: a reader takes its pin before it reads the
//    journal segment list, and finds what it needs or a clear "not found".
//  - Thread safety: a ReaderPin is owned by one thread; LivePins may run on
//    any thread, also in the pin holder's own process (a second open of the
//    file is a separate lock, so the holder's pin counts as live there too).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mt/shim/file_lock.h"
#include "mt/shim/file_system.h"
#include "mt/shim/status.h"

namespace mt::retention {

class ReaderPin {
 public:
  // Pins `seq` of `stream` in the retention directory `root`.
  static Result<std::unique_ptr<ReaderPin>> Take(shim::FileSystem& fs, const std::string& root,
                                                 uint64_t stream, uint64_t seq);
  ~ReaderPin();  // removes the file, then releases the lock
  ReaderPin(const ReaderPin&) = delete;
  ReaderPin& operator=(const ReaderPin&) = delete;

  uint64_t stream() const { return stream_; }
  uint64_t seq() const { return seq_; }
  const std::string& path() const { return path_; }

 private:
  ReaderPin(shim::FileSystem& fs, std::string path, std::unique_ptr<shim::FileLock> lock,
            uint64_t stream, uint64_t seq)
      : fs_(fs), path_(std::move(path)), lock_(std::move(lock)), stream_(stream), seq_(seq) {}
  shim::FileSystem& fs_;
  std::string path_;
  std::unique_ptr<shim::FileLock> lock_;
  uint64_t stream_, seq_;
};

// The directory of the pins: <root>/pins.
std::string PinDir(const std::string& root);

// Seqs of `stream` pinned by live holders. Removes the files of dead holders
// (of any stream) on the way. No pin directory: none.
Result<std::vector<uint64_t>> LivePins(shim::FileSystem& fs, const std::string& root,
                                       uint64_t stream);

}  // namespace mt::retention
