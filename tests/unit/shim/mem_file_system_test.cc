#include "mt/shim/mem_file_system.h"

#include <gtest/gtest.h>

#include <string>

namespace mt::shim {
namespace {

std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }

std::unique_ptr<File> Create(FileSystem& fs, const std::string& path) {
  FileOptions o;
  o.writable = o.create = true;
  auto f = fs.OpenFile(path, o);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return std::move(f).value();
}

TEST(MemFileSystem, PowerCutDropsExactlyTheUnsyncedData) {
  MemFileSystem fs;
  ASSERT_TRUE(fs.CreateDir("/r").ok());
  auto f = Create(fs, "/r/seg");
  ASSERT_TRUE(f->Append("durable|", 8).ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Append("lost", 4).ok());
  ASSERT_TRUE(f->WriteAt(0, "DUR", 3).ok());  // overwrite of synced bytes, not synced
  fs.PowerCut();
  EXPECT_EQ(fs.Contents("/r/seg"), Bytes("durable|"));
  EXPECT_EQ(f->Size(), 8u);
}

TEST(MemFileSystem, UnsyncedTruncateIsUndoneByPowerCut) {
  MemFileSystem fs;
  auto f = Create(fs, "/seg");
  ASSERT_TRUE(f->Append("0123456789", 10).ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(f->Truncate(4).ok());
  ASSERT_TRUE(f->Append("xy", 2).ok());
  EXPECT_EQ(fs.Contents("/seg"), Bytes("0123xy"));
  fs.PowerCut();
  EXPECT_EQ(fs.Contents("/seg"), Bytes("0123456789"));
}

TEST(MemFileSystem, TornTailKeepsAPrefixOfTheLastWriteOnly) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    MemFileSystem fs;
    auto f = Create(fs, "/seg");
    std::string synced(100, 's'), tail(2048, 't');
    ASSERT_TRUE(f->Append(synced.data(), synced.size()).ok());
    ASSERT_TRUE(f->Sync().ok());
    ASSERT_TRUE(f->Append(tail.data(), tail.size()).ok());
    PowerCutOptions o;
    o.tear_last = true;
    o.seed = seed;
    fs.PowerCut(o);
    auto c = fs.Contents("/seg");
    ASSERT_GE(c.size(), 100u);
    EXPECT_EQ(std::string(c.begin(), c.begin() + 100), synced);
    EXPECT_EQ((c.size() - 100) % 512, 0u);
    for (size_t i = 100; i < c.size(); ++i) ASSERT_EQ(c[i], 't');
  }
}

TEST(MemFileSystem, NamespaceChangesAreDurableOnReturn) {
  MemFileSystem fs;
  ASSERT_TRUE(fs.CreateDir("/a/b").ok());
  auto f = Create(fs, "/a/b/tmp");
  ASSERT_TRUE(f->Append("x", 1).ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(fs.Rename("/a/b/tmp", "/a/b/final").ok());
  fs.PowerCut();
  EXPECT_FALSE(fs.Exists("/a/b/tmp"));
  EXPECT_EQ(fs.Contents("/a/b/final"), Bytes("x"));
  auto names = fs.ListDir("/a/b");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names.value(), std::vector<std::string>{"final"});
  EXPECT_EQ(fs.ListDir("/a").value(), std::vector<std::string>{"b"});
}

TEST(MemFileSystem, MissingFileAndParentAreReported) {
  MemFileSystem fs;
  FileOptions ro;
  EXPECT_EQ(fs.OpenFile("/nope", ro).status().code(), Errc::kNotFound);
  FileOptions c;
  c.create = c.writable = true;
  EXPECT_EQ(fs.OpenFile("/no/dir/file", c).status().code(), Errc::kNotFound);
  auto f = Create(fs, "/x");
  c.must_not_exist = true;
  EXPECT_EQ(fs.OpenFile("/x", c).status().code(), Errc::kAlreadyExists);
}

TEST(MemFileSystem, CapacityLimitGivesNoSpaceAndWritesNothing) {
  MemFileSystem fs(100);
  auto f = Create(fs, "/seg");
  std::string data(80, 'd');
  ASSERT_TRUE(f->Append(data.data(), data.size()).ok());
  Status s = f->Append(data.data(), data.size());
  EXPECT_EQ(s.code(), Errc::kNoSpace);
  EXPECT_EQ(f->Size(), 80u);
  auto space = fs.Space("/");
  ASSERT_TRUE(space.ok());
  EXPECT_EQ(space->capacity, 100u);
  EXPECT_EQ(space->available, 20u);
}

TEST(MemFileSystem, DirectFilesEnforceAlignment) {
  MemFileSystem fs;
  FileOptions o;
  o.writable = o.create = o.direct = true;
  auto f = fs.OpenFile("/d", o);
  ASSERT_TRUE(f.ok());
  std::string buf(4096, 'z');
  EXPECT_EQ((*f)->WriteAt(0, buf.data(), 100).code(), Errc::kMisaligned);
}

}  // namespace
}  // namespace mt::shim
