// The configuration-server link in process, over real TLS on 127.0.0.1:
// mt-cs's server (CsServer on a temp CsStore) and the agent's side
// (Register, CsLink with counting hooks), plus a scripted CS for what a
// well-behaved server never sends (a replayed request, a CS that cannot prove
// the passphrase).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "config/tls_identity.h"
#include "cs/cs_server.h"
#include "cs/cs_store.h"
#include "cs/placement.h"
#include "cslink/cs_link.h"
#include "cslink/link_auth.h"
#include "cslink/link_channel.h"
#include "cslink/registration.h"
#include "mt/shim/file_system.h"

namespace mt::cslink {
namespace {

using namespace std::chrono_literals;
constexpr char kPass[] = "correct horse battery";

std::string TempDir() {
  std::string t = "/tmp/mt-cslink-XXXXXX";
  EXPECT_NE(mkdtemp(t.data()), nullptr);
  return t;
}

template <typename P>
bool Eventually(P pred, std::chrono::milliseconds limit = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

class CsLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    auto store = cs::CsStore::Open(dir_ + "/cs.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }
  void TearDown() override {
    link_.reset();
    server_.reset();
    store_.reset();
    if (!dir_.empty()) (void)std::system(("rm -rf " + dir_).c_str());
  }
  void StartServer() {
    cs::CsServerOptions o;
    o.listen_host = "127.0.0.1";
    o.port = 0;
    o.tls_dir = dir_ + "/cs-tls";
    o.passphrase = kPass;
    o.heartbeat = 300ms;
    o.poll = 20ms;
    auto s = cs::CsServer::Start(o, *store_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
  }
  RegisterRequest Req(const std::string& pass, const std::string& fp = "") {
    RegisterRequest r;
    r.cs = "127.0.0.1:" + std::to_string(server_->port());
    r.passphrase = pass;
    r.fingerprint = fp;
    r.hostname = "mt1";
    r.version = "0.1.0";
    r.timeout = 10s;
    return r;
  }
  // A CsLink whose control commands are counted and answered with a pair
  // list naming the command's number.
  void StartLink() {
    CsLinkOptions o;
    o.cs_dir = dir_ + "/agent-cs";
    o.hostname = "mt1";
    o.version = "0.1.0";
    o.heartbeat = 200ms;
    o.job_poll = 50ms;
    o.connect_timeout = 5s;
    o.max_backoff = 1s;
    CsLinkHooks h;
    h.handle = [this](const proto::ControlRequest& r) {
      ++handled_;
      proto::ControlResponse resp;
      resp.mutable_pairs()->set_source("handled-" + std::to_string(r.command_case()));
      return resp;
    };
    h.status = [] {
      proto::AgentStatus st;
      st.set_version("0.1.0");
      st.add_pairs()->set_name("vm1");
      return Result<proto::AgentStatus>(st);
    };
    h.inventory = [] {
      proto::Inventory inv;
      inv.add_disks()->set_wwid("naa.6000c2900000000000000000000000a1");
      return Result<proto::Inventory>(inv);
    };
    h.jobs = [] {
      proto::JobList l;
      auto* j = l.add_jobs();
      j->set_id("j1");
      j->set_kind("rollback");
      j->set_state("succeeded");
      return Result<proto::JobList>(l);
    };
    link_ = std::make_unique<CsLink>(o, h);
    link_->Start();
  }

  std::string dir_;
  std::unique_ptr<cs::CsStore> store_;
  std::unique_ptr<cs::CsServer> server_;
  std::unique_ptr<CsLink> link_;
  std::atomic<int> handled_{0};
};

TEST_F(CsLinkTest, RegistersWithTheRightPassphraseOnlyAndPinsTheCertificate) {
  StartServer();
  auto wrong = Register(Req("not it"));
  EXPECT_EQ(wrong.status().code(), Errc::kAuth);
  EXPECT_NE(wrong.status().message().find("wrong passphrase"), std::string::npos) << wrong.status().ToString();
  auto mismatch = Register(Req(kPass, std::string(64, 'b')));
  EXPECT_EQ(mismatch.status().code(), Errc::kAuth);
  EXPECT_NE(mismatch.status().message().find(server_->fingerprint()), std::string::npos);
  auto agents = store_->ListAgents();
  ASSERT_TRUE(agents.ok());
  EXPECT_TRUE(agents->empty()) << "a refused registration left an agent";

  auto reg = Register(Req(kPass, daemon::ColonFingerprint(server_->fingerprint())));
  ASSERT_TRUE(reg.ok()) << reg.status().ToString();
  EXPECT_EQ(reg->agent_id, "agent-1");
  EXPECT_EQ(reg->fingerprint, server_->fingerprint());
  ASSERT_EQ(reg->agent_key.size(), 32u);
  // Both sides derived the same key; it never crossed the wire.
  auto row = store_->GetAgent("agent-1");
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((*row)->key, reg->agent_key);
  EXPECT_EQ((*row)->hostname, "mt1");
  auto lines = store_->AuditLines(10);
  ASSERT_TRUE(lines.ok());
  ASSERT_EQ(lines->size(), 2u);
  EXPECT_NE((*lines)[0].find("refused: wrong passphrase"), std::string::npos) << (*lines)[0];
  EXPECT_NE((*lines)[1].find("registered"), std::string::npos) << (*lines)[1];

  // Saved and read back (0600 by the shim).
  const std::string path = RegistrationPath(dir_ + "/agent-cs");
  ASSERT_TRUE(SaveRegistration(shim::PosixFileSystem(), path, *reg).ok());
  auto back = LoadRegistration(shim::PosixFileSystem(), path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->agent_key, reg->agent_key);
  EXPECT_EQ(back->cs, "127.0.0.1:" + std::to_string(server_->port()));

  // A known id with a wrong key, and an unknown id: refused, audited.
  CsRegistration forged = *reg;
  forged.agent_key = std::string(32, 'x');
  proto::CsWelcome w;
  auto c1 = ConnectRegistered(forged, "mt1", "0.1.0", 5s, &w);
  EXPECT_EQ(c1.status().code(), Errc::kAuth);
  EXPECT_NE(c1.status().message().find("wrong agent key"), std::string::npos) << c1.status().ToString();
  forged = *reg;
  forged.agent_id = "agent-9";
  auto c2 = ConnectRegistered(forged, "mt1", "0.1.0", 5s, &w);
  EXPECT_EQ(c2.status().code(), Errc::kAuth);
  EXPECT_NE(c2.status().message().find("not known"), std::string::npos) << c2.status().ToString();
  auto ok = ConnectRegistered(*reg, "mt1", "0.1.0", 5s, &w);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(w.heartbeat_ms(), 300u);
}

TEST_F(CsLinkTest, TheServerDeliversQueuedRequestsAndStoresWhatTheAgentReports) {
  StartServer();
  auto reg = Register(Req(kPass));
  ASSERT_TRUE(reg.ok()) << reg.status().ToString();
  ASSERT_TRUE(SaveRegistration(shim::PosixFileSystem(), RegistrationPath(dir_ + "/agent-cs"), *reg).ok());
  StartLink();
  ASSERT_TRUE(Eventually([&] { return link_->State() == "connected"; })) << link_->State();
  ASSERT_TRUE(Eventually([&] {
    auto a = store_->GetAgent("agent-1");
    auto h = store_->GetHealth("agent-1");
    auto i = store_->GetInventory("agent-1");
    auto j = store_->GetJob("agent-1", "j1");
    return a.ok() && *a && (*a)->connected && h.ok() && *h && i.ok() && *i && j.ok() && *j;
  }));
  EXPECT_EQ((*store_->GetHealth("agent-1"))->pairs(0).name(), "vm1");
  EXPECT_EQ((*store_->GetJob("agent-1", "j1"))->state(), "succeeded");

  // Requests go one at a time, in order, and their answers are stored.
  proto::ControlRequest list, status;
  list.mutable_list_pairs();
  status.mutable_get_status();
  auto s1 = store_->QueueRequest("agent-1", list, 1);
  auto s2 = store_->QueueRequest("agent-1", status, 2);
  ASSERT_TRUE(s1.ok() && s2.ok());
  EXPECT_EQ(*s1, 1u);
  EXPECT_EQ(*s2, 2u);
  ASSERT_TRUE(Eventually([&] {
    auto r = store_->GetRequest("agent-1", 2);
    return r.ok() && *r && (*r)->state == "answered";
  }));
  proto::ControlResponse r1, r2;
  ASSERT_TRUE(r1.ParseFromString((*store_->GetRequest("agent-1", 1))->response));
  ASSERT_TRUE(r2.ParseFromString((*store_->GetRequest("agent-1", 2))->response));
  EXPECT_EQ(r1.pairs().source(), "handled-2");
  EXPECT_EQ(r2.pairs().source(), "handled-3");
  EXPECT_EQ(handled_.load(), 2);
  // The agent recorded the highest seq it accepted.
  auto saved = LoadRegistration(shim::PosixFileSystem(), RegistrationPath(dir_ + "/agent-cs"));
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->last_seq, 2u);

  // The server gone: the link says so and comes back when it returns.
  const uint16_t port = server_->port();
  server_.reset();
  ASSERT_TRUE(Eventually([&] { return link_->State().rfind("down", 0) == 0; })) << link_->State();
  cs::CsServerOptions o;
  o.listen_host = "127.0.0.1";
  o.port = port;
  o.tls_dir = dir_ + "/cs-tls";
  o.passphrase = kPass;
  o.poll = 20ms;
  auto again = cs::CsServer::Start(o, *store_);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  server_ = std::move(*again);
  EXPECT_TRUE(Eventually([&] { return link_->State() == "connected"; })) << link_->State();
}

// A scripted CS: the test plays the server's side of one connection.
class ScriptedCs {
 public:
  explicit ScriptedCs(const std::string& tls_dir) {
    auto id = daemon::LoadOrCreateTlsIdentity(shim::PosixFileSystem(), tls_dir, "scripted-cs");
    EXPECT_TRUE(id.ok());
    identity_ = *id;
    auto ctx = LinkServerContext(identity_);
    EXPECT_TRUE(ctx.ok());
    ctx_ = std::move(*ctx);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 4), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~ScriptedCs() { ::close(fd_); }
  uint16_t port() const { return port_; }
  const std::string& fingerprint() const { return identity_.fingerprint; }

  // Accepts one connection and reads its hello after the challenge.
  std::unique_ptr<LinkChannel> Accept(LinkNonces* nonces, proto::CsHello* hello) {
    const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    auto ch = LinkChannel::Accept(c, *ctx_, 5s);
    EXPECT_TRUE(ch.ok()) << ch.status().ToString();
    nonces->cs_nonce = std::string(32, 'n');
    proto::CsToAgent m;
    m.mutable_challenge()->set_cs_nonce(nonces->cs_nonce);
    EXPECT_TRUE((*ch)->Send(m).ok());
    auto body = (*ch)->Receive(5s);
    EXPECT_TRUE(body.ok()) << body.status().ToString();
    proto::AgentToCs in;
    EXPECT_TRUE(ParseLinkMessage(*body, &in).ok());
    *hello = in.hello();
    nonces->agent_nonce = hello->agent_nonce();
    return std::move(*ch);
  }

 private:
  daemon::TlsIdentity identity_;
  std::unique_ptr<boost::asio::ssl::context> ctx_;
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A registration with the scripted CS as StartLink's link finds it (key "k"*32).
CsRegistration RegisteredWith(const ScriptedCs& cs, const std::string& cs_dir) {
  CsRegistration reg;
  reg.cs = "127.0.0.1:" + std::to_string(cs.port());
  reg.fingerprint = cs.fingerprint();
  reg.agent_id = "agent-1";
  reg.agent_key = std::string(32, 'k');
  EXPECT_TRUE(SaveRegistration(shim::PosixFileSystem(), RegistrationPath(cs_dir), reg).ok());
  return reg;
}

TEST_F(CsLinkTest, ACsThatCannotProveThePassphraseIsNotRegisteredWith) {
  ScriptedCs cs(dir_ + "/scripted-tls");
  std::thread server([&] {
    LinkNonces n;
    proto::CsHello hello;
    auto ch = cs.Accept(&n, &hello);
    // It welcomes the agent without knowing the passphrase.
    proto::CsToAgent w;
    w.mutable_welcome()->set_agent_id("agent-1");
    w.mutable_welcome()->set_cs_mac(std::string(32, 'm'));
    EXPECT_TRUE(ch->Send(w).ok());
    ch->Close();
  });
  RegisterRequest r;
  r.cs = "127.0.0.1:" + std::to_string(cs.port());
  r.passphrase = kPass;
  r.hostname = "mt1";
  r.timeout = 5s;
  auto reg = Register(r);
  server.join();
  EXPECT_EQ(reg.status().code(), Errc::kAuth);
  EXPECT_NE(reg.status().message().find("could not prove it knows the passphrase"), std::string::npos)
      << reg.status().ToString();
}

TEST_F(CsLinkTest, ARequestDeliveredAgainIsAnsweredAgainAndAReplayedOrOutOfOrderOneIsRefused) {
  ScriptedCs cs(dir_ + "/scripted-tls");
  const CsRegistration reg = RegisteredWith(cs, dir_ + "/agent-cs");
  std::vector<proto::CsResponse> answers;
  std::thread server([&] {
    LinkNonces n;
    proto::CsHello hello;
    auto ch = cs.Accept(&n, &hello);
    EXPECT_TRUE(VerifyLinkMac(reg.agent_key, LinkRole::kAgentProof, n, cs.fingerprint(), "agent-1",
                              hello.mac(), "bad").ok());
    proto::CsToAgent w;
    w.mutable_welcome()->set_agent_id("agent-1");
    EXPECT_TRUE(ch->Send(w).ok());
    auto send = [&](uint64_t seq, bool status) {
      proto::CsToAgent m;
      m.mutable_request()->set_seq(seq);
      if (status) m.mutable_request()->mutable_request()->mutable_get_status();
      else m.mutable_request()->mutable_request()->mutable_list_pairs();
      EXPECT_TRUE(ch->Send(m).ok());
      // Skip heartbeats, inventory and jobs until the response comes.
      while (true) {
        auto body = ch->Receive(5s);
        if (!body.ok()) {
          ADD_FAILURE() << body.status().ToString();
          return;
        }
        proto::AgentToCs in;
        EXPECT_TRUE(ParseLinkMessage(*body, &in).ok());
        if (in.has_response()) {
          answers.push_back(in.response());
          return;
        }
      }
    };
    send(1, false);  // accepted
    send(1, false);  // the same again (after a reconnect, say): answered again
    send(1, true);   // seq 1 with other bytes: replayed
    send(3, false);  // accepted (seqs need not be dense)
    send(2, false);  // below the highest: out of order
    ch->Close();
  });
  StartLink();
  server.join();
  link_->Stop();
  ASSERT_EQ(answers.size(), 5u);
  EXPECT_FALSE(answers[0].response().has_error());
  EXPECT_FALSE(answers[1].response().has_error());
  EXPECT_TRUE(answers[2].response().has_error());
  EXPECT_NE(answers[2].response().error().message().find("replayed or out of order"), std::string::npos);
  EXPECT_FALSE(answers[3].response().has_error());
  EXPECT_TRUE(answers[4].response().has_error());
  EXPECT_EQ(answers[4].seq(), 2u);
  EXPECT_EQ(handled_.load(), 3) << "a refused request ran";
  auto saved = LoadRegistration(shim::PosixFileSystem(), RegistrationPath(dir_ + "/agent-cs"));
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->last_seq, 3u);
}

// Three master targets on one CS: each its own registration and link; the
// CS places a new protection on the one that sees the targets free and has
// the fewest protected disks, and a request reaches only its agent.
TEST_F(CsLinkTest, ThreeAgentsShareOneServerAndANewProtectionGoesToTheOneWithRoom) {
  StartServer();
  struct Fake {
    std::string shared_role;  // role of naa.a1 on this agent
    int protected_disks;
    std::atomic<int> handled{0};
  };
  Fake fakes[3] = {{"target", 0, {}}, {"free", 3, {}}, {"free", 1, {}}};
  std::vector<std::unique_ptr<CsLink>> links;
  for (int i = 0; i < 3; ++i) {
    RegisterRequest r = Req(kPass);
    r.hostname = "mt" + std::to_string(i);
    auto reg = Register(r);
    ASSERT_TRUE(reg.ok()) << reg.status().ToString();
    const std::string cs_dir = dir_ + "/agent-cs-" + std::to_string(i);
    ASSERT_TRUE(SaveRegistration(shim::PosixFileSystem(), RegistrationPath(cs_dir), *reg).ok());
    Fake* f = &fakes[i];
    CsLinkOptions o;
    o.cs_dir = cs_dir;
    o.hostname = r.hostname;
    o.heartbeat = 200ms;
    o.job_poll = 50ms;
    o.max_backoff = 1s;
    CsLinkHooks h;
    h.handle = [f](const proto::ControlRequest&) {
      ++f->handled;
      return proto::ControlResponse();
    };
    h.status = [f] {
      proto::AgentStatus st;
      st.set_retention_capacity_bytes(100ull << 30);
      st.set_retention_available_bytes(50ull << 30);
      auto* p = st.add_pairs();
      p->set_state("protected");
      for (int d = 0; d < f->protected_disks; ++d) p->add_disks();
      return Result<proto::AgentStatus>(st);
    };
    h.inventory = [f, i] {
      proto::Inventory inv;
      auto* a = inv.add_disks();
      a->set_wwid("naa.a1");
      a->set_role(f->shared_role);
      a->set_can_be_target(true);
      auto* b = inv.add_disks();
      b->set_wwid("naa.b" + std::to_string(i));
      b->set_role("free");
      b->set_can_be_target(true);
      return Result<proto::Inventory>(inv);
    };
    links.push_back(std::make_unique<CsLink>(o, h));
    links.back()->Start();
  }
  ASSERT_TRUE(Eventually([&] {
    for (int i = 1; i <= 3; ++i) {
      const std::string id = "agent-" + std::to_string(i);
      auto a = store_->GetAgent(id);
      auto h = store_->GetHealth(id);
      auto inv = store_->GetInventory(id);
      if (!a.ok() || !*a || !(*a)->connected || !h.ok() || !*h || !inv.ok() || !*inv) return false;
    }
    return true;
  }));
  // naa.a1 is free on agents 2 and 3; agent 3 has fewer protected disks.
  auto placed = cs::PlaceProtection(*store_, {"naa.a1"});
  ASSERT_TRUE(placed.ok()) << placed.status().ToString();
  EXPECT_EQ(placed->id, "agent-3");
  EXPECT_EQ(placed->hostname, "mt2");
  // Only agent 2 sees naa.b1.
  placed = cs::PlaceProtection(*store_, {"naa.a1", "naa.b1"});
  ASSERT_TRUE(placed.ok()) << placed.status().ToString();
  EXPECT_EQ(placed->id, "agent-2");
  // Nobody can take naa.b0 with naa.a1: each agent's reason is given.
  placed = cs::PlaceProtection(*store_, {"naa.b0", "naa.a1"});
  ASSERT_FALSE(placed.ok());
  EXPECT_EQ(placed.status().code(), Errc::kNotFound);
  EXPECT_NE(placed.status().message().find("agent-1: naa.a1 is target"), std::string::npos)
      << placed.status().message();
  EXPECT_NE(placed.status().message().find("agent-2: does not see naa.b0"), std::string::npos);
  EXPECT_EQ(cs::LoadOf(*store_->GetHealth("agent-2").value()).protected_disks, 3);

  // A request for agent 2 reaches agent 2 only.
  proto::ControlRequest list;
  list.mutable_list_pairs();
  auto seq = store_->QueueRequest("agent-2", list, 1);
  ASSERT_TRUE(seq.ok());
  ASSERT_TRUE(Eventually([&] {
    auto r = store_->GetRequest("agent-2", *seq);
    return r.ok() && *r && (*r)->state == "answered";
  }));
  EXPECT_EQ(fakes[0].handled.load(), 0);
  EXPECT_EQ(fakes[1].handled.load(), 1);
  EXPECT_EQ(fakes[2].handled.load(), 0);
  for (auto& l : links) l->Stop();
}

TEST_F(CsLinkTest, AMessageOverTheSizeLimitEndsTheLinkAndNothingRuns) {
  ScriptedCs cs(dir_ + "/scripted-tls");
  const CsRegistration reg = RegisteredWith(cs, dir_ + "/agent-cs");
  Status ended;
  std::thread server([&] {
    LinkNonces n;
    proto::CsHello hello;
    auto ch = cs.Accept(&n, &hello);
    proto::CsToAgent w;
    w.mutable_welcome()->set_agent_id("agent-1");
    EXPECT_TRUE(ch->Send(w).ok());
    // A header declaring 5 MiB (the limit is 4 MiB), then the start of a body.
    const uint32_t n_bytes = 5u << 20;
    std::string raw(reinterpret_cast<const char*>(&n_bytes), 4);
    raw += std::string(1024, 'x');
    EXPECT_TRUE(ch->SendRaw(raw).ok());
    // The agent hangs up.
    while (true) {
      auto body = ch->Receive(5s);
      if (!body.ok()) {
        ended = body.status();
        return;
      }
    }
  });
  StartLink();
  server.join();
  EXPECT_NE(ended.code(), Errc::kBusy) << "the agent kept the link: " << ended.ToString();
  EXPECT_TRUE(Eventually([&] { return link_->State().find("limit") != std::string::npos; }))
      << link_->State();
  link_->Stop();
  EXPECT_EQ(handled_.load(), 0);
}

TEST(CsLinkAuth, TheMacBindsEveryPieceOfTheTranscript) {
  LinkNonces n{std::string(32, 'c'), std::string(32, 'a')};
  const std::string fp(64, 'f');
  auto base = LinkMac("key", LinkRole::kAgentProof, n, fp, "agent-1");
  ASSERT_TRUE(base.ok());
  EXPECT_TRUE(VerifyLinkMac("key", LinkRole::kAgentProof, n, fp, "agent-1", *base, "x").ok());
  EXPECT_EQ(VerifyLinkMac("other", LinkRole::kAgentProof, n, fp, "agent-1", *base, "x").code(), Errc::kAuth);
  EXPECT_EQ(VerifyLinkMac("key", LinkRole::kCsProof, n, fp, "agent-1", *base, "x").code(), Errc::kAuth);
  EXPECT_EQ(VerifyLinkMac("key", LinkRole::kAgentProof, n, std::string(64, 'e'), "agent-1", *base, "x").code(), Errc::kAuth);
  EXPECT_EQ(VerifyLinkMac("key", LinkRole::kAgentProof, n, fp, "agent-2", *base, "x").code(), Errc::kAuth);
  LinkNonces m = n;
  m.agent_nonce[0] = 'b';
  EXPECT_EQ(VerifyLinkMac("key", LinkRole::kAgentProof, m, fp, "agent-1", *base, "x").code(), Errc::kAuth);
  EXPECT_EQ(VerifyLinkMac("key", LinkRole::kAgentProof, n, fp, "agent-1", "short", "x").code(), Errc::kProtocol);
  LinkNonces bad{std::string(31, 'c'), std::string(32, 'a')};
  EXPECT_EQ(LinkMac("key", LinkRole::kAgentProof, bad, fp, "").status().code(), Errc::kProtocol);
}

TEST(CsLinkAddress, HostAndPortAreParsedWithTheDefaultPort) {
  std::string h;
  uint16_t p = 0;
  ASSERT_TRUE(ParseHostPort("cs.example.com", &h, &p).ok());
  EXPECT_EQ(h, "cs.example.com");
  EXPECT_EQ(p, 443);
  ASSERT_TRUE(ParseHostPort("10.0.0.5:8443", &h, &p).ok());
  EXPECT_EQ(h, "10.0.0.5");
  EXPECT_EQ(p, 8443);
  ASSERT_TRUE(ParseHostPort("[::1]:9000", &h, &p).ok());
  EXPECT_EQ(h, "::1");
  EXPECT_EQ(p, 9000);
  EXPECT_FALSE(ParseHostPort("host:0", &h, &p).ok());
  EXPECT_FALSE(ParseHostPort("host:x", &h, &p).ok());
  EXPECT_FALSE(ParseHostPort(":443", &h, &p).ok());
}

}  // namespace
}  // namespace mt::cslink
