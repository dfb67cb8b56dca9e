// mt-cs's dashboard without a browser: WebAuth (login, throttling, expiry,
// CSRF), WebApi on a real CsStore (routes, validation of actions, audit
// lines, jobs started through the request queue with a scripted agent), and
// WebServer over real TLS on 127.0.0.1 (security headers, limits).
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "cs/cs_store.h"
#include "cs/web_api.h"
#include "cs/web_auth.h"
#include "cs/web_server.h"
#include "https_client.h"
#include "mt/shim/clock.h"

namespace mt::cs {
namespace {

using namespace std::chrono_literals;
constexpr char kToken[] = "a-token-of-24-characters";
constexpr int64_t kSec = 1'000'000'000;

int64_t Now() { return shim::SystemClock().NowNs(); }

TEST(WebAuth, ATokenShorterThan16CharactersIsRefused) {
  auto a = WebAuth::Create("short");
  EXPECT_EQ(a.status().code(), Errc::kInvalidArgument);
  EXPECT_NE(a.status().message().find("openssl rand"), std::string::npos);
  EXPECT_TRUE(WebAuth::Create(kToken).ok());
}

TEST(WebAuth, LoginGivesASessionWithItsOwnCsrfTokenAndLogoutEndsIt) {
  WebAuth auth(kToken);
  const int64_t t = 1000 * kSec;
  auto s = auth.Login(kToken, t);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->id.size(), 64u);
  EXPECT_EQ(s->csrf.size(), 64u);
  EXPECT_NE(s->id, s->csrf);
  auto found = auth.Find(s->id, t + kSec);
  ASSERT_TRUE(found.has_value());
  EXPECT_TRUE(WebAuth::CsrfMatches(*found, s->csrf));
  EXPECT_FALSE(WebAuth::CsrfMatches(*found, ""));
  EXPECT_FALSE(WebAuth::CsrfMatches(*found, s->id));
  EXPECT_FALSE(auth.Find("not-a-session", t).has_value());
  auth.Logout(s->id);
  EXPECT_FALSE(auth.Find(s->id, t + 2 * kSec).has_value());
}

TEST(WebAuth, ASessionEndsWhenIdleForAnHourOrTwelveHoursAfterLogin) {
  WebAuth auth(kToken);
  const int64_t t = 1000 * kSec;
  auto idle = auth.Login(kToken, t);
  ASSERT_TRUE(idle.ok());
  EXPECT_FALSE(auth.Find(idle->id, t + WebAuth::kIdleNs).has_value());
  auto busy = auth.Login(kToken, t);
  ASSERT_TRUE(busy.ok());
  int64_t now = t;
  while (now + 1800 * kSec < t + WebAuth::kLifeNs) {  // used every half hour
    now += 1800 * kSec;
    ASSERT_TRUE(auth.Find(busy->id, now).has_value()) << (now - t) / kSec;
  }
  EXPECT_FALSE(auth.Find(busy->id, t + WebAuth::kLifeNs).has_value());
}

TEST(WebAuth, FiveFailedLoginsInAMinuteRefuseEveryLoginUntilTheMinuteIsOver) {
  WebAuth auth(kToken);
  const int64_t t = 1000 * kSec;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(auth.Login("wrong", t + i).status().code(), Errc::kPermissionDenied);
  EXPECT_EQ(auth.Login(kToken, t + 10).status().code(), Errc::kBusy);  // even the right one
  EXPECT_EQ(auth.CheckBearer(kToken, t + 11).code(), Errc::kBusy);
  EXPECT_TRUE(auth.Login(kToken, t + 61 * kSec).ok());
  // Wrong bearer tokens count as failed logins too.
  EXPECT_TRUE(auth.CheckBearer(kToken, t + 62 * kSec).ok());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(auth.CheckBearer("guess", t + 63 * kSec + i).code(), Errc::kPermissionDenied);
  EXPECT_EQ(auth.Login(kToken, t + 64 * kSec).status().code(), Errc::kBusy);
}

TEST(WebAuth, CookieValuesAreFoundByName) {
  EXPECT_EQ(CookieValue("a=1; mtcs_session=XYZ; b=2", "mtcs_session"), "XYZ");
  EXPECT_EQ(CookieValue("mtcs_session=XYZ", "mtcs_session"), "XYZ");
  EXPECT_EQ(CookieValue("xmtcs_session=XYZ", "mtcs_session"), "");
  EXPECT_EQ(CookieValue("", "mtcs_session"), "");
}

class WebApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = "/tmp/mt-web-XXXXXX";
    ASSERT_NE(mkdtemp(t.data()), nullptr);
    dir_ = t;
    auto store = CsStore::Open(dir_ + "/cs.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    AgentRow a;
    a.hostname = "mt1";
    a.version = "0.1.0";
    a.key = "k";
    a.registered_ns = Now();
    ASSERT_EQ(store_->AddAgent(a).value(), "agent-1");
    // Its heartbeat: vm-a and vm-b in group g1, one disk each.
    for (const char* name : {"vm-a", "vm-b"}) {
      auto* p = status_.add_pairs();
      p->set_name(name);
      p->set_group("g1");
      p->set_state("protected");
      p->set_rpo_ns(3 * kSec);
      auto* d = p->add_disks();
      d->set_disk(0);
      d->set_target_id(std::string("naa.6000c29") + (name[3] == 'a' ? "a" : "b"));
    }
    status_.set_retention_capacity_bytes(1 << 30);
    status_.set_retention_available_bytes(3 << 28);
    const int64_t now = Now();
    ASSERT_TRUE(store_->SaveHealth("agent-1", status_, now - 30 * kSec).ok());
    status_.mutable_pairs(0)->set_bytes_applied(20 << 20);  // 20 MiB in 20 s
    ASSERT_TRUE(store_->SaveHealth("agent-1", status_, now - 10 * kSec).ok());
    auth_ = std::make_unique<WebAuth>(kToken);
    api_ = std::make_unique<WebApi>(*store_, *auth_, 5000ms);
  }
  void TearDown() override {
    api_.reset();
    store_.reset();
    if (!dir_.empty()) (void)std::system(("rm -rf " + dir_).c_str());
  }

