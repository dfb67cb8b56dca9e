// The real BlockDevice on real loop devices (O_DIRECT through the kernel).
#include <gtest/gtest.h>

#include <cstring>

#include "loop_device.h"
#include "mt/shim/aligned_buffer.h"
#include "mt/shim/block_device.h"

namespace mt::shim {
namespace {

using test::Capture;
using test::LoopDevice;

std::unique_ptr<BlockDevice> OpenRw(const std::string& path) {
  BlockDeviceOptions o;
  o.writable = true;
  auto d = OpenBlockDevice(path, o);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return d.ok() ? std::move(d).value() : nullptr;
}

TEST(PosixBlockDevice, SizeAndBlockSizesMatchTheKernel) {
  MT_REQUIRE_ROOT();
  for (unsigned sector : {512u, 4096u}) {
    LoopDevice loop(64ull << 20, sector);
    ASSERT_FALSE(loop.path().empty()) << loop.error();
    auto dev = OpenRw(loop.path());
    ASSERT_TRUE(dev);
    EXPECT_EQ(dev->size(), 64ull << 20);
    EXPECT_EQ(dev->logical_block_size(), sector);
    EXPECT_EQ(std::to_string(dev->logical_block_size()), Capture("blockdev --getss " + loop.path()));
    EXPECT_EQ(std::to_string(dev->physical_block_size()),
              Capture("blockdev --getpbsz " + loop.path()));
    EXPECT_EQ(dev->name(), loop.path());
  }
}

TEST(PosixBlockDevice, WriteFlushReadBackThroughTheKernel) {
  MT_REQUIRE_ROOT();
  LoopDevice loop(16ull << 20);
  ASSERT_FALSE(loop.path().empty()) << loop.error();
  {
    auto dev = OpenRw(loop.path());
    ASSERT_TRUE(dev);
    AlignedBuffer w(1 << 20);
    for (size_t i = 0; i < w.size(); ++i) w.data()[i] = static_cast<uint8_t>(i * 7 + 3);
    ASSERT_TRUE(dev->WriteAt(3 << 20, w.data(), w.size()).ok());
    ASSERT_TRUE(dev->Flush().ok());
    AlignedBuffer r(1 << 20);
    ASSERT_TRUE(dev->ReadAt(3 << 20, r.data(), r.size()).ok());
    EXPECT_EQ(std::memcmp(r.data(), w.data(), w.size()), 0);
  }
  // An independent reader (dd through the page cache of the loop device) sees it.
  const std::string sum_dev =
      Capture("dd if=" + loop.path() + " bs=1M skip=3 count=1 status=none | sha256sum");
  AlignedBuffer w(1 << 20);
  for (size_t i = 0; i < w.size(); ++i) w.data()[i] = static_cast<uint8_t>(i * 7 + 3);
  FILE* f = std::fopen((test::ScratchDir() + "/mt-expected.bin").c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fwrite(w.data(), 1, w.size(), f);
  std::fclose(f);
  EXPECT_EQ(sum_dev, Capture("sha256sum < " + test::ScratchDir() + "/mt-expected.bin"));
  std::remove((test::ScratchDir() + "/mt-expected.bin").c_str());
}

TEST(PosixBlockDevice, MisalignedIoIsRejectedWithAClearError) {
  MT_REQUIRE_ROOT();
  LoopDevice loop(4ull << 20, 4096);
  ASSERT_FALSE(loop.path().empty()) << loop.error();
  auto dev = OpenRw(loop.path());
  ASSERT_TRUE(dev);
  AlignedBuffer b(8192);
  Status s = dev->WriteAt(512, b.data(), 4096);
  EXPECT_EQ(s.code(), Errc::kMisaligned);
  EXPECT_NE(s.message().find(loop.path()), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("4096"), std::string::npos) << s.message();
  EXPECT_EQ(dev->WriteAt(0, b.data(), 512).code(), Errc::kMisaligned);
  EXPECT_EQ(dev->ReadAt(0, b.data() + 512, 4096).code(), Errc::kMisaligned);
  EXPECT_EQ(dev->WriteAt(4ull << 20, b.data(), 4096).code(), Errc::kOutOfRange);
}

TEST(PosixBlockDevice, ExclusiveOpenOfAMountedDeviceIsBusy) {
  MT_REQUIRE_ROOT();
  LoopDevice loop(32ull << 20);
  ASSERT_FALSE(loop.path().empty()) << loop.error();
  ASSERT_EQ(test::Run("mkfs.ext4 -q -F " + loop.path()), 0);
  char dir[] = "/tmp/mt-mnt-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  ASSERT_EQ(test::Run("mount " + loop.path() + " " + dir), 0);
  BlockDeviceOptions o;
  o.writable = true;
  o.exclusive = true;
  auto d = OpenBlockDevice(loop.path(), o);
  EXPECT_EQ(d.status().code(), Errc::kBusy);
  EXPECT_NE(d.status().message().find("in use"), std::string::npos) << d.status().message();
  test::Run(std::string("umount ") + dir);
  rmdir(dir);
  auto d2 = OpenBlockDevice(loop.path(), o);
  EXPECT_TRUE(d2.ok()) << d2.status().ToString();
}

TEST(PosixBlockDevice, ALoopDeviceIsABlockDeviceNodeItsBackingFileIsNot) {
  MT_REQUIRE_ROOT();
  LoopDevice loop(4ull << 20);
  ASSERT_FALSE(loop.path().empty()) << loop.error();
  EXPECT_TRUE(IsBlockDeviceNode(loop.path()));
  EXPECT_FALSE(IsBlockDeviceNode("/dev/null"));
}

TEST(PosixBlockDevice, MissingDeviceIsNotFound) {
  auto d = OpenBlockDevice("/dev/mt-no-such-disk", BlockDeviceOptions{});
  EXPECT_EQ(d.status().code(), Errc::kNotFound);
  EXPECT_EQ(d.status().message(), "open /dev/mt-no-such-disk: No such file or directory");
}

}  // namespace
}  // namespace mt::shim
