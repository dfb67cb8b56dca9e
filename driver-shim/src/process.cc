#include "mt/shim/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "posix_io.h"

namespace mt::shim {

Result<ProcessResult> RunProcess(const std::vector<std::string>& argv) {
  if (argv.empty()) return Status(Errc::kInvalidArgument, "RunProcess: empty argv");
  int out[2], err[2], exec_err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe");
  UniqueFd out_r(out[0]), out_w(out[1]);
  if (pipe2(err, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe");
  UniqueFd err_r(err[0]), err_w(err[1]);
  // Carries errno of a failed execvp back to the parent (closed by a successful exec).
  if (pipe2(exec_err, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe");
  UniqueFd exec_r(exec_err[0]), exec_w(exec_err[1]);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return Status::FromErrno(errno, "fork for " + argv[0]);
  if (pid == 0) {
    dup2(out_w.get(), 1);
    dup2(err_w.get(), 2);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) dup2(devnull, 0);
    execvp(args[0], args.data());
    int e = errno;
    ssize_t ignored = write(exec_w.get(), &e, sizeof e);
    (void)ignored;
    _exit(127);
  }
  out_w.reset();
  err_w.reset();
  exec_w.reset();
  ProcessResult r;
  pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  int e = 0;
  if (read(exec_r.get(), &e, sizeof e) == static_cast<ssize_t>(sizeof e))
    return Status::FromErrno(e, "run " + argv[0]);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

}  // namespace mt::shim
