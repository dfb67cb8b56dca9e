#include "cslink/cs_link.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "mt/shim/clock.h"

namespace mt::cslink {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

// What the CS has of a job; a new one is sent when it differs.
std::string JobKey(const proto::Job& j) {
  return j.state() + "|" + std::to_string(j.revision()) + "|" + std::to_string(j.done_bytes()) +
         "|" + j.message() + "|" + std::to_string(j.finished_ns());
}

// A job update is bounded by the link's message limit: the newest jobs only.
constexpr int kMaxJobsResent = 200;

std::string RequestKind(const proto::ControlRequest& r) {
  const auto* field = r.GetDescriptor()->FindFieldByNumber(r.command_case());
  return field != nullptr ? field->name() : "none";
}

}  // namespace

CsLink::CsLink(CsLinkOptions options, CsLinkHooks hooks)
    : o_(std::move(options)),
      hooks_(std::move(hooks)),
      fs_(o_.fs != nullptr ? *o_.fs : shim::PosixFileSystem()) {}

CsLink::~CsLink() { Stop(); }

void CsLink::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void CsLink::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string CsLink::State() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

void CsLink::SetState(std::string s) {
  std::lock_guard<std::mutex> lock(mu_);
  state_ = std::move(s);
}

bool CsLink::Sleep(milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, d, [this] { return stop_.load(); });
  return !stop_;
}

