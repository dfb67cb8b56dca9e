// libblkid probing on small image files made by mkfs (no root needed).
#include "mt/shim/blkid_probe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "temp_tree.h"

namespace mt::shim {
namespace {

bool Have(const char* tool) {
  return std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) == 0;
}

std::string Image(const test::TempDir& t, const char* name, size_t size) {
  const std::string path = t.path() + "/" + name;
  std::ofstream f(path, std::ios::binary);
  f.seekp(static_cast<std::streamoff>(size) - 1);
  f.put('\0');
  return path;
}

TEST(BlkidProbe, Ext4ImageTypeUuidAndLabel) {
  if (!Have("mkfs.ext4")) GTEST_SKIP() << "mkfs.ext4 (e2fsprogs) is not installed";
  test::TempDir t;
  const std::string img = Image(t, "ext4.img", 8 << 20);
  ASSERT_EQ(std::system(("mkfs.ext4 -q -F -L mtret -U 3f1c2b6a-9d3e-4c1a-8b5f-0e2d4c6a8b1f " + img +
                         " >/dev/null 2>&1")
                            .c_str()),
            0);
  auto p = ProbeContent(img);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->type, "ext4");
  EXPECT_EQ(p->usage, "filesystem");
  EXPECT_EQ(p->uuid, "3f1c2b6a-9d3e-4c1a-8b5f-0e2d4c6a8b1f");
  EXPECT_EQ(p->label, "mtret");
  EXPECT_EQ(p->pt_type, "");
}

TEST(BlkidProbe, VfatImage) {
  if (!Have("mkfs.vfat")) GTEST_SKIP() << "mkfs.vfat (dosfstools) is not installed";
  test::TempDir t;
  const std::string img = Image(t, "fat.img", 8 << 20);
  ASSERT_EQ(std::system(("mkfs.vfat -n MTFAT " + img + " >/dev/null 2>&1").c_str()), 0);
  auto p = ProbeContent(img);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->type, "vfat");
  EXPECT_EQ(p->label, "MTFAT");
}

TEST(BlkidProbe, SwapSignature) {
  if (!Have("mkswap")) GTEST_SKIP() << "mkswap (util-linux) is not installed";
  test::TempDir t;
  const std::string swap = Image(t, "swap.img", 4 << 20);
  ASSERT_EQ(std::system(("mkswap " + swap + " >/dev/null 2>&1").c_str()), 0);
  auto s = ProbeContent(swap);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->type, "swap");
}

TEST(BlkidProbe, DosPartitionTable) {
  // An MBR written by hand: disk id, one Linux partition at LBA 2048, 0x55AA.
  test::TempDir t;
  const std::string img = Image(t, "mbr.img", 8 << 20);
  unsigned char mbr[512] = {};
  const unsigned char id[4] = {0x78, 0x56, 0x34, 0x12};
  std::copy(id, id + 4, mbr + 440);
  unsigned char* e = mbr + 446;
  e[4] = 0x83;                 // Linux
  e[8] = 0x00, e[9] = 0x08;    // start LBA 2048 (little-endian)
  e[12] = 0x00, e[13] = 0x30;  // 12288 sectors
  mbr[510] = 0x55, mbr[511] = 0xaa;
  {
    std::fstream f(img, std::ios::in | std::ios::out | std::ios::binary);
    f.write(reinterpret_cast<const char*>(mbr), sizeof mbr);
  }
  auto g = ProbeContent(img);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->pt_type, "dos");
  EXPECT_EQ(g->pt_uuid, "12345678");
  EXPECT_EQ(g->type, "");
}

TEST(BlkidProbe, BlankImageHasNoSignature) {
  test::TempDir t;
  auto p = ProbeContent(Image(t, "blank.img", 1 << 20));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->type, "");
  EXPECT_EQ(p->pt_type, "");
  EXPECT_FALSE(p->ambiguous);
}

TEST(BlkidProbe, VanishedDeviceIsNotFound) {
  EXPECT_EQ(ProbeContent("/nonexistent/mt-disk").status().code(), Errc::kNotFound);
  EXPECT_EQ(IsHeldExclusively("/nonexistent/mt-disk").status().code(), Errc::kNotFound);
}

}  // namespace
}  // namespace mt::shim
