// mt-cs's dashboard against a live mt-agent on 127.0.0.1: the JSON API over
// real HTTPS (streams with their RPO, history, points asked of the agent, a
// group rolled back to a chosen group tag as the agent's job, refusals
// audited), and the page itself driven in headless Chromium by
// tests/web/dashboard-browser (log in, the RPO, the timeline, roll back, the
// job's end; a wrong token and a POST without the CSRF token refused), with
// screenshots in <build>/test-artifacts/dashboard/.
#include <gtest/gtest.h>

#include <iterator>

#include "cs_fixture.h"
#include "https_client.h"
#include "mt/cs_web.pb.h"

namespace mt {
namespace {

class CsWebTest : public CsFixture {
 protected:
  // vm-a on loop 0 and vm-b on loop 1, group g1, protected from the CS; each
  // resynced to its own pattern, then group tag g1-1 (app), 40 writes, g1-2.
  void ProtectGroupWithTwoTags() {
    ASSERT_NO_FATAL_FAILURE(StartCs(0, true));
    ASSERT_NO_FATAL_FAILURE(Start());
    ASSERT_NO_FATAL_FAILURE(Register());
    for (int i = 0; i < 2; ++i) {
      const std::string s = i == 0 ? "vm-a" : "vm-b";
      auto prot = Cs({"protect", "--agent", "agent-1", "--stream", s, "--group", "g1", "--disk",
                      "0=" + loops_[i]->path(), "--timeout", "60s"});
      ASSERT_EQ(prot.exit_code, 0) << prot.err << Log();
      images_[i].assign(64ull << 20, static_cast<char>('a' + i));
      const std::string src = dir_ + "/" + s + ".img";
      std::ofstream(src, std::ios::binary).write(images_[i].data(), images_[i].size());
      ASSERT_EQ(Mtsend(s, {"resync", "--source", src, "--disk", "0", "--full"}).exit_code, 0) << Log();
      ASSERT_EQ(Mtsend(s, {"tag", "first-" + s, "--app", "--group-tag-id", "g1-1"}).exit_code, 0);
      ASSERT_EQ(Mtsend(s, {"workload", "--disks", "1", "--disk-size", "64M", "--count", "40", "--seed",
                           std::to_string(11 + i)}).exit_code, 0);
      ASSERT_EQ(Mtsend(s, {"tag", "second-" + s, "--app", "--group-tag-id", "g1-2"}).exit_code, 0);
    }
    // A heartbeat with both streams and their writes (an RPO).
    ASSERT_TRUE(Eventually([&] {
      proto::WebStreams streams;
      if (!google::protobuf::util::JsonStringToMessage(Api("GET", "/api/streams").body, &streams).ok()) return false;
      int with_rpo = 0;
      for (const auto& s : streams.streams()) with_rpo += s.pair().rpo_ns() >= 0 ? 1 : 0;
      return with_rpo == 2;
    }));
  }

  test::HttpsResponse Api(const std::string& method, const std::string& target, const std::string& body = "",
                          std::map<std::string, std::string> headers = {}) {
    if (headers.empty()) headers["Authorization"] = std::string("Bearer ") + kWebToken;
    auto r = test::Https(web_port_, method, target, body, headers);
    Log();
    return r;
  }