  WebResponse Call(const std::string& method, const std::string& target, const std::string& body = "",
                   std::map<std::string, std::string> headers = {}) {
    WebRequest r;
    r.method = method;
    r.target = target;
    r.body = body;
    r.headers = std::move(headers);
    r.remote = "192.0.2.7:5555";
    return api_->Handle(r);
  }
  // Logs in; the cookie and CSRF headers for the next calls.
  std::map<std::string, std::string> LogIn() {
    auto r = Call("POST", "/api/login", std::string("{\"token\":\"") + kToken + "\"}");
    EXPECT_EQ(r.status, 200) << r.body;
    std::string cookie;
    for (const auto& [k, v] : r.headers)
      if (k == "Set-Cookie") cookie = v.substr(0, v.find(';'));
    const auto at = r.body.find("\"csrf_token\":\"");
    EXPECT_NE(at, std::string::npos) << r.body;
    return {{"cookie", cookie}, {"x-csrf-token", r.body.substr(at + 14, 64)}};
  }
  bool Audited(const std::string& text) {
    auto lines = store_->AuditLines(100);
    if (!lines.ok()) return false;
    for (const std::string& l : *lines)
      if (l.find(text) != std::string::npos) return true;
    return false;
  }

  std::string dir_;
  proto::AgentStatus status_;
  std::unique_ptr<CsStore> store_;
  std::unique_ptr<WebAuth> auth_;
  std::unique_ptr<WebApi> api_;
};

TEST_F(WebApiTest, AStoreOfSchemaVersion1GetsTheSamplesTableAndOldSamplesArePruned) {
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/cs.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE samples; PRAGMA user_version = 1;", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto reopened = CsStore::Open(dir_ + "/cs.db");
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  store_ = std::move(*reopened);
  EXPECT_EQ(store_->GetAgent("agent-1").value()->hostname, "mt1");  // the rest kept
  const int64_t t = Now();
  ASSERT_TRUE(store_->SaveHealth("agent-1", status_, t - CsStore::kSampleKeepNs - 60 * kSec).ok());
  ASSERT_TRUE(store_->SaveHealth("agent-1", status_, t - 5 * kSec).ok());      // a new set
  ASSERT_TRUE(store_->SaveHealth("agent-1", status_, t - 5 * kSec + 1).ok());  // within 10 s: none
  auto rows = store_->Samples("agent-1", 0);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 3u) << "one set (agent + 2 streams); the one older than 25 h pruned";
}

