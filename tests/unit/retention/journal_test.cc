// Journal tests in the spirit of LevelDB's log tests, on MemFileSystem (with
// O_DIRECT alignment enforced) and the fault-injecting wrapper.
#include "retention/journal.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <mutex>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <thread>

#include "retention/journal_reader.h"
#include "retention/segment_index.h"
#include "mt/shim/fault_injection.h"
#include "mt/shim/mem_file_system.h"
#include "mt/shim/memory.h"
#include "resident_memory.h"

namespace mt::retention {
namespace {

using shim::FaultController;
using shim::FaultInjectingFileSystem;
using shim::MemFileSystem;

struct Rec {
  RecordHeader h;
  std::vector<uint8_t> payload;
};

std::vector<uint8_t> Payload(uint64_t seq, size_t len) {
  std::vector<uint8_t> p(len);
  std::mt19937 rng(static_cast<uint32_t>(seq));
  for (auto& b : p) b = static_cast<uint8_t>(rng());
  return p;
}

RecordHeader WriteHeader(uint64_t seq, uint32_t len) {
  RecordHeader h;
  h.type = RecordType::kWrite;
  h.seq = seq;
  h.source_time_ns = static_cast<int64_t>(seq) * 1000;
  h.disk = static_cast<uint32_t>(seq % 3);
  h.offset = (seq % 64) * 4096;
  h.length = len;
  return h;
}

JournalOptions Opts(uint64_t segment_bytes = 1 << 20) {
  JournalOptions o;
  o.kind = SegmentKind::kWal;
  o.stream = 1;
  o.dir = "/ret/s1/wal";
  o.segment_bytes = segment_bytes;
  o.max_batch_bytes = 256 << 10;
  o.direct = true;
  o.preallocate = false;
  return o;
}

std::unique_ptr<Journal> OpenJournal(shim::FileSystem& fs, const JournalOptions& o,
                                     RecoveryReport* r = nullptr) {
  auto j = Journal::Open(fs, shim::SystemClock(), o, r);
  EXPECT_TRUE(j.ok()) << j.status().ToString();
  return j.ok() ? std::move(j).value() : nullptr;
}

std::vector<Rec> ReadAll(shim::FileSystem& fs, const std::vector<SegmentInfo>& segs,
                         Direction d = Direction::kForward) {
  std::vector<Rec> out;
  Status s = ForEachRecord(fs, segs, d, [&](const RecordHeader& h, const std::vector<uint8_t>& p,
                                            bool*) {
    out.push_back({h, p});
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

std::vector<Rec> AppendMany(Journal& j, uint64_t first, int n, size_t len = 3000) {
  std::vector<Rec> recs;
  for (int i = 0; i < n; ++i) {
    const uint64_t seq = first + static_cast<uint64_t>(i);
    auto p = Payload(seq, len);
    EXPECT_TRUE(j.Append(WriteHeader(seq, static_cast<uint32_t>(len)), p.data(), p.size()).ok());
    recs.push_back({WriteHeader(seq, static_cast<uint32_t>(len)), p});
  }
  return recs;
}

void ExpectSame(const std::vector<Rec>& got, const std::vector<Rec>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].h.seq, want[i].h.seq);
    EXPECT_EQ(got[i].h.offset, want[i].h.offset);
    EXPECT_EQ(got[i].h.disk, want[i].h.disk);
    EXPECT_EQ(got[i].h.source_time_ns, want[i].h.source_time_ns);
    EXPECT_EQ(got[i].payload, want[i].payload) << "seq " << want[i].h.seq;
  }
}

TEST(Journal, AppendSyncReopenReadsEveryRecord) {
  MemFileSystem fs;
  std::vector<Rec> want;
  {
    auto j = OpenJournal(fs, Opts());
    want = AppendMany(*j, 1, 50);
    ASSERT_TRUE(j->Sync().ok());
    EXPECT_EQ(j->durable_seq(), 50u);
  }
  RecoveryReport r;
  auto j = OpenJournal(fs, Opts(), &r);
  EXPECT_EQ(r.records, 50u);
  EXPECT_EQ(r.last_seq, 50u);
  EXPECT_EQ(r.truncated_bytes, 0u);
  ExpectSame(ReadAll(fs, j->Segments()), want);
  // Appending continues after reopen, in the same segment.
  auto more = AppendMany(*j, 51, 5);
  ASSERT_TRUE(j->Sync().ok());
  want.insert(want.end(), more.begin(), more.end());
  ExpectSame(ReadAll(fs, j->Segments()), want);
}

TEST(Journal, BackwardIterationEqualsReversedForward) {
  MemFileSystem fs;
  auto j = OpenJournal(fs, Opts(256 << 10));  // several segments
  AppendMany(*j, 1, 200);
  ASSERT_TRUE(j->Sync().ok());
  ASSERT_GT(j->Segments().size(), 2u);
  auto fwd = ReadAll(fs, j->Segments(), Direction::kForward);
  auto bwd = ReadAll(fs, j->Segments(), Direction::kBackward);
  std::reverse(bwd.begin(), bwd.end());
  ExpectSame(bwd, fwd);
}

TEST(Journal, SegmentsRollOverBySizeAndNeverSplitRecords) {
  MemFileSystem fs;
  auto j = OpenJournal(fs, Opts(64 << 10));
  AppendMany(*j, 1, 100, 5000);
  ASSERT_TRUE(j->Sync().ok());
  auto segs = j->Segments();
  ASSERT_GT(segs.size(), 5u);
  uint64_t next = 1;
  for (size_t i = 0; i < segs.size(); ++i) {
    EXPECT_LE(segs[i].bytes, 64u << 10);
    EXPECT_EQ(segs[i].first_seq, next);
    next = segs[i].last_seq + 1;
    EXPECT_EQ(segs[i].sealed, i + 1 < segs.size());
  }
  EXPECT_EQ(next, 101u);
}

TEST(Journal, SequenceMustIncrease) {
  MemFileSystem fs;
  auto j = OpenJournal(fs, Opts());
  AppendMany(*j, 10, 1);
  auto p = Payload(10, 512);
  Status s = j->Append(WriteHeader(10, 512), p.data(), p.size());
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_EQ(j->Append(WriteHeader(9, 512), p.data(), p.size()).code(), Errc::kInvalidArgument);
}

// A long discard's before-image: pieces of one seq, all but the first
// marked continued; they may straddle segments, and survive a reopen.
TEST(Journal, ContinuedRecordsShareASeqAcrossSegmentsAndReopen) {
  MemFileSystem fs;
  JournalOptions o = Opts(16 << 10);
  o.kind = SegmentKind::kUndo;
  o.dir = "/ret/s1/undo";
  {
    auto j = OpenJournal(fs, o);
    auto p = Payload(1, 4096);
    ASSERT_TRUE(j->Append(WriteHeader(1, 4096), p.data(), p.size()).ok());
    for (uint64_t piece = 0; piece < 12; ++piece) {
      RecordHeader h = WriteHeader(2, 4096);
      h.offset = piece * 4096;
      if (piece > 0) h.flags = kFlagContinued;
      ASSERT_TRUE(j->Append(h, p.data(), p.size()).ok()) << piece;
    }
    // Not a continuation of seq 2 with another seq, nor seq 2 again unmarked.
    RecordHeader bad = WriteHeader(3, 4096);
    bad.flags = kFlagContinued;
    EXPECT_EQ(j->Append(bad, p.data(), p.size()).code(), Errc::kInvalidArgument);
    EXPECT_EQ(j->Append(WriteHeader(2, 4096), p.data(), p.size()).code(), Errc::kInvalidArgument);
    ASSERT_TRUE(j->Append(WriteHeader(3, 4096), p.data(), p.size()).ok());
    ASSERT_TRUE(j->Sync().ok());
    EXPECT_EQ(j->last_durable_record().seq, 3u);
  }
  auto j = OpenJournal(fs, o);
  const auto segs = j->Segments();
  ASSERT_GE(segs.size(), 3u);
  EXPECT_FALSE(segs[0].first_continues);
  EXPECT_TRUE(segs[1].first_continues);  // seq 2 goes on in the second segment
  EXPECT_EQ(segs[1].first_seq, 2u);
  const auto all = ReadAll(fs, segs);
  ASSERT_EQ(all.size(), 14u);
  EXPECT_EQ(all.back().h.seq, 3u);
  EXPECT_EQ(j->last_durable_record().seq, 3u);
  EXPECT_EQ(ReadAll(fs, segs, Direction::kBackward).size(), 14u);
}

TEST(Journal, DiscardRecordsStoreNothingAndMayCoverMoreThanFourGiB) {
  MemFileSystem fs;
  auto j = OpenJournal(fs, Opts());
  RecordHeader h = WriteHeader(1, 0);
  h.flags = kFlagDiscard | kFlagZero;
  h.length = 6ull << 30;
  ASSERT_TRUE(j->Append(h, nullptr, 0).ok());
  uint8_t byte = 0;
  EXPECT_EQ(j->Append(WriteHeader(2, 0), &byte, 0).code(), Errc::kOk);
  RecordHeader big = WriteHeader(3, 0);
  big.length = (64u << 20) + 512;  // no discard: over the limit
  EXPECT_EQ(j->Append(big, nullptr, 0).code(), Errc::kInvalidArgument);
  RecordHeader with_data = h;
  with_data.seq = 4;
  with_data.length = 512;
  std::vector<uint8_t> p(512);
  EXPECT_EQ(j->Append(with_data, p.data(), p.size()).code(), Errc::kInvalidArgument);
  ASSERT_TRUE(j->Sync().ok());
  const auto all = ReadAll(fs, j->Segments());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].h.length, 6ull << 30);
  EXPECT_EQ(all[0].h.stored_length, 0u);
  EXPECT_EQ(j->Segments()[0].logical_bytes, (6ull << 30));
}

