// SQLite behind RAII types; see sqlite.h.
#include "backend/store/sqlite.h"

#include <sqlite3.h>

#include <algorithm>
#include <climits>

#include "absl/strings/str_cat.h"
#include "backend/util/errno_status.h"

namespace xenchan {
namespace {

// "<path>: <what>: <SQLite's message>[ (<errno text>)]".
absl::Status SqliteError(sqlite3* db, const std::string& path, int rc, absl::string_view what) {
  const int err = db != nullptr ? sqlite3_system_errno(db) : 0;
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string text = absl::StrCat(path, ": ", what, ": ", message);
  if (err != 0) absl::StrAppend(&text, " (", ErrnoMessage(err, "system error"), ")");
  return absl::Status(SqliteStatusCode(rc, err), text);
}

}  // namespace

absl::StatusCode SqliteStatusCode(int rc, int system_errno) {
  switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return absl::StatusCode::kAlreadyExists;
    default:
      break;
  }
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::StatusCode::kUnavailable;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_ABORT:
    case SQLITE_INTERRUPT:
    case SQLITE_SCHEMA:
      return absl::StatusCode::kAborted;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_IOERR:
      if (system_errno != 0) return ErrnoStatusCode(system_errno);
      if ((rc & 0xff) == SQLITE_IOERR) return absl::StatusCode::kUnavailable;
      if ((rc & 0xff) == SQLITE_CANTOPEN) return absl::StatusCode::kFailedPrecondition;
      return absl::StatusCode::kPermissionDenied;
    default:
      return absl::StatusCode::kInternal;
  }
}

SqliteStatement::SqliteStatement(SqliteStatement&& other) noexcept
    : db_(other.db_), stmt_(other.stmt_), path_(std::move(other.path_)) {
  other.stmt_ = nullptr;
}

SqliteStatement& SqliteStatement::operator=(SqliteStatement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = other.stmt_;
    path_ = std::move(other.path_);
    other.stmt_ = nullptr;
  }
  return *this;
}

SqliteStatement::~SqliteStatement() { sqlite3_finalize(stmt_); }

absl::Status SqliteStatement::Error(int rc, absl::string_view what) const {
  return SqliteError(db_, path_, rc, absl::StrCat(what, " (", sqlite3_sql(stmt_), ")"));
}

absl::Status SqliteStatement::BindInt(int index, int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  return rc == SQLITE_OK ? absl::OkStatus() : Error(rc, "bind");
}

absl::Status SqliteStatement::BindText(int index, absl::string_view text) {
  if (text.size() > INT_MAX) return absl::InternalError("text too long to bind");
  const int rc =
      sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return rc == SQLITE_OK ? absl::OkStatus() : Error(rc, "bind");
}

absl::Status SqliteStatement::BindBlob(int index, absl::string_view bytes) {
  if (bytes.size() > INT_MAX) return absl::InternalError("blob too long to bind");
  const int rc = sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()),
                                   SQLITE_TRANSIENT);
  return rc == SQLITE_OK ? absl::OkStatus() : Error(rc, "bind");
}

absl::Status SqliteStatement::BindDouble(int index, double value) {
  const int rc = sqlite3_bind_double(stmt_, index, value);
  return rc == SQLITE_OK ? absl::OkStatus() : Error(rc, "bind");
}

absl::Status SqliteStatement::BindNull(int index) {
  const int rc = sqlite3_bind_null(stmt_, index);
  return rc == SQLITE_OK ? absl::OkStatus() : Error(rc, "bind");
}

absl::StatusOr<bool> SqliteStatement::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Error(rc, "step");
}

absl::Status SqliteStatement::Run() {
  absl::StatusOr<bool> row = Step();
  if (!row.ok()) return row.status();
  if (*row) return absl::InternalError(absl::StrCat(sqlite3_sql(stmt_), ": returned a row"));
  return absl::OkStatus();
}

int SqliteStatement::ColumnType(int index) const { return sqlite3_column_type(stmt_, index); }

int64_t SqliteStatement::ColumnInt(int index) const { return sqlite3_column_int64(stmt_, index); }

double SqliteStatement::ColumnDouble(int index) const {
  return sqlite3_column_double(stmt_, index);
}

std::string SqliteStatement::ColumnBytes(int index) const {
  // sqlite3_column_blob first, then the length: the order SQLite documents
  // for reading a value without converting it.
  const void* data = sqlite3_column_blob(stmt_, index);
  const int size = sqlite3_column_bytes(stmt_, index);
  if (data == nullptr || size <= 0) return std::string();
  return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

void SqliteStatement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

absl::StatusOr<SqliteDb> SqliteDb::Open(const std::string& path, absl::Duration busy_timeout) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  // Own the handle at once: SQLite hands one back even when opening fails.
  SqliteDb db(raw, path);
  if (raw == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": open: out of memory"));
  }
  if (rc != SQLITE_OK) return db.Error(rc, "open");
  sqlite3_extended_result_codes(raw, 1);
  const int64_t timeout_ms = absl::ToInt64Milliseconds(busy_timeout);
  sqlite3_busy_timeout(raw, static_cast<int>(std::min<int64_t>(timeout_ms, INT_MAX)));
  int on = 0;
  int config_rc = sqlite3_db_config(raw, SQLITE_DBCONFIG_DEFENSIVE, 1, &on);
  if (config_rc != SQLITE_OK || on != 1) return db.Error(config_rc, "enable defensive mode");
  int trusted = 1;
  config_rc = sqlite3_db_config(raw, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, &trusted);
  if (config_rc != SQLITE_OK || trusted != 0) return db.Error(config_rc, "distrust the schema");
  return db;
}

SqliteDb::SqliteDb(SqliteDb&& other) noexcept : db_(other.db_), path_(std::move(other.path_)) {
  other.db_ = nullptr;
}

SqliteDb& SqliteDb::operator=(SqliteDb&& other) noexcept {
  if (this != &other) {
    sqlite3_close(db_);
    db_ = other.db_;
    path_ = std::move(other.path_);
    other.db_ = nullptr;
  }
  return *this;
}

SqliteDb::~SqliteDb() { sqlite3_close(db_); }

absl::Status SqliteDb::Error(int rc, absl::string_view what) const {
  return SqliteError(db_, path_, rc, what);
}

absl::Status SqliteDb::Exec(const std::string& sql, absl::string_view what) {
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? absl::OkStatus() : Error(rc, what);
}

absl::StatusOr<SqliteStatement> SqliteDb::Prepare(absl::string_view sql) {
  if (sql.size() > INT_MAX) return absl::InternalError("statement too long");
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(rc, absl::StrCat("prepare ", sql));
  if (stmt == nullptr) return absl::InternalError(absl::StrCat("no statement in: ", sql));
  return SqliteStatement(db_, stmt, path_);
}

absl::StatusOr<int64_t> SqliteDb::QueryInt(absl::string_view sql) {
  absl::StatusOr<SqliteStatement> stmt = Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError(absl::StrCat(path_, ": ", sql, ": no result"));
  return stmt->ColumnInt(0);
}

absl::StatusOr<std::string> SqliteDb::QueryText(absl::string_view sql) {
  absl::StatusOr<SqliteStatement> stmt = Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError(absl::StrCat(path_, ": ", sql, ": no result"));
  return stmt->ColumnBytes(0);
}

bool SqliteDb::autocommit() const { return sqlite3_get_autocommit(db_) != 0; }

}  // namespace xenchan