TEST_F(WebApiTest, NothingButTheLoginPageAndItsFilesWithoutALogin) {
  EXPECT_EQ(Call("GET", "/api/agents").status, 401);
  EXPECT_EQ(Call("GET", "/api/jobs").status, 401);
  EXPECT_EQ(Call("POST", "/api/agents/agent-1/jobs", "{}").status, 401);
  auto root = Call("GET", "/");
  EXPECT_EQ(root.status, 303);
  ASSERT_EQ(root.headers.size(), 1u);
  EXPECT_EQ(root.headers[0], std::make_pair(std::string("Location"), std::string("/login")));
  auto login = Call("GET", "/login");
  EXPECT_EQ(login.status, 200);
  EXPECT_NE(login.body.find("<form id=\"login-form\">"), std::string::npos);
  EXPECT_EQ(Call("GET", "/static/app.js").content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(Call("GET", "/static/style.css").status, 200);
  EXPECT_EQ(Call("GET", "/static/nope.js").status, 404);
  // A cookie that names no session is no login.
  EXPECT_EQ(Call("GET", "/api/agents", "", {{"cookie", "mtcs_session=0123"}}).status, 401);
  EXPECT_EQ(Call("GET", "/api/agents", "", {{"authorization", "Bearer not-the-token"}}).status, 401);
  EXPECT_TRUE(Audited("web: refused a bearer token from 192.0.2.7:5555: wrong token"));
}

TEST_F(WebApiTest, AFailedLoginIsRefusedAndAuditedAndALoginSetsASecureHttpOnlyCookie) {
  auto bad = Call("POST", "/api/login", "{\"token\":\"wrong\"}");
  EXPECT_EQ(bad.status, 401);
  EXPECT_NE(bad.body.find("wrong token"), std::string::npos);
  EXPECT_TRUE(bad.headers.empty());
  EXPECT_TRUE(Audited("web: failed login from 192.0.2.7:5555: wrong token"));
  EXPECT_EQ(Call("POST", "/api/login", "not json").status, 400);
  auto good = Call("POST", "/api/login", std::string("{\"token\":\"") + kToken + "\"}");
  ASSERT_EQ(good.status, 200) << good.body;
  ASSERT_EQ(good.headers.size(), 1u);
  const std::string cookie = good.headers[0].second;
  EXPECT_EQ(good.headers[0].first, "Set-Cookie");
  EXPECT_EQ(cookie.rfind("mtcs_session=", 0), 0u);
  for (const char* attr : {"; Secure", "; HttpOnly", "; SameSite=Strict", "; Path=/"})
    EXPECT_NE(cookie.find(attr), std::string::npos) << cookie;
  EXPECT_TRUE(Audited("web: login from 192.0.2.7:5555"));
  auto h = LogIn();
  auto session = Call("GET", "/api/session", "", {{"cookie", h["cookie"]}});
  EXPECT_EQ(session.status, 200);
  EXPECT_NE(session.body.find(h["x-csrf-token"]), std::string::npos);
  EXPECT_EQ(Call("GET", "/", "", {{"cookie", h["cookie"]}}).status, 200);
  // Logout needs the CSRF token too, and ends the session.
  EXPECT_EQ(Call("POST", "/api/logout", "{}", {{"cookie", h["cookie"]}}).status, 403);
  EXPECT_EQ(Call("POST", "/api/logout", "{}", h).status, 200);
  EXPECT_EQ(Call("GET", "/api/agents", "", {{"cookie", h["cookie"]}}).status, 401);
}

TEST_F(WebApiTest, ListingsComeFromTheStoreWithRatesFromTheSamples) {
  auto h = LogIn();
  h.erase("x-csrf-token");
  auto agents = Call("GET", "/api/agents", "", h);
  ASSERT_EQ(agents.status, 200);
  EXPECT_NE(agents.body.find("\"id\":\"agent-1\""), std::string::npos) << agents.body;
  EXPECT_NE(agents.body.find("\"hostname\":\"mt1\""), std::string::npos);
  auto streams = Call("GET", "/api/streams", "", h);
  ASSERT_EQ(streams.status, 200);
  EXPECT_NE(streams.body.find("\"name\":\"vm-a\""), std::string::npos) << streams.body;
  // 20 MiB over the 20 s between the two samples.
  EXPECT_NE(streams.body.find("\"applied_bytes_per_second\":1048576"), std::string::npos) << streams.body;
  auto history = Call("GET", "/api/history?agent=agent-1", "", h);
  ASSERT_EQ(history.status, 200);
  size_t rows = 0;
  for (size_t at = history.body.find("\"agent\":"); at != std::string::npos; at = history.body.find("\"agent\":", at + 1)) ++rows;
  EXPECT_EQ(rows, 6u) << history.body;  // 2 samples x (agent row + 2 streams)
  EXPECT_EQ(Call("GET", "/api/history?hours=99", "", h).status, 400);
  // The alerts: the agent is not connected.
  auto alerts = Call("GET", "/api/alerts", "", h);
  EXPECT_NE(alerts.body.find("agent-down"), std::string::npos) << alerts.body;
  EXPECT_EQ(Call("GET", "/api/agents/agent-9/disks", "", h).status, 404);
  EXPECT_EQ(Call("GET", "/api/agents/agent-1/disks", "", h).status, 404);  // no inventory yet
  // Points are asked of the agent: not while it is down.
  EXPECT_EQ(Call("GET", "/api/agents/agent-1/points?group=g1", "", h).status, 503);
  // The token works as a bearer for API users.
  EXPECT_EQ(Call("GET", "/api/streams", "", {{"authorization", std::string("Bearer ") + kToken}}).status, 200);
}

TEST_F(WebApiTest, AnActionWithoutTheCsrfTokenOrWithBadInputIsRefusedAndNothingIsQueued) {
  auto h = LogIn();
  const std::string rollback = "{\"rollback\":{\"group\":\"g1\",\"to\":\"latest-app\"}}";
  auto no_csrf = Call("POST", "/api/agents/agent-1/jobs", rollback, {{"cookie", h["cookie"]}});
  EXPECT_EQ(no_csrf.status, 403);
  EXPECT_TRUE(Audited("without a valid CSRF token"));
  auto wrong_csrf = Call("POST", "/api/agents/agent-1/jobs", rollback,
                         {{"cookie", h["cookie"]}, {"x-csrf-token", std::string(64, 'f')}});
  EXPECT_EQ(wrong_csrf.status, 403);
  struct Case {
    std::string body;
    int status;
    std::string why;
  };
  for (const Case& c : std::vector<Case>{
           {"not json", 400, "not a JobSpec"},
           {"{\"rollback\":{\"streams\":[\"vm-z\"],\"to\":\"latest\"}}", 400, "protects no stream 'vm-z'"},
           {"{\"rollback\":{\"streams\":[\"vm-a\",\"vm-a\"],\"to\":\"latest\"}}", 400, "named twice"},
           {"{\"rollback\":{\"streams\":[\"vm-a\"]}}", 400, "needs a point"},
           {"{\"rollback\":{\"group\":\"g9\",\"to\":\"latest\"}}", 400, "no stream in group 'g9'"},
           {"{\"export_disk\":{\"stream\":\"vm-a\",\"disk\":0,\"at\":\"latest\",\"out\":\"rel/path\"}}", 400, "absolute path"},
           {"{\"export_disk\":{\"stream\":\"vm-a\",\"disk\":0,\"at\":\"latest\",\"out\":\"/a/../etc/x\"}}", 400, "absolute path"},
           {"{\"export_disk\":{\"stream\":\"vm-a\",\"disk\":3,\"at\":\"latest\",\"out\":\"/tmp/x\"}}", 400, "has no disk 3"},
           {"{\"vsnap_create\":{\"stream\":\"vm-a\",\"disk\":0,\"at\":\"latest\",\"name\":\"a b\"}}", 400, "vsnap name"},
           {"{\"vsnap_remove\":{}}", 400, "needs the vsnap's name"},
           {"{\"commit\":{}}", 400, "needs streams"},
           {"{\"release\":{\"stream\":\"vm-a\"}}", 400, "the dashboard starts"},
           // Valid, but the agent is not connected.
           {rollback, 503, "not connected"},
       }) {
    auto r = Call("POST", "/api/agents/agent-1/jobs", c.body, h);
    EXPECT_EQ(r.status, c.status) << c.body << " -> " << r.body;
    EXPECT_NE(r.body.find(c.why), std::string::npos) << c.body << " -> " << r.body;
  }
  EXPECT_TRUE(Audited("web: refused rollback of vm-z to 'latest' from 192.0.2.7:5555: the agent protects no stream 'vm-z'"));
  EXPECT_FALSE(store_->NextRequest("agent-1").value().has_value());  // nothing went to the agent
  // With the bearer token no CSRF token is needed (no cookie, no browser).
  auto bearer = Call("POST", "/api/agents/agent-1/jobs", "{\"commit\":{}}",
                     {{"authorization", std::string("Bearer ") + kToken}});
  EXPECT_EQ(bearer.status, 400);
}

TEST_F(WebApiTest, AValidActionStartsTheAgentsJobThroughTheRequestQueueAndIsAudited) {
  ASSERT_TRUE(store_->SetConnected("agent-1", true, "127.0.0.1:1", Now()).ok());
  auto h = LogIn();
  // The agent: answers the first request with its job, queued.
  proto::ControlRequest seen;
  std::thread agent([&] {
    for (int i = 0; i < 200; ++i) {
      auto next = store_->NextRequest("agent-1");
      if (next.ok() && *next) {
        seen.ParseFromString((*next)->request);
        proto::ControlResponse resp;
        resp.mutable_job()->set_id(seen.start_job().id());
        resp.mutable_job()->set_kind("rollback");
        resp.mutable_job()->set_state("queued");
        ASSERT_TRUE(store_->Answer("agent-1", (*next)->seq, resp, Now()).ok());
        return;
      }
      std::this_thread::sleep_for(20ms);
    }
  });
  auto r = Call("POST", "/api/agents/agent-1/jobs", "{\"rollback\":{\"group\":\"g1\",\"to\":\"group-tag:g1-4\"}}", h);
  agent.join();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"state\":\"queued\""), std::string::npos) << r.body;
  // The group's streams were filled in from the heartbeat.
  ASSERT_TRUE(seen.has_start_job());
  ASSERT_EQ(seen.start_job().spec().rollback().streams_size(), 2);
  EXPECT_EQ(seen.start_job().spec().rollback().streams(0), "vm-a");
  EXPECT_EQ(seen.start_job().spec().rollback().to(), "group-tag:g1-4");
  EXPECT_EQ(seen.start_job().id().rfind("cs-", 0), 0u);
  EXPECT_TRUE(Audited("web: 192.0.2.7:5555 started job " + seen.start_job().id() +
                      ": rollback of vm-a,vm-b to 'group-tag:g1-4'"));
}

