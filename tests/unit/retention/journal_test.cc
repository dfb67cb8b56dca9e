// Journal tests in the spirit of LevelDB's log tests, on MemFileSystem (with
// O_DIRECT alignment enforced) and the fault-injecting wrapper.
#include "retention/journal.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <mutex>

#include <atomic>
#include <map>
#include <random>
#include <thread>

#include "retention/journal_reader.h"
#include "mt/shim/fault_injection.h"
#include "mt/shim/mem_file_system.h"

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
  ASSERT_TRUE((*jr)->Append(WriteHeader(appended.size() + 1000, 512), p.data(), p.size()).ok());
  ASSERT_TRUE((*jr)->Sync().ok());
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
