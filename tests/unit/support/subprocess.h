// Test helper: runs a program (the built mtctl) with pipes on stdout and
// stderr, so tests check its output, its exit status and how it streams.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace mt::test {

struct ProcessResult {
  int exit_code = -1;  // 128 + signal when killed by a signal
  std::string out;
  std::string err;
};

// Runs argv to completion (stdin is /dev/null).
ProcessResult RunProcess(const std::vector<std::string>& argv);

// A running process whose output is read as it comes.
class Subprocess {
 public:
  explicit Subprocess(const std::vector<std::string>& argv);
  ~Subprocess();  // SIGKILL and reap if still running
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  bool started() const { return pid_ > 0; }
  // The next complete line of stdout (or stderr), waiting at most `timeout`;
  // nullopt on timeout or end of stream.
  std::optional<std::string> ReadOutLine(std::chrono::milliseconds timeout);
  std::optional<std::string> ReadErrLine(std::chrono::milliseconds timeout);
  void Signal(int sig);
  // Waits for exit; returns the exit status (128 + signal if killed), -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  // What was read so far plus the rest of the stream (after exit).
  std::string DrainErr();

 private:
  std::optional<std::string> ReadLine(int fd, std::string* buf, std::chrono::milliseconds timeout);
  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  std::string out_buf_, err_buf_;
  int status_ = -1;
};

}  // namespace mt::test
