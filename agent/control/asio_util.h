// Small helpers shared by the control socket's server and client (Asio).
#pragma once

#include <fcntl.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <string>

#include "mt/shim/status.h"

namespace mt::control {

// An Asio error as a Status; system errors keep their errno.
inline Status FromAsio(const boost::system::error_code& ec, const std::string& what) {
  if (ec.category() == boost::system::system_category())
    return Status::FromErrno(ec.value(), what);
  if (ec == boost::asio::error::eof)
    return Status(Errc::kProtocol, what + ": connection closed by the peer");
  return Status(Errc::kIoError, what + ": " + ec.message());
}

// Asio opens and accepts sockets without O_CLOEXEC; the agent runs helper
// programs (mkfs, mount), which must not inherit them.
template <typename Socket>
void SetCloseOnExec(Socket& s) {
  const int fd = s.native_handle();
  if (fd >= 0) (void)::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC);
}

// SO_PEERCRED as an Asio GettableSocketOption.
class PeerCredOption {
 public:
  template <typename P>
  int level(const P&) const { return SOL_SOCKET; }
  template <typename P>
  int name(const P&) const { return SO_PEERCRED; }
  template <typename P>
  ucred* data(const P&) { return &cred_; }
  template <typename P>
  const ucred* data(const P&) const { return &cred_; }
  template <typename P>
  size_t size(const P&) const { return sizeof(cred_); }
  template <typename P>
  void resize(const P&, size_t s) { size_ok_ = s == sizeof(cred_); }
  const ucred& cred() const { return cred_; }
  bool size_ok() const { return size_ok_; }

 private:
  ucred cred_{};
  bool size_ok_ = true;
};

}  // namespace mt::control
