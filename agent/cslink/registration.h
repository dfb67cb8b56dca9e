// The agent's side of the configuration-server handshake, and what it keeps
// of a registration (docs/formats/cs-link.md):
//
//     <cs_dir>/registration   mode 0600, "key = value" lines:
//         cs = <host:port>          where the CS listens
//         fingerprint = <64 hex>    the CS certificate's SHA-256, pinned
//         agent_id = <id>           what the CS named this agent
//         agent_key = <64 hex>      HMAC key derived at registration
//         last_seq = <n>            highest CS request seq accepted
//         last_digest = <64 hex>    SHA-256 of that request's bytes
//
// The passphrase is not kept: registration derives the agent key from it,
// the CS does the same, and later connections prove the key instead.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "cslink/link_channel.h"
#include "mt/cs_link.pb.h"
#include "mt/shim/file_system.h"
#include "mt/shim/status.h"

namespace mt::cslink {

struct CsRegistration {
  std::string cs;           // host:port
  std::string fingerprint;  // 64 lowercase hex digits
  std::string agent_id;
  std::string agent_key;    // raw key bytes (32)
  uint64_t last_seq = 0;
  std::string last_digest;  // hex, "" before the first request
};

std::string RegistrationPath(const std::string& cs_dir);
// kNotFound when the agent was never registered; kCorruption naming the file
// and line when it does not parse.
Result<CsRegistration> LoadRegistration(shim::FileSystem& fs, const std::string& path);
// Durable on return (WriteFileAtomically; the shim creates files 0600).
Status SaveRegistration(shim::FileSystem& fs, const std::string& path, const CsRegistration& reg);

struct RegisterRequest {
  std::string cs;           // host[:port]
  std::string passphrase;   // as the CS was given it (surrounding whitespace trimmed by the caller)
  std::string fingerprint;  // "" = trust on first use: the caller shows what was pinned
  std::string hostname;
  std::string version;
  std::chrono::milliseconds timeout{15'000};
};

// Dials the CS, registers, and returns the registration to save. Errors:
// kUnavailable (nobody answers), kAuth (the CS refused the passphrase, the
// CS could not prove it knows it, or its certificate is not the pinned one),
// kProtocol (not a configuration server).
Result<CsRegistration> Register(const RegisterRequest& request);

// Dials the registered CS (its pinned certificate only) and proves the agent
// key. The channel is ready for the link's messages; `welcome` gets the CS's
// welcome (its heartbeat interval).
Result<std::unique_ptr<LinkChannel>> ConnectRegistered(const CsRegistration& reg,
                                                       const std::string& hostname,
                                                       const std::string& version,
                                                       std::chrono::milliseconds timeout,
                                                       proto::CsWelcome* welcome);

// The passphrase in `path` (at most 4 KiB), trailing newline, carriage
// return and spaces dropped: what `mtctl register`, the daemon's own
// registration and `mt-cs serve` read. An empty result is the caller's to refuse.
Result<std::string> ReadPassphrase(shim::FileSystem& fs, const std::string& path);

// Parses one link message (kProtocol naming the type when it is not one).
Status ParseLinkMessage(const std::string& body, google::protobuf::MessageLite* message);

// Lowercase hex SHA-256 of bytes (request digests).
std::string Sha256Hex(const std::string& bytes);

}  // namespace mt::cslink
