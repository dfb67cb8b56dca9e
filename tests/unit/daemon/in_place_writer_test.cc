// InPlaceWriter: writes in submission order on its own thread; WaitThrough
// waits for everything up to a seq; the first error sticks and nothing
// after it is written.
#include "daemon/in_place_writer.h"

#include <gtest/gtest.h>

#include <mutex>
#include <vector>

namespace mt::daemon {
namespace {

TEST(InPlaceWriter, WritesInOrderAndWaitThroughCoversEverythingBefore) {
  std::mutex mu;
  std::vector<uint64_t> offsets;
  InPlaceWriter w([&](uint32_t, uint64_t offset, const uint8_t*, uint64_t) {
    std::lock_guard<std::mutex> l(mu);
    offsets.push_back(offset);
    return Status::Ok();
  });
  const uint8_t byte = 0;
  for (uint64_t seq = 1; seq <= 50; ++seq) w.Submit(seq, 0, seq * 4096, &byte, 1);
  ASSERT_TRUE(w.WaitThrough(50).ok());
  std::lock_guard<std::mutex> l(mu);
  ASSERT_EQ(offsets.size(), 50u);
  for (uint64_t i = 0; i < 50; ++i) EXPECT_EQ(offsets[i], (i + 1) * 4096);
}

TEST(InPlaceWriter, TheFirstErrorSticksAndNothingAfterItIsWritten) {
  int calls = 0;
  InPlaceWriter w([&](uint32_t, uint64_t offset, const uint8_t*, uint64_t) {
    ++calls;
    return offset == 2 ? Status(Errc::kIoError, "target gone (test)") : Status::Ok();
  });
  const uint8_t byte = 0;
  for (uint64_t seq = 1; seq <= 4; ++seq) w.Submit(seq, 0, seq, &byte, 1);
  Status s = w.WaitThrough(4);
  EXPECT_EQ(s.code(), Errc::kIoError);
  EXPECT_NE(s.message().find("seq 2"), std::string::npos) << s.message();
  EXPECT_EQ(w.WaitThrough(1).code(), Errc::kIoError);
  EXPECT_EQ(calls, 2);  // seqs 3 and 4 were not written
  EXPECT_EQ(w.WaitThrough(9).code(), Errc::kIoError);
}

TEST(InPlaceWriter, WaitingForASeqNeverSubmittedIsAnError) {
  InPlaceWriter w([](uint32_t, uint64_t, const uint8_t*, uint64_t) { return Status::Ok(); });
  EXPECT_EQ(w.WaitThrough(3).code(), Errc::kInternal);
}

}  // namespace
}  // namespace mt::daemon
