// mtctl jobs: the daemon's jobs (docs/formats/control.md, "jobs"), newest
// first — through mt-agent when it runs, else read from jobs.db.
//
//   mtctl jobs [--json]
#include <iomanip>
#include <sstream>

#include "cli/agent_link.h"
#include "cli/commands.h"
#include "jobs/job_store.h"

namespace mt::cli {

namespace {

std::string Progress(const proto::Job& j) {
  if (j.total_bytes() == 0) return "";
  std::ostringstream s;
  s << " " << j.done_bytes() * 100 / j.total_bytes() << "% (" << (j.done_bytes() >> 20) << " of "
    << (j.total_bytes() >> 20) << " MiB)";
  return s.str();
}

int RunJobs(Context& ctx, bool json) {
  auto config = LoadAgentConfigForCli(ctx);
  if (!config.ok()) return ctx.Fail(config.status());
  proto::ControlRequest req;
  req.mutable_list_jobs();
  proto::JobList list;
  std::string how = "mt-agent";
  auto online = CallAgent(ctx, *config, req, std::chrono::seconds(30));
  if (online.ok()) {
    list = online->jobs();
  } else if (online.status().code() == Errc::kUnavailable) {
    const std::string path = config->retention_dir + "/jobs.db";
    auto store = jobs::JobStore::Open(path, /*create=*/false);
    if (!store.ok()) {
      if (store.status().code() != Errc::kNotFound) return ctx.Fail(store.status());
    } else {
      auto rows = (*store)->List();
      if (!rows.ok()) return ctx.Fail(rows.status());
      for (auto& j : *rows) *list.add_jobs() = std::move(j);
    }
    how = "offline, " + path + " (mt-agent is not running)";
  } else {
    return ctx.Fail(online.status());
  }
  if (json) return PrintJson(ctx, list);
  ctx.out << list.jobs_size() << " job(s), from " << how << "\n";
  for (const auto& j : list.jobs()) {
    ctx.out << "  " << j.id() << "  " << j.kind() << "  " << j.state() << Progress(j) << "  created "
            << UtcTime(j.created_ns(), "-");
    if (j.finished_ns() != 0) ctx.out << ", finished " << UtcTime(j.finished_ns());
    ctx.out << "\n    " << j.message() << "\n";
  }
  return 0;
}

}  // namespace

void AddJobsCommand(CLI::App& app, Context& ctx) {
  auto json = std::make_shared<bool>(false);
  CLI::App* jobs = app.add_subcommand("jobs", "The daemon's jobs (rollback), newest first");
  jobs->add_flag("--json", *json, "Protobuf JSON (JobList)");
  jobs->callback([&ctx, json] { ctx.exit_code = RunJobs(ctx, *json); });
}

}  // namespace mt::cli
