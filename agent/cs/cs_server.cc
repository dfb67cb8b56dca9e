#include "cs/cs_server.h"

#include <spdlog/spdlog.h>

#include <cstring>

#include "cslink/link_auth.h"
#include "cslink/link_channel.h"
#include "cslink/registration.h"
#include "mt/cs_link.pb.h"
#include "mt/shim/clock.h"

namespace mt::cs {

using std::chrono::milliseconds;

struct CsServer::Impl {
  std::unique_ptr<boost::asio::ssl::context> ssl;
};

namespace {

int64_t Now() { return shim::SystemClock().NowNs(); }

void Refuse(cslink::LinkChannel& ch, const std::string& why) {
  proto::CsToAgent m;
  m.mutable_refused()->mutable_error()->set_code("auth");
  m.mutable_refused()->mutable_error()->set_message(why);
  (void)ch.Send(m);
  ch.Close();
}

}  // namespace

Result<std::unique_ptr<CsServer>> CsServer::Start(CsServerOptions options, CsStore& store) {
  if (options.passphrase.empty()) {
    return Status(Errc::kInvalidArgument, "mt-cs needs a passphrase (--passphrase-file) for agents to register with");
  }
  std::unique_ptr<CsServer> s(new CsServer(std::move(options), store));
  s->impl_ = std::make_unique<Impl>();
  MT_ASSIGN_OR_RETURN(s->identity_, daemon::LoadOrCreateTlsIdentity(shim::PosixFileSystem(),
                                                                    s->o_.tls_dir, "mt-cs"));
  MT_ASSIGN_OR_RETURN(s->impl_->ssl, cslink::LinkServerContext(s->identity_));
  MT_RETURN_IF_ERROR(store.ClearConnected());
  MT_ASSIGN_OR_RETURN(s->listener_, TcpListener::Start(s->o_.listen_host, s->o_.port, kMaxLinks,
                                                       [p = s.get()](int fd) { p->Serve(fd); }));
  s->port_ = s->listener_->port();
  return s;
}

CsServer::CsServer(CsServerOptions options, CsStore& store)
    : o_(std::move(options)), store_(store) {}

CsServer::~CsServer() { Stop(); }

void CsServer::Stop() {
  stop_ = true;
  if (listener_) listener_->Stop();
}

void CsServer::Serve(int fd) {
  auto accepted = cslink::LinkChannel::Accept(fd, *impl_->ssl, o_.handshake_timeout);
  if (!accepted.ok()) {
    spdlog::warn("a connection failed before the handshake: {}", accepted.status().ToString());
    return;
  }
  cslink::LinkChannel& ch = **accepted;
  const std::string peer = ch.peer_address();
  auto audit = [&](const std::string& agent, const std::string& line) {
    spdlog::warn("audit: {} ({}): {}", agent.empty() ? "-" : agent, peer, line);
    (void)store_.Audit(agent, line + " (from " + peer + ")", Now());
  };

  cslink::LinkNonces nonces;
  auto nonce = cslink::NewLinkNonce();
  if (!nonce.ok()) return;
  nonces.cs_nonce = *nonce;
  proto::CsToAgent challenge;
  challenge.mutable_challenge()->set_cs_nonce(nonces.cs_nonce);
  challenge.mutable_challenge()->set_link_version(1);
  if (!ch.Send(challenge).ok()) return;
  auto first = ch.Receive(o_.handshake_timeout);
  proto::AgentToCs hello_msg;
  if (!first.ok() || !cslink::ParseLinkMessage(*first, &hello_msg).ok() || !hello_msg.has_hello()) {
    audit("", "no valid hello: " + (first.ok() ? std::string("not a hello") : first.status().ToString()));
    Refuse(ch, "the link opens with a hello");
    return;
  }
  const proto::CsHello& hello = hello_msg.hello();
  nonces.agent_nonce = hello.agent_nonce();

  if (hello.agent_id().empty()) {  // registration
    const Status ok = cslink::VerifyLinkMac(o_.passphrase, cslink::LinkRole::kAgentProof, nonces,
                                            identity_.fingerprint, "", hello.mac(),
                                            "wrong passphrase");
    if (!ok.ok()) {
      audit("", "registration of host '" + hello.hostname() + "' refused: " + ok.message());
      Refuse(ch, "registration refused: " + ok.message() +
                     " (give the passphrase this configuration server was started with)");
      return;
    }
    AgentRow row;
    row.hostname = hello.hostname();
    row.version = hello.version();
    row.address = peer;
    row.registered_ns = Now();
    // A random placeholder until the derived key (it needs the id) is stored.
    row.key = *nonce;
    auto id = store_.AddAgent(row);
    if (!id.ok()) {
      Refuse(ch, "the configuration server cannot store the agent: " + id.status().ToString());
      return;
    }
    auto key = cslink::LinkMac(o_.passphrase, cslink::LinkRole::kAgentKey, nonces,
                               identity_.fingerprint, *id);
    auto cs_mac = cslink::LinkMac(o_.passphrase, cslink::LinkRole::kCsProof, nonces,
                                  identity_.fingerprint, *id);
    if (!key.ok() || !cs_mac.ok()) return;
    // The key is stored before the welcome: an agent that got its id can
    // always connect with it.
    if (!store_.SetAgentKey(*id, *key).ok()) return;
    (void)store_.Audit(*id, "registered: host '" + hello.hostname() + "', mt-agent " +
                                hello.version() + " (from " + peer + ")", Now());
    spdlog::info("agent {} registered: host '{}' from {}", *id, hello.hostname(), peer);
    proto::CsToAgent w;
    w.mutable_welcome()->set_agent_id(*id);
    w.mutable_welcome()->set_cs_mac(*cs_mac);
    w.mutable_welcome()->set_heartbeat_ms(static_cast<uint32_t>(o_.heartbeat.count()));
    (void)ch.Send(w);
    ch.Close();
    return;
  }

  auto agent = store_.GetAgent(hello.agent_id());
  if (!agent.ok() || !agent->has_value()) {
    audit(hello.agent_id(), "unknown agent id: refused");
    Refuse(ch, "agent id '" + hello.agent_id() +
                   "' is not known to this configuration server: register again (mtctl register)");
    return;
  }
  const AgentRow row = **agent;
  const Status ok = cslink::VerifyLinkMac(row.key, cslink::LinkRole::kAgentProof, nonces,
                                          identity_.fingerprint, row.id, hello.mac(),
                                          "wrong agent key");
  if (!ok.ok()) {
    audit(row.id, "connection refused: " + ok.message());
    Refuse(ch, "refused: " + ok.message() + " (register the agent again)");
    return;
  }
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation = ++next_generation_;
    generation_[row.id] = generation;
  }
  auto current = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    return generation_[row.id] == generation;
  };
  (void)store_.SetConnected(row.id, true, peer, Now());
  spdlog::info("agent {} connected from {}", row.id, peer);
  proto::CsToAgent w;
  w.mutable_welcome()->set_agent_id(row.id);
  w.mutable_welcome()->set_heartbeat_ms(static_cast<uint32_t>(o_.heartbeat.count()));
  (void)ch.Send(w);

  uint64_t in_flight = 0;
  Status why = Status::Ok();
  while (!stop_ && current()) {
    if (in_flight == 0) {
      auto next = store_.NextRequest(row.id);
      if (next.ok() && next->has_value()) {
        proto::ControlRequest r;
        r.ParseFromString((*next)->request);
        proto::CsToAgent m;
        m.mutable_request()->set_seq((*next)->seq);
        *m.mutable_request()->mutable_request() = std::move(r);
        if (!ch.Send(m).ok()) break;
        (void)store_.MarkSent(row.id, (*next)->seq);
        in_flight = (*next)->seq;
      }
    }
    auto messages = ch.Poll(o_.poll);
    if (!messages.ok()) {
      why = messages.status();
      break;
    }
    for (const std::string& body : *messages) {
      proto::AgentToCs m;
      if (!cslink::ParseLinkMessage(body, &m).ok()) {
        audit(row.id, "a message that does not parse: link closed");
        why = Status(Errc::kProtocol, "bad message");
        break;
      }
      const int64_t now = Now();
      if (m.has_heartbeat()) {
        (void)store_.SaveHealth(row.id, m.heartbeat().status(), now);
      } else if (m.has_inventory()) {
        (void)store_.SaveInventory(row.id, m.inventory().inventory(), now);
      } else if (m.has_job()) {
        (void)store_.SaveJob(row.id, m.job().job(), now);
      } else if (m.has_response()) {
        if (m.response().seq() != in_flight) {
          audit(row.id, "a response to request " + std::to_string(m.response().seq()) +
                            ", which is not in flight: ignored");
          continue;
        }
        (void)store_.Answer(row.id, in_flight, m.response().response(), now);
        in_flight = 0;
      }
    }
    if (!why.ok()) break;
  }
  ch.Close();
  if (current()) (void)store_.SetConnected(row.id, false, peer, Now());
  spdlog::info("agent {} disconnected: {}", row.id, why.ok() ? "closed" : why.ToString());
}

}  // namespace mt::cs