RecordHeader ResyncHeader(uint64_t seq, uint32_t len) {
  RecordHeader h = WriteHeader(seq, len);
  h.type = RecordType::kResyncData;
  return h;
}

// Issue 20: resync data written straight to the target leaves a WAL record
// without payload; the committer hands the batch's in-place data to the
// before-write hook (which writes and flushes it) before it writes the
// batch, so such a record is never durable before its data.
TEST(Journal, InPlaceRecordsStoreNothingAndTheHookWritesTheirDataFirst) {
  MemFileSystem fs;
  auto j = OpenJournal(fs, Opts());
  std::vector<std::vector<uint64_t>> calls;  // the seqs handed to each hook call
  uint64_t durable_at_hook = 99;
  const std::vector<uint8_t> a(1 << 20, 0xaa), b(1 << 20, 0xbb);
  j->SetBeforeWrite([&](const std::vector<Journal::InPlaceData>& writes) {
    std::vector<uint64_t> seqs;
    for (const auto& w : writes) {
      seqs.push_back(w.h.seq);
      EXPECT_EQ(w.data[0], w.h.seq == 3 ? 0xaa : 0xbb);
    }
    calls.push_back(seqs);
    durable_at_hook = j->durable_seq();
    return Status::Ok();
  });
  AppendMany(*j, 1, 2);
  ASSERT_TRUE(j->Sync().ok());
  EXPECT_TRUE(calls.empty());  // no in-place record in that batch
  ASSERT_TRUE(j->AppendInPlace(ResyncHeader(3, 1 << 20), a.data()).ok());
  ASSERT_TRUE(j->AppendInPlace(ResyncHeader(4, 1 << 20), b.data()).ok());
  ASSERT_TRUE(j->Sync().ok());
  ASSERT_EQ(calls.size(), 1u);  // once for the batch, with both
  EXPECT_EQ(calls[0], (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(durable_at_hook, 2u);  // before the batch was written
  // Other types, and the flag through Append, are refused.
  EXPECT_EQ(j->AppendInPlace(WriteHeader(5, 512), a.data()).code(), Errc::kInvalidArgument);
  RecordHeader flagged = ResyncHeader(5, 0);
  flagged.flags = kFlagInPlace;
  EXPECT_EQ(j->Append(flagged, nullptr, 0).code(), Errc::kInvalidArgument);
  const auto all = ReadAll(fs, j->Segments());
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[2].h.flags, kFlagInPlace);
  EXPECT_EQ(all[2].h.length, 1u << 20);
  EXPECT_EQ(all[2].h.stored_length, 0u);
  EXPECT_TRUE(all[2].payload.empty());
  // Reopened (recovery decodes the flag).
  j.reset();
  RecoveryReport r;
  j = OpenJournal(fs, Opts(), &r);
  ASSERT_NE(j, nullptr);
  EXPECT_EQ(r.last_seq, 4u);
}

TEST(Journal, AFailingHookFailsTheJournalAndNothingIsDurable) {
  MemFileSystem fs;
  auto j = OpenJournal(fs, Opts());
  j->SetBeforeWrite([](const std::vector<Journal::InPlaceData>&) {
    return Status(Errc::kIoError, "target write failed (test)");
  });
  const std::vector<uint8_t> a(4096, 1);
  ASSERT_TRUE(j->AppendInPlace(ResyncHeader(1, 4096), a.data()).ok());
  Status s = j->Sync();
  EXPECT_EQ(s.code(), Errc::kIoError);
  EXPECT_NE(s.message().find("target write failed"), std::string::npos) << s.message();
  EXPECT_EQ(j->durable_seq(), 0u);
  // And without a hook an in-place batch is refused.
  MemFileSystem fs2;
  auto k = OpenJournal(fs2, Opts());
  ASSERT_TRUE(k->AppendInPlace(ResyncHeader(1, 4096), a.data()).ok());
  EXPECT_EQ(k->Sync().code(), Errc::kInternal);
}

TEST(Journal, TruncatedTrailingRecordIsIgnored) {
  MemFileSystem fs;
  std::vector<Rec> want;
  std::string path;
  {
    auto j = OpenJournal(fs, Opts());
    want = AppendMany(*j, 1, 10);
    ASSERT_TRUE(j->Sync().ok());
    path = j->Segments().back().path;
  }
  // Cut the last record in half.
  shim::FileOptions o;
  o.writable = true;
  auto f = std::move(fs.OpenFile(path, o)).value();
  const uint64_t end = kSegmentHeaderSize + 10 * EncodedRecordSize(3000);
  ASSERT_TRUE(f->Truncate(end - 1500).ok());
  RecoveryReport r;
  auto j = OpenJournal(fs, Opts(), &r);
  EXPECT_EQ(r.records, 9u);
  EXPECT_EQ(r.last_seq, 9u);
  EXPECT_EQ(r.truncated_bytes, EncodedRecordSize(3000) - 1500);
  EXPECT_NE(r.torn_reason.find("cut short"), std::string::npos) << r.torn_reason;
  want.pop_back();
  ExpectSame(ReadAll(fs, j->Segments()), want);
  EXPECT_EQ(fs.Contents(path).size(), end - EncodedRecordSize(3000));
}

TEST(Journal, ChecksumMismatchInTheMiddleIsReported) {
  MemFileSystem fs;
  std::string path;
  {
    auto j = OpenJournal(fs, Opts());
    for (uint64_t i = 0; i < 4; ++i) {  // 4 batches of 5 records
      AppendMany(*j, 1 + i * 5, 5);
      ASSERT_TRUE(j->Sync().ok());
    }
    path = j->Segments().back().path;
  }
  // Flip one payload byte of record 3 (batch 1), durable batches follow it.
  shim::FileOptions o;
  o.writable = true;
  auto f = std::move(fs.OpenFile(path, o)).value();
  const uint64_t off = kSegmentHeaderSize + 2 * EncodedRecordSize(3000) + kRecordHeaderSize + 10;
  uint8_t b;
  ASSERT_EQ(f->ReadAt(off, &b, 1).value(), 1u);
  b ^= 0xff;
  ASSERT_TRUE(f->WriteAt(off, &b, 1).ok());
  auto j = Journal::Open(fs, shim::SystemClock(), Opts(), nullptr);
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), Errc::kCorruption);
  const std::string want_offset =
      "offset " + std::to_string(kSegmentHeaderSize + 2 * EncodedRecordSize(3000));
  EXPECT_NE(j.status().message().find(want_offset), std::string::npos) << j.status().message();
  EXPECT_NE(j.status().message().find("payload checksum mismatch"), std::string::npos);
}

