#include "mt/shim/status.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace mt {
namespace {

TEST(Status, FromErrnoNamesTheObjectAndTheErrnoText) {
  Status s = Status::FromErrno(ENOSPC, "write /dev/loop3 at 4096");
  EXPECT_EQ(s.code(), Errc::kNoSpace);
  EXPECT_EQ(s.sys_errno(), ENOSPC);
  EXPECT_EQ(s.message(), "write /dev/loop3 at 4096: No space left on device");
  EXPECT_EQ(s.ToString(), "no-space: write /dev/loop3 at 4096: No space left on device");
}

TEST(Status, ErrnoMapsToCodes) {
  EXPECT_EQ(Status::FromErrno(ENOENT, "x").code(), Errc::kNotFound);
  EXPECT_EQ(Status::FromErrno(EBUSY, "x").code(), Errc::kBusy);
  EXPECT_EQ(Status::FromErrno(EACCES, "x").code(), Errc::kPermissionDenied);
  EXPECT_EQ(Status::FromErrno(EIO, "x").code(), Errc::kIoError);
}

TEST(Status, WithContextKeepsCodeAndErrno) {
  Status s = Status::FromErrno(EIO, "read sdb").WithContext("capture before-image");
  EXPECT_EQ(s.code(), Errc::kIoError);
  EXPECT_EQ(s.sys_errno(), EIO);
  EXPECT_EQ(s.message(), "capture before-image: read sdb: Input/output error");
}

Result<int> Half(int v) {
  if (v % 2 != 0) return Status(Errc::kInvalidArgument, "odd");
  return v / 2;
}

Status Quarter(int v, int* out) {
  MT_ASSIGN_OR_RETURN(int h, Half(v));
  MT_ASSIGN_OR_RETURN(*out, Half(h));
  return Status::Ok();
}

TEST(Status, ResultCarriesValueOrError) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, &out).ok());
  EXPECT_EQ(out, 2);
  Status s = Quarter(6, &out);
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_EQ(s.message(), "odd");
}

}  // namespace
}  // namespace mt
