// The dm-log-writes decoder and the replay cursor on captures built in
// memory by logwrites::Writer, which lays entries out as the kernel's
// drivers/md/dm-log-writes.c does (super at byte 0, one sectorsize header
// block per entry, the data in the following blocks, a mark's name inside
// its header block; sector counts in sectorsize units).
#include <gtest/gtest.h>

#include <cstring>

#include "send/log_writes.h"
#include "stream/messages.h"
#include "mt/shim/aligned_buffer.h"
#include "mt/shim/mem_block_device.h"
#include "send/replay.h"

namespace mt::send {
namespace {

using namespace logwrites;

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed * 31 + i * 7 + (i >> 9));
  return v;
}

void Put64(std::vector<uint8_t>* b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) (*b)[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

std::vector<Entry> ReadAll(const std::vector<uint8_t>& cap, Status* st) {
  BytesSource src(cap.data(), cap.size());
  std::vector<Entry> out;
  Result<Reader> r = Reader::Open(src);
  if (!r.ok()) {
    *st = r.status();
    return out;
  }
  for (;;) {
    Entry e;
    Result<bool> more = r->Next(&e);
    if (!more.ok()) {
      *st = more.status();
      return out;
    }
    if (!*more) break;
    out.push_back(e);
  }
  *st = Status::Ok();
  return out;
}

TEST(LogWritesTest, DecodesTheKernelLayout) {
  Writer w(512);
  const auto a = Pattern(4096, 1), b = Pattern(1024, 2);
  w.Write(8, a);
  w.Flush();
  w.Write(100, b, kFua | kMetadata);
  w.Discard(16, 8);
  w.Mark("after-fsync");
  const std::vector<uint8_t> cap = w.Finish();
  // 512 super + (512 + 4096) + 512 + (512 + 1024) + 512 + 512.
  ASSERT_EQ(cap.size(), 512u + 4608 + 512 + 1536 + 512 + 512);
  Status st;
  auto es = ReadAll(cap, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(es.size(), 5u);
  EXPECT_EQ(es[0].sector, 8u);
  EXPECT_EQ(es[0].nr_sectors, 8u);
  EXPECT_EQ(es[0].data_offset, 1024u);
  EXPECT_EQ(es[0].data_bytes, 4096u);
  EXPECT_EQ(es[1].flags, kFlush);
  EXPECT_EQ(es[1].data_bytes, 0u);
  EXPECT_EQ(es[2].flags, kFua | kMetadata);
  EXPECT_EQ(es[2].byte_offset(512), 100u * 512);
  EXPECT_TRUE(es[3].is_discard());
  EXPECT_EQ(es[3].data_bytes, 0u);
  EXPECT_EQ(es[3].byte_length(512), 4096u);
  EXPECT_TRUE(es[4].is_mark());
  EXPECT_EQ(es[4].mark, "after-fsync");

  BytesSource src(cap.data(), cap.size());
  auto r = Reader::Open(src);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->super().sectorsize, 512u);
  EXPECT_EQ(r->super().nr_entries, 5u);
  std::vector<uint8_t> data;
  ASSERT_TRUE(r->ReadData(es[2], &data).ok());
  EXPECT_EQ(data, b);
}

TEST(LogWritesTest, SectorsCountSectorsizeUnits) {
  Writer w(4096);
  w.Write(3, Pattern(8192, 3));
  const auto cap = w.Finish();
  Status st;
  auto es = ReadAll(cap, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(es.size(), 1u);
  EXPECT_EQ(es[0].nr_sectors, 2u);
  EXPECT_EQ(es[0].byte_offset(4096), 3u * 4096);
  EXPECT_EQ(es[0].data_offset, 8192u);
}

TEST(LogWritesTest, ReadsOnlyNrEntriesAndIgnoresTheRestOfTheDevice) {
  Writer w(512);
  w.Write(0, Pattern(512, 1));
  w.Write(1, Pattern(512, 2));
  auto cap = w.Finish(1);
  cap.resize(cap.size() + 8192, 0xab);  // the log device is larger than the log
  Status st;
  auto es = ReadAll(cap, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(es.size(), 1u);
}

TEST(LogWritesTest, PreciseCorruptionErrors) {
  Writer w(512);
  w.Write(0, Pattern(1024, 1));
  w.Mark("m");
  const auto good = w.Finish();
  Status st;

  auto bad = good;
  bad[0] ^= 1;
  ReadAll(bad, &st);
  EXPECT_EQ(st.code(), Errc::kCorruption);
  EXPECT_NE(st.message().find("bad magic"), std::string::npos) << st.ToString();

  bad = good;
  Put64(&bad, 8, 2);
  ReadAll(bad, &st);
  EXPECT_EQ(st.code(), Errc::kCorruption);
  EXPECT_NE(st.message().find("unsupported version 2"), std::string::npos) << st.ToString();

  bad = good;
  bad[24] = 0x10;  // sectorsize 528
  bad[25] = 0x02;
  ReadAll(bad, &st);
  EXPECT_EQ(st.code(), Errc::kCorruption);
  EXPECT_NE(st.message().find("sectorsize 528"), std::string::npos) << st.ToString();

  bad = good;
  Put64(&bad, 16, 3);  // nr_entries 3: the third is past the end
  ReadAll(bad, &st);
  EXPECT_EQ(st.code(), Errc::kCorruption);
  EXPECT_NE(st.message().find("entry 2 of 3 at byte 2560 is beyond the end"), std::string::npos)
      << st.ToString();

  bad = good;
  bad.resize(bad.size() - 512 - 100);  // entry 0's data cut short, the mark gone
  ReadAll(bad, &st);
  EXPECT_EQ(st.code(), Errc::kCorruption);
  EXPECT_NE(st.message().find("entry 0 at byte 512: its 1024 data bytes run beyond"), std::string::npos)
      << st.ToString();

  bad = good;
  Put64(&bad, 512 + 24, 512);  // data_len 512 but 2 sectors
  ReadAll(bad, &st);
  EXPECT_EQ(st.code(), Errc::kCorruption);
  EXPECT_NE(st.message().find("data_len 512 but 2 sectors"), std::string::npos) << st.ToString();

  bad = good;
  Put64(&bad, 2048 + 24, 600);  // mark name longer than its header block
  ReadAll(bad, &st);
  EXPECT_EQ(st.code(), Errc::kCorruption);
  EXPECT_NE(st.message().find("mark data_len 600"), std::string::npos) << st.ToString();

  bad = good;
  Put64(&bad, 512 + 16, 64);  // unknown flag
  ReadAll(bad, &st);
  EXPECT_EQ(st.code(), Errc::kCorruption);
  EXPECT_NE(st.message().find("unknown flags 0x40"), std::string::npos) << st.ToString();

  bad = good;
  Put64(&bad, 512, UINT64_MAX / 2);  // sector * sectorsize overflows
  ReadAll(bad, &st);
  EXPECT_EQ(st.code(), Errc::kCorruption);
  EXPECT_NE(st.message().find("overflows"), std::string::npos) << st.ToString();

  std::vector<uint8_t> tiny(10, 0);
  ReadAll(tiny, &st);
  EXPECT_EQ(st.code(), Errc::kCorruption);
  EXPECT_NE(st.message().find("too short for the super block"), std::string::npos) << st.ToString();
}

// The log device itself: reads of any offset and length through a device
// with 4 KiB logical blocks (BlockDevice's aligned-I/O contract).
TEST(LogWritesTest, ReadsThroughABlockDeviceWithLargerBlocks) {
  Writer w(512);
  const auto a = Pattern(1536, 4);
  w.Write(3, a);
  w.Mark("m1");
  auto cap = w.Finish();
  cap.resize(16384, 0);
  shim::MemBlockDevice dev("log", cap.size(), 4096);
  AlignedBuffer b(cap.size());
  std::copy(cap.begin(), cap.end(), b.data());
  ASSERT_TRUE(dev.WriteAt(0, b.data(), cap.size()).ok());
  BlockDeviceSource src(dev);
  auto r = Reader::Open(src);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Entry e;
  ASSERT_TRUE(*r->Next(&e));
  std::vector<uint8_t> data;
  ASSERT_TRUE(r->ReadData(e, &data).ok());
  EXPECT_EQ(data, a);
  ASSERT_TRUE(*r->Next(&e));
  EXPECT_EQ(e.mark, "m1");
  EXPECT_FALSE(*r->Next(&e));
}

TEST(ReplayCursorTest, FoldsEmptyFlushesOntoTheNextWriteAndNumbersItems) {
  Writer w(512);
  w.Write(0, Pattern(512, 1));
  w.Flush();
  w.Mark("a");
  w.Write(8, Pattern(1024, 2), kFua);
  w.Discard(2, 2);
  w.Mark("a");  // a repeated name gets a suffix
  w.Flush();    // trailing: dropped
  const auto cap = w.Finish();
  BytesSource src(cap.data(), cap.size());
  auto c = ReplayCursor::Open(src);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::vector<ReplayItem> items;
  for (;;) {
    ReplayItem it;
    auto more = c->Next(&it);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    items.push_back(it);
  }
  ASSERT_EQ(items.size(), 5u);
  for (size_t i = 0; i < items.size(); ++i) EXPECT_EQ(items[i].index, i);
  EXPECT_EQ(items[0].flags, 0u);
  EXPECT_EQ(items[1].type, ReplayItem::kMark);
  EXPECT_EQ(items[1].name, "a");
  EXPECT_EQ(items[2].type, ReplayItem::kWrite);
  EXPECT_EQ(items[2].offset, 8u * 512);
  EXPECT_EQ(items[2].flags, uint32_t{proto::WRITE_FLAG_FLUSH | proto::WRITE_FLAG_FUA});
  EXPECT_EQ(items[3].type, ReplayItem::kDiscard);
  EXPECT_EQ(items[3].flags, uint32_t{proto::WRITE_FLAG_DISCARD});
  EXPECT_EQ(items[4].name, "a#2");

  auto s = ScanCapture(src);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->items, 5u);
  EXPECT_EQ(s->writes, 2u);
  EXPECT_EQ(s->discards, 1u);
  EXPECT_EQ(s->marks, 2u);
  EXPECT_EQ(s->folded_flushes, 2u);
  EXPECT_EQ(s->max_end, 8u * 512 + 1024);

  EXPECT_TRUE(CheckAlignment(src, 512, 0).ok());
  Status al = CheckAlignment(src, 4096, 0);
  EXPECT_EQ(al.code(), Errc::kMisaligned);
  EXPECT_NE(al.message().find("entry 0 (write of 512 bytes at byte 0) is not aligned to disk 0's "
                              "logical block size 4096"),
            std::string::npos)
      << al.ToString();

  std::vector<uint8_t> image(8192, 0xff);
  ASSERT_TRUE(ApplyCapture(src, &image).ok());
  const auto p1 = Pattern(512, 1), p2 = Pattern(1024, 2);
  EXPECT_TRUE(std::equal(p1.begin(), p1.end(), image.begin()));
  EXPECT_TRUE(std::equal(p2.begin(), p2.end(), image.begin() + 4096));
  EXPECT_TRUE(std::all_of(image.begin() + 1024, image.begin() + 2048, [](uint8_t b) { return b == 0; }));
}

// mkfs.xfs and mkfs.ext4 discard the whole device first: one entry far over
// the stream's 64 MiB per write. A discard carries a range, not data, so the
// scan accepts it; a write that large is still refused.
TEST(ReplayCursorTest, DiscardOfAWholeLargeDiskIsAnItemAWriteThatLargeIsRefused) {
  Writer w(512);
  w.Discard(0, (512ull << 20) / 512);  // 512 MiB
  w.Mark("formatted");
  auto cap = w.Finish();
  BytesSource src(cap.data(), cap.size());
  auto s = ScanCapture(src);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->items, 2u);
  EXPECT_EQ(s->discards, 1u);
  EXPECT_EQ(s->max_end, 512ull << 20);

  Writer big(512);
  big.Write(0, Pattern((64u << 20) + 512, 3));
  cap = big.Finish();
  BytesSource big_src(cap.data(), cap.size());
  auto refused = ScanCapture(big_src);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Errc::kOutOfRange);
  EXPECT_NE(refused.status().message().find("entry 0 covers 67109376 bytes, more than the "
                                            "stream's 67108864 per write"),
            std::string::npos)
      << refused.status().ToString();
}

