#include "mt/shim/fault_injection.h"

#include <gtest/gtest.h>

#include "mt/shim/aligned_buffer.h"
#include "mt/shim/mem_block_device.h"
#include "mt/shim/mem_file_system.h"

namespace mt::shim {
namespace {

TEST(FaultController, FailNthFailsExactlyThatOperationOnce) {
  FaultController fc;
  auto mem = std::make_shared<MemBlockDevice>("mem0", 1 << 20);
  FaultInjectingBlockDevice dev(mem, fc);
  AlignedBuffer b(4096);
  fc.FailNth(3);
  EXPECT_TRUE(dev.WriteAt(0, b.data(), 4096).ok());
  EXPECT_TRUE(dev.Flush().ok());
  Status s = dev.WriteAt(4096, b.data(), 4096);
  EXPECT_EQ(s.code(), Errc::kIoError);
  EXPECT_NE(s.message().find("mem0"), std::string::npos);
  EXPECT_TRUE(dev.WriteAt(4096, b.data(), 4096).ok());
  EXPECT_EQ(mem->writes(), 2u);  // the failed write did not reach the device
}

TEST(FaultController, CrashAtNthStopsEveryLaterOperation) {
  FaultController fc;
  MemFileSystem mem;
  FaultInjectingFileSystem fs(mem, fc);
  FileOptions o;
  o.writable = o.create = true;
  auto f = fs.OpenFile("/seg", o);  // op 1
  ASSERT_TRUE(f.ok());
  fc.CrashAtNth(2);
  EXPECT_TRUE((*f)->Append("a", 1).ok());               // op 2 from the schedule's start
  EXPECT_EQ((*f)->Sync().code(), Errc::kAborted);       // op 3: crashed
  EXPECT_EQ((*f)->Append("b", 1).code(), Errc::kAborted);
  EXPECT_TRUE(fc.crashed());
  mem.PowerCut();
  EXPECT_TRUE(mem.Contents("/seg").empty());
  fc.Reset();
  EXPECT_TRUE((*f)->Append("c", 1).ok());
}

TEST(FaultController, FailObjectFailsOnlyThatDevice) {
  FaultController fc;
  FaultInjectingBlockDevice a(std::make_shared<MemBlockDevice>("sda", 1 << 20), fc);
  FaultInjectingBlockDevice b(std::make_shared<MemBlockDevice>("sdb", 1 << 20), fc);
  AlignedBuffer buf(512);
  fc.FailObject("sda");
  EXPECT_EQ(a.WriteAt(0, buf.data(), 512).code(), Errc::kIoError);
  EXPECT_EQ(a.ReadAt(0, buf.data(), 512).code(), Errc::kIoError);
  EXPECT_TRUE(b.WriteAt(0, buf.data(), 512).ok());
}

// Beast-style fail_count loop: a small multi-step operation is run with the
// n-th operation failing, for every n until it succeeds. Every failure point
// must leave either the old or the new complete state durable.
Status WriteTwoCopies(FileSystem& fs, const std::string& content) {
  FileOptions o;
  o.writable = o.create = true;
  MT_ASSIGN_OR_RETURN(auto f, fs.OpenFile("/state.tmp", o));
  MT_RETURN_IF_ERROR(f->Truncate(0));
  MT_RETURN_IF_ERROR(f->Append(content.data(), content.size()));
  MT_RETURN_IF_ERROR(f->Sync());
  return fs.Rename("/state.tmp", "/state");
}

TEST(FaultController, EveryFailurePointOfAnAtomicReplaceLeavesOldOrNew) {
  int attempts = 0;
  for (uint64_t n = 1;; ++n) {
    MemFileSystem mem;
    FaultController fc;
    FaultInjectingFileSystem fs(mem, fc);
    ASSERT_TRUE(WriteTwoCopies(fs, "old").ok());
    fc.CrashAtNth(n);
    Status s = WriteTwoCopies(fs, "new-state");
    mem.PowerCut();
    const auto c = mem.Contents("/state");
    const std::string got(c.begin(), c.end());
    EXPECT_TRUE(got == "old" || got == "new-state") << "n=" << n << " got '" << got << "'";
    ++attempts;
    if (s.ok()) {
      EXPECT_EQ(got, "new-state");
      break;
    }
    ASSERT_LT(n, 100u);
  }
  EXPECT_EQ(attempts, 6);  // create, truncate, append, sync, rename + the successful run
}

}  // namespace
}  // namespace mt::shim
