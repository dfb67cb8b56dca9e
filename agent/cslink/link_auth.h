// Authentication of the configuration-server link (docs/formats/cs-link.md,
// "Handshake"): HMAC-SHA256 over a transcript that binds both nonces, the CS
// certificate's fingerprint as the agent saw it and the agent id, so that a
// proof made for one CS, one connection or one agent is worth nothing for
// another. Neither the passphrase nor the agent key ever crosses the wire.
//
//   transcript = "mt-cs-link-1" || role (1 byte) || cs_nonce (32) ||
//                agent_nonce (32) || fingerprint (64 hex digits) || agent_id
//
// Only the last piece has a variable length, so the transcript is
// unambiguous. Roles: 'A' the agent's proof (Hello), 'C' the CS's proof at
// registration (Welcome), 'K' the agent key both sides derive at
// registration from the passphrase.
#pragma once

#include <string>
#include <string_view>

#include "stream/auth.h"
#include "mt/shim/status.h"

namespace mt::cslink {

struct LinkNonces {
  std::string cs_nonce;     // kNonceBytes
  std::string agent_nonce;  // kNonceBytes
};

// kNonceBytes random bytes (the OpenSSL CSPRNG).
Result<std::string> NewLinkNonce();

enum class LinkRole : char { kAgentProof = 'A', kCsProof = 'C', kAgentKey = 'K' };

// kProtocol if a nonce has the wrong length or the fingerprint is not 64 hex
// digits; kInvalidArgument for an empty key.
Result<std::string> LinkMac(std::string_view key, LinkRole role, const LinkNonces& nonces,
                            std::string_view fingerprint, std::string_view agent_id);

// Checks `mac` against LinkMac(...) in constant time: kAuth with `what` on a
// mismatch ("wrong passphrase", ...), kProtocol for a malformed MAC.
Status VerifyLinkMac(std::string_view key, LinkRole role, const LinkNonces& nonces,
                     std::string_view fingerprint, std::string_view agent_id,
                     std::string_view mac, const std::string& what);

}  // namespace mt::cslink