// --no-discard: discards are no items (no seq); a FLUSH they carried goes
// onto the next write, as an empty flush's does; the ranges keep their data.
TEST(ReplayCursorTest, SkippedDiscardsTakeNoSeqAndPassTheirFlushOn) {
  Writer w(512);
  w.Write(0, Pattern(1024, 1));
  w.Discard(0, 2, kFlush);
  w.Mark("m");
  w.Write(4, Pattern(512, 2));
  const auto cap = w.Finish();
  BytesSource src(cap.data(), cap.size());
  auto c = ReplayCursor::Open(src, /*skip_discards=*/true);
  ASSERT_TRUE(c.ok());
  std::vector<ReplayItem> items;
  for (ReplayItem it; *c->Next(&it);) items.push_back(it);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[1].type, ReplayItem::kMark);
  EXPECT_EQ(items[2].index, 2u);
  EXPECT_EQ(items[2].flags, uint32_t{proto::WRITE_FLAG_FLUSH});
  auto s = ScanCapture(src, true);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->items, 3u);
  EXPECT_EQ(s->discards, 0u);
  EXPECT_EQ(s->skipped_discards, 1u);
  EXPECT_NE(s->fingerprint, ScanCapture(src)->fingerprint);  // other items, other seqs
  std::vector<uint8_t> image(4096, 0);
  ASSERT_TRUE(ApplyCapture(src, &image, true).ok());
  const auto p1 = Pattern(1024, 1);
  EXPECT_TRUE(std::equal(p1.begin(), p1.end(), image.begin()));  // not discarded
}

TEST(ReplayCursorTest, UnprintableMarkNameIsRefusedByTheScan) {
  Writer w(512);
  w.Mark("bad\tname");
  const auto cap = w.Finish();
  BytesSource src(cap.data(), cap.size());
  auto s = ScanCapture(src);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("entry 0: mark name is not 1..255 bytes of printable ASCII"),
            std::string::npos)
      << s.status().ToString();
}

}  // namespace
}  // namespace mt::send
