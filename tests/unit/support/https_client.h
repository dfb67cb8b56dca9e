// A small HTTPS client for tests of mt-cs's dashboard: one request per TLS
// connection to 127.0.0.1, the server's certificate not verified (the tests
// start the server themselves). Boost.Beast, synchronous. Header only.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <map>
#include <string>

namespace mt::test {

struct HttpsResponse {
  int status = 0;                              // 0: no answer (see error)
  std::string body;
  std::multimap<std::string, std::string> headers;
  std::string error;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

inline HttpsResponse Https(uint16_t port, const std::string& method, const std::string& target,
                           const std::string& body = "",
                           const std::map<std::string, std::string>& headers = {}) {
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  namespace http = beast::http;
  HttpsResponse out;
  try {
    asio::io_context io;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_verify_mode(asio::ssl::verify_none);
    beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
    beast::get_lowest_layer(stream).connect(
        asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    stream.handshake(asio::ssl::stream_base::client);
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    beast::error_code write_error;  // a server that refuses early may close before all is sent:
    http::write(stream, req, write_error);  // its answer is read all the same
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    out.status = static_cast<int>(res.result_int());
    out.body = res.body();
    for (const auto& f : res) out.headers.emplace(std::string(f.name_string()), std::string(f.value()));
    beast::error_code ignored;
    stream.shutdown(ignored);
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

}  // namespace mt::test
