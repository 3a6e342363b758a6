// The durable channel declarations' changes and reads, and the check of
// every row at Open; see declaration_store.h. Opening the file (locking,
// checks, migration) is in declaration_store_open.cc.
#include "backend/store/declaration_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backend/util/uuid.h"

namespace xenchan {
namespace {

// The key's domain UUID in canonical form, after checking both parts.
absl::StatusOr<std::string> CheckKey(absl::string_view domain_uuid, absl::string_view channel_id) {
  std::optional<std::string> uuid = CanonicalUuid(domain_uuid);
  if (!uuid.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "domain uuid '", absl::CHexEscape(domain_uuid.substr(0, 64)), "' is not a UUID"));
  }
  absl::Status id = ValidateChannelId(channel_id);
  if (!id.ok()) return id;
  return *std::move(uuid);
}

std::string KeyText(absl::string_view domain_uuid, absl::string_view channel_id) {
  return absl::StrCat("domain ", domain_uuid, " channel ", channel_id);
}

// The current row of `select` (rowid first, then the declaration columns).
StoredRow ReadRow(const SqliteStatement& select) {
  StoredRow row;
  for (size_t i = 0; i < row.size(); ++i) {
    const int column = static_cast<int>(i) + 1;
    StoredValue& value = row[i];
    switch (select.ColumnType(column)) {
      case SQLITE_INTEGER:
        value.type = StoredValue::Type::kInteger;
        value.integer = select.ColumnInt(column);
        break;
      case SQLITE_FLOAT:
        value.type = StoredValue::Type::kReal;
        value.real = select.ColumnDouble(column);
        break;
      case SQLITE_TEXT:
        value.type = StoredValue::Type::kText;
        value.bytes = select.ColumnBytes(column);
        break;
      case SQLITE_BLOB:
        value.type = StoredValue::Type::kBlob;
        value.bytes = select.ColumnBytes(column);
        break;
      default:
        value.type = StoredValue::Type::kNull;
        break;
    }
  }
  return row;
}

