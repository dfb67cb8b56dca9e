#include "cs/web_api.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "cli/commands.h"
#include "cs/agent_calls.h"
#include "cs/web_page.h"
#include "mt/cs_web.pb.h"
#include "mt/shim/clock.h"

namespace mt::cs {

namespace {

constexpr char kCookie[] = "mtcs_session";
constexpr int64_t kHourNs = 3600ll * 1'000'000'000;

int64_t Now() { return shim::SystemClock().NowNs(); }

WebResponse Json(int status, const google::protobuf::Message& m) {
  WebResponse r;
  r.status = status;
  auto j = cli::ToJson(m, false);
  r.body = j.ok() ? *j : "{}";
  return r;
}

WebResponse Error(int status, const std::string& message) {
  proto::WebError e;
  e.set_error(message);
  return Json(status, e);
}

WebResponse Page(const char* content_type, const std::string& body) {
  WebResponse r;
  r.content_type = content_type;
  r.body = body;
  return r;
}

std::string Header(const WebRequest& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string UrlDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The query's values by name (a name may repeat).
std::multimap<std::string, std::string> Query(const std::string& q) {
  std::multimap<std::string, std::string> out;
  size_t pos = 0;
  while (pos < q.size()) {
    size_t end = q.find('&', pos);
    if (end == std::string::npos) end = q.size();
    const std::string part = q.substr(pos, end - pos);
    const size_t eq = part.find('=');
    if (!part.empty()) {
      out.emplace(UrlDecode(part.substr(0, eq)), eq == std::string::npos ? "" : UrlDecode(part.substr(eq + 1)));
    }
    pos = end + 1;
  }
  return out;
}

std::string First(const std::multimap<std::string, std::string>& q, const std::string& name) {
  auto it = q.find(name);
  return it == q.end() ? "" : it->second;
}

// A name the dashboard passes on to an agent: printable ASCII without
// spaces, quotes or backslashes, 1..128 characters.
bool PlainName(const std::string& s, size_t max = 128) {
  if (s.empty() || s.size() > max) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return c > ' ' && c < 127 && c != '"' && c != '\'' && c != '\\' && c != '<' && c != '>';
  });
}

// A point selector: printable ASCII (a time has spaces and colons), 1..128.
bool PointSelector(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= ' ' && c < 127 && c != '"' && c != '\\'; });
}

const proto::Pair* FindPair(const proto::AgentStatus& st, const std::string& name) {
  for (const auto& p : st.pairs())
    if (p.name() == name && p.state() != "committed") return &p;
  return nullptr;
}

// Checks an action against the agent's last heartbeat and completes it (a
// rollback by group gets the group's streams). "" when it may go, else why not.
std::string ValidateAction(proto::JobSpec& spec, const proto::AgentStatus& st) {
  auto need_stream = [&](const std::string& s) -> std::string {
    if (!PlainName(s)) return "a stream name is missing or has characters a name cannot have";
    if (FindPair(st, s) == nullptr) return "the agent protects no stream '" + s + "'";
    return "";
  };
  auto need_disk = [&](const std::string& s, uint32_t disk) -> std::string {
    for (const auto& d : FindPair(st, s)->disks())
      if (d.disk() == disk) return "";
    return "stream '" + s + "' has no disk " + std::to_string(disk);
  };
  switch (spec.kind_case()) {
    case proto::JobSpec::kRollback: {
      auto* rb = spec.mutable_rollback();
      if (rb->streams().empty() && !rb->group().empty()) {
        if (!PlainName(rb->group())) return "the group name has characters a name cannot have";
        for (const auto& p : st.pairs())
          if (p.group() == rb->group() && p.state() != "committed") rb->add_streams(p.name());
        if (rb->streams().empty()) return "the agent has no stream in group '" + rb->group() + "'";
      }
      if (rb->streams().empty()) return "a rollback needs streams or a group";
      std::set<std::string> seen;
      for (const auto& s : rb->streams()) {
        if (auto why = need_stream(s); !why.empty()) return why;
        if (!seen.insert(s).second) return "stream '" + s + "' is named twice";
      }
      if (rb->to().empty() && rb->group().empty()) return "a rollback needs a point (to)";
      if (!rb->to().empty() && !PointSelector(rb->to())) return "the point '" + rb->to() + "' is not a point selector";
      return "";
    }
    case proto::JobSpec::kExportDisk: {
      const auto& e = spec.export_disk();
      if (auto why = need_stream(e.stream()); !why.empty()) return why;
      if (auto why = need_disk(e.stream(), e.disk()); !why.empty()) return why;
      if (!PointSelector(e.at())) return "an export needs a point (at)";
      if (e.out().empty() || e.out()[0] != '/' || e.out().size() > 4096 || e.out().find("/../") != std::string::npos ||
          std::any_of(e.out().begin(), e.out().end(), [](char c) { return c < ' ' || c == 127; })) {
        return "an export needs an absolute path on the agent (out), without '..' or control characters";
      }
      return "";
    }
    case proto::JobSpec::kVsnapCreate: {
      const auto& v = spec.vsnap_create();
      if (auto why = need_stream(v.stream()); !why.empty()) return why;
      if (auto why = need_disk(v.stream(), v.disk()); !why.empty()) return why;
      if (!PointSelector(v.at())) return "a vsnap needs a point (at)";
      if (!v.name().empty() && !PlainName(v.name(), 64)) return "the vsnap name has characters a name cannot have";
      return "";
    }
    case proto::JobSpec::kVsnapRemove:
      if (!PlainName(spec.vsnap_remove().name(), 64)) return "vsnap remove needs the vsnap's name";
      return "";
    case proto::JobSpec::kCommit: {
      if (spec.commit().streams().empty()) return "a commit needs streams";
      for (const auto& s : spec.commit().streams())
        if (auto why = need_stream(s); !why.empty()) return why;
      return "";
    }
    default:
      return "the dashboard starts rollback, export_disk, vsnap_create, vsnap_remove and commit jobs only "
             "(the others: mt-cs run)";
  }
}

