// mtsend's workload generator and record file: reproducible from the seed,
// inside the disks and aligned, the record round-trips and rebuilds disks.
#include <gtest/gtest.h>

#include <cstdio>

#include "mt/shim/crc32c.h"
#include "mt/shim/mem_file_system.h"
#include "send/record.h"
#include "send/workload.h"

namespace mt::send {
namespace {

WorkloadSpec Spec(double overlap = 0.2) {
  WorkloadSpec s;
  s.seed = 99;
  s.disks = 3;
  s.disk_size = 16u << 20;
  s.block = 4096;
  s.sizes = *ParseSizes("4k..1M", 4096);
  s.overlap = overlap;
  return s;
}

TEST(Workload, ParsesSizesRangesAndWeights) {
  EXPECT_EQ(*ParseBytes("4k"), 4096u);
  EXPECT_EQ(*ParseBytes("2MiB"), 2u << 20);
  EXPECT_FALSE(ParseBytes("12q").ok());
  SizeDistribution r = *ParseSizes("4k..64k", 4096);
  EXPECT_EQ(r.sizes, (std::vector<uint64_t>{4096, 8192, 16384, 32768, 65536}));
  SizeDistribution w = *ParseSizes("4k:60,1M:40", 4096);
  EXPECT_EQ(w.sizes, (std::vector<uint64_t>{4096, 1u << 20}));
  EXPECT_EQ(w.weights, (std::vector<uint64_t>{60, 40}));
  EXPECT_FALSE(ParseSizes("1000", 4096).ok()) << "not a multiple of the block";
  EXPECT_FALSE(ParseSizes("128M", 4096).ok()) << "over 64 MiB";
}

TEST(Workload, WritesAreAPureFunctionOfSeedAndSeqInsideTheDisks) {
  const WorkloadSpec s = Spec();
  ASSERT_TRUE(CheckSpec(s).ok());
  for (uint64_t seq = 1; seq <= 5000; ++seq) {
    const WriteItem a = WriteAt(s, seq), b = WriteAt(s, seq);
    EXPECT_EQ(a.disk, b.disk);
    EXPECT_EQ(a.offset, b.offset);
    EXPECT_EQ(a.length, b.length);
    ASSERT_LT(a.disk, s.disks);
    ASSERT_EQ(a.offset % s.block, 0u);
    ASSERT_EQ(a.length % s.block, 0u);
    ASSERT_LE(a.offset + a.length, s.disk_size);
  }
  std::vector<uint8_t> x(8192), y(8192);
  WorkloadData(1, 7, x.data(), x.size());
  WorkloadData(1, 7, y.data(), y.size());
  EXPECT_EQ(x, y);
  WorkloadData(1, 8, y.data(), y.size());
  EXPECT_NE(x, y);
}

// The bytes are the format (docs/formats/mtsend-record.md): a record made by
// one build of mtsend must rebuild with another. Expected values computed
// from the format's description by an independent model (Python).
TEST(Workload, DataBytesAreThoseOfTheDocumentedFormat) {
  auto hex = [](const std::vector<uint8_t>& v) {
    std::string s;
    char b[3];
    for (uint8_t c : v) {
      std::snprintf(b, sizeof b, "%02x", c);
      s += b;
    }
    return s;
  };
  std::vector<uint8_t> a(40), b(72);
  WorkloadData(1, 7, a.data(), a.size());
  EXPECT_EQ(hex(a),
            "a3a938695c7a3a5be090cec223ec18a9846b13ac049926fd712f59bacb64fcf8cd302d98154db644");
  WorkloadData(0xdeadbeef, 123456, b.data(), b.size());
  EXPECT_EQ(hex(b),
            "d5be8929f2862aff3dd10f1814a0ac721bda1500f8dda3fb79b893c94c0d2616c13e788499b3b002"
            "ce0bab67e4cc4c3755ce3364502ae1002a8aa3b62a5085e1fe4153b4c1855d3b");
}

TEST(Workload, OverlapOneKeepsEveryWriteInTheHotZone) {
  const WorkloadSpec s = Spec(1.0);
  for (uint64_t seq = 1; seq <= 1000; ++seq) {
    const WriteItem w = WriteAt(s, seq);
    ASSERT_LE(w.offset + w.length, std::min<uint64_t>(s.disk_size, 64 * s.sizes.max()));
  }
}

TEST(Workload, CountedGroupTagsAreTheSameInStreamsThatStartedAtDifferentSeqs) {
  // Two streams of a group: one resumed after seq 0, the other after seq 7
  // (its resync took seqs). With --tag-every-items 5 --group-tags g both make
  // tags at items 5, 10, 15 of their run, with ids g-1, g-2, g-3.
  for (uint64_t start : {uint64_t{0}, uint64_t{7}}) {
    std::vector<std::string> ids;
    std::vector<uint64_t> tag_seqs;
    for (uint64_t seq = start + 1; seq <= start + 17; ++seq) {
      if (!IsCountedTag(start, 5, seq)) continue;
      tag_seqs.push_back(seq);
      ids.push_back(GroupTagId("g", CountedTagOrdinal(start, 5, seq)));
    }
    EXPECT_EQ(tag_seqs, (std::vector<uint64_t>{start + 5, start + 10, start + 15})) << "start " << start;
    EXPECT_EQ(ids, (std::vector<std::string>{"g-1", "g-2", "g-3"})) << "start " << start;
    EXPECT_EQ(WorkloadTagName(tag_seqs[0]), "mtsend-" + std::to_string(start + 5));
  }
  EXPECT_FALSE(IsCountedTag(0, 0, 5)) << "no count-driven tags";
  EXPECT_FALSE(IsCountedTag(10, 5, 10)) << "the start seq is not an item of the run";
  EXPECT_EQ(GroupTagId("", 3), "") << "no prefix: no group tag";
  EXPECT_TRUE(CheckGroupTagPrefix("").ok());
  EXPECT_TRUE(CheckGroupTagPrefix("g1-run.2").ok());
  EXPECT_FALSE(CheckGroupTagPrefix("has blank").ok());
  EXPECT_FALSE(CheckGroupTagPrefix(std::string(201, 'x')).ok());
}

TEST(Record, RestartKeepsDurableLinesAndRebuildsTheDisks) {
  shim::MemFileSystem fs;
  const WorkloadSpec s = Spec();
  auto w = RecordWriter::Open(fs, "/rec", s.seed, 0);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  std::vector<RecordEntry> entries;
  for (uint64_t seq = 1; seq <= 30; ++seq) {
    RecordEntry e;
    if (seq % 10 == 0) {
      e.type = 'T';
      e.kind = "app";
      e.name = "tag with spaces " + std::to_string(seq);
    } else {
      const WriteItem it = WriteAt(s, seq);
      std::vector<uint8_t> data(it.length);
      WorkloadData(s.seed, seq, data.data(), data.size());
      e.disk = it.disk;
      e.offset = it.offset;
      e.length = it.length;
      e.crc32c = crc32c::Value(data.data(), data.size());
    }
    e.seq = seq;
    entries.push_back(e);
  }
  ASSERT_TRUE((*w)->Append(entries).ok());
  w = RecordWriter::Open(fs, "/rec", s.seed, 20);  // restart: only 1..20 became durable
  ASSERT_TRUE(w.ok());
  auto r = ReadRecord(fs, "/rec");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->entries.size(), 20u);
  EXPECT_EQ(r->entries[9].name, "tag with spaces 10");
  EXPECT_EQ(r->start, 0u);
  EXPECT_FALSE(RecordWriter::Open(fs, "/rec", s.seed + 1, 20).ok()) << "another seed";

  std::vector<std::vector<uint8_t>> images;
  ASSERT_TRUE(RebuildDisks(*r, s.disks, s.disk_size, 20, &images).ok());
  std::vector<std::vector<uint8_t>> want(s.disks, std::vector<uint8_t>(s.disk_size, 0));
  for (uint64_t seq = 1; seq <= 20; ++seq) {
    if (seq % 10 == 0) continue;
    const WriteItem it = WriteAt(s, seq);
    WorkloadData(s.seed, seq, want[it.disk].data() + it.offset, it.length);
  }
  EXPECT_TRUE(images == want);
}

}  // namespace
}  // namespace mt::send
