// WebAuth: who may use mt-cs's dashboard and its API (docs/formats/cs-web-api.md).
//
//   The secret is one token (mt-cs serve --web-token-file, at least 16
//   characters). A browser logs in with it and gets a session:
//     id    32 random bytes (hex), the cookie mtcs_session (Secure, HttpOnly,
//           SameSite=Strict); it ends at logout, after kIdleNs without a
//           request, or kLifeNs after the login;
//     csrf  32 random bytes (hex) that every POST made with the cookie must
//           carry in X-CSRF-Token (the cookie alone proves nothing: a page of
//           another site can make the browser send it).
//   API clients may send "Authorization: Bearer <token>" instead: no cookie,
//   so no CSRF token is needed.
//   Failed logins (a wrong bearer token counts as one): after kMaxFailures
//   within a minute, every login and bearer request is refused (429) until
//   the oldest of them is a minute old.
//   Comparisons of secrets are constant-time (of their SHA-256).
// At most kMaxSessions live sessions; a login past that ends the oldest.
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "mt/shim/status.h"

namespace mt::cs {

class WebAuth {
 public:
  static constexpr int64_t kIdleNs = 3600ll * 1'000'000'000;      // 1 h
  static constexpr int64_t kLifeNs = 12ll * 3600 * 1'000'000'000;  // 12 h
  static constexpr size_t kMaxFailures = 5;
  static constexpr size_t kMaxSessions = 256;
  static constexpr size_t kMinTokenChars = 16;

  struct Session {
    std::string id;
    std::string csrf;
    int64_t created_ns = 0;
    int64_t last_ns = 0;
    int64_t expires_ns() const;
  };

  // kInvalidArgument for a token shorter than kMinTokenChars.
  static Result<std::unique_ptr<WebAuth>> Create(const std::string& token);
  explicit WebAuth(std::string token) : token_(std::move(token)) {}

  // kPermissionDenied: a wrong token; kBusy: too many failures lately.
  Result<Session> Login(const std::string& token, int64_t now_ns);
  void Logout(const std::string& session_id);
  // The live session `session_id` names (its last use set to now).
  std::optional<Session> Find(const std::string& session_id, int64_t now_ns);
  // An Authorization: Bearer value: ok when it is the token; a wrong one
  // counts as a failed login (kPermissionDenied), and while logins are
  // throttled every one is refused (kBusy), as Login does.
  Status CheckBearer(const std::string& token, int64_t now_ns);
  // Whether `given` is the session's CSRF token.
  static bool CsrfMatches(const Session& s, const std::string& given);

 private:
  // kBusy while throttled, kPermissionDenied (and one more failure) for a
  // wrong token. REQUIRES: mu_ held.
  Status CheckTokenLocked(const std::string& token, int64_t now_ns);
  const std::string token_;
  std::mutex mu_;
  std::map<std::string, Session> sessions_;  // by id; guarded by mu_
  std::deque<int64_t> failures_;             // times of recent failed logins; guarded by mu_
};

// "a=1; mtcs_session=XYZ" -> "XYZ" for name "mtcs_session" ("" when absent).
std::string CookieValue(const std::string& cookie_header, const std::string& name);

}  // namespace mt::cs
