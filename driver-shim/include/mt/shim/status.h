// Status / Result<T>: the one error type of mt-agent's core.
//
// Contract: functions that can fail return Status (or Result<T>); exceptions
// never cross a module boundary. errno is turned into a Status in exactly one
// place, Status::FromErrno, which records the object (device, file) and the
// errno text so the message an operator finally reads names what failed.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace mt {

enum class Errc {
  kOk = 0,
  kIoError,          // the kernel reported an I/O error
  kInvalidArgument,  // caller passed something that can never work
  kMisaligned,       // O_DIRECT alignment rule broken
  kOutOfRange,       // offset/length outside the object
  kNotFound,
  kAlreadyExists,
  kPermissionDenied,
  kBusy,             // held by someone else (O_EXCL, mounted, ...)
  kNoSpace,
  kCorruption,       // checksum or format error in stored data
  kUnsafeTarget,     // a write path was asked to touch a disk that is not a target
  kProtocol,         // peer sent something the protocol does not allow
  kAuth,             // peer failed authentication
  kUnavailable,      // the feature or device is not available on this machine
  kAborted,          // operation stopped (crash simulation, shutdown)
  kInternal,
};

// Short stable name of an error code ("io-error", "misaligned", ...).
const char* ErrcName(Errc c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Errc code, std::string message, int sys_errno = 0)
      : code_(code), sys_errno_(sys_errno), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  // The single errno -> Status conversion. `what` names the operation and the
  // object, e.g. "pwrite /dev/loop3 at 4096". Result message: "<what>: <strerror>".
  static Status FromErrno(int err, std::string_view what);

  bool ok() const { return code_ == Errc::kOk; }
  Errc code() const { return code_; }
  int sys_errno() const { return sys_errno_; }
  const std::string& message() const { return message_; }
  // "<code-name>: <message>" (or "ok").
  std::string ToString() const;
  // Prefix context to the message, keeping code and errno.
  Status WithContext(std::string_view context) const;

 private:
  Errc code_ = Errc::kOk;
  int sys_errno_ = 0;
  std::string message_;
};

// Result<T>: a T or a non-ok Status. REQUIRES: constructed from a non-ok Status
// when it carries an error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result built from an ok Status");
  }
  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  // By value: `for (x : *Foo())` must not bind to a destroyed temporary.
  T operator*() && { return std::move(*this).value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace mt

// Return early with the Status of an expression that yields a Status.
#define MT_RETURN_IF_ERROR(expr)              \
  do {                                        \
    ::mt::Status mt_status_ = (expr);         \
    if (!mt_status_.ok()) return mt_status_;  \
  } while (0)

#define MT_CONCAT_INNER(a, b) a##b
#define MT_CONCAT(a, b) MT_CONCAT_INNER(a, b)
// MT_ASSIGN_OR_RETURN(auto x, Foo()): on error return its Status.
#define MT_ASSIGN_OR_RETURN(lhs, expr) \
  MT_ASSIGN_OR_RETURN_IMPL(MT_CONCAT(mt_result_, __LINE__), lhs, expr)
#define MT_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
