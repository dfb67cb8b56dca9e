// bench_sessions: holds many idle authenticated sessions to one agent, from
// one process (issue 16 goal 4: "1024 idle authenticated sessions"). Reads
// "STREAM KEY_HEX" lines from --keys, opens one send::Connection per line on
// one io_context (TLS with the agent's certificate pinned, hello, auth,
// welcome), then sends nothing: the sessions stay idle, the agent's pings are
// answered by the connection. Prints one JSON line once every session is
// welcomed or has failed:
//   {"sessions":N,"welcomed":W,"failed":F,"seconds":S,"first_error":"..."}
// then holds the sessions until its standard input closes (or --hold
// seconds pass), closes them and exits 0 if every session was welcomed and
// none ended early, 1 otherwise.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/credential_store.h"
#include "config/tls_identity.h"
#include "send/client.h"

namespace {

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_sessions: many idle authenticated sessions to one agent"};
  std::string host = "127.0.0.1", keys_file, fingerprint;
  uint16_t port = 0;
  int hold_seconds = 0;
  size_t parallel = 32;
  app.add_option("--host", host);
  app.add_option("--port", port)->required();
  app.add_option("--fingerprint", fingerprint, "the agent's certificate fingerprint")->required();
  app.add_option("--keys", keys_file, "lines of 'STREAM KEY_HEX'")->required();
  app.add_option("--hold", hold_seconds, "hold at most this long (0: until stdin closes)");
  app.add_option("--parallel", parallel, "sessions being set up at once (the agent closes a "
                                         "session not authenticated within 10 s)");
  CLI11_PARSE(app, argc, argv);

  auto fp = mt::daemon::NormalizeFingerprint(fingerprint);
  if (!fp.ok()) {
    std::fprintf(stderr, "bench_sessions: %s\n", fp.status().ToString().c_str());
    return 2;
  }
  std::vector<mt::send::ConnectOptions> opts;
  std::ifstream in(keys_file);
  std::string stream, hex;
  while (in >> stream >> hex) {
    auto key = mt::daemon::FromHex(hex);
    if (!key.ok()) {
      std::fprintf(stderr, "bench_sessions: key of %s is not hex\n", stream.c_str());
      return 2;
    }
    mt::send::ConnectOptions o;
    o.host = host;
    o.port = port;
    o.stream = stream;
    o.key = *key;
    o.fingerprint = *fp;
    o.sender_id = "bench_sessions";
    o.connect_timeout = std::chrono::seconds(120);  // hundreds of handshakes queue up on 2 cores
    o.idle_timeout = std::chrono::seconds(120);
    opts.push_back(std::move(o));
  }
  if (opts.empty()) {
    std::fprintf(stderr, "bench_sessions: no sessions in %s\n", keys_file.c_str());
    return 2;
  }

  boost::asio::io_context ioc;
  auto ssl = mt::send::MakeClientContext();
  size_t welcomed = 0, failed = 0, ended_after_welcome = 0;
  std::string first_error;
  bool reported = false, closing = false;
  const auto t0 = std::chrono::steady_clock::now();
  auto report = [&] {
    if (reported || welcomed + failed < opts.size()) return;
    reported = true;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("{\"sessions\":%zu,\"welcomed\":%zu,\"failed\":%zu,\"seconds\":%.2f,\"first_error\":\"%s\"}\n",
                opts.size(), welcomed, failed, s, JsonEscape(first_error).c_str());
    std::fflush(stdout);
  };
  std::vector<std::shared_ptr<mt::send::Connection>> conns;
  conns.reserve(opts.size());
  // At most `parallel` sessions between Start and welcome (or failure): the
  // next one starts when one of them is done.
  size_t started = 0;
  std::function<void()> start_next = [&] {
    if (started < conns.size() && !closing) conns[started++]->Start();
  };
  for (auto& o : opts) {
    auto seen = std::make_shared<bool>(false);
    mt::send::Connection::Callbacks cb;
    cb.on_welcome = [&, seen](const mt::proto::Welcome&) {
      *seen = true;
      ++welcomed;
      report();
      start_next();
    };
    cb.on_frame = [](mt::stream::Frame&&) {};
    cb.on_closed = [&, seen](const mt::send::CloseReason& r) {
      if (closing) return;
      if (first_error.empty()) first_error = r.status.ToString();
      if (*seen) {
        ++ended_after_welcome;
      } else {
        ++failed;
        report();
        start_next();
      }
    };
    conns.push_back(std::make_shared<mt::send::Connection>(ioc, *ssl, o, std::move(cb)));
  }
  for (size_t i = 0; i < std::max<size_t>(parallel, 1); ++i) start_next();

  // Hold until stdin closes (or --hold): watched on the same io_context.
  boost::asio::posix::stream_descriptor input(ioc, ::dup(STDIN_FILENO));
  boost::asio::steady_timer hold(ioc);
  char byte = 0;
  std::function<void()> watch;
  auto close_all = [&] {
    if (closing) return;
    closing = true;
    for (size_t i = 0; i < started; ++i) conns[i]->Close();
    input.close();
    hold.cancel();
  };
  watch = [&] {
    input.async_read_some(boost::asio::buffer(&byte, 1),
                          [&](const boost::system::error_code& ec, size_t) {
                            if (ec) {
                              close_all();
                            } else {
                              watch();
                            }
                          });
  };
  watch();
  if (hold_seconds > 0) {
    hold.expires_after(std::chrono::seconds(hold_seconds));
    hold.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) close_all();
    });
  }
  ioc.run();
  report();
  if (ended_after_welcome > 0) {
    std::fprintf(stderr, "bench_sessions: %zu sessions ended while held (first: %s)\n",
                 ended_after_welcome, first_error.c_str());
  }
  return (welcomed == opts.size() && ended_after_welcome == 0) ? 0 : 1;
}
