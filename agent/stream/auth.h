// Stream authentication (HMAC-SHA256 challenge/response) and the random
// nonces it needs, over OpenSSL libcrypto. See docs/formats/stream.md,
// "Authentication".
//
// Transcript, the bytes the MAC covers:
//     server_nonce (32 bytes) || stream_name (its UTF-8 bytes) || sender_nonce (32 bytes)
// Both nonces have a fixed length, so the transcript is unambiguous. The key
// is the stream credential; it never crosses the wire.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "stream/messages.h"
#include "mt/shim/status.h"

namespace mt::stream {

using Nonce = std::array<uint8_t, kNonceBytes>;
using Mac = std::array<uint8_t, kMacBytes>;

// kNonceBytes from the OpenSSL CSPRNG (RAND_bytes). kUnavailable if the
// generator is not seeded or fails.
Result<Nonce> RandomNonce();

// HMAC-SHA256(key, data). kInvalidArgument for an empty key. (Also the MAC
// of the configuration-server link, agent/cslink/link_auth.h.)
Result<Mac> HmacSha256(std::string_view key, std::string_view data);

// The transcript above, as bytes.
std::string AuthTranscript(const Nonce& server_nonce, std::string_view stream_name,
                           const Nonce& sender_nonce);

// HMAC-SHA256(key, transcript). kInvalidArgument for an empty key.
Result<Mac> ComputeAuthMac(std::string_view key, const Nonce& server_nonce,
                           std::string_view stream_name, const Nonce& sender_nonce);

// Receiver side: checks an AuthResponse against the challenge it sent.
// kProtocol if the response's nonce or MAC has the wrong size; kAuth
// ("authentication failed for stream '<name>'") if the MAC is not the one
// `key` gives. The comparison takes constant time (CRYPTO_memcmp).
Status VerifyAuthResponse(std::string_view key, const Nonce& server_nonce,
                          std::string_view stream_name, const proto::AuthResponse& response);

// Sender side: the AuthResponse to a challenge. kProtocol if the challenge's
// nonce is not kNonceBytes long.
Result<proto::AuthResponse> AnswerChallenge(std::string_view key,
                                            const proto::AuthChallenge& challenge,
                                            std::string_view stream_name);

}  // namespace mt::stream
