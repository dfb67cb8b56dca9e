// mtctl register: registers this master target with a configuration server
// (docs/formats/cs-link.md): dials it over TLS, pins its certificate's
// fingerprint (given, or the first one seen — shown for the operator to
// check against `mt-cs fingerprint`), proves the passphrase without sending
// it, and keeps the agent id and key in <[cs] dir>/registration (0600).
// mt-agent, running or started later, then connects with them.
//
//   mtctl register --cs HOST[:PORT] --passphrase-file FILE [--fingerprint FP] [--force] [--json]
#include <unistd.h>

#include "cli/agent_link.h"
#include "cli/audit.h"
#include "cli/commands.h"
#include "cslink/registration.h"
#include "mt/shim/file_system.h"

namespace mt::cli {

namespace {

struct RegisterArgs {
  std::string cs, passphrase_file, fingerprint;
  bool force = false, json = false;
};

int RunRegister(Context& ctx, const RegisterArgs& a) {
  auto config = LoadAgentConfigForCli(ctx);
  if (!config.ok()) return ctx.Fail(config.status());
  shim::FileSystem& fs = shim::PosixFileSystem();
  const std::string path = cslink::RegistrationPath(config->cs_dir);
  auto existing = cslink::LoadRegistration(fs, path);
  if (existing.ok() && !a.force) {
    return ctx.Fail("this agent is already registered with " + existing->cs + " as '" +
                    existing->agent_id + "' (" + path + "): --force registers it again");
  }
  auto pass = cslink::ReadPassphrase(fs, a.passphrase_file);
  if (!pass.ok()) return ctx.Fail(pass.status());
  const std::string& p = *pass;
  if (p.empty()) return ctx.Fail(a.passphrase_file + " holds no passphrase");
  cslink::RegisterRequest req;
  req.cs = a.cs;
  req.passphrase = p;
  req.fingerprint = a.fingerprint;
  char host[256] = {};
  req.hostname = ::gethostname(host, sizeof host - 1) == 0 ? host : "unknown";
  req.version = MT_VERSION;
  auto reg = cslink::Register(req);
  if (!reg.ok()) return ctx.Fail(reg.status());
  const Status saved = cslink::SaveRegistration(fs, path, *reg);
  if (!saved.ok()) return ctx.Fail(saved);
  if (a.json) {
    ctx.out << "{\"cs\":\"" << reg->cs << "\",\"agent_id\":\"" << reg->agent_id
            << "\",\"fingerprint\":\"" << reg->fingerprint << "\",\"registration\":\"" << path
            << "\"}\n";
    return 0;
  }
  ctx.out << "registered with the configuration server " << reg->cs << " as agent '"
          << reg->agent_id << "'\n"
          << "pinned certificate fingerprint " << reg->fingerprint
          << (a.fingerprint.empty() ? " (first use: check it against `mt-cs fingerprint` on the CS)"
                                    : " (as given)")
          << "\nmt-agent connects to it with the key in " << path << "\n";
  return 0;
}

}  // namespace

void AddRegisterCommand(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<RegisterArgs>();
  CLI::App* c = app.add_subcommand("register", "Register this master target with a configuration server");
  c->add_option("--cs", a->cs, "The configuration server: HOST[:PORT] (port 443 by default)")
      ->type_name("HOST[:PORT]")->required();
  c->add_option("--passphrase-file", a->passphrase_file, "The CS passphrase (it never crosses the wire)")
      ->type_name("FILE")->required();
  c->add_option("--fingerprint", a->fingerprint,
                "The CS certificate's SHA-256 (mt-cs fingerprint); without it the first one seen is pinned")
      ->type_name("FP");
  c->add_flag("--force", a->force, "Register again (a new agent id) when already registered");
  c->add_flag("--json", a->json, "Print the registration as JSON");
  c->callback([&ctx, a] {
    AuditedOp op;
    op.op = "register";
    op.out = a->cs;
    ctx.exit_code = Audited(op, [&] { return RunRegister(ctx, *a); });
  });
}

}  // namespace mt::cli
