#include "stream/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>

namespace mt::stream {

Result<Nonce> RandomNonce() {
  Nonce n;
  if (RAND_bytes(n.data(), static_cast<int>(n.size())) != 1) {
    return Status(Errc::kUnavailable, "RAND_bytes failed: the random generator is not available");
  }
  return n;
}

std::string AuthTranscript(const Nonce& server_nonce, std::string_view stream_name,
                           const Nonce& sender_nonce) {
  std::string t;
  t.reserve(server_nonce.size() + stream_name.size() + sender_nonce.size());
  t.append(reinterpret_cast<const char*>(server_nonce.data()), server_nonce.size());
  t.append(stream_name.data(), stream_name.size());
  t.append(reinterpret_cast<const char*>(sender_nonce.data()), sender_nonce.size());
  return t;
}

Result<Mac> HmacSha256(std::string_view key, std::string_view data) {
  if (key.empty()) return Status(Errc::kInvalidArgument, "empty HMAC key");
  Mac mac;
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(),
           &len) == nullptr ||
      len != mac.size()) {
    return Status(Errc::kInternal, "HMAC-SHA256 failed");
  }
  return mac;
}

Result<Mac> ComputeAuthMac(std::string_view key, const Nonce& server_nonce,
                           std::string_view stream_name, const Nonce& sender_nonce) {
  if (key.empty()) return Status(Errc::kInvalidArgument, "empty stream credential");
  return HmacSha256(key, AuthTranscript(server_nonce, stream_name, sender_nonce));
}

namespace {
bool ToNonce(const std::string& bytes, Nonce* n) {
  if (bytes.size() != n->size()) return false;
  std::copy(bytes.begin(), bytes.end(), n->begin());
  return true;
}
}  // namespace

Status VerifyAuthResponse(std::string_view key, const Nonce& server_nonce,
                          std::string_view stream_name, const proto::AuthResponse& response) {
  Nonce sender_nonce;
  if (!ToNonce(response.sender_nonce(), &sender_nonce)) {
    return Status(Errc::kProtocol, "auth response: sender nonce of " +
                                       std::to_string(response.sender_nonce().size()) +
                                       " bytes, expected " + std::to_string(kNonceBytes));
  }
  if (response.mac().size() != kMacBytes) {
    return Status(Errc::kProtocol, "auth response: MAC of " +
                                       std::to_string(response.mac().size()) + " bytes, expected " +
                                       std::to_string(kMacBytes));
  }
  MT_ASSIGN_OR_RETURN(const Mac expected,
                      ComputeAuthMac(key, server_nonce, stream_name, sender_nonce));
  if (CRYPTO_memcmp(expected.data(), response.mac().data(), kMacBytes) != 0) {
    return Status(Errc::kAuth,
                  "authentication failed for stream '" + std::string(stream_name) + "'");
  }
  return Status::Ok();
}

Result<proto::AuthResponse> AnswerChallenge(std::string_view key,
                                            const proto::AuthChallenge& challenge,
                                            std::string_view stream_name) {
  Nonce server_nonce;
  if (!ToNonce(challenge.server_nonce(), &server_nonce)) {
    return Status(Errc::kProtocol, "auth challenge: server nonce of " +
                                       std::to_string(challenge.server_nonce().size()) +
                                       " bytes, expected " + std::to_string(kNonceBytes));
  }
  MT_ASSIGN_OR_RETURN(const Nonce sender_nonce, RandomNonce());
  MT_ASSIGN_OR_RETURN(const Mac mac, ComputeAuthMac(key, server_nonce, stream_name, sender_nonce));
  proto::AuthResponse r;
  r.set_sender_nonce(sender_nonce.data(), sender_nonce.size());
  r.set_mac(mac.data(), mac.size());
  return r;
}

}  // namespace mt::stream