// One line for the audit: what the action does.
std::string Describe(const proto::JobSpec& spec) {
  std::string s;
  auto join = [](const auto& v) {
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : ",") + x;
    return out;
  };
  switch (spec.kind_case()) {
    case proto::JobSpec::kRollback:
      return "rollback of " + join(spec.rollback().streams()) + " to '" +
             (spec.rollback().to().empty() ? "common point of " + spec.rollback().group() : spec.rollback().to()) + "'";
    case proto::JobSpec::kExportDisk:
      return "export of " + spec.export_disk().stream() + " disk " + std::to_string(spec.export_disk().disk()) +
             " at '" + spec.export_disk().at() + "' to " + spec.export_disk().out();
    case proto::JobSpec::kVsnapCreate:
      return "vsnap-create of " + spec.vsnap_create().stream() + " disk " + std::to_string(spec.vsnap_create().disk()) +
             " at '" + spec.vsnap_create().at() + "'";
    case proto::JobSpec::kVsnapRemove:
      return "vsnap-remove of " + spec.vsnap_remove().name();
    case proto::JobSpec::kCommit:
      return "commit of " + join(spec.commit().streams());
    default:
      return "unknown";
  }
}

}  // namespace

WebResponse WebApi::Handle(const WebRequest& r) {
  const int64_t now = Now();
  const size_t qmark = r.target.find('?');
  const std::string path = r.target.substr(0, qmark);
  const auto query = Query(qmark == std::string::npos ? "" : r.target.substr(qmark + 1));
  const bool get = r.method == "GET" || r.method == "HEAD";
  const bool post = r.method == "POST";

  // Pages and their files: no login needed to fetch them (the data is behind the API).
  if (get && path == "/login") return Page("text/html; charset=utf-8", kLoginHtml);
  if (get && path == "/static/app.js") return Page("text/javascript; charset=utf-8", kAppJs);
  if (get && path == "/static/login.js") return Page("text/javascript; charset=utf-8", kLoginJs);
  if (get && path == "/static/style.css") return Page("text/css; charset=utf-8", kStyleCss);

  if (post && path == "/api/login") {
    proto::WebLogin login;
    if (!google::protobuf::util::JsonStringToMessage(r.body, &login).ok()) {
      return Error(400, "the body is not a WebLogin: {\"token\": \"...\"}");
    }
    auto s = auth_.Login(login.token(), now);
    if (!s.ok()) {
      (void)store_.Audit("", "web: failed login from " + r.remote + ": " + s.status().message(), now);
      return Error(s.status().code() == Errc::kBusy ? 429 : 401, s.status().message());
    }
    (void)store_.Audit("", "web: login from " + r.remote, now);
    proto::WebSession out;
    out.set_csrf_token(s->csrf);
    out.set_expires_ns(s->expires_ns());
    WebResponse resp = Json(200, out);
    resp.headers.emplace_back("Set-Cookie", std::string(kCookie) + "=" + s->id +
                                                "; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=" +
                                                std::to_string(WebAuth::kLifeNs / 1'000'000'000));
    return resp;
  }

  // Who asks: a session (cookie) or the token (Authorization: Bearer).
  const std::string authz = Header(r, "authorization");
  bool bearer = false;
  if (authz.rfind("Bearer ", 0) == 0) {
    const Status s = auth_.CheckBearer(authz.substr(7), now);
    if (!s.ok()) {
      (void)store_.Audit("", "web: refused a bearer token from " + r.remote + ": " + s.message(), now);
      return Error(s.code() == Errc::kBusy ? 429 : 401, s.message());
    }
    bearer = true;
  }
  const auto session = bearer ? std::nullopt : auth_.Find(CookieValue(Header(r, "cookie"), kCookie), now);
  if (!bearer && !session) {
    if (get && (path == "/" || path == "/index.html")) {
      WebResponse resp;
      resp.status = 303;
      resp.content_type = "text/plain; charset=utf-8";
      resp.body = "log in: /login\n";
      resp.headers.emplace_back("Location", "/login");
      return resp;
    }
    if (path.rfind("/api/", 0) == 0) return Error(401, "not logged in: POST /api/login, or send Authorization: Bearer <token>");
    return Error(404, "no such page: " + path);
  }
  if (post && session && !WebAuth::CsrfMatches(*session, Header(r, "x-csrf-token"))) {
    (void)store_.Audit("", "web: refused a " + path + " from " + r.remote + " without a valid CSRF token", now);
    return Error(403, "missing or wrong X-CSRF-Token (the page sends the one of GET /api/session)");
  }

  if (get && (path == "/" || path == "/index.html")) return Page("text/html; charset=utf-8", kIndexHtml);
  if (get && path == "/api/session") {
    proto::WebSession out;
    if (session) {
      out.set_csrf_token(session->csrf);
      out.set_expires_ns(session->expires_ns());
    }
    return Json(200, out);
  }
  if (post && path == "/api/logout") {
    if (session) auth_.Logout(session->id);
    WebResponse resp = Json(200, proto::WebSession());
    resp.headers.emplace_back("Set-Cookie", std::string(kCookie) + "=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    return resp;
  }

  if (get && path == "/api/agents") {
    auto rows = store_.ListAgents();
    if (!rows.ok()) return Error(500, rows.status().message());
    proto::WebAgents out;
    for (const AgentRow& a : *rows) {
      auto* w = out.add_agents();
      w->set_id(a.id);
      w->set_hostname(a.hostname);
      w->set_version(a.version);
      w->set_address(a.address);
      w->set_connected(a.connected);
      w->set_registered_ns(a.registered_ns);
      w->set_last_seen_ns(a.last_seen_ns);
      auto h = store_.GetHealth(a.id);
      if (h.ok() && *h) *w->mutable_status() = **h;
    }
    return Json(200, out);
  }
  if (get && path == "/api/streams") {
    auto rows = store_.ListAgents();
    if (!rows.ok()) return Error(500, rows.status().message());
    auto recent = store_.Samples("", now - 2 * 60 * 1'000'000'000ll);
    proto::WebStreams out;
    for (const AgentRow& a : *rows) {
      auto h = store_.GetHealth(a.id);
      if (!h.ok() || !*h) continue;
      for (const auto& p : (*h)->pairs()) {
        auto* w = out.add_streams();
        w->set_agent(a.id);
        *w->mutable_pair() = p;
        // The rate over the samples of the last two minutes.
        const SampleRow* first = nullptr;
        const SampleRow* last = nullptr;
        if (recent.ok())
          for (const SampleRow& s : *recent)
            if (s.agent_id == a.id && s.stream == p.name()) {
              if (first == nullptr) first = &s;
              last = &s;
            }
        if (first != nullptr && last->ns > first->ns && last->bytes_applied >= first->bytes_applied) {
          w->set_applied_bytes_per_second(static_cast<double>(last->bytes_applied - first->bytes_applied) * 1e9 /
                                          static_cast<double>(last->ns - first->ns));
        }
      }
    }
    return Json(200, out);
  }
  if (get && path == "/api/alerts") {
    auto all = AgentAlerts(store_, now);
    if (!all.ok()) return Error(500, all.status().message());
    proto::WebAlerts out;
    for (const auto& [agent, alert] : *all) {
      auto* w = out.add_alerts();
      w->set_agent(agent);
      *w->mutable_alert() = alert;
    }
    return Json(200, out);
  }
  if (get && path == "/api/history") {
    int64_t hours = 24;
    const std::string h = First(query, "hours");
    if (!h.empty()) {
      if (h.size() > 2 || !std::all_of(h.begin(), h.end(), ::isdigit) || std::stoi(h) < 1 || std::stoi(h) > 25) {
        return Error(400, "hours must be 1..25");
      }
      hours = std::stoi(h);
    }
    auto rows = store_.Samples(First(query, "agent"), now - hours * kHourNs);
    if (!rows.ok()) return Error(500, rows.status().message());
    proto::WebHistory out;
    for (const SampleRow& s : *rows) {
      auto* w = out.add_samples();
      w->set_agent(s.agent_id);
      w->set_stream(s.stream);
      w->set_ns(s.ns);
      w->set_rpo_ns(s.rpo_ns);
      w->set_backlog_records(s.backlog_records);
      w->set_wal_bytes(s.wal_bytes);
      w->set_bytes_ingested(s.bytes_ingested);
      w->set_bytes_applied(s.bytes_applied);
      w->set_retention_capacity_bytes(s.retention_capacity_bytes);
      w->set_retention_available_bytes(s.retention_available_bytes);
    }
    return Json(200, out);
  }
  if (get && path == "/api/jobs") {
    const std::string agent = First(query, "agent");
    auto rows = store_.ListJobs(agent);
    if (!rows.ok()) return Error(500, rows.status().message());
    proto::WebJobs out;
    for (auto& [id, job] : *rows) {
      auto* w = out.add_jobs();
      w->set_agent(id);
      *w->mutable_job() = job;
    }
    return Json(200, out);
  }

  // /api/agents/ID/{disks,points,jobs}
  const std::string prefix = "/api/agents/";
  if (path.rfind(prefix, 0) == 0) {
    const std::string rest = path.substr(prefix.size());
    const size_t slash = rest.find('/');
    const std::string id = rest.substr(0, slash);
    const std::string what = slash == std::string::npos ? "" : rest.substr(slash + 1);
    auto agent = store_.GetAgent(id);
    if (!agent.ok()) return Error(500, agent.status().message());
    if (!PlainName(id) || !*agent) return Error(404, "no agent '" + id + "' (GET /api/agents)");
    CallOptions co;
    co.timeout = agent_timeout_;
    if (get && what == "disks") {
      auto inv = store_.GetInventory(id);
      if (!inv.ok()) return Error(500, inv.status().message());
      if (!*inv) return Error(404, "agent " + id + " has sent no inventory yet");
      return Json(200, **inv);
    }
    if (get && what == "points") {
      if (!(*agent)->connected) return Error(503, "agent " + id + " is not connected: its points cannot be asked");
      proto::ControlRequest req;
      auto* lp = req.mutable_list_points();
      for (auto [it, end] = query.equal_range("stream"); it != end; ++it) {
        if (!PlainName(it->second)) return Error(400, "a stream name has characters a name cannot have");
        lp->add_streams(it->second);
      }
      const std::string group = First(query, "group");
      if (!group.empty() && !PlainName(group)) return Error(400, "the group name has characters a name cannot have");
      lp->set_group(group);
      lp->set_app_only(First(query, "app") == "1");
      auto resp = CallAgent(store_, **agent, req, co);
      if (!resp.ok()) return Error(504, resp.status().message());
      if (resp->has_error()) return Error(409, resp->error().message());
      return Json(200, resp->points());
    }
    if (post && what == "jobs") {
      proto::JobSpec spec;
      if (r.body.size() > 64 * 1024 || !google::protobuf::util::JsonStringToMessage(r.body, &spec).ok()) {
        return Error(400, "the body is not a JobSpec (proto/mt/control.proto), e.g. "
                          "{\"rollback\": {\"group\": \"g1\", \"to\": \"latest-app\"}}");
      }
      auto h = store_.GetHealth(id);
      if (!h.ok()) return Error(500, h.status().message());
      int status = 400;
      std::string why = *h ? ValidateAction(spec, **h) : "agent " + id + " has sent no heartbeat yet";
      if (why.empty() && !(*agent)->connected) {
        status = 503;
        why = "agent " + id + " is not connected (nothing was queued: start the action again once it is)";
      }
      if (!why.empty()) {
        (void)store_.Audit(id, "web: refused " + Describe(spec) + " from " + r.remote + ": " + why, now);
        return Error(status, why);
      }
      auto job = StartAgentJob(store_, **agent, spec, co);
      if (!job.ok()) {
        (void)store_.Audit(id, "web: " + Describe(spec) + " from " + r.remote + " not started: " + job.status().message(), now);
        return Error(job.status().code() == Errc::kAborted ? 409 : 504, job.status().message());
      }
      (void)store_.Audit(id, "web: " + r.remote + " started job " + job->id() + ": " + Describe(spec), now);
      proto::WebJob out;
      out.set_agent(id);
      *out.mutable_job() = *job;
      return Json(200, out);
    }
  }
  if (!get && !post) return Error(405, "method " + r.method + " is not served");
  return Error(404, "no such page: " + r.method + " " + path);
}

}  // namespace mt::cs
