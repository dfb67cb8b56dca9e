// The real FileSystem on a real file system.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "loop_device.h"
#include "mt/shim/aligned_buffer.h"
#include "mt/shim/file_system.h"

namespace mt::shim {
namespace {

class PosixFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = test::ScratchDir() + "/mt-fs-XXXXXX";
    ASSERT_NE(mkdtemp(t.data()), nullptr);
    dir_ = t;
  }
  void TearDown() override { test::Run("rm -rf " + dir_); }
  FileSystem& fs() { return PosixFileSystem(); }
  std::string dir_;
};

TEST_F(PosixFileSystemTest, CreateAppendSyncRenameList) {
  ASSERT_TRUE(fs().CreateDir(dir_ + "/a/b").ok());
  FileOptions o;
  o.writable = o.create = true;
  auto f = fs().OpenFile(dir_ + "/a/b/x.tmp", o);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_TRUE((*f)->Append("hello", 5).ok());
  ASSERT_TRUE((*f)->Append(" world", 6).ok());
  ASSERT_TRUE((*f)->Sync().ok());
  EXPECT_EQ((*f)->Size(), 11u);
  ASSERT_TRUE(fs().Rename(dir_ + "/a/b/x.tmp", dir_ + "/a/b/x").ok());
  EXPECT_EQ(fs().ListDir(dir_ + "/a/b").value(), std::vector<std::string>{"x"});
  EXPECT_EQ(fs().FileSize(dir_ + "/a/b/x").value(), 11u);
  char buf[16] = {};
  auto n = (*f)->ReadAt(6, buf, sizeof buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, n.value()), "world");
  ASSERT_TRUE((*f)->Truncate(5).ok());
  EXPECT_EQ(fs().FileSize(dir_ + "/a/b/x").value(), 5u);
  ASSERT_TRUE(fs().Remove(dir_ + "/a/b/x").ok());
  EXPECT_FALSE(fs().Exists(dir_ + "/a/b/x"));
  EXPECT_EQ(fs().Remove(dir_ + "/a/b/x").code(), Errc::kNotFound);
}

TEST_F(PosixFileSystemTest, DirectFileIoNeedsAlignment) {
  FileOptions o;
  o.writable = o.create = o.direct = true;
  auto f = fs().OpenFile(dir_ + "/direct", o);
  if (f.status().code() == Errc::kUnavailable) GTEST_SKIP() << f.status().message();
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  AlignedBuffer b(8192);
  std::memset(b.data(), 0x42, b.size());
  ASSERT_TRUE((*f)->WriteAt(0, b.data(), 8192).ok());
  EXPECT_EQ((*f)->WriteAt(100, b.data(), 4096).code(), Errc::kMisaligned);
  ASSERT_TRUE((*f)->Preallocate(8192, 1 << 20).ok());
  EXPECT_EQ((*f)->Size(), 8192u);
  AlignedBuffer r(4096);
  ASSERT_EQ((*f)->ReadAt(4096, r.data(), 4096).value(), 4096u);
  EXPECT_EQ(r.data()[4095], 0x42);
}

TEST_F(PosixFileSystemTest, SpaceReportsTheFileSystem) {
  auto s = fs().Space(dir_);
  ASSERT_TRUE(s.ok());
  EXPECT_GT(s->capacity, 0u);
  EXPECT_LE(s->available, s->capacity);
}

}  // namespace
}  // namespace mt::shim
