// SQLite result codes as absl::Status codes (backend/store/sqlite.h): what
// the caller of the store should do next for each kind of failure.
#include "backend/store/sqlite.h"

#include <errno.h>
#include <sqlite3.h>

#include "gtest/gtest.h"

namespace xenchan {
namespace {

TEST(SqliteStatusCodeTest, ByWhatTheCallerShouldDo) {
  EXPECT_EQ(SqliteStatusCode(SQLITE_CORRUPT, 0), absl::StatusCode::kDataLoss);
  EXPECT_EQ(SqliteStatusCode(SQLITE_NOTADB, 0), absl::StatusCode::kDataLoss);
  EXPECT_EQ(SqliteStatusCode(SQLITE_BUSY, 0), absl::StatusCode::kUnavailable);
  EXPECT_EQ(SqliteStatusCode(SQLITE_BUSY_SNAPSHOT, 0), absl::StatusCode::kUnavailable);
  EXPECT_EQ(SqliteStatusCode(SQLITE_LOCKED, 0), absl::StatusCode::kUnavailable);
  EXPECT_EQ(SqliteStatusCode(SQLITE_FULL, 0), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(SqliteStatusCode(SQLITE_NOMEM, 0), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(SqliteStatusCode(SQLITE_CONSTRAINT_UNIQUE, 0), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(SqliteStatusCode(SQLITE_CONSTRAINT_PRIMARYKEY, 0), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(SqliteStatusCode(SQLITE_CONSTRAINT_NOTNULL, 0), absl::StatusCode::kInternal);
  EXPECT_EQ(SqliteStatusCode(SQLITE_ABORT, 0), absl::StatusCode::kAborted);
  EXPECT_EQ(SqliteStatusCode(SQLITE_SCHEMA, 0), absl::StatusCode::kAborted);
  EXPECT_EQ(SqliteStatusCode(SQLITE_ERROR, 0), absl::StatusCode::kInternal);
  EXPECT_EQ(SqliteStatusCode(SQLITE_MISUSE, 0), absl::StatusCode::kInternal);
}

TEST(SqliteStatusCodeTest, FileErrorsTakeTheirErrnosCode) {
  EXPECT_EQ(SqliteStatusCode(SQLITE_CANTOPEN, EACCES), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(SqliteStatusCode(SQLITE_CANTOPEN, ENOENT), absl::StatusCode::kNotFound);
  EXPECT_EQ(SqliteStatusCode(SQLITE_IOERR_WRITE, ENOSPC), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(SqliteStatusCode(SQLITE_READONLY, EROFS), absl::ErrnoToStatusCode(EROFS));
  // Without an errno: retry an I/O error, fix the path, ask for write access.
  EXPECT_EQ(SqliteStatusCode(SQLITE_IOERR_FSYNC, 0), absl::StatusCode::kUnavailable);
  EXPECT_EQ(SqliteStatusCode(SQLITE_CANTOPEN, 0), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(SqliteStatusCode(SQLITE_READONLY, 0), absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace xenchan
