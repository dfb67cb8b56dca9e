#include "config/agent_config.h"

#include <arpa/inet.h>

#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <toml++/toml.h>

namespace mt::daemon {

namespace {

constexpr int64_t kSecondNs = 1'000'000'000;

// Where a value came from, for messages: "agent.toml:12: policy.rpo".
struct Where {
  const std::string& source;
  uint32_t line;
  std::string key;
  Status Error(const std::string& problem) const {
    std::string s = source;
    if (line > 0) s += ":" + std::to_string(line);
    return Status(Errc::kInvalidArgument, s + ": " + key + ": " + problem);
  }
};

Result<std::string> GetString(const toml::node& n, const Where& w) {
  const auto* v = n.as_string();
  if (v == nullptr) return w.Error("expected a string");
  return std::string(v->get());
}

Result<std::string> GetPath(const toml::node& n, const Where& w) {
  const auto* v = n.as_string();
  if (v == nullptr) return w.Error("expected an absolute path");
  std::string s(v->get());
  if (s.empty() || s[0] != '/') return w.Error("expected an absolute path, got \"" + s + "\"");
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

Result<int64_t> GetDuration(const toml::node& n, const Where& w) {
  MT_ASSIGN_OR_RETURN(std::string s, GetString(n, w));
  auto d = ParseDuration(s);
  if (!d.ok()) return w.Error(d.status().message());
  return *d;
}

Result<uint64_t> GetSize(const toml::node& n, const Where& w) {
  if (const auto* i = n.as_integer()) {
    if (i->get() <= 0) return w.Error("expected a positive size");
    return static_cast<uint64_t>(i->get());
  }
  if (n.as_string() == nullptr) return w.Error("expected a size such as \"4GiB\" or a byte count");
  auto s = ParseSize(n.as_string()->get());
  if (!s.ok()) return w.Error(s.status().message());
  return *s;
}

Result<bool> GetBool(const toml::node& n, const Where& w) {
  const auto* b = n.as_boolean();
  if (b == nullptr) return w.Error("expected true or false");
  return b->get();
}

Result<double> GetNumber(const toml::node& n, const Where& w) {
  if (const auto* i = n.as_integer()) return static_cast<double>(i->get());
  if (const auto* f = n.as_floating_point()) return f->get();
  return w.Error("expected a number");
}

Status ParseListen(const std::string& s, const Where& w, AgentConfig* c) {
  std::string host, port;
  if (!s.empty() && s[0] == '[') {
    const size_t close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':')
      return w.Error("expected \"[IPv6]:port\", got \"" + s + "\"");
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    const size_t colon = s.rfind(':');
    if (colon == std::string::npos || s.find(':') != colon)
      return w.Error("expected \"address:port\" (IPv6 as \"[addr]:port\"), got \"" + s + "\"");
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  unsigned char buf[16];
  const bool v6 = host.find(':') != std::string::npos;
  if (host.empty() || inet_pton(v6 ? AF_INET6 : AF_INET, host.c_str(), buf) != 1)
    return w.Error("\"" + host + "\" is not an IP address (names are not resolved here)");
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535)
    return w.Error("port must be a number 0..65535, got \"" + port + "\"");
  c->listen_host = host;
  c->listen_port = static_cast<uint16_t>(std::stoul(port));
  return Status::Ok();
}

using Setter = std::function<Status(const toml::node&, const Where&, AgentConfig*)>;
using Schema = std::map<std::string, std::map<std::string, Setter>>;

const Schema& ConfigSchema() {
  static const Schema schema = {
      {"agent",
       {{"log_level",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(std::string s, GetString(n, w));
           static const char* kLevels[] = {"trace", "debug", "info", "warn", "error"};
           for (const char* l : kLevels)
             if (s == l) {
               c->log_level = s;
               return Status::Ok();
             }
           return w.Error("expected trace, debug, info, warn or error, got \"" + s + "\"");
         }}}},
      {"data",
       {{"listen",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(std::string s, GetString(n, w));
           return ParseListen(s, w, c);
         }},
        {"tls_dir",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->tls_dir, GetPath(n, w));
           return Status::Ok();
         }},
        {"credentials_dir",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->credentials_dir, GetPath(n, w));
           return Status::Ok();
         }},
        {"resync_in_place",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->resync_in_place, GetBool(n, w));
           return Status::Ok();
         }}}},
      {"control",
       {{"socket",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->control_socket, GetPath(n, w));
           // sockaddr_un holds 107 bytes of path.
           if (c->control_socket.size() > 107)
             return w.Error("socket path longer than 107 bytes");
           return Status::Ok();
         }}}},
      {"retention",
       {{"dir",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->retention_dir, GetPath(n, w));
           return Status::Ok();
         }},
        {"wal_quota",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->wal_quota_bytes, GetSize(n, w));
           return Status::Ok();
         }},
        {"wal_memory",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->wal_memory_bytes, GetSize(n, w));
           return Status::Ok();
         }},
        {"segment_size",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(uint64_t v, GetSize(n, w));
           if (v < (1ull << 20) || v % (1ull << 20) != 0)
             return w.Error("must be a whole number of MiB, at least 1MiB");
           c->segment_bytes = v;
           return Status::Ok();
         }},
        {"low_space_percent",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(double v, GetNumber(n, w));
           if (!(v >= 0 && v < 100)) return w.Error("expected a percentage 0..99");
           c->low_space_percent = v;
           return Status::Ok();
         }},
        {"low_space_min",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->low_space_min_bytes, GetSize(n, w));
           return Status::Ok();
         }},
        {"low_space_max",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->low_space_max_bytes, GetSize(n, w));
           return Status::Ok();
         }},
        {"require_mount",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->require_mount, GetBool(n, w));
           return Status::Ok();
         }},
        {"scrub_rate",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           // 0: no scrub. Else a size per second ("32MiB").
           if (const auto* i = n.as_integer(); i != nullptr && i->get() == 0) {
             c->scrub_bytes_per_second = 0;
             return Status::Ok();
           }
           MT_ASSIGN_OR_RETURN(c->scrub_bytes_per_second, GetSize(n, w));
           return Status::Ok();
         }},
        {"scrub_every",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->scrub_every_ns, GetDuration(n, w));
           if (c->scrub_every_ns < 60'000'000'000) return w.Error("at least 1m");
           return Status::Ok();
         }}}},
      {"policy",
       {{"window",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->policy.window_ns, GetDuration(n, w));
           return Status::Ok();
         }},
        {"rpo",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->policy.rpo_threshold_ns, GetDuration(n, w));
           return Status::Ok();
         }},
        {"app_frequency",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->policy.app_frequency_ns, GetDuration(n, w));
           return Status::Ok();
         }},
        {"full_action",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(std::string s, GetString(n, w));
           auto a = retention::ParseFullAction(s);
           if (!a.ok()) return w.Error("expected \"prune\" or \"stop\", got \"" + s + "\"");
           c->policy.full_action = *a;
           return Status::Ok();
         }}}},
      {"targets",
       {{"allow_non_scsi",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           const auto* arr = n.as_array();
           if (arr == nullptr) return w.Error("expected an array of device paths or identities");
           std::vector<std::string> v;
           for (const auto& e : *arr) {
             const auto* s = e.as_string();
             if (s == nullptr || s->get().empty())
               return w.Error("expected an array of non-empty strings");
             v.push_back(s->get());
           }
           c->allow_non_scsi = std::move(v);
           return Status::Ok();
         }},
        {"device_mapper",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->device_mapper, GetBool(n, w));
           return Status::Ok();
         }}}},
      {"cs",
       {{"dir",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->cs_dir, GetPath(n, w));
           return Status::Ok();
         }},
        {"address",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->cs_address, GetString(n, w));
           return Status::Ok();
         }},
        {"passphrase_file",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->cs_passphrase_file, GetPath(n, w));
           return Status::Ok();
         }},
        {"fingerprint",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->cs_fingerprint, GetString(n, w));
           return Status::Ok();
         }},
        {"heartbeat",
         [](const toml::node& n, const Where& w, AgentConfig* c) -> Status {
           MT_ASSIGN_OR_RETURN(c->cs_heartbeat_ns, GetDuration(n, w));
           if (c->cs_heartbeat_ns < 1'000'000'000) return w.Error("at least 1s");
           return Status::Ok();
         }}}},
  };
  return schema;
}

