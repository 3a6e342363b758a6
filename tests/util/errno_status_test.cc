// The shared errno table: the code by what the caller should do next, the
// message, and a facility's overrides and code for unlisted errnos.
#include "backend/util/errno_status.h"

#include <errno.h>
#include <string.h>

#include "gtest/gtest.h"

namespace xenchan {
namespace {

using absl::StatusCode;

TEST(ErrnoStatusCodeTest, SharedTableByWhatTheCallerDoesNext) {
  EXPECT_EQ(ErrnoStatusCode(ENOENT), StatusCode::kNotFound);
  EXPECT_EQ(ErrnoStatusCode(EACCES), StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoStatusCode(EPERM), StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoStatusCode(EINVAL), StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrnoStatusCode(E2BIG), StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrnoStatusCode(ENAMETOOLONG), StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrnoStatusCode(EEXIST), StatusCode::kAlreadyExists);
  EXPECT_EQ(ErrnoStatusCode(ENOSPC), StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoStatusCode(ENOMEM), StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoStatusCode(EDQUOT), StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoStatusCode(EAGAIN), StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoStatusCode(EINTR), StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoStatusCode(EBUSY), StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoStatusCode(EISDIR), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrnoStatusCode(ENOTDIR), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrnoStatusCode(ENOTEMPTY), StatusCode::kFailedPrecondition);
}

TEST(ErrnoStatusCodeTest, UnlistedErrnosFollowAbsl) {
  EXPECT_EQ(ErrnoStatusCode(ESRCH), absl::ErrnoToStatusCode(ESRCH));
  EXPECT_EQ(ErrnoStatusCode(ETIMEDOUT), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(ErrnoStatusCode(ECONNREFUSED), StatusCode::kUnavailable);
}

TEST(ErrnoStatusCodeTest, ZeroIsNeverOk) {
  EXPECT_EQ(ErrnoStatusCode(0), StatusCode::kUnknown);
  EXPECT_FALSE(ErrnoToStatus(0, "read").ok());
}

TEST(ErrnoStatusCodeTest, OverridesComeFirst) {
  static constexpr ErrnoCode kOverrides[] = {{EAGAIN, StatusCode::kAborted},
                                             {ENODEV, StatusCode::kUnavailable}};
  const ErrnoMapping mapping{kOverrides, std::nullopt};
  EXPECT_EQ(ErrnoStatusCode(EAGAIN, mapping), StatusCode::kAborted);
  EXPECT_EQ(ErrnoStatusCode(ENODEV, mapping), StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoStatusCode(ENOENT, mapping), StatusCode::kNotFound);
  EXPECT_EQ(ErrnoStatusCode(ETIMEDOUT, mapping), StatusCode::kDeadlineExceeded);
}

TEST(ErrnoStatusCodeTest, UnlistedCodeOnlyForErrnosNoTableNames) {
  const ErrnoMapping mapping{{}, StatusCode::kInternal};
  EXPECT_EQ(ErrnoStatusCode(EIO, mapping), StatusCode::kInternal);
  EXPECT_EQ(ErrnoStatusCode(ETIMEDOUT, mapping), StatusCode::kInternal);
  EXPECT_EQ(ErrnoStatusCode(ENOENT, mapping), StatusCode::kNotFound);
  EXPECT_EQ(ErrnoStatusCode(ENOSPC, mapping), StatusCode::kResourceExhausted);
}

TEST(ErrnoToStatusTest, MessageNamesTheOperationAndTheError) {
  const absl::Status s = ErrnoToStatus(ENOENT, "open /x");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), std::string("open /x: ") + strerror(ENOENT));
  EXPECT_EQ(ErrnoMessage(EACCES, "bind"), std::string("bind: ") + strerror(EACCES));
}

TEST(ErrnoToStatusTest, UnknownErrnoStillHasAMessage) {
  const absl::Status s = ErrnoToStatus(100000, "ioctl");
  EXPECT_EQ(s.code(), StatusCode::kUnknown);
  EXPECT_EQ(s.message().substr(0, 7), "ioctl: ");
  EXPECT_GT(s.message().size(), 7u);
}

}  // namespace
}  // namespace xenchan