TEST(Journal, DamageInASealedSegmentIsCorruptionEvenAtItsEnd) {
  MemFileSystem fs;
  std::vector<SegmentInfo> segs;
  {
    auto j = OpenJournal(fs, Opts(64 << 10));
    AppendMany(*j, 1, 60, 5000);
    ASSERT_TRUE(j->Sync().ok());
    segs = j->Segments();
  }
  ASSERT_GT(segs.size(), 2u);
  shim::FileOptions o;
  o.writable = true;
  auto f = std::move(fs.OpenFile(segs[0].path, o)).value();
  ASSERT_TRUE(f->Truncate(segs[0].bytes - 100).ok());  // looks like a torn tail
  auto j = Journal::Open(fs, shim::SystemClock(), Opts(64 << 10), nullptr);
  EXPECT_EQ(j.status().code(), Errc::kCorruption);
  EXPECT_NE(j.status().message().find("sealed"), std::string::npos) << j.status().message();
}

// ForEachRecord checks a segment whole (every header and payload CRC) before
// it delivers any record of it: a damaged payload in a durable segment is
// corruption naming the file and the record's offset, and nothing of that
// segment reaches the visitor (a rollback does not start on it). Reading the
// whole segment first also makes the backward walk read from the page cache:
// a headers-only scan with each payload read when visited was measured
// slower for rollback (backward reads defeat read-ahead), so it was not kept.
TEST(Journal, ForEachRecordReportsADamagedPayloadBeforeDeliveringItsSegment) {
  MemFileSystem fs;
  std::vector<SegmentInfo> segs;
  std::vector<Rec> want;
  {
    auto j = OpenJournal(fs, Opts());
    want = AppendMany(*j, 1, 20, 5000);
    ASSERT_TRUE(j->Sync().ok());
    segs = j->Segments();
  }
  ASSERT_EQ(segs.size(), 1u);
  ExpectSame(ReadAll(fs, segs), want);
  // Flip a byte inside the payload of record 11.
  const uint64_t rec11 = kSegmentHeaderSize + 10 * EncodedRecordSize(5000);
  shim::FileOptions o;
  o.writable = true;
  auto f = std::move(fs.OpenFile(segs[0].path, o)).value();
  uint8_t b = 0;
  ASSERT_EQ(f->ReadAt(rec11 + kRecordHeaderSize + 100, &b, 1).value(), 1u);
  b ^= 0x40;
  ASSERT_TRUE(f->WriteAt(rec11 + kRecordHeaderSize + 100, &b, 1).ok());
  for (Direction d : {Direction::kForward, Direction::kBackward}) {
    std::vector<uint64_t> seen;
    Status s = ForEachRecord(fs, segs, d,
                             [&](const RecordHeader& h, const std::vector<uint8_t>&, bool*) {
                               seen.push_back(h.seq);
                               return Status::Ok();
                             });
    EXPECT_EQ(s.code(), Errc::kCorruption);
    EXPECT_NE(s.message().find(segs[0].path), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("offset " + std::to_string(rec11)), std::string::npos)
        << s.message();
    EXPECT_TRUE(seen.empty()) << "nothing of a damaged segment is delivered";
  }
}

