// WebApi: mt-cs's dashboard, as requests in and responses out (the HTTPS
// server, web_server.h, only moves bytes). Routes (docs/formats/cs-web-api.md):
//
//   GET  /                 the dashboard (logged in), else a redirect to /login
//   GET  /login            the login page
//   GET  /static/<file>    its script and style (web_page.h; nothing from elsewhere)
//   POST /api/login        WebLogin -> WebSession + the session cookie
//   POST /api/logout
//   GET  /api/session      WebSession
//   GET  /api/agents       WebAgents
//   GET  /api/streams      WebStreams
//   GET  /api/alerts       WebAlerts
//   GET  /api/history      WebHistory   (?agent=ID, ?hours=H: 1..25, default 24)
//   GET  /api/jobs         WebJobs      (?agent=ID)
//   GET  /api/agents/ID/disks                  Inventory
//   GET  /api/agents/ID/points?stream=S&group=G&app=1   PointsReport (asked of the agent)
//   POST /api/agents/ID/jobs   JobSpec -> WebJob: rollback, export_disk,
//                              vsnap_create, vsnap_remove or commit, started
//                              as the CLI's `mt-cs run` starts them
//
// Every route but /login, /static and POST /api/login needs a session
// cookie or "Authorization: Bearer <token>" (web_auth.h); a POST with the
// cookie needs X-CSRF-Token. Actions are validated against the agent's last
// heartbeat before anything is sent; each started or refused action and
// each failed login leaves an audit line ("web: ...").
// Thread safety: Handle may run on many threads at once.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cs/cs_store.h"
#include "cs/web_auth.h"

namespace mt::cs {

struct WebRequest {
  std::string method;                         // GET, POST, ...
  std::string target;                         // path and query: /api/jobs?agent=agent-1
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string remote;                         // the peer's address, for audit lines
};

struct WebResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // Set-Cookie, Location, ...
};

class WebApi {
 public:
  // agent_timeout: how long a request that goes to an agent (points, a job's
  // start) waits for its answer.
  WebApi(CsStore& store, WebAuth& auth, std::chrono::milliseconds agent_timeout)
      : store_(store), auth_(auth), agent_timeout_(agent_timeout) {}
  WebResponse Handle(const WebRequest& r);

 private:
  CsStore& store_;
  WebAuth& auth_;
  const std::chrono::milliseconds agent_timeout_;
};

}  // namespace mt::cs