std::string Known(const std::map<std::string, Setter>& keys) {
  std::string s;
  for (const auto& [k, _] : keys) s += (s.empty() ? "" : ", ") + k;
  return s;
}

}  // namespace

std::string AgentConfig::ListenAddress() const {
  const bool v6 = listen_host.find(':') != std::string::npos;
  return (v6 ? "[" + listen_host + "]" : listen_host) + ":" + std::to_string(listen_port);
}

Result<AgentConfig> ParseAgentConfig(std::string_view text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return Status(Errc::kInvalidArgument, source + ":" + std::to_string(e.source().begin.line) +
                                              ": not valid TOML: " + std::string(e.description()));
  }
  AgentConfig c;
  const Schema& schema = ConfigSchema();
  for (const auto& [tkey, tnode] : root) {
    const std::string table(tkey.str());
    const Where tw{source, tkey.source().begin.line, table};
    auto t = schema.find(table);
    if (t == schema.end()) {
      std::string tables;
      for (const auto& [k, _] : schema) tables += (tables.empty() ? "" : ", ") + k;
      return tw.Error("unknown table (known: " + tables + ")");
    }
    const toml::table* tbl = tnode.as_table();
    if (tbl == nullptr) return tw.Error("expected a table [" + table + "]");
    for (const auto& [key, node] : *tbl) {
      const Where w{source, key.source().begin.line, table + "." + std::string(key.str())};
      auto k = t->second.find(std::string(key.str()));
      if (k == t->second.end()) return w.Error("unknown key (known: " + Known(t->second) + ")");
      MT_RETURN_IF_ERROR(k->second(node, w, &c));
    }
  }
  if (c.low_space_min_bytes > c.low_space_max_bytes)
    return Status(Errc::kInvalidArgument,
                  source + ": retention.low_space_min: larger than retention.low_space_max");
  return c;
}