TEST(Journal, GroupCommitMakesManyRecordsDurableWithOneSync) {
  MemFileSystem mem;
  FaultController fc;
  FaultInjectingFileSystem fs(mem, fc);
  auto j = OpenJournal(fs, Opts());
  const uint64_t before = fc.operations();
  AppendMany(*j, 1, 40, 4096);
  int called = 0;
  for (int i = 0; i < 10; ++i)
    j->Commit([&](const Status& s) {
      EXPECT_TRUE(s.ok());
      ++called;
    });
  ASSERT_TRUE(j->Sync().ok());
  EXPECT_EQ(called, 10);
  // create + (write, sync) for each batch: 40 records of 4 KiB fit one batch.
  EXPECT_EQ(fc.operations() - before, 3u);
}

// The committer runs a batch's callbacks outside its lock; a Commit() whose
// records that batch already made durable must not overtake them (the WAL's
// callbacks hand items to the applier, which takes them in seq order only).
TEST(Journal, CommitCallbacksRunInTheOrderOfTheirCommits) {
  MemFileSystem fs;
  auto j = OpenJournal(fs, Opts(64 << 20));
  std::mutex m;
  std::vector<uint64_t> order;
  const uint64_t n = 3000;
  for (uint64_t seq = 1; seq <= n; ++seq) {
    auto p = Payload(seq, 512);
    ASSERT_TRUE(j->Append(WriteHeader(seq, 512), p.data(), p.size()).ok());
    // The window: the committer seals and writes the batch holding this
    // record (an earlier Commit wanted it) before this Commit is made, while
    // it still runs the earlier callbacks (slow ones here).
    usleep(20);
    j->Commit([&m, &order, seq](const Status& s) {
      EXPECT_TRUE(s.ok());
      usleep(50);
      std::lock_guard<std::mutex> l(m);
      order.push_back(seq);
    });
  }
  ASSERT_TRUE(j->Sync().ok());
  std::lock_guard<std::mutex> l(m);
  ASSERT_EQ(order.size(), n);
  for (size_t i = 1; i < order.size(); ++i)
    ASSERT_LT(order[i - 1], order[i]) << "commit callback " << order[i - 1] << " ran before "
                                      << order[i];
}

// The WAL's Append runs on a network thread: it never waits for the writer
// (its caller throttles the sender instead), while the undo journal's may.
TEST(Journal, AWalAppendNeverWaitsForTheWriter) {
  MemFileSystem mem;
  FaultController fc;
  FaultInjectingFileSystem fs(mem, fc);
  JournalOptions o = Opts(64 << 20);
  o.max_batch_bytes = 16 << 10;
  o.append_waits = false;
  auto j = OpenJournal(fs, o);
  fc.HoldSyncs(true);  // the writer hangs in its first sync
  std::atomic<bool> appended{false};
  std::vector<Rec> recs;
  std::thread appender([&] {
    recs = AppendMany(*j, 1, 64, 4096);  // 16 batches' worth
    j->Commit([](const Status&) {});
    appended = true;
  });
  for (int i = 0; !appended && i < 5000; ++i) usleep(1000);
  EXPECT_TRUE(appended.load()) << "Append waited for the writer";
  fc.HoldSyncs(false);
  appender.join();
  ASSERT_TRUE(j->Sync().ok());
  ExpectSame(ReadAll(mem, j->Segments()), recs);
}

TEST(Journal, WriteErrorFailsTheJournalAndEveryWaiter) {
  MemFileSystem mem;
  FaultController fc;
  FaultInjectingFileSystem fs(mem, fc);
  auto j = OpenJournal(fs, Opts());
  AppendMany(*j, 1, 3);
  fc.FailNth(2);  // create ok, the batch write fails
  Status s = j->Sync();
  EXPECT_EQ(s.code(), Errc::kIoError);
  EXPECT_NE(s.message().find("wal journal /ret/s1/wal"), std::string::npos) << s.message();
  auto p = Payload(4, 512);
  EXPECT_EQ(j->Append(WriteHeader(4, 512), p.data(), p.size()).code(), Errc::kIoError);
  EXPECT_EQ(j->durable_seq(), 0u);
}

// A new segment reserves one step ahead of its writer, not the whole segment:
// 60 journals of 256 MiB segments would otherwise take 15 GiB of a volume
// before holding a byte (issue 19). The reservation follows the writes, never
// passes the segment's end, and a volume too full for a step still takes a
// batch that fits.
TEST(Journal, PreallocationFollowsTheWriterOneStepAhead) {
  constexpr uint64_t kMiB = 1 << 20;
  MemFileSystem fs(64 * kMiB);
  JournalOptions o = Opts(32 * kMiB);
  o.preallocate = true;
  o.preallocate_step = 4 * kMiB;
  auto j = OpenJournal(fs, o);
  AppendMany(*j, 1, 1);
  ASSERT_TRUE(j->Sync().ok());
  auto used = [&] { return 64 * kMiB - fs.Space("/ret").value().available; };
  EXPECT_GE(used(), 4 * kMiB);
  EXPECT_LE(used(), 5 * kMiB);  // one step, not the 32 MiB segment

  AppendMany(*j, 2, 2000, 4000);  // ~8 MiB more
  ASSERT_TRUE(j->Sync().ok());
  const uint64_t written = j->Segments().back().bytes;
  EXPECT_GT(written, 7 * kMiB);
  EXPECT_GE(used(), written);
  EXPECT_LE(used(), written + 5 * kMiB);
  ASSERT_TRUE(j->Close().ok());

  // Nearly full: no room for a step, still room for the batch.
  MemFileSystem small(kSegmentHeaderSize + 64 * 1024);
  o.dir = "/ret/s1/wal";
  auto k = OpenJournal(small, o);
  auto recs = AppendMany(*k, 1, 3, 4000);
  ASSERT_TRUE(k->Sync().ok()) << "a step that does not fit must not fail a batch that does";
  ExpectSame(ReadAll(small, k->Segments()), recs);
}

