#include "cs/web_auth.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <iterator>


namespace mt::cs {

namespace {

constexpr int64_t kMinuteNs = 60ll * 1'000'000'000;

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

// Constant-time equality of two strings of any lengths: of their SHA-256.
bool SecretEquals(const std::string& a, const std::string& b) {
  unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(a.data()), a.size(), da);
  SHA256(reinterpret_cast<const unsigned char*>(b.data()), b.size(), db);
  return CRYPTO_memcmp(da, db, sizeof da) == 0;
}

}  // namespace

int64_t WebAuth::Session::expires_ns() const {
  return std::min(created_ns + kLifeNs, last_ns + kIdleNs);
}

Result<std::unique_ptr<WebAuth>> WebAuth::Create(const std::string& token) {
  if (token.size() < kMinTokenChars) {
    return Status(Errc::kInvalidArgument, "the web token is shorter than " + std::to_string(kMinTokenChars) +
                                              " characters (make one: openssl rand -hex 24)");
  }
  return std::make_unique<WebAuth>(token);
}

Status WebAuth::CheckTokenLocked(const std::string& token, int64_t now_ns) {
  while (!failures_.empty() && failures_.front() <= now_ns - kMinuteNs) failures_.pop_front();
  if (failures_.size() >= kMaxFailures) {
    return Status(Errc::kBusy, "too many failed logins in the last minute: wait a minute and try again");
  }
  if (!SecretEquals(token, token_)) {
    failures_.push_back(now_ns);
    return Status(Errc::kPermissionDenied, "wrong token");
  }
  return Status::Ok();
}

Status WebAuth::CheckBearer(const std::string& token, int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  return CheckTokenLocked(token, now_ns);
}

Result<WebAuth::Session> WebAuth::Login(const std::string& token, int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  MT_RETURN_IF_ERROR(CheckTokenLocked(token, now_ns));
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    it = it->second.expires_ns() <= now_ns ? sessions_.erase(it) : std::next(it);
  }
  if (sessions_.size() >= kMaxSessions) {
    auto oldest = sessions_.begin();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it)
      if (it->second.last_ns < oldest->second.last_ns) oldest = it;
    sessions_.erase(oldest);
  }
  Session s;
  s.id = RandomHex(32);
  s.csrf = RandomHex(32);
  s.created_ns = s.last_ns = now_ns;
  sessions_[s.id] = s;
  return s;
}

void WebAuth::Logout(const std::string& session_id) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_.erase(session_id);
}

std::optional<WebAuth::Session> WebAuth::Find(const std::string& session_id, int64_t now_ns) {
  if (session_id.empty()) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) return std::nullopt;
  if (it->second.expires_ns() <= now_ns) {
    sessions_.erase(it);
    return std::nullopt;
  }
  it->second.last_ns = now_ns;
  return it->second;
}

bool WebAuth::CsrfMatches(const Session& s, const std::string& given) {
  return !given.empty() && SecretEquals(given, s.csrf);
}

std::string CookieValue(const std::string& cookie_header, const std::string& name) {
  size_t pos = 0;
  while (pos < cookie_header.size()) {
    size_t end = cookie_header.find(';', pos);
    if (end == std::string::npos) end = cookie_header.size();
    std::string part = cookie_header.substr(pos, end - pos);
    const size_t first = part.find_first_not_of(' ');
    part = first == std::string::npos ? "" : part.substr(first);
    const size_t eq = part.find('=');
    if (eq != std::string::npos && part.substr(0, eq) == name) return part.substr(eq + 1);
    pos = end + 1;
  }
  return "";
}

}  // namespace mt::cs