Result<AgentConfig> LoadAgentConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    if (err == ENOENT) return Status(Errc::kNotFound, path + ": no such configuration file");
    return Status::FromErrno(err, "read configuration " + path);
  }
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return Status(Errc::kIoError, "read configuration " + path + ": read failed");
  return ParseAgentConfig(s.str(), path);
}

Result<int64_t> ParseDuration(std::string_view text) {
  const std::string t(text);
  auto bad = [&](const std::string& why) {
    return Status(Errc::kInvalidArgument,
                  "expected a duration such as \"15m\", \"24h\" or \"1h30m\", got \"" + t + "\"" +
                      (why.empty() ? "" : " (" + why + ")"));
  };
  if (text.empty()) return bad("");
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == start || i - start > 12) return bad("");
    const int64_t n = std::stoll(std::string(text.substr(start, i - start)));
    if (i == text.size()) return bad("no unit: use s, m, h or d");
    int64_t unit = 0;
    switch (text[i]) {
      case 's': unit = kSecondNs; break;
      case 'm': unit = 60 * kSecondNs; break;
      case 'h': unit = 3600 * kSecondNs; break;
      case 'd': unit = 86400 * kSecondNs; break;
      default: return bad("unknown unit '" + std::string(1, text[i]) + "'");
    }
    ++i;
    if (n > std::numeric_limits<int64_t>::max() / unit ||
        total > std::numeric_limits<int64_t>::max() - n * unit)
      return bad("too long");
    total += n * unit;
  }
  if (total <= 0) return bad("must be more than zero");
  return total;
}

Result<uint64_t> ParseSize(std::string_view text) {
  const std::string t(text);
  auto bad = [&] {
    return Status(Errc::kInvalidArgument,
                  "expected a size such as \"4GiB\", \"512MiB\" or a byte count, got \"" + t + "\"");
  };
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0 || i > 15) return bad();
  const uint64_t n = std::stoull(std::string(text.substr(0, i)));
  const std::string_view unit = text.substr(i);
  uint64_t mult = 0;
  if (unit.empty() || unit == "B")
    mult = 1;
  else if (unit == "KiB")
    mult = 1ull << 10;
  else if (unit == "MiB")
    mult = 1ull << 20;
  else if (unit == "GiB")
    mult = 1ull << 30;
  else if (unit == "TiB")
    mult = 1ull << 40;
  else
    return bad();
  if (n == 0 || n > std::numeric_limits<uint64_t>::max() / mult) return bad();
  return n * mult;
}

std::string FormatDuration(int64_t ns) {
  if (ns <= 0 || ns % kSecondNs != 0) {
    std::ostringstream s;
    s << static_cast<double>(ns) / kSecondNs << "s";
    return s.str();
  }
  int64_t s = ns / kSecondNs;
  std::string out;
  if (s >= 3600) {
    out += std::to_string(s / 3600) + "h";
    s %= 3600;
  }
  if (s >= 60) {
    out += std::to_string(s / 60) + "m";
    s %= 60;
  }
  if (s > 0) out += std::to_string(s) + "s";
  return out;
}

}  // namespace mt::daemon