// Issue 19: 30 idle streams held 2 GiB, mostly group-commit buffers of
// max_batch_bytes allocated at open and kept after load. A journal now holds
// one small buffer when it opens and again once it has been idle for
// idle_release_after after a burst.
TEST(Journal, AnIdleJournalHoldsOneSmallBuffer) {
  MemFileSystem fs;
  JournalOptions o = Opts(64 << 20);
  o.max_batch_bytes = 16 << 20;
  o.idle_release_after = std::chrono::milliseconds(50);
  auto idle_and_small = [](Journal& j) {
    for (int i = 0; i < 500 && j.HeldBufferBytes() > Journal::kFirstBatchBufferBytes; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return j.HeldBufferBytes() <= Journal::kFirstBatchBufferBytes;
  };
  auto j = OpenJournal(fs, o);
  EXPECT_LE(j->HeldBufferBytes(), Journal::kFirstBatchBufferBytes);
  auto recs = AppendMany(*j, 1, 1000, 40000);  // 40 MB: batches grow to 16 MiB
  ASSERT_TRUE(j->Sync().ok());
  EXPECT_TRUE(idle_and_small(*j));
  auto more = AppendMany(*j, 1001, 10, 40000);
  ASSERT_TRUE(j->Sync().ok());
  EXPECT_TRUE(idle_and_small(*j));
  recs.insert(recs.end(), more.begin(), more.end());
  ASSERT_TRUE(j->Close().ok());
  auto k = OpenJournal(fs, o);
  EXPECT_LE(k->HeldBufferBytes(), Journal::kFirstBatchBufferBytes);
  ExpectSame(ReadAll(fs, k->Segments()), recs);
}

// Issue 19: the journals of many streams share a few committer threads
// (WorkerPool): each journal's batches are still written in order and every
// record is durable when Sync returns, while the threads stay at the pool's
// bound however many journals commit at once. An idle journal's buffers are
// given back by a timer of the pool, not a waiting thread of its own.
TEST(Journal, ManyJournalsShareTheCommitterThreadsOfOnePool) {
  MemFileSystem fs;
  WorkerPool pool("commit", 2);
  constexpr int kJournals = 24;
  std::vector<std::unique_ptr<Journal>> journals;
  for (int i = 0; i < kJournals; ++i) {
    JournalOptions o = Opts(1 << 20);
    o.dir = "/ret/s" + std::to_string(i) + "/wal";
    o.committers = &pool;
    o.idle_release_after = std::chrono::milliseconds(50);
    journals.push_back(OpenJournal(fs, o));
  }
  std::vector<std::vector<Rec>> written(kJournals);
  std::vector<std::thread> writers;
  for (int i = 0; i < kJournals; ++i)
    writers.emplace_back([&, i] {
      for (uint64_t round = 0; round < 20; ++round) {
        auto recs = AppendMany(*journals[i], 1 + round * 10, 10, 20000);
        ASSERT_TRUE(journals[i]->Sync().ok());
        EXPECT_EQ(journals[i]->durable_seq(), round * 10 + 10);
        written[i].insert(written[i].end(), recs.begin(), recs.end());
      }
    });
  for (auto& t : writers) t.join();
  EXPECT_LE(pool.threads(), 2u);
  for (int i = 0; i < kJournals; ++i) {
    for (int k = 0; k < 500 && journals[i]->HeldBufferBytes() > Journal::kFirstBatchBufferBytes; ++k)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_LE(journals[i]->HeldBufferBytes(), Journal::kFirstBatchBufferBytes) << i;
    ExpectSame(ReadAll(fs, journals[i]->Segments()), written[i]);
    ASSERT_TRUE(journals[i]->Close().ok());
  }
}

// A stream that has received nothing must cost little: 1024 streams on one
// agent (issue 16) took 548 MiB while each journal zero-filled its first
// 256 KiB batch buffer when it opened. The buffer is taken unfilled, so its
// pages take memory only once records are written into them.
TEST(Journal, AJournalThatReceivedNothingHoldsNoResidentBatchBuffer) {
  MemFileSystem fs;
  WorkerPool pool("commit", 1);
  constexpr int kJournals = 128;  // zero-filled: 32 MiB resident
  std::vector<std::unique_ptr<Journal>> journals;
  journals.reserve(kJournals);
  shim::ReleaseFreeMemory();  // no cached block may serve (and hide) the buffers
  const uint64_t before = test::ResidentBytes();
  for (int i = 0; i < kJournals; ++i) {
    JournalOptions o = Opts(1 << 20);
    o.dir = "/ret/s" + std::to_string(i) + "/wal";
    o.committers = &pool;
    journals.push_back(OpenJournal(fs, o));
    ASSERT_EQ(journals.back()->HeldBufferBytes(), Journal::kFirstBatchBufferBytes);
  }
  const uint64_t now = test::ResidentBytes();
  const uint64_t grown = now - std::min(before, now);
  EXPECT_LT(grown, kJournals * Journal::kFirstBatchBufferBytes / 4)
      << grown / 1024 << " KiB resident for " << kJournals << " empty journals";
  // They still work: the first append writes into the buffer.
  auto recs = AppendMany(*journals[0], 1, 10, 20000);
  ASSERT_TRUE(journals[0]->Sync().ok());
  ExpectSame(ReadAll(fs, journals[0]->Segments()), recs);
  for (auto& j : journals) ASSERT_TRUE(j->Close().ok());
}

// Under load the buffers stay between batches: given back whenever the open
// batch was momentarily empty, every burst allocated them again from 256 KiB
// up, zero-filled and page-faulted (a quarter of the agent's ingest CPU).
TEST(Journal, BatchBuffersAreKeptBetweenBurstsUntilIdleForAWhile) {
  MemFileSystem fs;
  JournalOptions o = Opts(64 << 20);
  o.max_batch_bytes = 16 << 20;
  o.idle_release_after = std::chrono::hours(1);
  auto j = OpenJournal(fs, o);
  auto recs = AppendMany(*j, 1, 200, 40000);
  ASSERT_TRUE(j->Sync().ok());
  const size_t held = j->HeldBufferBytes();
  EXPECT_GT(held, Journal::kFirstBatchBufferBytes);
  auto more = AppendMany(*j, 201, 200, 40000);
  ASSERT_TRUE(j->Sync().ok());
  EXPECT_GE(j->HeldBufferBytes(), held);
  recs.insert(recs.end(), more.begin(), more.end());
  ASSERT_TRUE(j->Close().ok());
  auto k = OpenJournal(fs, o);
  ExpectSame(ReadAll(fs, k->Segments()), recs);
}

TEST(Journal, RemoveSegmentRefusesTheNewest) {
  MemFileSystem fs;
  auto j = OpenJournal(fs, Opts(64 << 10));
  AppendMany(*j, 1, 40, 5000);
  ASSERT_TRUE(j->Sync().ok());
  auto segs = j->Segments();
  EXPECT_EQ(j->RemoveSegment(segs.back().number).code(), Errc::kInvalidArgument);
  ASSERT_TRUE(j->RemoveSegment(segs.front().number).ok());
  EXPECT_FALSE(fs.Exists(segs.front().path));
  EXPECT_EQ(j->Segments().size(), segs.size() - 1);
}

// Flips one byte of a file (MemFileSystem).
void FlipByte(shim::FileSystem& fs, const std::string& path, uint64_t off) {
  shim::FileOptions o;
  o.writable = true;
  auto f = std::move(fs.OpenFile(path, o)).value();
  uint8_t b = 0;
  ASSERT_EQ(f->ReadAt(off, &b, 1).value(), 1u);
  b ^= 0x40;
  ASSERT_TRUE(f->WriteAt(off, &b, 1).ok());
}

void ExpectSameSegments(const std::vector<SegmentInfo>& got, const std::vector<SegmentInfo>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const SegmentInfo& g = got[i];
    const SegmentInfo& w = want[i];
    EXPECT_EQ(g.number, w.number);
    EXPECT_EQ(g.path, w.path);
    EXPECT_EQ(g.first_seq, w.first_seq);
    EXPECT_EQ(g.last_seq, w.last_seq);
    EXPECT_EQ(g.first_time_ns, w.first_time_ns);
    EXPECT_EQ(g.last_time_ns, w.last_time_ns);
    EXPECT_EQ(g.records, w.records);
    EXPECT_EQ(g.bytes, w.bytes) << "segment " << w.number;
    EXPECT_EQ(g.logical_bytes, w.logical_bytes);
    EXPECT_EQ(g.stored_bytes, w.stored_bytes);
    EXPECT_EQ(g.sealed, w.sealed);
    EXPECT_EQ(g.first_continues, w.first_continues);
    EXPECT_EQ(g.created_ns, w.created_ns);
    ASSERT_TRUE(g.index && w.index);
    ASSERT_EQ(g.index->size(), w.index->size()) << "segment " << w.number;
    for (size_t k = 0; k < g.index->size(); ++k) {
      EXPECT_EQ((*g.index)[k].seq, (*w.index)[k].seq);
      EXPECT_EQ((*g.index)[k].offset, (*w.index)[k].offset);
    }
  }
}

