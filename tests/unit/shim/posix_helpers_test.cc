// Small driver-shim helpers on the real kernel that need no root: telling a
// block device node from other paths, pointing a daemon's stdin/stdout at
// /dev/null and detaching it with readiness (in forked children, so the
// test's own process and streams stay), telling a terminal.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "mt/shim/block_device.h"
#include "mt/shim/detach.h"
#include "mt/shim/file_lock.h"

namespace mt::shim {
namespace {

TEST(IsBlockDeviceNode, FalseForFilesDirectoriesCharacterDevicesAndMissingPaths) {
  char dir[] = "/tmp/mt-shim-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string file = std::string(dir) + "/image";
  FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  EXPECT_FALSE(IsBlockDeviceNode(file));
  EXPECT_FALSE(IsBlockDeviceNode(dir));
  EXPECT_FALSE(IsBlockDeviceNode("/dev/null"));
  EXPECT_FALSE(IsBlockDeviceNode(std::string(dir) + "/missing"));
  EXPECT_FALSE(IsBlockDeviceNode(""));
  ::unlink(file.c_str());
  ::rmdir(dir);
}

TEST(IsBlockDeviceNode, TrueForABlockDeviceNodeWhereThereIsOne) {
  for (const char* p : {"/dev/loop0", "/dev/sda", "/dev/vda", "/dev/nvme0n1", "/dev/ram0"}) {
    struct stat st {};
    if (::stat(p, &st) == 0 && S_ISBLK(st.st_mode)) {
      EXPECT_TRUE(IsBlockDeviceNode(p)) << p;
      return;
    }
  }
  GTEST_SKIP() << "no block device node on this machine";
}

// In the child: 0 when stdin and stdout are /dev/null and stderr is unchanged.
int ChildRedirects() {
  struct stat null {}, err_before {}, in {}, out {}, err_after {};
  if (::stat("/dev/null", &null) != 0 || ::fstat(STDERR_FILENO, &err_before) != 0) return 10;
  if (!RedirectStdinStdoutToDevNull().ok()) return 11;
  if (::fstat(STDIN_FILENO, &in) != 0 || ::fstat(STDOUT_FILENO, &out) != 0 ||
      ::fstat(STDERR_FILENO, &err_after) != 0)
    return 12;
  if (!S_ISCHR(in.st_mode) || in.st_rdev != null.st_rdev) return 13;
  if (!S_ISCHR(out.st_mode) || out.st_rdev != null.st_rdev) return 14;
  if (err_after.st_dev != err_before.st_dev || err_after.st_ino != err_before.st_ino) return 15;
  if (::write(STDOUT_FILENO, "x", 1) != 1) return 16;  // writable
  char c;
  if (::read(STDIN_FILENO, &c, 1) != 0) return 17;  // end of file at once
  return 0;
}

TEST(RedirectStdinStdoutToDevNull, PointsStdinAndStdoutAtDevNullAndKeepsStderr) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) ::_exit(ChildRedirects());
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see ChildRedirects for the failing check";
}

// DetachWithReadiness in a forked child (the "daemon's parent" role exits
// there, not in the test): its exit status is 0 once the detached process
// says it is ready, or the detached process's own status when it ends first.
int ChildDetaches(bool ready, int detached_status, const std::string& mark) {
  auto fd = DetachWithReadiness();
  if (!fd.ok()) return 20;
  // Here only in the detached process: a new session, cwd "/".
  if (::getsid(0) != ::getpid()) ::_exit(21);
  char cwd[8] = {};
  if (::getcwd(cwd, sizeof cwd) == nullptr || std::string(cwd) != "/") ::_exit(22);
  if (FILE* f = std::fopen(mark.c_str(), "w")) std::fclose(f);
  if (ready) NotifyDetachedParent(*fd);
  ::_exit(detached_status);
}

int RunDetachingChild(bool ready, int detached_status, const std::string& mark) {
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) ::_exit(ChildDetaches(ready, detached_status, mark));
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

TEST(DetachWithReadiness, ParentExitsZeroWhenReadyElseWithTheDaemonsStatus) {
  char dir[] = "/tmp/mt-shim-detach-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string mark = std::string(dir) + "/ran";
  EXPECT_EQ(RunDetachingChild(/*ready=*/true, 9, mark), 0);
  EXPECT_EQ(::access(mark.c_str(), F_OK), 0) << "the detached process ran";
  ::unlink(mark.c_str());
  EXPECT_EQ(RunDetachingChild(/*ready=*/false, 5, mark), 5) << "ended before it was ready";
  EXPECT_EQ(::access(mark.c_str(), F_OK), 0);
  ::unlink(mark.c_str());
  ::rmdir(dir);
}

TEST(IsTerminal, FalseForAFileAndAPipe) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  EXPECT_FALSE(IsTerminal(p[0]));
  EXPECT_FALSE(IsTerminal(p[1]));
  ::close(p[0]);
  ::close(p[1]);
  EXPECT_FALSE(IsTerminal(-1));
}

TEST(TryLockFile, OneHolderAtATimeAndFreeAgainWhenReleased) {
  char dir[] = "/tmp/mt-shim-lock-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/.lock";
  {
    auto first = TryLockFile(path);
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    auto second = TryLockFile(path);  // another open file description: refused
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), Errc::kBusy);
    EXPECT_NE(second.status().message().find(path), std::string::npos);
  }
  auto again = TryLockFile(path);
  EXPECT_TRUE(again.ok()) << again.status().ToString();
  again->reset();
  EXPECT_EQ(TryLockFile(std::string(dir) + "/missing-dir/.lock").status().code(), Errc::kNotFound);
  ::unlink(path.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace mt::shim
