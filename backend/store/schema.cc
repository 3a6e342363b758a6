// The declaration store's schema and its migration; see schema.h.
#include "backend/store/schema.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace xenchan {
namespace {

// How many integrity_check findings a message quotes.
constexpr int kIntegrityFindingsShown = 5;

// Version 1. The generation counter is a row of `meta` rather than a
// max(generation) so that a value is never handed out twice, even after the
// row that held it is deleted.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE meta (
  key TEXT PRIMARY KEY NOT NULL,
  value INTEGER NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES ('last_generation', 0);
CREATE TABLE declarations (
  domain_uuid TEXT NOT NULL,
  channel_id TEXT NOT NULL,
  uid TEXT NOT NULL,
  buffer_limit_bytes INTEGER NOT NULL,
  overflow_policy TEXT NOT NULL,
  write_queue_limit_bytes INTEGER NOT NULL,
  default_framing TEXT NOT NULL,
  last_devid INTEGER,
  create_time_unix_nanos INTEGER NOT NULL,
  generation INTEGER NOT NULL,
  PRIMARY KEY (domain_uuid, channel_id)
) STRICT;
CREATE UNIQUE INDEX declarations_by_uid ON declarations (uid);
)sql";

// Version 2: the domain's last known name, so that a restarted xenchand
// finds a not-running domain by name. Rows from version 1 get "" (unknown).
constexpr char kSchemaV2[] = R"sql(
ALTER TABLE declarations ADD COLUMN domain_name TEXT NOT NULL DEFAULT '';
)sql";

// Prefixes a status from the file's first reads with what it means.
absl::Status FirstReadError(const absl::Status& status, const std::string& path) {
  if (status.code() != absl::StatusCode::kDataLoss) return status;
  return absl::DataLossError(absl::StrCat(
      path, " cannot be read as a declaration store (", status.message(),
      "); xenchand will not start on it rather than lose declarations: restore it from a "
      "backup or move it away"));
}

// Runs PRAGMA integrity_check and fails with DATA_LOSS naming the path
// unless its only row is "ok".
absl::Status CheckIntegrity(SqliteDb* db) {
  absl::StatusOr<SqliteStatement> check = db->Prepare("PRAGMA integrity_check");
  if (!check.ok()) return FirstReadError(check.status(), db->path());
  std::vector<std::string> findings;
  int total = 0;
  while (true) {
    absl::StatusOr<bool> row = check->Step();
    if (!row.ok()) return FirstReadError(row.status(), db->path());
    if (!*row) break;
    std::string finding = check->ColumnBytes(0);
    if (finding == "ok") continue;
    ++total;
    if (total <= kIntegrityFindingsShown) findings.push_back(std::move(finding));
  }
  if (total == 0) return absl::OkStatus();
  return absl::DataLossError(
      absl::StrCat(db->path(), ": the declaration store is damaged (PRAGMA integrity_check found ",
                   total, total == 1 ? " problem" : " problems", ": ",
                   absl::StrJoin(findings, "; "), total > kIntegrityFindingsShown ? "; ..." : "",
                   "); xenchand will not start on it rather than lose declarations: restore it "
                   "from a backup or move it away"));
}

}  // namespace

const std::vector<MigrationStep>& DeclarationSchema() {
  static const std::vector<MigrationStep>* const kSteps =
      new std::vector<MigrationStep>{{1, kSchemaV1}, {2, kSchemaV2}};
  return *kSteps;
}

absl::Status ValidateMigrationSteps(absl::Span<const MigrationStep> steps) {
  if (steps.empty()) return absl::InternalError("the schema has no migration steps");
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].to_version != static_cast<int64_t>(i) + 1) {
      return absl::InternalError(absl::StrCat("migration step ", i, " is numbered ",
                                              steps[i].to_version, ", not ", i + 1));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<StoreFileState> CheckStoreFile(SqliteDb* db, int64_t newest_known) {
  const std::string& path = db->path();
  absl::StatusOr<int64_t> app_id = db->QueryInt("PRAGMA application_id");
  if (!app_id.ok()) return FirstReadError(app_id.status(), path);
  absl::StatusOr<int64_t> version = db->QueryInt("PRAGMA user_version");
  if (!version.ok()) return FirstReadError(version.status(), path);
  absl::StatusOr<int64_t> objects = db->QueryInt("SELECT count(*) FROM sqlite_schema");
  if (!objects.ok()) return FirstReadError(objects.status(), path);

  const bool fresh = *app_id == 0 && *version == 0 && *objects == 0;
  if (!fresh && *app_id != kDeclarationStoreApplicationId) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " is an SQLite database but not a xenchan declaration store (application_id ",
        *app_id, ", expected ", kDeclarationStoreApplicationId,
        "); point xenchand at its own "
        "state directory"));
  }
  if (*version > newest_known) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " has schema version ", *version, ", newer than the newest this xenchand knows (",
        newest_known, "): it was written by a newer xenchand; run that one or a later one"));
  }
  if (*version < 0 || (!fresh && *version == 0)) {
    return absl::DataLossError(
        absl::StrCat(path, " carries xenchan's application id but schema version ", *version,
                     ", which no xenchand writes; restore it from a backup or move it away"));
  }
  absl::Status integrity = CheckIntegrity(db);
  if (!integrity.ok()) return integrity;
  return StoreFileState{*version};
}

absl::Status MigrateSchema(SqliteDb* db, absl::Span<const MigrationStep> steps,
                           int64_t from_version) {
  absl::Status status = ValidateMigrationSteps(steps);
  if (!status.ok()) return status;
  const int64_t newest = steps.back().to_version;
  if (from_version >= newest) return absl::OkStatus();
  status = db->Exec("BEGIN IMMEDIATE", "begin the schema migration");
  if (!status.ok()) return status;
  for (const MigrationStep& step : steps) {
    if (step.to_version <= from_version) continue;
    status = db->Exec(step.sql, absl::StrCat("migrate the schema to version ", step.to_version,
                                             " (from ", from_version, ")"));
    if (!status.ok()) break;
  }
  if (status.ok()) {
    status = db->Exec(absl::StrCat("PRAGMA user_version = ", newest,
                                   "; PRAGMA application_id = ", kDeclarationStoreApplicationId),
                      "record the schema version");
  }
  if (status.ok()) status = db->Exec("COMMIT", "commit the schema migration");
  // A failed COMMIT may leave the transaction open (SQLITE_BUSY); a failed
  // step always does. Either way nothing of it may stay.
  if (!status.ok() && !db->autocommit()) {
    (void)db->Exec("ROLLBACK", "roll back the schema migration");
  }
  return status;
}

}  // namespace xenchan
