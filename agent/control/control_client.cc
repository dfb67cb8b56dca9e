#include "control/control_client.h"

#include <array>
#include <functional>
#include <optional>
#include <boost/asio.hpp>

#include "control/asio_util.h"
#include "control/framing.h"

namespace mt::control {

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;

Result<proto::ControlResponse> CallControl(const std::string& socket_path,
                                           const proto::ControlRequest& request,
                                           std::chrono::milliseconds timeout) {
  MT_ASSIGN_OR_RETURN(std::string frame, EncodeControlFrame(request));
  try {
    asio::io_context io;
    Local::socket socket(io);
    boost::system::error_code ec;
    socket.connect(Local::endpoint(socket_path), ec);
    if (ec == boost::system::errc::no_such_file_or_directory ||
        ec == boost::system::errc::connection_refused)
      return Status(Errc::kUnavailable, "mt-agent is not running (nothing serves " + socket_path +
                                            ")");
    if (ec == boost::system::errc::permission_denied ||
        ec == boost::system::errc::operation_not_permitted)
      return Status(Errc::kPermissionDenied,
                    "cannot connect to " + socket_path + ": permission denied (run as root)");
    if (ec) return FromAsio(ec, "connect to " + socket_path);
    SetCloseOnExec(socket);

    Status result = Status(Errc::kBusy, "mt-agent did not answer within " +
                                            std::to_string(timeout.count()) + " ms");
    std::optional<std::string> body;
    ControlFrameDecoder decoder;
    std::array<char, 64 * 1024> buf{};
    std::function<void()> read = [&] {
      socket.async_read_some(asio::buffer(buf), [&](const boost::system::error_code& rec, size_t n) {
        if (rec) {
          Status s = rec == asio::error::eof ? decoder.Eof() : FromAsio(rec, "read " + socket_path);
          result = s.ok() ? Status(Errc::kProtocol, "mt-agent closed the connection without "
                                                    "answering (see its log: journalctl -u mt-agent)")
                          : s;
          return;
        }
        Status s = decoder.Put(buf.data(), n);
        if (!s.ok()) {
          result = s;
          return;
        }
        body = decoder.Next();
        if (body) {
          result = Status::Ok();
          return;
        }
        read();
      });
    };
    asio::async_write(socket, asio::buffer(frame),
                      [&](const boost::system::error_code& wec, size_t) {
                        // A refused peer may be answered and closed before the
                        // request is read: read what it said either way.
                        (void)wec;
                        read();
                      });
    io.run_for(timeout);
    if (!result.ok()) return result;
    proto::ControlResponse response;
    MT_RETURN_IF_ERROR(ParseControlMessage(*body, &response));
    return response;
  } catch (const std::exception& e) {
    return Status(Errc::kInternal, "control call to " + socket_path + ": " + e.what());
  }
}

}  // namespace mt::control
