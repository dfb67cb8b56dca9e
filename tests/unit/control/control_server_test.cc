// The control socket over a real Unix socket in a temp dir (no root needed:
// the server is told which uid to accept): request/response, the peer check,
// stale and busy sockets, bad frames, slow peers.
#include "control/control_server.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "control/control_client.h"
#include "control/framing.h"
#include "temp_tree.h"

namespace mt::control {
namespace {

using namespace std::chrono_literals;

TEST(ControlPeer, RootIsAllowed) {
  EXPECT_TRUE(CheckPeer({1234, 0, 0}, 0).ok());
}

TEST(ControlPeer, AnotherUidIsRefusedNamingItsPidAndUid) {
  Status s = CheckPeer({4321, 1000, 1000}, 0);
  EXPECT_EQ(s.code(), Errc::kPermissionDenied);
  EXPECT_NE(s.message().find("pid 4321"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("uid 1000"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("root"), std::string::npos) << s.message();
}

TEST(ControlResponses, EveryErrorCodeSurvivesTheTrip) {
  for (int c = static_cast<int>(Errc::kIoError); c <= static_cast<int>(Errc::kInternal); ++c) {
    const Status in(static_cast<Errc>(c), "what failed");
    const Status out = ResponseStatus(ErrorResponse(in));
    EXPECT_EQ(out.code(), in.code()) << ErrcName(in.code());
    EXPECT_EQ(out.message(), "what failed");
  }
  EXPECT_TRUE(ResponseStatus(proto::ControlResponse()).ok());
}

// Connects with plain POSIX calls (to send what a client would not).
int RawConnect(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads until EOF (or 5 s); what the server sent.
std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) break;
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

proto::ControlResponse Decode(const std::string& bytes) {
  ControlFrameDecoder d;
  EXPECT_TRUE(d.Put(bytes.data(), bytes.size()).ok());
  auto body = d.Next();
  proto::ControlResponse r;
  EXPECT_TRUE(body.has_value()) << "no complete response in " << bytes.size() << " bytes";
  if (body) {
    EXPECT_TRUE(ParseControlMessage(*body, &r).ok());
  }
  return r;
}

class ControlServerTest : public ::testing::Test {
 protected:
  std::string Path() const { return dir_.path() + "/run/control.sock"; }

  void StartServer(uint32_t uid, std::chrono::milliseconds timeout = 10s) {
    ControlServer::Options o;
    o.socket_path = Path();
    o.allowed_uid = uid;
    o.io_timeout = timeout;
    auto s = ControlServer::Start(o, [this](const proto::ControlRequest& r) {
      ++calls_;
      proto::ControlResponse out;
      if (r.has_pause()) {
        out.mutable_pair()->set_name(r.pause().stream());
        out.mutable_pair()->set_state("paused");
      } else {
        out = ErrorResponse(Status(Errc::kNotFound, "no such thing"));
      }
      return out;
    });
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
  }

  test::TempDir dir_;
  std::atomic<int> calls_{0};
  std::unique_ptr<ControlServer> server_;
};

TEST_F(ControlServerTest, AnswersARequestAndCreatesTheSocketDirectory) {
  StartServer(getuid());
  proto::ControlRequest req;
  req.mutable_pause()->set_stream("vm1");
  auto r = CallControl(Path(), req, 5s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(ResponseStatus(*r).ok());
  EXPECT_EQ(r->pair().name(), "vm1");
  EXPECT_EQ(r->pair().state(), "paused");
  EXPECT_EQ(calls_, 1);
}

TEST_F(ControlServerTest, TheHandlersErrorReachesTheClient) {
  StartServer(getuid());
  proto::ControlRequest req;
  req.mutable_get_status();
  auto r = CallControl(Path(), req, 5s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Status s = ResponseStatus(*r);
  EXPECT_EQ(s.code(), Errc::kNotFound);
  EXPECT_EQ(s.message(), "no such thing");
}

TEST_F(ControlServerTest, TheSocketIsOnlyForItsOwnerAndGoesAwayAtStop) {
  StartServer(getuid());
  struct stat st{};
  ASSERT_EQ(stat(Path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  server_->Stop();
  EXPECT_NE(access(Path().c_str(), F_OK), 0);
  proto::ControlRequest req;
  req.mutable_get_status();
  EXPECT_EQ(CallControl(Path(), req, 1s).status().code(), Errc::kUnavailable);
}

TEST_F(ControlServerTest, APeerWithAnotherUidGetsAnErrorAndTheHandlerIsNotCalled) {
  StartServer(getuid() + 1);
  proto::ControlRequest req;
  req.mutable_pause()->set_stream("vm1");
  auto r = CallControl(Path(), req, 5s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Status s = ResponseStatus(*r);
  EXPECT_EQ(s.code(), Errc::kPermissionDenied);
  EXPECT_NE(s.message().find("uid " + std::to_string(getuid())), std::string::npos)
      << s.message();
  EXPECT_EQ(calls_, 0);
}

TEST_F(ControlServerTest, NoServerMeansUnavailable) {
  proto::ControlRequest req;
  req.mutable_get_status();
  auto r = CallControl(Path(), req, 1s);
  EXPECT_EQ(r.status().code(), Errc::kUnavailable);
  EXPECT_NE(r.status().message().find("not running"), std::string::npos);
}

TEST_F(ControlServerTest, AStaleSocketFileIsReplacedAndABusyOneRefused) {
  // A socket file nobody listens on (a crashed agent's).
  dir_.Write("run/.keep", "");
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, Path().c_str(), sizeof a.sun_path - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  close(fd);
  proto::ControlRequest req;
  req.mutable_get_status();
  EXPECT_EQ(CallControl(Path(), req, 1s).status().code(), Errc::kUnavailable);  // refused

  StartServer(getuid());
  ControlServer::Options o;
  o.socket_path = Path();
  o.allowed_uid = getuid();
  auto second = ControlServer::Start(o, [](const proto::ControlRequest&) {
    return proto::ControlResponse();
  });
  EXPECT_EQ(second.status().code(), Errc::kBusy);
  EXPECT_NE(second.status().message().find("already running"), std::string::npos);
  // The first one still serves.
  req.mutable_pause()->set_stream("x");
  EXPECT_TRUE(CallControl(Path(), req, 5s).ok());
}

TEST_F(ControlServerTest, ARegularFileIsNeverReplaced) {
  dir_.Write("run/control.sock", "precious");
  ControlServer::Options o;
  o.socket_path = Path();
  auto s = ControlServer::Start(o, [](const proto::ControlRequest&) {
    return proto::ControlResponse();
  });
  EXPECT_EQ(s.status().code(), Errc::kAlreadyExists);
}

TEST_F(ControlServerTest, AnOversizedRequestIsAnsweredWithAProtocolErrorAndClosed) {
  StartServer(getuid());
  const int fd = RawConnect(Path());
  ASSERT_GE(fd, 0);
  const unsigned char header[] = {0xff, 0xff, 0xff, 0xff};
  ASSERT_EQ(write(fd, header, sizeof header), 4);
  const proto::ControlResponse r = Decode(ReadAll(fd));
  close(fd);
  EXPECT_EQ(ResponseStatus(r).code(), Errc::kProtocol);
  EXPECT_EQ(calls_, 0);
}

TEST_F(ControlServerTest, GarbageAndEmptyRequestsAreProtocolErrors) {
  StartServer(getuid());
  for (const std::string& body : {std::string("\xff\xff\xff", 3), std::string()}) {
    const int fd = RawConnect(Path());
    ASSERT_GE(fd, 0);
    std::string frame(4, '\0');
    frame[0] = static_cast<char>(body.size());
    frame += body;
    ASSERT_EQ(write(fd, frame.data(), frame.size()), static_cast<ssize_t>(frame.size()));
    const proto::ControlResponse r = Decode(ReadAll(fd));
    close(fd);
    EXPECT_EQ(ResponseStatus(r).code(), Errc::kProtocol) << body.size() << " byte body";
  }
  EXPECT_EQ(calls_, 0);
}

TEST_F(ControlServerTest, APeerThatSendsNothingIsDisconnectedAtTheDeadline) {
  StartServer(getuid(), 200ms);
  const int fd = RawConnect(Path());
  ASSERT_GE(fd, 0);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ReadAll(fd), "");  // closed without an answer
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
  close(fd);
  // The server goes on serving.
  proto::ControlRequest req;
  req.mutable_pause()->set_stream("vm1");
  EXPECT_TRUE(CallControl(Path(), req, 5s).ok());
}

TEST_F(ControlServerTest, StopClosesConnectionsThatAreStillOpen) {
  StartServer(getuid());
  const int fd = RawConnect(Path());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "\x10\x00", 2), 2);  // half a header
  server_->Stop();
  EXPECT_EQ(ReadAll(fd), "");
  close(fd);
}

// A handler that blocks requests for stream "slow" until released.
class BlockingHandler {
 public:
  proto::ControlResponse operator()(const proto::ControlRequest& r) {
    proto::ControlResponse out;
    out.mutable_pair()->set_name(r.pause().stream());
    if (r.pause().stream() != "slow") return out;
    std::unique_lock<std::mutex> l(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait(l, [&] { return released_; });
    ended_at_ = ++clock_;
    return out;
  }
  void WaitEntered(int n) {
    std::unique_lock<std::mutex> l(mu_);
    ASSERT_TRUE(cv_.wait_for(l, 10s, [&] { return entered_ >= n; })) << entered_ << " of " << n;
  }
  void Release() {
    std::lock_guard<std::mutex> l(mu_);
    released_ = true;
    cv_.notify_all();
  }
  int Tick() {
    std::lock_guard<std::mutex> l(mu_);
    return ++clock_;
  }
  int ended_at() {
    std::lock_guard<std::mutex> l(mu_);
    return ended_at_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int entered_ = 0, clock_ = 0, ended_at_ = 0;
  bool released_ = false;
};

proto::ControlRequest PauseOf(const std::string& stream) {
  proto::ControlRequest req;
  req.mutable_pause()->set_stream(stream);
  return req;
}

// Each request is handled on a thread of its own: one that waits does not
// hold up the next; at most 8 are handled at once (the 9th is answered busy);
// Stop returns only once the running handlers have returned.
TEST_F(ControlServerTest, AWaitingRequestDoesNotHoldUpTheOthersAndStopWaitsForIt) {
  BlockingHandler handler;
  ControlServer::Options o;
  o.socket_path = Path();
  o.allowed_uid = getuid();
  auto s = ControlServer::Start(o, [&](const proto::ControlRequest& r) { return handler(r); });
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  server_ = std::move(s).value();

  std::vector<std::thread> slow;
  std::atomic<int> slow_ok{0};
  for (int i = 0; i < 8; ++i)
    slow.emplace_back([&] {
      auto r = CallControl(Path(), PauseOf("slow"), 30s);
      if (r.ok() && ResponseStatus(*r).ok()) ++slow_ok;
    });
  handler.WaitEntered(8);
  // Served while eight others wait... but not a ninth beside them.
  auto ninth = CallControl(Path(), PauseOf("fast"), 5s);
  ASSERT_TRUE(ninth.ok()) << ninth.status().ToString();
  EXPECT_EQ(ResponseStatus(*ninth).code(), Errc::kBusy);
  handler.Release();
  for (auto& t : slow) t.join();
  EXPECT_EQ(slow_ok, 8);
  auto fast = CallControl(Path(), PauseOf("fast"), 5s);
  ASSERT_TRUE(fast.ok()) << fast.status().ToString();
  EXPECT_EQ(fast->pair().name(), "fast");

  // One that waits, then a fast one beside it, then Stop while it waits.
  BlockingHandler second;
  server_.reset();
  auto s2 = ControlServer::Start(o, [&](const proto::ControlRequest& r) { return second(r); });
  ASSERT_TRUE(s2.ok()) << s2.status().ToString();
  server_ = std::move(s2).value();
  std::thread waiting([&] { (void)CallControl(Path(), PauseOf("slow"), 30s); });
  second.WaitEntered(1);
  auto beside = CallControl(Path(), PauseOf("fast"), 5s);
  ASSERT_TRUE(beside.ok()) << beside.status().ToString();
  EXPECT_EQ(beside->pair().name(), "fast");
  int stop_returned_at = 0;
  std::thread stopper([&] {
    server_->Stop();
    stop_returned_at = second.Tick();
  });
  std::this_thread::sleep_for(200ms);  // a Stop that does not wait returns meanwhile
  second.Release();
  stopper.join();
  waiting.join();
  EXPECT_GT(stop_returned_at, second.ended_at());
}

}  // namespace
}  // namespace mt::control