void CsLink::Run() {
  const std::string path = RegistrationPath(o_.cs_dir);
  milliseconds backoff{1000};
  std::string last_error;
  while (!stop_) {
    auto reg = LoadRegistration(fs_, path);
    if (!reg.ok() && reg.status().code() == Errc::kNotFound && !o_.auto_register.cs.empty()) {
      SetState("registering");
      const Status r = RegisterItself();
      if (r.ok()) continue;
      if (r.ToString() != last_error) {
        last_error = r.ToString();
        spdlog::warn("registering with the configuration server {} ([cs] in the configuration): "
                     "{}; trying again in {} s",
                     o_.auto_register.cs, last_error, backoff.count() / 1000.0);
      }
      SetState("down: " + r.ToString());
      if (!Sleep(backoff)) break;
      backoff = std::min(backoff * 2, o_.max_backoff);
      continue;
    }
    if (!reg.ok()) {
      if (reg.status().code() != Errc::kNotFound && reg.status().ToString() != last_error) {
        last_error = reg.status().ToString();
        spdlog::error("configuration server link: {}", last_error);
      }
      SetState(reg.status().code() == Errc::kNotFound ? "unregistered" : "down: " + reg.status().ToString());
      if (!Sleep(milliseconds(1000))) break;
      continue;
    }
    SetState("connecting");
    const auto began = Clock::now();
    const Status ended = Serve(*reg);
    if (stop_) break;
    // A link that stayed up a while starts the back-off again.
    if (Clock::now() - began > milliseconds(30'000)) backoff = milliseconds(1000);
    if (ended.ToString() != last_error) {
      last_error = ended.ToString();
      spdlog::warn("configuration server link to {}: {}; trying again in {} s", reg->cs,
                   last_error, backoff.count() / 1000.0);
    }
    SetState("down: " + ended.ToString());
    if (!Sleep(backoff)) break;
    backoff = std::min(backoff * 2, o_.max_backoff);
  }
  SetState("stopped");
}

Status CsLink::RegisterItself() {
  MT_ASSIGN_OR_RETURN(const std::string pass, ReadPassphrase(fs_, o_.auto_register.passphrase_file));
  RegisterRequest req;
  req.cs = o_.auto_register.cs;
  req.passphrase = pass;
  req.fingerprint = o_.auto_register.fingerprint;
  req.hostname = o_.hostname;
  req.version = o_.version;
  req.timeout = o_.connect_timeout;
  MT_ASSIGN_OR_RETURN(const CsRegistration reg, Register(req));
  MT_RETURN_IF_ERROR(SaveRegistration(fs_, RegistrationPath(o_.cs_dir), reg));
  spdlog::info("registered with the configuration server {} as agent '{}'; its certificate "
               "fingerprint {} is pinned{}",
               reg.cs, reg.agent_id, reg.fingerprint,
               o_.auto_register.fingerprint.empty() ? " (first use: check it on the CS)" : "");
  return Status::Ok();
}

Status CsLink::Accept(CsRegistration& reg, const proto::CsRequest& request,
                      const std::string& bytes) {
  const std::string digest = Sha256Hex(bytes);
  if (request.seq() == reg.last_seq && digest == reg.last_digest) return Status::Ok();  // delivered again
  if (request.seq() <= reg.last_seq) {
    return Status(Errc::kInvalidArgument,
                  "request seq " + std::to_string(request.seq()) +
                      " is replayed or out of order (the highest accepted is " +
                      std::to_string(reg.last_seq) + "): refused, nothing done");
  }
  if (!request.has_request() || request.request().command_case() ==
                                    proto::ControlRequest::COMMAND_NOT_SET) {
    return Status(Errc::kInvalidArgument, "request seq " + std::to_string(request.seq()) +
                                              " holds no command this agent knows: refused");
  }
  CsRegistration next = reg;
  next.last_seq = request.seq();
  next.last_digest = digest;
  MT_RETURN_IF_ERROR(SaveRegistration(fs_, RegistrationPath(o_.cs_dir), next));
  reg = next;
  return Status::Ok();
}

Status CsLink::Serve(CsRegistration& reg) {
  proto::CsWelcome welcome;
  MT_ASSIGN_OR_RETURN(auto ch, ConnectRegistered(reg, o_.hostname, o_.version,
                                                 o_.connect_timeout, &welcome));
  SetState("connected");
  spdlog::info("configuration server link up: {} as agent '{}'", reg.cs, reg.agent_id);
  const milliseconds heartbeat =
      welcome.heartbeat_ms() > 0 ? milliseconds(welcome.heartbeat_ms()) : o_.heartbeat;

  std::string sent_inventory;           // serialized, as last sent
  std::map<std::string, std::string> sent_jobs;  // id -> JobKey
  auto send_inventory = [&]() -> Status {
    if (!hooks_.inventory) return Status::Ok();
    auto inv = hooks_.inventory();
    if (!inv.ok()) {
      spdlog::warn("configuration server link: no inventory to send: {}", inv.status().ToString());
      return Status::Ok();
    }
    std::string bytes;
    inv->SerializeToString(&bytes);
    if (bytes == sent_inventory) return Status::Ok();
    proto::AgentToCs m;
    *m.mutable_inventory()->mutable_inventory() = std::move(*inv);
    MT_RETURN_IF_ERROR(ch->Send(m));
    sent_inventory = std::move(bytes);
    return Status::Ok();
  };
  auto send_jobs = [&]() -> Status {
    if (!hooks_.jobs) return Status::Ok();
    auto jobs = hooks_.jobs();
    if (!jobs.ok()) return Status::Ok();
    // Oldest first, so the CS sees them in the order they were made.
    const int n = std::min(jobs->jobs_size(), kMaxJobsResent);
    for (int i = n - 1; i >= 0; --i) {
      const proto::Job& j = jobs->jobs(i);
      const std::string key = JobKey(j);
      auto it = sent_jobs.find(j.id());
      if (it != sent_jobs.end() && it->second == key) continue;
      proto::AgentToCs m;
      *m.mutable_job()->mutable_job() = j;
      MT_RETURN_IF_ERROR(ch->Send(m));
      sent_jobs[j.id()] = key;
    }
    return Status::Ok();
  };
  auto send_heartbeat = [&]() -> Status {
    if (!hooks_.status) return Status::Ok();
    auto st = hooks_.status();
    if (!st.ok()) return Status::Ok();
    proto::AgentToCs m;
    *m.mutable_heartbeat()->mutable_status() = std::move(*st);
    m.mutable_heartbeat()->set_sent_ns(shim::SystemClock().NowNs());
    return ch->Send(m);
  };

  MT_RETURN_IF_ERROR(send_inventory());
  MT_RETURN_IF_ERROR(send_jobs());
  MT_RETURN_IF_ERROR(send_heartbeat());
  auto next_beat = Clock::now() + heartbeat;
  auto next_jobs = Clock::now() + o_.job_poll;
  while (!stop_) {
    const auto now = Clock::now();
    if (now >= next_beat) {
      MT_RETURN_IF_ERROR(send_inventory());
      MT_RETURN_IF_ERROR(send_heartbeat());
      next_beat = now + heartbeat;
    }
    if (now >= next_jobs) {
      MT_RETURN_IF_ERROR(send_jobs());
      next_jobs = now + o_.job_poll;
    }
    const auto wait = std::min({next_beat, next_jobs, Clock::now() + milliseconds(500)}) - Clock::now();
    auto polled = ch->Poll(std::max(milliseconds(1), std::chrono::duration_cast<milliseconds>(wait)));
    if (!polled.ok()) {
      // Over the size limit or not a frame: the CS misbehaves; the link is dropped.
      if (polled.status().code() == Errc::kProtocol) {
        spdlog::warn("audit: configuration server {} sent what the link refuses ({}): link closed",
                     reg.cs, polled.status().message());
      }
      return polled.status();
    }
    std::vector<std::string> messages = std::move(*polled);
    for (const std::string& body : messages) {
      proto::CsToAgent in;
      if (!ParseLinkMessage(body, &in).ok() || !in.has_request()) {
        spdlog::warn("audit: configuration server {} sent a message that is not a request: "
                     "link closed",
                     reg.cs);
        return Status(Errc::kProtocol, "the configuration server sent something that is not a request");
      }
      const proto::CsRequest& req = in.request();
      proto::AgentToCs out;
      out.mutable_response()->set_seq(req.seq());
      proto::ControlResponse* resp = out.mutable_response()->mutable_response();
      const Status accepted = Accept(reg, req, body);
      if (!accepted.ok()) {
        spdlog::warn("audit: configuration server request seq {} ({}) refused: {}", req.seq(),
                     RequestKind(req.request()), accepted.message());
        resp->mutable_error()->set_code(ErrcName(accepted.code()));
        resp->mutable_error()->set_message(accepted.message());
      } else {
        proto::ControlRequest r = req.request();
        if (r.has_get_job()) r.mutable_get_job()->set_wait_ms(0);  // progress is pushed
        spdlog::info("audit: configuration server request seq {}: {}", req.seq(), RequestKind(r));
        *resp = hooks_.handle(r);
        if (resp->has_error()) {
          spdlog::warn("audit: configuration server request seq {} ({}) failed: {}", req.seq(),
                       RequestKind(r), resp->error().message());
        }
      }
      MT_RETURN_IF_ERROR(ch->Send(out));
      // A new pair or a job changes what the CS should see: tell it now.
      MT_RETURN_IF_ERROR(send_jobs());
      if (req.request().has_pair_add()) MT_RETURN_IF_ERROR(send_inventory());
    }
  }
  ch->Close();
  return Status(Errc::kAborted, "the agent stops");
}

}  // namespace mt::cslink
