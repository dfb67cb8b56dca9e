#include "config/credential_store.h"

#include <openssl/rand.h>

#include <cctype>
#include <memory>
#include <mutex>

namespace mt::daemon {

namespace {

Status CheckStreamFileName(const std::string& stream) {
  if (stream.empty() || stream.size() > 255) {
    return Status(Errc::kInvalidArgument, "stream name must be 1..255 bytes");
  }
  for (char c : stream) {
    if (c < 0x20 || c > 0x7e || c == '/') {
      return Status(Errc::kInvalidArgument,
                    "stream name '" + stream + "' is not printable ASCII without '/'");
    }
  }
  if (stream[0] == '.') {
    return Status(Errc::kInvalidArgument, "stream name '" + stream + "' starts with '.'");
  }
  return Status::Ok();
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string ToHex(const std::string& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

Result<std::string> FromHex(const std::string& hex) {
  size_t b = 0, e = hex.size();
  while (b < e && std::isspace(static_cast<unsigned char>(hex[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(hex[e - 1]))) --e;
  if ((e - b) % 2 != 0) return Status(Errc::kInvalidArgument, "odd number of hex digits");
  std::string out;
  out.reserve((e - b) / 2);
  for (size_t i = b; i < e; i += 2) {
    const int hi = HexValue(hex[i]), lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return Status(Errc::kInvalidArgument, "not a hex digit in the key");
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

std::string CredentialStore::PathOf(const std::string& stream) const {
  return shim::JoinPath(dir_, stream + ".key");
}

Result<std::string> CredentialStore::Create(const std::string& stream) {
  MT_RETURN_IF_ERROR(CheckStreamFileName(stream));
  // Concurrent creators. WriteFileAtomically renames over an existing file,
  // so "never overwrite" rests on the check below, and a check is only
  // correct if nobody can create the file between it and the rename: one
  // mutex for every store of the process makes check, write and rename one
  // step for all its threads (the daemon's control requests). The former
  // re-check between the temporary file and the rename did not close that
  // window (the check and the rename are two calls, and two creators shared
  // the one "<path>.tmp"), so it is not kept. Another process (mtctl pair
  // add while the daemon is down) cannot race here for the same stream: the
  // catalog, whose stream names are UNIQUE, admits one AddStream of a name
  // before its credential is created. Making the file system itself refuse
  // would need a no-replace rename in shim::FileSystem.
  static std::mutex create_mu;
  std::lock_guard<std::mutex> lock(create_mu);
  if (!fs_.Exists(dir_)) MT_RETURN_IF_ERROR(fs_.CreateDir(dir_));
  const std::string path = PathOf(stream);
  if (fs_.Exists(path)) {
    return Status(Errc::kAlreadyExists, "stream '" + stream + "' already has a credential (" +
                                            path + ")");
  }
  std::string key(kCredentialBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) != 1) {
    return Status(Errc::kUnavailable, "RAND_bytes failed: the random generator is not available");
  }
  // Written to "<path>.tmp" (0600: the shim creates files owner-only),
  // synced, renamed: a crash leaves either no credential or a whole one.
  MT_RETURN_IF_ERROR(shim::WriteFileAtomically(fs_, path, ToHex(key) + "\n"));
  return key;
}

Result<std::string> CredentialStore::Get(const std::string& stream) const {
  MT_RETURN_IF_ERROR(CheckStreamFileName(stream));
  const std::string path = PathOf(stream);
  if (!fs_.Exists(path)) {
    return Status(Errc::kNotFound, "stream '" + stream + "' has no credential (" + path + ")");
  }
  MT_ASSIGN_OR_RETURN(std::unique_ptr<shim::File> f, fs_.OpenFile(path, shim::FileOptions{}));
  const uint64_t size = f->Size();
  if (size > 256) return Status(Errc::kCorruption, path + ": not a credential file (too long)");
  std::string text(size, '\0');
  MT_ASSIGN_OR_RETURN(size_t got, f->ReadAt(0, text.data(), text.size()));
  text.resize(got);
  Result<std::string> key = FromHex(text);
  if (!key.ok() || key->size() != kCredentialBytes) {
    return Status(Errc::kCorruption,
                  path + ": not a credential file (expected 64 hex digits)");
  }
  return key;
}

Status CredentialStore::Remove(const std::string& stream) {
  MT_RETURN_IF_ERROR(CheckStreamFileName(stream));
  const std::string path = PathOf(stream);
  if (!fs_.Exists(path)) return Status::Ok();
  return fs_.Remove(path);
}

}  // namespace mt::daemon