TEST_F(WebApiTest, TheServerSpeaksHttpsWithSecurityHeadersAndLimits) {
  WebServerOptions o;
  o.listen_host = "127.0.0.1";
  o.port = 0;
  o.tls_dir = dir_ + "/web-tls";
  auto server = WebServer::Start(o, *api_);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const uint16_t port = (*server)->port();
  EXPECT_EQ((*server)->fingerprint().size(), 64u);
  auto login = test::Https(port, "GET", "/login");
  ASSERT_EQ(login.status, 200) << login.error;
  EXPECT_EQ(login.Header("Content-Security-Policy"), "default-src 'self'; frame-ancestors 'none'; form-action 'self'");
  EXPECT_EQ(login.Header("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(login.Header("X-Frame-Options"), "DENY");
  EXPECT_EQ(login.Header("Cache-Control"), "no-store");
  auto in = test::Https(port, "POST", "/api/login", std::string("{\"token\":\"") + kToken + "\"}");
  ASSERT_EQ(in.status, 200) << in.error;
  EXPECT_NE(in.Header("Set-Cookie").find("HttpOnly"), std::string::npos);
  auto big = test::Https(port, "POST", "/api/login", std::string(100 * 1024, 'x'));
  EXPECT_EQ(big.status, 413) << big.error;
  (*server)->Stop();
  EXPECT_EQ(test::Https(port, "GET", "/login").status, 0);
}

}  // namespace
}  // namespace mt::cs
