#include "cslink/registration.h"

#include <openssl/sha.h>

#include <sstream>

#include "config/credential_store.h"
#include "config/tls_identity.h"
#include "cslink/link_auth.h"

namespace mt::cslink {

std::string RegistrationPath(const std::string& cs_dir) {
  return shim::JoinPath(cs_dir, "registration");
}

std::string Sha256Hex(const std::string& bytes) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), d);
  return daemon::ToHex(std::string(reinterpret_cast<const char*>(d), sizeof d));
}

Status ParseLinkMessage(const std::string& body, google::protobuf::MessageLite* message) {
  return control::ParseControlMessage(body, message);
}

Result<std::string> ReadPassphrase(shim::FileSystem& fs, const std::string& path) {
  MT_ASSIGN_OR_RETURN(std::string p, shim::ReadSmallFile(fs, path, 4096));
  while (!p.empty() && (p.back() == '\n' || p.back() == '\r' || p.back() == ' ')) p.pop_back();
  return p;
}

namespace {
std::string Trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}
}  // namespace

Result<CsRegistration> LoadRegistration(shim::FileSystem& fs, const std::string& path) {
  if (!fs.Exists(path)) {
    return Status(Errc::kNotFound, "this agent is not registered with a configuration server (" +
                                       path + " does not exist): run 'mtctl register'");
  }
  MT_ASSIGN_OR_RETURN(const std::string text, shim::ReadSmallFile(fs, path, 64 * 1024));
  CsRegistration reg;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  auto bad = [&](const std::string& why) {
    return Status(Errc::kCorruption, path + " line " + std::to_string(n) + ": " + why);
  };
  while (std::getline(in, line)) {
    ++n;
    line = Trim(line);
    if (line.empty() || line[0] == '#') continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos) return bad("not 'key = value'");
    const std::string key = Trim(line.substr(0, eq)), value = Trim(line.substr(eq + 1));
    if (key == "cs") {
      reg.cs = value;
    } else if (key == "fingerprint") {
      auto fp = daemon::NormalizeFingerprint(value);
      if (!fp.ok()) return bad(fp.status().message());
      reg.fingerprint = *fp;
    } else if (key == "agent_id") {
      reg.agent_id = value;
    } else if (key == "agent_key") {
      auto k = daemon::FromHex(value);
      if (!k.ok() || k->size() != 32) return bad("agent_key is not 64 hex digits");
      reg.agent_key = *k;
    } else if (key == "last_seq") {
      char* end = nullptr;
      reg.last_seq = std::strtoull(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0') return bad("last_seq is not a number");
    } else if (key == "last_digest") {
      reg.last_digest = value;
    }  // unknown keys: written by a newer agent, ignored
  }
  if (reg.cs.empty() || reg.fingerprint.empty() || reg.agent_id.empty() || reg.agent_key.empty()) {
    return Status(Errc::kCorruption, path + ": cs, fingerprint, agent_id and agent_key are all needed");
  }
  return reg;
}

Status SaveRegistration(shim::FileSystem& fs, const std::string& path, const CsRegistration& reg) {
  MT_RETURN_IF_ERROR(fs.CreateDir(shim::ParentDir(path)));
  std::string text = "# mt-agent's registration with its configuration server (mtctl register)\n";
  text += "cs = " + reg.cs + "\n";
  text += "fingerprint = " + reg.fingerprint + "\n";
  text += "agent_id = " + reg.agent_id + "\n";
  text += "agent_key = " + daemon::ToHex(reg.agent_key) + "\n";
  text += "last_seq = " + std::to_string(reg.last_seq) + "\n";
  if (!reg.last_digest.empty()) text += "last_digest = " + reg.last_digest + "\n";
  return shim::WriteFileAtomically(fs, path, text);
}