  std::vector<char> images_[2];
};

TEST_F(CsWebTest, TheApiShowsTheLiveAgentAndRollsAGroupBackToAChosenGroupTag) {
  ASSERT_NO_FATAL_FAILURE(ProtectGroupWithTwoTags());
  // Streams with their RPO from the heartbeats, the agent's retention space.
  proto::WebStreams streams;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(Api("GET", "/api/streams").body, &streams).ok());
  ASSERT_EQ(streams.streams_size(), 2);
  for (const auto& s : streams.streams()) {
    EXPECT_EQ(s.agent(), "agent-1");
    EXPECT_EQ(s.pair().group(), "g1");
    EXPECT_GE(s.pair().rpo_ns(), 0) << s.pair().name();
  }
  auto agents = Api("GET", "/api/agents");
  EXPECT_NE(agents.body.find("\"retention_capacity_bytes\""), std::string::npos) << agents.body;
  proto::WebHistory history;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(Api("GET", "/api/history").body, &history).ok());
  EXPECT_GE(history.samples_size(), 1);
  auto disks = Api("GET", "/api/agents/agent-1/disks");
  EXPECT_NE(disks.body.find(loops_[0]->path()), std::string::npos) << disks.body;
  // The group's points, asked of the agent: both group tags in both streams.
  auto points = Api("GET", "/api/agents/agent-1/points?group=g1");
  ASSERT_EQ(points.status, 200) << points.body;
  for (const char* tag : {"first-vm-a", "first-vm-b", "second-vm-a", "second-vm-b"})
    EXPECT_NE(points.body.find(tag), std::string::npos) << points.body;

  // A browser session: cookie + CSRF token; without the token, refused.
  auto login = test::Https(web_port_, "POST", "/api/login", std::string("{\"token\":\"") + kWebToken + "\"}");
  ASSERT_EQ(login.status, 200) << login.body << login.error;
  const std::string cookie = login.Header("Set-Cookie").substr(0, login.Header("Set-Cookie").find(';'));
  proto::WebSession session;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(login.body, &session).ok());
  const std::string rollback = R"({"rollback":{"group":"g1","to":"group-tag:g1-1"}})";
  auto refused = Api("POST", "/api/agents/agent-1/jobs", rollback, {{"Cookie", cookie}});
  EXPECT_EQ(refused.status, 403) << refused.body;
  auto bad = Api("POST", "/api/agents/agent-1/jobs", R"({"rollback":{"streams":["vm-z"],"to":"latest"}})",
                 {{"Cookie", cookie}, {"X-CSRF-Token", session.csrf_token()}});
  EXPECT_EQ(bad.status, 400) << bad.body;

  // The group back to g1-1, as the agent's job.
  auto started = Api("POST", "/api/agents/agent-1/jobs", rollback,
                     {{"Cookie", cookie}, {"X-CSRF-Token", session.csrf_token()}});
  ASSERT_EQ(started.status, 200) << started.body << Log();
  proto::WebJob job;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(started.body, &job).ok());
  auto state = [&] {
    proto::WebJobs jobs;
    (void)google::protobuf::util::JsonStringToMessage(Api("GET", "/api/jobs?agent=agent-1").body, &jobs);
    for (const auto& j : jobs.jobs())
      if (j.job().id() == job.job().id()) return j.job().state();
    return std::string("none");
  };
  ASSERT_TRUE(Eventually([&] { return state() == "succeeded" || state() == "failed"; })) << state();
  ASSERT_EQ(state(), "succeeded") << Log();
  EXPECT_TRUE(DeviceBytes(loops_[0]->path()) == images_[0]) << "vm-a is not at group tag g1-1";
  EXPECT_TRUE(DeviceBytes(loops_[1]->path()) == images_[1]) << "vm-b is not at group tag g1-1";
  // Export and commit from the API too: the same jobs as the CLI's.
  auto run = [&](const std::string& spec) {
    auto r = Api("POST", "/api/agents/agent-1/jobs", spec);
    proto::WebJob j;
    EXPECT_EQ(r.status, 200) << spec << " -> " << r.body;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.body, &j).ok()) << r.body;
    job = j;
    EXPECT_TRUE(Eventually([&] { return state() == "succeeded" || state() == "failed"; })) << state();
    return state();
  };
  const std::string out = dir_ + "/exported.img";
  EXPECT_EQ(run(R"({"export_disk":{"stream":"vm-b","disk":0,"at":"first-vm-b","out":")" + out + R"("}})"),
            "succeeded") << Log();
  std::ifstream exported(out, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(exported)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(bytes == images_[1]) << "the export of vm-b at first-vm-b is not its image there";
  EXPECT_EQ(run(R"({"commit":{"streams":["vm-b"]}})"), "succeeded") << Log();
  auto pairs = FromJson<proto::PairList>(Mtctl({"pairs", "--json"}).out);
  for (const auto& p : pairs.pairs())
    EXPECT_EQ(p.state(), p.name() == "vm-b" ? "committed" : "paused") << p.name();
  // A committed stream (gone from the heartbeats) is no longer one the dashboard acts on.
  ASSERT_TRUE(Eventually([&] {
    return Api("GET", "/api/streams").body.find("\"name\":\"vm-b\"") == std::string::npos;
  })) << Api("GET", "/api/streams").body;
  auto gone = Api("POST", "/api/agents/agent-1/jobs", R"({"commit":{"streams":["vm-b"]}})");
  EXPECT_EQ(gone.status, 400) << gone.body;
  auto audit = Cs({"audit"});
  EXPECT_NE(audit.out.find("rollback of vm-a,vm-b to 'group-tag:g1-1'"), std::string::npos) << audit.out;
  EXPECT_NE(audit.out.find(": commit of vm-b"), std::string::npos) << audit.out;
  EXPECT_NE(audit.out.find("without a valid CSRF token"), std::string::npos) << audit.out;
  EXPECT_NE(audit.out.find("refused rollback of vm-z"), std::string::npos) << audit.out;
}

