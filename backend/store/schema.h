// The declaration store's on-disk schema: its versions as a list of
// migration steps, the checks that decide whether a file is a declaration
// store this build can use, and the upgrade.
//
// A file's schema version is SQLite's `PRAGMA user_version` (in the database
// header, changed atomically with the transaction that migrates); its
// identity is `PRAGMA application_id` = kDeclarationStoreApplicationId. An
// empty file (or a new one) is version 0 and every step applies, so creating
// a store and upgrading one are the same path. Steps run in order inside one
// transaction together with the new user_version and application_id: a crash
// or a failing step leaves the file exactly as it was.
//
// To change the schema, append a step with the next version; never edit a
// step that has shipped (files out there are already past it).
//
// Thread safety: pure data and functions over a SqliteDb the caller owns.
#ifndef XENCHAN_BACKEND_STORE_SCHEMA_H_
#define XENCHAN_BACKEND_STORE_SCHEMA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "backend/store/sqlite.h"

namespace xenchan {

// "XCHD" in the database header's application id field: a xenchan
// declaration store. `file(1)` and `sqlite3 .dbinfo` show it.
inline constexpr int32_t kDeclarationStoreApplicationId = 0x58434844;

// One schema version: the statements that take a file from version
// `to_version - 1` to `to_version`.
struct MigrationStep {
  int64_t to_version = 0;
  std::string sql;
};

// xenchand's schema, from version 0 (empty) to the newest it knows.
//   1: `meta` (the store-wide generation counter) and `declarations`, keyed
//      by (domain_uuid, channel_id), uid unique (declaration_row.h lists
//      the columns). STRICT tables: SQLite refuses a value of the wrong type.
const std::vector<MigrationStep>& DeclarationSchema();

// OK if `steps` is non-empty and numbered 1, 2, 3, ... in order; INTERNAL
// otherwise (a programming error in the list).
absl::Status ValidateMigrationSteps(absl::Span<const MigrationStep> steps);

// What CheckStoreFile found.
struct StoreFileState {
  int64_t version = 0;  // the file's schema version; 0 for a new, empty file
};

// Decides, without writing, whether the file behind `db` can be used by a
// build that knows versions up to `newest_known`:
//   - DATA_LOSS naming the path if it is not an SQLite database, if SQLite
//     finds it corrupt, or if `PRAGMA integrity_check` reports anything
//     (the first few findings are in the message);
//   - FAILED_PRECONDITION naming the path if it is a database of something
//     else (another application id, or tables without xenchan's id), or if
//     its version is newer than `newest_known` (both versions named: a newer
//     xenchand wrote it, and an older one must not guess at its contents);
//   - DATA_LOSS if it carries xenchan's id with version 0 (no migration ever
//     commits that).
absl::StatusOr<StoreFileState> CheckStoreFile(SqliteDb* db, int64_t newest_known);

// Applies every step of `steps` after `from_version` (none if it is the
// newest) in one transaction that also sets user_version and
// application_id. On failure the transaction is rolled back and the status
// names the path and the step.
absl::Status MigrateSchema(SqliteDb* db, absl::Span<const MigrationStep> steps,
                           int64_t from_version);

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_STORE_SCHEMA_H_
