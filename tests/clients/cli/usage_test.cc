// Unit tests of xenchanctl's exit codes (//clients/cli:usage): the table the
// help text and the README promise.
#include "clients/cli/usage.h"

#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace cli {
namespace {

TEST(ExitCodeOfTest, FollowsTheDocumentedTable) {
  EXPECT_EQ(ExitCodeOf(absl::StatusCode::kOk), kOk);
  EXPECT_EQ(ExitCodeOf(absl::StatusCode::kInvalidArgument), 3);
  EXPECT_EQ(ExitCodeOf(absl::StatusCode::kNotFound), 4);
  EXPECT_EQ(ExitCodeOf(absl::StatusCode::kAlreadyExists), 5);
  EXPECT_EQ(ExitCodeOf(absl::StatusCode::kFailedPrecondition), 6);
  EXPECT_EQ(ExitCodeOf(absl::StatusCode::kDeadlineExceeded), 7);
  EXPECT_EQ(ExitCodeOf(absl::StatusCode::kAborted), 8);
  EXPECT_EQ(ExitCodeOf(absl::StatusCode::kOutOfRange), 9);
  EXPECT_EQ(ExitCodeOf(absl::StatusCode::kUnavailable), 10);
  EXPECT_EQ(ExitCodeOf(absl::StatusCode::kUnauthenticated), 11);
  EXPECT_EQ(ExitCodeOf(absl::StatusCode::kPermissionDenied), 11);
  EXPECT_EQ(ExitCodeOf(absl::StatusCode::kCancelled), 12);
  EXPECT_EQ(ExitCodeOf(absl::StatusCode::kResourceExhausted), 13);
}

TEST(ExitCodeOfTest, EverythingElseIsAnOtherError) {
  EXPECT_EQ(ExitCodeOf(absl::StatusCode::kInternal), kError);
  EXPECT_EQ(ExitCodeOf(absl::StatusCode::kUnknown), kError);
  EXPECT_EQ(ExitCodeOf(absl::StatusCode::kDataLoss), kError);
  EXPECT_EQ(ExitCodeOf(absl::StatusCode::kUnimplemented), kError);
}

TEST(UsageTest, HelpTextListsEveryCommandAndTheUsageExitCode) {
  const std::string usage = kUsage;
  for (const char* command :
       {"list", "get", "create", "update", "delete", "watch", "attach", "read", "write", "call"}) {
    EXPECT_NE(usage.find(std::string("\n  ") + command + " "), std::string::npos) << command;
  }
  EXPECT_NE(usage.find("2  usage error"), std::string::npos);
}

}  // namespace
}  // namespace cli
}  // namespace xenchan