TEST_F(CsWebTest, ABrowserLogsInSeesTheRpoPicksTheGroupTagAndRollsTheGroupBack) {
  for (const char* tool : {"/usr/bin/chromium", "/usr/bin/chromedriver"}) {
    if (access(tool, X_OK) != 0) {
      GTEST_SKIP() << tool << " is not installed (scripts/bootstrap installs chromium and chromium-driver)";
    }
  }
  ASSERT_NO_FATAL_FAILURE(ProtectGroupWithTwoTags());
  // The RPO chart needs a sample: the first heartbeat after the streams.
  ASSERT_TRUE(Eventually([&] { return Api("GET", "/api/history").body.find("\"stream\":\"vm-a\"") != std::string::npos; }));
  const std::string shots = std::string(MT_ARTIFACTS_DIR) + "/dashboard";
  test::Subprocess browser({MT_SOURCE_DIR "/tests/web/dashboard-browser", "--url",
                            "https://127.0.0.1:" + std::to_string(web_port_), "--token-file", web_token_,
                            "--agent", "agent-1", "--group", "g1", "--group-tag", "g1-1", "--stream", "vm-a",
                            "--shots", shots});
  ASSERT_TRUE(browser.started());
  std::string out;
  while (auto line = browser.ReadOutLine(300s)) {
    out += *line + "\n";
    Log();
  }
  const int rc = browser.Wait(30s);
  ASSERT_EQ(rc, 0) << out << browser.DrainErr() << "\nscreenshots: " << shots;
  std::cout << out << "screenshots: " << shots << std::endl;
  EXPECT_NE(out.find("PASS a wrong token is refused"), std::string::npos) << out;
  EXPECT_NE(out.find("PASS a POST without X-CSRF-Token is refused"), std::string::npos) << out;
  EXPECT_NE(out.find("PASS the rollback job"), std::string::npos) << out;
  EXPECT_EQ(access((shots + "/02-dashboard.png").c_str(), F_OK), 0);
  // What the page did is real: both targets at group tag g1-1.
  EXPECT_TRUE(DeviceBytes(loops_[0]->path()) == images_[0]) << "vm-a is not at group tag g1-1";
  EXPECT_TRUE(DeviceBytes(loops_[1]->path()) == images_[1]) << "vm-b is not at group tag g1-1";
  EXPECT_NE(Cs({"audit"}).out.find("web: failed login"), std::string::npos);
}

}  // namespace
}  // namespace mt