// Opening takes a sealed segment from its index file: the summary and the
// index entries equal what a full scan finds (and what the writer kept), and
// its records are not read — a damaged payload inside it does not stop the
// open; the reader of the records (ForEachRecord: rollback, export, verify)
// finds it.
TEST(JournalIndex, ASealedSegmentOpensFromItsIndexWithoutReadingItsRecords) {
  MemFileSystem fs;
  std::vector<SegmentInfo> written;
  std::vector<Rec> want;
  {
    auto j = OpenJournal(fs, Opts(1 << 20));
    want = AppendMany(*j, 1, 700, 5000);  // about 3.4 segments of 1 MiB
    ASSERT_TRUE(j->Sync().ok());
    written = j->Segments();
  }
  ASSERT_EQ(written.size(), 4u);
  for (size_t i = 0; i + 1 < written.size(); ++i) {
    EXPECT_TRUE(fs.Exists(SegmentIndexPath(written[i].path))) << written[i].path;
    EXPECT_EQ(written[i].index->size(), 4u) << "1 MiB at a 256 KiB stride";
  }
  EXPECT_FALSE(fs.Exists(SegmentIndexPath(written.back().path))) << "the newest has none";

  RecoveryReport r;
  std::vector<SegmentInfo> indexed;
  {
    auto j = OpenJournal(fs, Opts(1 << 20), &r);
    EXPECT_EQ(r.indexed_segments, 3u);
    EXPECT_EQ(r.records, 700u);
    indexed = j->Segments();
    ExpectSameSegments(indexed, written);
    ExpectSame(ReadAll(fs, indexed), want);
  }
  // The same as a full scan (index files removed).
  for (const auto& s : written) (void)fs.Remove(SegmentIndexPath(s.path));
  {
    auto j = OpenJournal(fs, Opts(1 << 20), &r);
    EXPECT_EQ(r.indexed_segments, 0u);
    ExpectSameSegments(j->Segments(), written);
  }
  // That open wrote them again.
  for (size_t i = 0; i + 1 < written.size(); ++i)
    EXPECT_TRUE(fs.Exists(SegmentIndexPath(written[i].path)));

  // Damage inside sealed segment 1: the open does not read it...
  FlipByte(fs, written[0].path, kSegmentHeaderSize + 30 * EncodedRecordSize(5000) + 200);
  auto j = OpenJournal(fs, Opts(1 << 20), &r);
  ASSERT_NE(j, nullptr);
  EXPECT_EQ(r.indexed_segments, 3u);
  // ...its reader does, before delivering anything of the segment.
  std::vector<uint64_t> seen;
  Status s = ForEachRecord(fs, j->Segments(), Direction::kForward,
                           [&](const RecordHeader& h, const std::vector<uint8_t>&, bool*) {
                             seen.push_back(h.seq);
                             return Status::Ok();
                           });
  EXPECT_EQ(s.code(), Errc::kCorruption);
  EXPECT_NE(s.message().find(written[0].path), std::string::npos) << s.message();
  EXPECT_TRUE(seen.empty());
}

