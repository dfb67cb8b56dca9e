// The client side of the control socket (mtctl): connect, send one
// ControlRequest, read the ControlResponse.
#pragma once

#include <chrono>
#include <string>

#include "mt/control.pb.h"
#include "mt/shim/status.h"

namespace mt::control {

// Sends `request` to the daemon at `socket_path` and returns its response
// (which may itself carry an error: see ResponseStatus). Errors of the call:
//   kUnavailable  nobody serves the socket (no file, or connection refused):
//                 the daemon is not running — callers may work offline;
//   kPermissionDenied  the socket is not ours to use (not root);
//   kBusy         no complete response within `timeout`;
//   kProtocol     the daemon closed early or sent something that is not a response.
Result<proto::ControlResponse> CallControl(const std::string& socket_path,
                                           const proto::ControlRequest& request,
                                           std::chrono::milliseconds timeout);

}  // namespace mt::control