namespace {

// Challenge in, Hello out, Welcome (or Refused) in.
Result<proto::CsWelcome> Handshake(LinkChannel& ch, const std::string& key,
                                   const std::string& agent_id, const std::string& hostname,
                                   const std::string& version, std::chrono::milliseconds timeout,
                                   LinkNonces* nonces) {
  MT_ASSIGN_OR_RETURN(const std::string first, ch.Receive(timeout));
  proto::CsToAgent in;
  MT_RETURN_IF_ERROR(ParseLinkMessage(first, &in));
  if (in.has_refused()) {
    return Status(Errc::kAuth, "the configuration server refused: " + in.refused().error().message());
  }
  if (!in.has_challenge()) {
    return Status(Errc::kProtocol, "the peer did not open with a challenge: not a configuration server?");
  }
  nonces->cs_nonce = in.challenge().cs_nonce();
  MT_ASSIGN_OR_RETURN(nonces->agent_nonce, NewLinkNonce());
  MT_ASSIGN_OR_RETURN(const std::string mac, LinkMac(key, LinkRole::kAgentProof, *nonces,
                                                     ch.peer_fingerprint(), agent_id));
  proto::AgentToCs out;
  auto* hello = out.mutable_hello();
  hello->set_agent_id(agent_id);
  hello->set_agent_nonce(nonces->agent_nonce);
  hello->set_mac(mac);
  hello->set_hostname(hostname);
  hello->set_version(version);
  MT_RETURN_IF_ERROR(ch.Send(out));
  MT_ASSIGN_OR_RETURN(const std::string reply, ch.Receive(timeout));
  proto::CsToAgent answer;
  MT_RETURN_IF_ERROR(ParseLinkMessage(reply, &answer));
  if (answer.has_refused()) {
    return Status(Errc::kAuth, "the configuration server refused: " + answer.refused().error().message());
  }
  if (!answer.has_welcome()) return Status(Errc::kProtocol, "the configuration server sent no welcome");
  return answer.welcome();
}

}  // namespace

Result<CsRegistration> Register(const RegisterRequest& request) {
  if (request.passphrase.empty()) return Status(Errc::kInvalidArgument, "the passphrase is empty");
  std::string host;
  uint16_t port = 0;
  MT_RETURN_IF_ERROR(ParseHostPort(request.cs, &host, &port));
  std::string pinned;
  if (!request.fingerprint.empty()) {
    MT_ASSIGN_OR_RETURN(pinned, daemon::NormalizeFingerprint(request.fingerprint));
  }
  MT_ASSIGN_OR_RETURN(auto ch, LinkChannel::Dial(host, port, pinned, request.timeout));
  LinkNonces nonces;
  MT_ASSIGN_OR_RETURN(const proto::CsWelcome welcome,
                      Handshake(*ch, request.passphrase, "", request.hostname, request.version,
                                request.timeout, &nonces));
  if (welcome.agent_id().empty() || welcome.agent_id().size() > 128) {
    return Status(Errc::kProtocol, "the configuration server gave no usable agent id");
  }
  // The CS proves it knows the passphrase too: a server that merely answered
  // on this address (trust on first use) cannot complete a registration.
  MT_RETURN_IF_ERROR(VerifyLinkMac(request.passphrase, LinkRole::kCsProof, nonces,
                                   ch->peer_fingerprint(), welcome.agent_id(), welcome.cs_mac(),
                                   "the configuration server could not prove it knows the "
                                   "passphrase: not registering with it"));
  CsRegistration reg;
  reg.cs = host.find(':') != std::string::npos ? "[" + host + "]:" + std::to_string(port)
                                               : host + ":" + std::to_string(port);
  reg.fingerprint = ch->peer_fingerprint();
  reg.agent_id = welcome.agent_id();
  MT_ASSIGN_OR_RETURN(reg.agent_key, LinkMac(request.passphrase, LinkRole::kAgentKey, nonces,
                                             ch->peer_fingerprint(), welcome.agent_id()));
  ch->Close();
  return reg;
}

Result<std::unique_ptr<LinkChannel>> ConnectRegistered(const CsRegistration& reg,
                                                       const std::string& hostname,
                                                       const std::string& version,
                                                       std::chrono::milliseconds timeout,
                                                       proto::CsWelcome* welcome) {
  std::string host;
  uint16_t port = 0;
  MT_RETURN_IF_ERROR(ParseHostPort(reg.cs, &host, &port));
  MT_ASSIGN_OR_RETURN(auto ch, LinkChannel::Dial(host, port, reg.fingerprint, timeout));
  LinkNonces nonces;
  MT_ASSIGN_OR_RETURN(*welcome, Handshake(*ch, reg.agent_key, reg.agent_id, hostname, version,
                                          timeout, &nonces));
  return ch;
}

}  // namespace mt::cslink