// An index file that does not match its segment is not believed: a bad CRC,
// one cut short, or one of an older segment of the same number (another
// created_ns) makes the open scan the segment — and find damage it holds.
TEST(JournalIndex, AnIndexThatDoesNotMatchItsSegmentIsIgnored) {
  MemFileSystem fs;
  std::vector<SegmentInfo> written;
  {
    auto j = OpenJournal(fs, Opts(1 << 20));
    AppendMany(*j, 1, 500, 5000);
    ASSERT_TRUE(j->Sync().ok());
    written = j->Segments();
  }
  ASSERT_GE(written.size(), 3u);
  const std::string idx0 = SegmentIndexPath(written[0].path);
  const std::string idx1 = SegmentIndexPath(written[1].path);
  const std::string good0 = shim::ReadSmallFile(fs, idx0).value();
  const std::string good1 = shim::ReadSmallFile(fs, idx1).value();
  auto reopen = [&] {
    RecoveryReport r;
    auto j = OpenJournal(fs, Opts(1 << 20), &r);
    EXPECT_NE(j, nullptr);
    if (j) ExpectSameSegments(j->Segments(), written);
    return r.indexed_segments;
  };
  EXPECT_EQ(reopen(), written.size() - 1);

  std::string bad = good0;
  bad[40] ^= 1;  // inside the summary: the CRC no longer matches
  ASSERT_TRUE(shim::WriteFileAtomically(fs, idx0, bad).ok());
  EXPECT_EQ(reopen(), written.size() - 2) << "a bad CRC: scanned";
  EXPECT_EQ(shim::ReadSmallFile(fs, idx0).value(), good0) << "and its index written again";

  ASSERT_TRUE(shim::WriteFileAtomically(fs, idx0, good0.substr(0, good0.size() - 9)).ok());
  EXPECT_EQ(reopen(), written.size() - 2) << "cut short: scanned";

  // Segment 2's index put in place of segment 1's: another number.
  ASSERT_TRUE(shim::WriteFileAtomically(fs, idx0, good1).ok());
  EXPECT_EQ(reopen(), written.size() - 2);

  // Segment 1's own index, but for a segment created at another time (the
  // number reused after a rollback removed it): the header's created_ns differs.
  SegmentIndexFile f;
  ASSERT_TRUE(DecodeSegmentIndex(good0, &f).ok());
  f.created_ns += 1;
  ASSERT_TRUE(WriteSegmentIndex(fs, written[0].path, f).ok());
  FlipByte(fs, written[0].path, kSegmentHeaderSize + 3 * EncodedRecordSize(5000) + 100);
  auto j = Journal::Open(fs, shim::SystemClock(), Opts(1 << 20), nullptr);
  EXPECT_EQ(j.status().code(), Errc::kCorruption) << "scanned, so the damage is found at open";

  // A segment file shorter than its index says: scanned (and found cut).
  FlipByte(fs, written[0].path, kSegmentHeaderSize + 3 * EncodedRecordSize(5000) + 100);
  ASSERT_TRUE(shim::WriteFileAtomically(fs, idx0, good0).ok());
  EXPECT_EQ(reopen(), written.size() - 1);
  {
    shim::FileOptions o;
    o.writable = true;
    auto file = std::move(fs.OpenFile(written[0].path, o)).value();
    ASSERT_TRUE(file->Truncate(written[0].bytes - 8).ok());
  }
  j = Journal::Open(fs, shim::SystemClock(), Opts(1 << 20), nullptr);
  EXPECT_EQ(j.status().code(), Errc::kCorruption);
}

// A reader that wants the records from seq S on starts at the index entry
// before S: damage earlier in the segment is not read (so not reported), and
// the records it delivers are exactly those from S on, in both directions.
TEST(JournalIndex, AReaderFromAPointStartsAtTheIndexEntryBeforeIt) {
  MemFileSystem fs;
  std::vector<SegmentInfo> segs;
  std::vector<Rec> want;
  {
    auto j = OpenJournal(fs, Opts(4 << 20));
    want = AppendMany(*j, 1, 700, 5000);  // one segment, about 3.4 MiB
    ASSERT_TRUE(j->Sync().ok());
    segs = j->Segments();
  }
  ASSERT_EQ(segs.size(), 1u);
  ASSERT_GE(segs[0].index->size(), 10u);
  // Damage in record 5: before the third index entry.
  FlipByte(fs, segs[0].path, kSegmentHeaderSize + 4 * EncodedRecordSize(5000) + 300);
  const uint64_t from_seq = (*segs[0].index)[2].seq + 1;
  for (Direction d : {Direction::kForward, Direction::kBackward}) {
    std::vector<Rec> got;
    Status s = ForEachRecord(
        fs, segs, d,
        [&](const RecordHeader& h, const std::vector<uint8_t>& p, bool*) {
          got.push_back({h, p});
          return Status::Ok();
        },
        from_seq);
    ASSERT_TRUE(s.ok()) << s.ToString();
    if (d == Direction::kBackward) std::reverse(got.begin(), got.end());
    ExpectSame(got, std::vector<Rec>(want.begin() + static_cast<long>(from_seq - 1), want.end()));
  }
  // From the start, the damage is found.
  Status s = ForEachRecord(fs, segs, Direction::kBackward,
                           [](const RecordHeader&, const std::vector<uint8_t>&, bool*) {
                             return Status::Ok();
                           });
  EXPECT_EQ(s.code(), Errc::kCorruption);
}

// A rollback cuts the records after its point and removes the newer segments,
// so a sealed segment can become the newest again: the journal then drops its
// index (it will hold more than the index says) and writes a new one when the
// segment is sealed again.
TEST(JournalIndex, ASegmentMadeNewestAgainGetsAFreshIndexWhenSealedAgain) {
  MemFileSystem fs;
  std::vector<SegmentInfo> segs;
  std::vector<Rec> want;
  {
    auto j = OpenJournal(fs, Opts(1 << 20));
    want = AppendMany(*j, 1, 300, 5000);
    ASSERT_TRUE(j->Sync().ok());
    segs = j->Segments();
  }
  ASSERT_EQ(segs.size(), 2u);
  // What a rollback to seq 100 does to the files — but segment 1's index
  // left in place (FinishRollback removes it; the journal must not need that).
  ASSERT_TRUE(RemoveSegmentFiles(fs, segs[1].path).ok());
  {
    shim::FileOptions o;
    o.writable = true;
    auto f = std::move(fs.OpenFile(segs[0].path, o)).value();
    ASSERT_TRUE(f->Truncate(kSegmentHeaderSize + 100 * EncodedRecordSize(5000)).ok());
  }
  want.resize(100);
  ASSERT_TRUE(fs.Exists(SegmentIndexPath(segs[0].path)));
  {
    auto j = OpenJournal(fs, Opts(1 << 20));
    EXPECT_FALSE(fs.Exists(SegmentIndexPath(segs[0].path))) << "the newest: its index dropped";
    auto more = AppendMany(*j, 101, 20, 5000);  // still in segment 1
    want.insert(want.end(), more.begin(), more.end());
    ASSERT_TRUE(j->Sync().ok());
    EXPECT_EQ(j->Segments().size(), 1u);
  }
  {
    auto j = OpenJournal(fs, Opts(1 << 20));
    auto more = AppendMany(*j, want.back().h.seq + 1, 200, 5000);  // seals segment 1
    want.insert(want.end(), more.begin(), more.end());
    ASSERT_TRUE(j->Sync().ok());
    segs = j->Segments();
  }
  ASSERT_EQ(segs.size(), 2u);
  RecoveryReport r;
  auto j = OpenJournal(fs, Opts(1 << 20), &r);
  EXPECT_EQ(r.indexed_segments, 1u);
  ExpectSameSegments(j->Segments(), segs);
  ExpectSame(ReadAll(fs, j->Segments()), want);
}

