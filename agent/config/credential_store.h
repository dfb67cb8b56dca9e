// CredentialStore: the per-stream secrets a sender proves it holds (HMAC
// challenge, agent/stream/auth.h). One file per stream:
//
//     <dir>/<stream name>.key     mode 0600, 64 lowercase hex digits and "\n"
//
// The credential is the 32 random bytes the hex encodes; those raw bytes are
// the HMAC key on both sides (mtsend --key FILE reads the same file, or
// --key-hex takes the 64 digits). The secret never crosses the wire.
//
// Stream names are 1..255 printable ASCII bytes (the protocol's rule); a name
// that cannot be a file name here ('/', a leading '.') is kInvalidArgument.
// Thread safety: methods may be called from several threads; Creates of one
// process are serialised (check, then shim::WriteFileAtomically), so a
// credential is never overwritten by another thread's Create.
#pragma once

#include <string>

#include "mt/shim/file_system.h"
#include "mt/shim/status.h"

namespace mt::daemon {

inline constexpr size_t kCredentialBytes = 32;

class CredentialStore {
 public:
  // REQUIRES: fs outlives the store. `dir` is created on the first Create.
  CredentialStore(shim::FileSystem& fs, std::string dir) : fs_(fs), dir_(std::move(dir)) {}

  // Makes a new credential for the stream from the CSPRNG and stores it
  // durably. Returns the raw key (kCredentialBytes bytes). kAlreadyExists if
  // the stream has one (it is never overwritten), kUnavailable without
  // randomness.
  Result<std::string> Create(const std::string& stream);
  // The stream's raw key. kNotFound if it has none; kCorruption naming the
  // file if it does not hold 64 hex digits.
  Result<std::string> Get(const std::string& stream) const;
  // Deletes the stream's credential (unprotect/commit). Ok if there is none.
  Status Remove(const std::string& stream);

  std::string PathOf(const std::string& stream) const;
  const std::string& dir() const { return dir_; }

 private:
  shim::FileSystem& fs_;
  std::string dir_;
};

// Hex helpers shared with mtsend: lowercase hex of bytes; the bytes of a hex
// string (either case, surrounding whitespace ignored) or kInvalidArgument.
std::string ToHex(const std::string& bytes);
Result<std::string> FromHex(const std::string& hex);

}  // namespace mt::daemon
