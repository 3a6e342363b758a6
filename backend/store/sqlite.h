// The small part of SQLite's C API the declaration store uses, behind owning
// RAII types, and SQLite result codes as absl::Status.
//
// Codes follow what the caller should do (docs/STYLE.md "Errors"):
//   DATA_LOSS            SQLITE_CORRUPT, SQLITE_NOTADB: the file is damaged
//   UNAVAILABLE          SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR: nothing was
//                        committed, retry later
//   RESOURCE_EXHAUSTED   SQLITE_FULL, SQLITE_NOMEM
//   ALREADY_EXISTS       a UNIQUE or PRIMARY KEY constraint
//   ABORTED              SQLITE_ABORT, SQLITE_INTERRUPT, SQLITE_SCHEMA
// SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_READONLY and SQLITE_IOERR take the
// code of the errno behind them through the shared table
// (backend/util/errno_status.h) when SQLite reports one; anything else
// (SQLITE_ERROR, SQLITE_MISUSE, other constraints) is INTERNAL.
//
// Thread safety: none; the owner serialises every use of one SqliteDb and its
// statements (DeclarationStore holds its mutex).
#ifndef XENCHAN_BACKEND_STORE_SQLITE_H_
#define XENCHAN_BACKEND_STORE_SQLITE_H_

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

struct sqlite3;
struct sqlite3_stmt;

namespace xenchan {

// The status code for SQLite's (extended) result code `rc`, given the errno
// SQLite saw (0 if none). Never kOk.
absl::StatusCode SqliteStatusCode(int rc, int system_errno);

// One prepared statement; finalized on destruction. Movable.
class SqliteStatement {
 public:
  SqliteStatement() = default;
  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement& operator=(SqliteStatement&& other) noexcept;
  ~SqliteStatement();

  // Bind parameter `index` (1-based). INTERNAL if SQLite refuses (a wrong
  // index: a bug).
  absl::Status BindInt(int index, int64_t value);
  absl::Status BindText(int index, absl::string_view text);
  absl::Status BindBlob(int index, absl::string_view bytes);
  absl::Status BindDouble(int index, double value);
  absl::Status BindNull(int index);

  // Runs the statement to its next row: true with a row to read, false when
  // it is done. Errors as the file comment says; a failed step needs Reset.
  absl::StatusOr<bool> Step();
  // Steps to the end and fails unless it returned no row.
  absl::Status Run();

  // The current row's column `index` (0-based): its SQLITE_* type, and its
  // value as an integer, a double or bytes (text or blob, any bytes).
  int ColumnType(int index) const;
  int64_t ColumnInt(int index) const;
  double ColumnDouble(int index) const;
  std::string ColumnBytes(int index) const;

  // Ready to run again, with every parameter unbound. Ends the read the
  // statement had open, so every use ends with it (see ResetOnExit).
  void Reset();

 private:
  friend class SqliteDb;
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt, std::string path)
      : db_(db), stmt_(stmt), path_(std::move(path)) {}
  absl::Status Error(int rc, absl::string_view what) const;

  sqlite3* db_ = nullptr;         // not owned
  sqlite3_stmt* stmt_ = nullptr;  // owned
  std::string path_;              // the database file, for messages
};

// Resets a statement when the scope ends, however it ends.
class ResetOnExit {
 public:
  explicit ResetOnExit(SqliteStatement* statement) : statement_(statement) {}
  ~ResetOnExit() { statement_->Reset(); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  SqliteStatement* const statement_;
};

// An open database connection; closed on destruction (after every statement
// prepared from it has been destroyed). Movable.
class SqliteDb {
 public:
  // Opens the file at `path` read-write, creating an empty one if there is
  // none, with extended result codes, a busy timeout of `busy_timeout`,
  // SQLITE_DBCONFIG_DEFENSIVE (no writes to the schema behind SQLite's back)
  // and trusted_schema off (a hostile file's views and triggers cannot call
  // functions with side effects). SQLite reads nothing yet, so a file that is
  // not a database still opens; the first statement reports it.
  static absl::StatusOr<SqliteDb> Open(const std::string& path, absl::Duration busy_timeout);

  SqliteDb(SqliteDb&& other) noexcept;
  SqliteDb& operator=(SqliteDb&& other) noexcept;
  ~SqliteDb();

  // Runs `sql`, one or more statements whose results are not wanted.
  // `what` names the step for the message.
  absl::Status Exec(const std::string& sql, absl::string_view what);
  // Prepares one statement, kept for reuse (SQLITE_PREPARE_PERSISTENT).
  absl::StatusOr<SqliteStatement> Prepare(absl::string_view sql);
  // Runs a one-row, one-column query (a PRAGMA) and returns the value as an
  // integer or as text.
  absl::StatusOr<int64_t> QueryInt(absl::string_view sql);
  absl::StatusOr<std::string> QueryText(absl::string_view sql);
  // True outside a transaction (sqlite3_get_autocommit).
  bool autocommit() const;

  const std::string& path() const { return path_; }

 private:
  SqliteDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  absl::Status Error(int rc, absl::string_view what) const;

  sqlite3* db_ = nullptr;  // owned
  std::string path_;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_STORE_SQLITE_H_
