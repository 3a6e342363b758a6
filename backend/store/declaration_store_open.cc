// Opening the declaration store: the directory, the exclusive lock, the
// file's identity and health, WAL with synchronous=FULL, the schema
// migration; then the store checks its rows (CheckContents, in
// declaration_store.cc). See declaration_store.h.
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "backend/store/declaration_store.h"
#include "backend/util/errno_status.h"
#include "backend/util/make_dirs.h"

namespace xenchan {
namespace {

// The directory part of `path`: "" for a bare file name, "/" for a file at
// the root.
std::string DirName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return "";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// fsync(2) of a directory, so that a file just created in it survives a
// power loss (SQLite syncs the directory for its journals, not for the
// database file it creates).
absl::Status SyncDirectory(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", dir));
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  if (rc != 0) return ErrnoToStatus(err, absl::StrCat("fsync ", dir));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<DeclarationStore>> DeclarationStore::Open(const std::string& path) {
  return Open(path, DeclarationSchema());
}

absl::StatusOr<std::unique_ptr<DeclarationStore>> DeclarationStore::Open(
    const std::string& path, absl::Span<const MigrationStep> schema) {
  if (path.empty()) return absl::InvalidArgumentError("the declaration store's path is empty");
  absl::Status status = ValidateMigrationSteps(schema);
  if (!status.ok()) return status;
  const std::string dir = DirName(path);
  if (!dir.empty()) {
    status = MakeDirs(dir, 0700);
    if (!status.ok()) return status;
  }
  // Lock before SQLite touches the file: a second xenchand reads nothing.
  absl::StatusOr<StoreLock> lock = StoreLock::Acquire(path);
  if (!lock.ok()) return lock.status();
  absl::StatusOr<SqliteDb> db = SqliteDb::Open(path, kBusyTimeout);
  if (!db.ok()) return db.status();

  // Nothing is written before the file has passed these checks: a file that
  // is refused stays exactly as it was.
  absl::StatusOr<StoreFileState> state = CheckStoreFile(&*db, schema.back().to_version);
  if (!state.ok()) return state.status();

  absl::StatusOr<std::string> mode = db->QueryText("PRAGMA journal_mode = WAL");
  if (!mode.ok()) return mode.status();
  if (absl::AsciiStrToLower(*mode) != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": SQLite would not use write-ahead logging (journal mode ", *mode,
                     "); the declaration store must be a file on a local file system"));
  }
  status = db->Exec("PRAGMA synchronous = FULL", "set synchronous=FULL");
  if (!status.ok()) return status;
  absl::StatusOr<int64_t> synchronous = db->QueryInt("PRAGMA synchronous");
  if (!synchronous.ok()) return synchronous.status();
  if (*synchronous != 2) {
    return absl::InternalError(absl::StrCat(path, ": synchronous is ", *synchronous, ", not FULL"));
  }

  status = MigrateSchema(&*db, schema, state->version);
  if (!status.ok()) return status;
  status = SyncDirectory(dir.empty() ? "." : dir);
  if (!status.ok()) return status;

  std::unique_ptr<DeclarationStore> store(
      new DeclarationStore(path, *std::move(lock), *std::move(db)));
  {
    MutexLock hold(&store->mu_);
    status = store->PrepareStatements();
    if (status.ok()) status = store->CheckContents();
  }
  if (!status.ok()) return status;
  return store;
}

}  // namespace xenchan
