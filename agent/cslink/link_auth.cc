#include "cslink/link_auth.h"

#include <openssl/crypto.h>

namespace mt::cslink {

Result<std::string> NewLinkNonce() {
  MT_ASSIGN_OR_RETURN(const stream::Nonce n, stream::RandomNonce());
  return std::string(reinterpret_cast<const char*>(n.data()), n.size());
}

Result<std::string> LinkMac(std::string_view key, LinkRole role, const LinkNonces& nonces,
                            std::string_view fingerprint, std::string_view agent_id) {
  if (nonces.cs_nonce.size() != stream::kNonceBytes ||
      nonces.agent_nonce.size() != stream::kNonceBytes) {
    return Status(Errc::kProtocol, "link handshake: a nonce is not " +
                                       std::to_string(stream::kNonceBytes) + " bytes");
  }
  if (fingerprint.size() != 64) {
    return Status(Errc::kProtocol, "link handshake: the CS fingerprint is not 64 hex digits");
  }
  std::string t = "mt-cs-link-1";
  t.push_back(static_cast<char>(role));
  t += nonces.cs_nonce;
  t += nonces.agent_nonce;
  t.append(fingerprint.data(), fingerprint.size());
  t.append(agent_id.data(), agent_id.size());
  MT_ASSIGN_OR_RETURN(const stream::Mac mac, stream::HmacSha256(key, t));
  return std::string(reinterpret_cast<const char*>(mac.data()), mac.size());
}

Status VerifyLinkMac(std::string_view key, LinkRole role, const LinkNonces& nonces,
                     std::string_view fingerprint, std::string_view agent_id,
                     std::string_view mac, const std::string& what) {
  if (mac.size() != stream::kMacBytes) {
    return Status(Errc::kProtocol, "link handshake: a MAC of " + std::to_string(mac.size()) +
                                       " bytes, expected " +
                                       std::to_string(stream::kMacBytes));
  }
  MT_ASSIGN_OR_RETURN(const std::string expected,
                      LinkMac(key, role, nonces, fingerprint, agent_id));
  if (CRYPTO_memcmp(expected.data(), mac.data(), mac.size()) != 0) {
    return Status(Errc::kAuth, what);
  }
  return Status::Ok();
}

}  // namespace mt::cslink