TEST(JournalIndex, IndexFilesRoundTripAndRejectDamage) {
  SegmentIndexFile f;
  f.kind = SegmentKind::kUndo;
  f.stream = 7;
  f.number = 3;
  f.created_ns = 123456789;
  f.records = 3;
  f.first_seq = 10;
  f.last_seq = 30;
  f.bytes = kSegmentHeaderSize + 3 * 4096;
  f.last_record_offset = kSegmentHeaderSize + 2 * 4096;
  f.logical_bytes = f.stored_bytes = 3 * 4000;
  f.last_batch = 9;
  f.first_continues = true;
  f.entries = {{10, kSegmentHeaderSize}, {20, kSegmentHeaderSize + 4096}};
  const std::string bytes = EncodeSegmentIndex(f);
  SegmentIndexFile g;
  ASSERT_TRUE(DecodeSegmentIndex(bytes, &g).ok());
  EXPECT_EQ(EncodeSegmentIndex(g), bytes);
  EXPECT_TRUE(g.first_continues);
  EXPECT_EQ(g.entries.size(), 2u);
  for (size_t cut : {size_t{0}, size_t{10}, bytes.size() - 1})
    EXPECT_EQ(DecodeSegmentIndex(bytes.substr(0, cut), &g).code(), Errc::kCorruption);
  for (size_t i = 0; i < bytes.size(); i += 7) {
    std::string bad = bytes;
    bad[i] ^= 0x10;
    EXPECT_EQ(DecodeSegmentIndex(bad, &g).code(), Errc::kCorruption) << "byte " << i;
  }
  // Valid CRC, inconsistent content: entries out of order.
  SegmentIndexFile h = f;
  std::swap(h.entries[0], h.entries[1]);
  EXPECT_EQ(DecodeSegmentIndex(EncodeSegmentIndex(h), &g).code(), Errc::kCorruption);
  EXPECT_EQ(IndexedStart(f.entries, 5), kSegmentHeaderSize);
  EXPECT_EQ(IndexedStart(f.entries, 10), kSegmentHeaderSize);
  EXPECT_EQ(IndexedStart(f.entries, 11), kSegmentHeaderSize);
  EXPECT_EQ(IndexedStart(f.entries, 21), kSegmentHeaderSize + 4096);
  EXPECT_EQ(SegmentIndexPath("/r/undo-0000000000000003.seg"), "/r/undo-0000000000000003.idx");
}

// Power-loss loop: a workload of appends and commits runs until a crash at the
// n-th file operation; power is cut (dropping or tearing what was not synced);
// the journal is reopened. Everything reported durable must be there, intact;
// what is recovered must be exactly a prefix of what was appended.
void PowerLossRound(uint64_t seed, uint64_t crash_at, const shim::PowerCutOptions& cut) {
  MemFileSystem mem;
  FaultController fc;
  FaultInjectingFileSystem fs(mem, fc);
  std::mt19937_64 rng(seed);
  std::vector<Rec> appended;
  std::atomic<uint64_t> durable{0};
  {
    auto jr = Journal::Open(fs, shim::SystemClock(), Opts(48 << 10), nullptr);
    ASSERT_TRUE(jr.ok());
    auto j = std::move(jr).value();
    fc.CrashAtNth(crash_at);
    for (uint64_t seq = 1; seq <= 120; ++seq) {
      const size_t len = 512 * (1 + rng() % 16);
      auto p = Payload(seq * 7919 + seed, len);
      RecordHeader h = WriteHeader(seq, static_cast<uint32_t>(len));
      if (!j->Append(h, p.data(), p.size()).ok()) break;
      appended.push_back({h, p});
      if (rng() % 4 == 0) {
        j->Commit([&durable, seq](const Status& s) {
          if (s.ok()) durable = std::max<uint64_t>(durable, seq);
        });
      }
    }
    (void)j->Close();
  }
  mem.PowerCut(cut);
  fc.Reset();
  RecoveryReport r;
  auto jr = Journal::Open(fs, shim::SystemClock(), Opts(48 << 10), &r);
  ASSERT_TRUE(jr.ok()) << "seed " << seed << " crash " << crash_at << ": " << jr.status().ToString();
  auto got = ReadAll(fs, (*jr)->Segments());
  ASSERT_GE(got.size(), durable.load()) << "seed " << seed << " crash " << crash_at;
  ASSERT_LE(got.size(), appended.size());
  std::vector<Rec> prefix(appended.begin(), appended.begin() + static_cast<long>(got.size()));
  ExpectSame(got, prefix);
  // The journal accepts new records after recovery.
  auto p = Payload(1000, 512);
  const RecordHeader extra = WriteHeader(appended.size() + 1000, 512);
  ASSERT_TRUE((*jr)->Append(extra, p.data(), p.size()).ok());
  ASSERT_TRUE((*jr)->Sync().ok());
  // And a further open (sealed segments from the index files the writer or
  // the recovery left) reads the same.
  jr->reset();
  auto again = Journal::Open(fs, shim::SystemClock(), Opts(48 << 10), nullptr);
  ASSERT_TRUE(again.ok()) << "seed " << seed << " crash " << crash_at << ": " << again.status().ToString();
  prefix.push_back({extra, p});
  ExpectSame(ReadAll(fs, (*again)->Segments()), prefix);
}

TEST(JournalPowerLoss, EveryDurableRecordSurvivesACutAtEveryOperation) {
  for (uint64_t crash_at = 1; crash_at <= 60; ++crash_at) {
    shim::PowerCutOptions drop;
    PowerLossRound(crash_at, crash_at, drop);
    shim::PowerCutOptions torn;
    torn.tear_last = true;
    torn.seed = crash_at;
    PowerLossRound(crash_at + 1000, crash_at, torn);
    if (HasFatalFailure()) return;
  }
}

TEST(JournalPowerLoss, RandomSurvivalOfUnsyncedWritesNeverPassesAsValid) {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    shim::PowerCutOptions cut;
    cut.keep_probability = 0.5;
    cut.tear_last = seed % 2 == 0;
    cut.seed = seed;
    PowerLossRound(seed, 1 + seed % 50, cut);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace mt::retention
