#include "mt/shim/status.h"

#include <cerrno>
#include <cstring>

namespace mt {

const char* ErrcName(Errc c) {
  switch (c) {
    case Errc::kOk: return "ok";
    case Errc::kIoError: return "io-error";
    case Errc::kInvalidArgument: return "invalid-argument";
    case Errc::kMisaligned: return "misaligned";
    case Errc::kOutOfRange: return "out-of-range";
    case Errc::kNotFound: return "not-found";
    case Errc::kAlreadyExists: return "already-exists";
    case Errc::kPermissionDenied: return "permission-denied";
    case Errc::kBusy: return "busy";
    case Errc::kNoSpace: return "no-space";
    case Errc::kCorruption: return "corruption";
    case Errc::kUnsafeTarget: return "unsafe-target";
    case Errc::kProtocol: return "protocol";
    case Errc::kAuth: return "auth";
    case Errc::kUnavailable: return "unavailable";
    case Errc::kAborted: return "aborted";
    case Errc::kInternal: return "internal";
  }
  return "unknown";
}

static Errc ErrcFromErrno(int err) {
  switch (err) {
    case ENOENT: case ENXIO: case ENODEV: return Errc::kNotFound;
    case EEXIST: return Errc::kAlreadyExists;
    case EACCES: case EPERM: case EROFS: return Errc::kPermissionDenied;
    case EBUSY: case ETXTBSY: return Errc::kBusy;
    case ENOSPC: case EDQUOT: return Errc::kNoSpace;
    case EINVAL: return Errc::kInvalidArgument;
    case ENOTSUP: return Errc::kUnavailable;
    default: return Errc::kIoError;
  }
}

Status Status::FromErrno(int err, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  return Status(ErrcFromErrno(err), std::move(msg), err);
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(ErrcName(code_)) + ": " + message_;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  return Status(code_, std::string(context) + ": " + message_, sys_errno_);
}

}  // namespace mt