// Binds `row` to parameters ?1..?N of `statement`.
absl::Status BindRow(SqliteStatement* statement, const StoredRow& row) {
  for (size_t i = 0; i < row.size(); ++i) {
    const int index = static_cast<int>(i) + 1;
    const StoredValue& value = row[i];
    absl::Status status;
    switch (value.type) {
      case StoredValue::Type::kNull:
        status = statement->BindNull(index);
        break;
      case StoredValue::Type::kInteger:
        status = statement->BindInt(index, value.integer);
        break;
      case StoredValue::Type::kReal:
        status = statement->BindDouble(index, value.real);
        break;
      case StoredValue::Type::kText:
        status = statement->BindText(index, value.bytes);
        break;
      case StoredValue::Type::kBlob:
        status = statement->BindBlob(index, value.bytes);
        break;
    }
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace

DeclarationStore::DeclarationStore(std::string path, StoreLock lock, SqliteDb db)
    : path_(std::move(path)), lock_(std::move(lock)), db_(std::move(db)) {}

absl::Status DeclarationStore::PrepareStatements() {
  const std::string columns = absl::StrJoin(DeclarationColumnNames(), ", ");
  const std::string select = absl::StrCat("SELECT rowid, ", columns, " FROM declarations");
  std::vector<std::string> params;
  std::vector<std::string> updates;
  for (size_t i = 0; i < kDeclarationColumnCount; ++i) {
    params.push_back(absl::StrCat("?", i + 1));
    if (i != kColumnDomainUuid && i != kColumnChannelId) {
      const char* name = DeclarationColumnNames()[i];
      updates.push_back(absl::StrCat(name, " = excluded.", name));
    }
  }
  const std::pair<SqliteStatement*, std::string> sql[] = {
      {&stmts_.begin, "BEGIN IMMEDIATE"},
      {&stmts_.commit, "COMMIT"},
      {&stmts_.rollback, "ROLLBACK"},
      {&stmts_.next_generation,
       "UPDATE meta SET value = value + 1 WHERE key = 'last_generation' RETURNING value"},
      {&stmts_.select_one, absl::StrCat(select, " WHERE domain_uuid = ?1 AND channel_id = ?2")},
      {&stmts_.select_domain, absl::StrCat(select, " WHERE domain_uuid = ?1 ORDER BY channel_id")},
      {&stmts_.select_all, absl::StrCat(select, " ORDER BY domain_uuid, channel_id")},
      {&stmts_.upsert, absl::StrCat("INSERT INTO declarations (", columns, ") VALUES (",
                                    absl::StrJoin(params, ", "),
                                    ") ON CONFLICT (domain_uuid, channel_id) DO UPDATE SET ",
                                    absl::StrJoin(updates, ", "))},
      {&stmts_.delete_one, "DELETE FROM declarations WHERE domain_uuid = ?1 AND channel_id = ?2"},
  };
  for (const auto& [statement, text] : sql) {
    absl::StatusOr<SqliteStatement> prepared = db_.Prepare(text);
    if (!prepared.ok()) {
      return absl::DataLossError(
          absl::StrCat(path_, " does not hold the tables its schema version says it has (",
                       prepared.status().message(), "); restore it from a backup or move it away"));
    }
    *statement = *std::move(prepared);
  }
  return absl::OkStatus();
}

absl::Status DeclarationStore::CheckContents() {
  SqliteStatement& select = stmts_.select_all;
  ResetOnExit reset(&select);
  int invalid = 0;
  std::vector<std::string> listed;
  int64_t newest_generation = 0;
  while (true) {
    absl::StatusOr<bool> more = select.Step();
    if (!more.ok()) return more.status();
    if (!*more) break;
    const StoredRow row = ReadRow(select);
    absl::StatusOr<ChannelDeclaration> declaration = DecodeDeclarationRow(row);
    if (declaration.ok()) {
      newest_generation = std::max(newest_generation, declaration->generation);
      continue;
    }
    if (++invalid <= kInvalidRowsListed) {
      listed.push_back(absl::StrCat("rowid ", select.ColumnInt(0), " (", DescribeRowKey(row),
                                    "): ", declaration.status().message()));
    }
  }
  if (invalid > 0) {
    return absl::DataLossError(absl::StrCat(
        path_, " holds ", invalid, invalid == 1 ? " invalid declaration" : " invalid declarations",
        "; xenchand will not start rather than drop ", invalid == 1 ? "it" : "them", ": ",
        absl::StrJoin(listed, "; "), invalid > kInvalidRowsListed ? "; ..." : "",
        ". Fix or delete these rows with the sqlite3 tool, or restore the store from a backup"));
  }

  // The counter must be ahead of every generation handed out, or a new
  // change could reuse one and defeat Update's compare-and-set.
  absl::StatusOr<SqliteStatement> counter =
      db_.Prepare("SELECT value FROM meta WHERE key = 'last_generation'");
  if (!counter.ok()) return counter.status();
  absl::StatusOr<bool> row = counter->Step();
  if (!row.ok()) return row.status();
  if (!*row || counter->ColumnType(0) != SQLITE_INTEGER ||
      counter->ColumnInt(0) < newest_generation) {
    return absl::DataLossError(absl::StrCat(
        path_,
        ": the generation counter (meta last_generation) is missing or behind the newest "
        "declaration's generation ",
        newest_generation, "; restore the store from a backup"));
  }
  return absl::OkStatus();
}

absl::Status DeclarationStore::Begin() {
  ResetOnExit reset(&stmts_.begin);
  return stmts_.begin.Run();
}

absl::Status DeclarationStore::Commit() {
  ResetOnExit reset(&stmts_.commit);
  return stmts_.commit.Run();
}

void DeclarationStore::Rollback() {
  if (db_.autocommit()) return;
  ResetOnExit reset(&stmts_.rollback);
  (void)stmts_.rollback.Run();
}

absl::StatusOr<int64_t> DeclarationStore::NextGeneration() {
  SqliteStatement& next = stmts_.next_generation;
  ResetOnExit reset(&next);
  absl::StatusOr<bool> row = next.Step();
  if (!row.ok()) return row.status();
  if (!*row || next.ColumnType(0) != SQLITE_INTEGER || next.ColumnInt(0) <= 0) {
    return absl::DataLossError(
        absl::StrCat(path_, ": the generation counter (meta last_generation) is missing or bad"));
  }
  // SQLite makes the whole change in the first step of a statement with
  // RETURNING, so the reset that ends this use loses nothing.
  return next.ColumnInt(0);
}

absl::Status DeclarationStore::Write(const ChannelDeclaration& declaration) {
  ResetOnExit reset(&stmts_.upsert);
  absl::Status status = BindRow(&stmts_.upsert, EncodeDeclarationRow(declaration));
  if (!status.ok()) return status;
  status = stmts_.upsert.Run();
  if (status.code() == absl::StatusCode::kAlreadyExists) {
    return absl::AlreadyExistsError(
        absl::StrCat("uid ", declaration.uid, " is already declared for another channel"));
  }
  return status;
}

absl::StatusOr<std::optional<ChannelDeclaration>> DeclarationStore::Find(
    const std::string& domain_uuid, absl::string_view channel_id) {
  SqliteStatement& select = stmts_.select_one;
  ResetOnExit reset(&select);
  absl::Status status = select.BindText(1, domain_uuid);
  if (status.ok()) status = select.BindText(2, channel_id);
  if (!status.ok()) return status;
  absl::StatusOr<std::vector<ChannelDeclaration>> found = ReadAll(&select);
  if (!found.ok()) return found.status();
  if (found->empty()) return std::nullopt;
  return std::move(found->front());
}

absl::StatusOr<std::vector<ChannelDeclaration>> DeclarationStore::ReadAll(SqliteStatement* select) {
  ResetOnExit reset(select);
  std::vector<ChannelDeclaration> out;
  while (true) {
    absl::StatusOr<bool> more = select->Step();
    if (!more.ok()) return more.status();
    if (!*more) return out;
    const StoredRow row = ReadRow(*select);
    absl::StatusOr<ChannelDeclaration> declaration = DecodeDeclarationRow(row);
    if (!declaration.ok()) {
      return absl::DataLossError(absl::StrCat(path_, ": declaration rowid ", select->ColumnInt(0),
                                              " (", DescribeRowKey(row),
                                              ") is invalid: ", declaration.status().message()));
    }
    out.push_back(*std::move(declaration));
  }
}

absl::StatusOr<int64_t> DeclarationStore::Put(const ChannelDeclaration& declaration) {
  ChannelDeclaration normal = declaration;
  // Accept UUIDs in any case; ValidateDeclaration then insists on lower case.
  if (std::optional<std::string> uuid = CanonicalUuid(normal.domain_uuid))
    normal.domain_uuid = *uuid;
  if (std::optional<std::string> uid = CanonicalUuid(normal.uid)) normal.uid = *uid;
  absl::Status valid = ValidateDeclaration(normal);
  if (!valid.ok()) return valid;
  MutexLock lock(&mu_);
  absl::Status status = Begin();
  if (!status.ok()) return status;
  absl::StatusOr<int64_t> generation = PutLocked(normal);
  if (generation.ok()) status = Commit();
  if (!generation.ok() || !status.ok()) Rollback();
  if (!status.ok()) return status;
  return generation;
}

absl::StatusOr<int64_t> DeclarationStore::PutLocked(const ChannelDeclaration& declaration) {
  absl::StatusOr<int64_t> generation = NextGeneration();
  if (!generation.ok()) return generation;
  ChannelDeclaration stored = declaration;
  stored.generation = *generation;
  absl::Status status = Write(stored);
  if (!status.ok()) return status;
  return generation;
}

absl::StatusOr<int64_t> DeclarationStore::Update(absl::string_view domain_uuid,
                                                 absl::string_view channel_id,
                                                 int64_t expected_generation,
                                                 const DeclarationUpdate& update) {
  absl::StatusOr<std::string> uuid = CheckKey(domain_uuid, channel_id);
  if (!uuid.ok()) return uuid.status();
  if (!update.config.has_value() && !update.last_devid.has_value() &&
      !update.domain_name.has_value()) {
    return absl::InvalidArgumentError("the update changes nothing");
  }
  MutexLock lock(&mu_);
  absl::Status status = Begin();
  if (!status.ok()) return status;
  absl::StatusOr<int64_t> generation = UpdateLocked(*uuid, channel_id, expected_generation, update);
  if (generation.ok()) status = Commit();
  if (!generation.ok() || !status.ok()) Rollback();
  if (!status.ok()) return status;
  return generation;
}

absl::StatusOr<int64_t> DeclarationStore::UpdateLocked(const std::string& domain_uuid,
                                                       absl::string_view channel_id,
                                                       int64_t expected_generation,
                                                       const DeclarationUpdate& update) {
  absl::StatusOr<std::optional<ChannelDeclaration>> found = Find(domain_uuid, channel_id);
  if (!found.ok()) return found.status();
  if (!found->has_value()) {
    return absl::NotFoundError(
        absl::StrCat("no declaration for ", KeyText(domain_uuid, channel_id)));
  }
  ChannelDeclaration declaration = **std::move(found);
  if (declaration.generation != expected_generation) {
    return absl::AbortedError(absl::StrCat("the declaration for ", KeyText(domain_uuid, channel_id),
                                           " changed: its generation is ", declaration.generation,
                                           ", not ", expected_generation, "; read it again"));
  }
  if (update.config.has_value()) declaration.config = *update.config;
  if (update.last_devid.has_value()) declaration.last_devid = *update.last_devid;
  if (update.domain_name.has_value()) declaration.domain_name = *update.domain_name;
  absl::Status valid = ValidateDeclaration(declaration);
  if (!valid.ok()) return valid;
  return PutLocked(declaration);
}

absl::Status DeclarationStore::Delete(absl::string_view domain_uuid, absl::string_view channel_id,
                                      std::optional<int64_t> expected_generation) {
  absl::StatusOr<std::string> uuid = CheckKey(domain_uuid, channel_id);
  if (!uuid.ok()) return uuid.status();
  MutexLock lock(&mu_);
  absl::Status status = Begin();
  if (!status.ok()) return status;
  status = DeleteLocked(*uuid, channel_id, expected_generation);
  if (status.ok()) status = Commit();
  if (!status.ok()) Rollback();
  return status;
}

absl::Status DeclarationStore::DeleteLocked(const std::string& domain_uuid,
                                            absl::string_view channel_id,
                                            std::optional<int64_t> expected_generation) {
  // Read the row even without a generation to compare: NOT_FOUND, and a
  // damaged row is reported rather than deleted unseen.
  absl::StatusOr<std::optional<ChannelDeclaration>> found = Find(domain_uuid, channel_id);
  if (!found.ok()) return found.status();
  if (!found->has_value()) {
    return absl::NotFoundError(
        absl::StrCat("no declaration for ", KeyText(domain_uuid, channel_id)));
  }
  if (expected_generation.has_value() && (*found)->generation != *expected_generation) {
    return absl::AbortedError(absl::StrCat("the declaration for ", KeyText(domain_uuid, channel_id),
                                           " changed: its generation is ", (*found)->generation,
                                           ", not ", *expected_generation, "; read it again"));
  }
  SqliteStatement& remove = stmts_.delete_one;
  ResetOnExit reset(&remove);
  absl::Status status = remove.BindText(1, domain_uuid);
  if (status.ok()) status = remove.BindText(2, channel_id);
  if (status.ok()) status = remove.Run();
  return status;
}

absl::StatusOr<ChannelDeclaration> DeclarationStore::Get(absl::string_view domain_uuid,
                                                         absl::string_view channel_id) {
  absl::StatusOr<std::string> uuid = CheckKey(domain_uuid, channel_id);
  if (!uuid.ok()) return uuid.status();
  MutexLock lock(&mu_);
  absl::StatusOr<std::optional<ChannelDeclaration>> found = Find(*uuid, channel_id);
  if (!found.ok()) return found.status();
  if (!found->has_value()) {
    return absl::NotFoundError(absl::StrCat("no declaration for ", KeyText(*uuid, channel_id)));
  }
  return **std::move(found);
}

absl::StatusOr<std::vector<ChannelDeclaration>> DeclarationStore::ListForDomain(
    absl::string_view domain_uuid) {
  std::optional<std::string> uuid = CanonicalUuid(domain_uuid);
  if (!uuid.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "domain uuid '", absl::CHexEscape(domain_uuid.substr(0, 64)), "' is not a UUID"));
  }
  MutexLock lock(&mu_);
  ResetOnExit reset(&stmts_.select_domain);
  absl::Status status = stmts_.select_domain.BindText(1, *uuid);
  if (!status.ok()) return status;
  return ReadAll(&stmts_.select_domain);
}

absl::StatusOr<std::vector<ChannelDeclaration>> DeclarationStore::ListAll() {
  MutexLock lock(&mu_);
  return ReadAll(&stmts_.select_all);
}

}  // namespace xenchan
