// DeclarationStore: xenchand's crash-safe store of durable channel
// declarations (DESIGN §3 "Lifetime", issue 12 item 3), one SQLite file in
// xenchand's state directory. Not wired into the engine yet: the API for
// durable channels comes next.
//
// Durability: a call that changes something returns only once the change is
// on stable storage, and a crash (kill -9, power loss, dom0 reboot) at any
// point leaves either the old or the new state, never a mix. Every change is
// one SQLite transaction (BEGIN IMMEDIATE ... COMMIT) in WAL mode with
// synchronous=FULL. Chosen over a rollback journal (also safe with FULL)
// because a WAL commit is one sequential append and one fsync, where the
// rollback journal needs several fsyncs and rewrites pages in place, and
// because readers (an operator's `sqlite3` on the file) never block
// xenchand's writes. FULL rather than NORMAL: in WAL mode NORMAL skips the
// fsync at commit, so a power loss could undo a change we had already
// reported. WAL needs a local file system (it shares memory between
// connections through "<store>-shm"); xenchand's state directory is. When
// Open creates the file it also fsyncs the directory, so the new file itself
// survives a power loss.
//
// One user: Open takes an exclusive lock on "<store>.lock" (StoreLock,
// store_lock.h) and holds it until the store is destroyed, so a second
// xenchand (or a second Open in the same process) is refused at once with
// FAILED_PRECONDITION instead of waiting on SQLite's locks. SQLite's
// busy_timeout (kBusyTimeout) only covers brief locks a reader may take.
//
// Schema: versioned, with migrations (schema.h). A file from a newer xenchand
// is refused (FAILED_PRECONDITION naming both versions); an older one is
// upgraded in one transaction.
//
// Hostile storage: the file is read as untrusted. Open refuses, with a
// start-up error naming the path, a file that is not an SQLite database, is
// corrupt or fails `PRAGMA integrity_check` (DATA_LOSS), or belongs to
// another application (FAILED_PRECONDITION). It then decodes and validates
// every row (declaration_row.h): if any row is invalid, Open fails with
// DATA_LOSS saying how many and which (rowid and key, the first ten).
// Refusing to start rather than opening without the bad rows is deliberate:
// a store that opened would re-create every other channel and quietly never
// re-create the damaged one, which is the silent loss of a declaration that
// the issue forbids; an operator fixes or deletes the row (the message says
// which) with the `sqlite3` tool and restarts. Reads re-validate: a row that
// goes bad later fails the call that reads it with DATA_LOSS.
//
// Thread safety: thread-safe; calls are serialised by one mutex. Every call
// blocks on file I/O (a change waits for its fsync), so the engine must not
// call it from a thread that may not block.
#ifndef XENCHAN_BACKEND_STORE_DECLARATION_STORE_H_
#define XENCHAN_BACKEND_STORE_DECLARATION_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "backend/store/declaration.h"
#include "backend/store/declaration_row.h"
#include "backend/store/schema.h"
#include "backend/store/sqlite.h"
#include "backend/store/store_lock.h"
#include "backend/util/mutex.h"

namespace xenchan {

// What DeclarationStore::Update changes; unset fields stay as they are.
struct DeclarationUpdate {
  std::optional<DeclaredChannelConfig> config;
  std::optional<uint32_t> last_devid;  // 1..kMaxDevid
  std::optional<std::string> domain_name;
};

class DeclarationStore {
 public:
  // How long a statement waits for a lock another connection holds briefly.
  static constexpr absl::Duration kBusyTimeout = absl::Seconds(5);
  // How many invalid rows Open's error lists by key.
  static constexpr int kInvalidRowsListed = 10;

  // Opens the store at `path`, creating the file (and its missing parent
  // directories, mode 0700) or upgrading an older schema; see the file
  // comment for every check. Errors: FAILED_PRECONDITION if another process
  // holds the store, if the file belongs to another application or has a
  // newer schema; DATA_LOSS if it is unreadable, corrupt or holds invalid
  // rows; INVALID_ARGUMENT for an empty path; file system errors through the
  // shared errno table. Every message names the path.
  static absl::StatusOr<std::unique_ptr<DeclarationStore>> Open(const std::string& path);
  // As Open, with `schema` in place of DeclarationSchema(): tests use it to
  // exercise upgrades and refusals with schemas of their own.
  static absl::StatusOr<std::unique_ptr<DeclarationStore>> Open(
      const std::string& path, absl::Span<const MigrationStep> schema);

  DeclarationStore(const DeclarationStore&) = delete;
  DeclarationStore& operator=(const DeclarationStore&) = delete;

  // Declares `declaration`, replacing any declaration of the same (domain,
  // channel) whatever its generation. UUIDs may come in any case and are
  // stored in lower case; `generation` is ignored. Returns the new
  // generation. INVALID_ARGUMENT if ValidateDeclaration refuses it;
  // ALREADY_EXISTS if another declaration has the same uid.
  absl::StatusOr<int64_t> Put(const ChannelDeclaration& declaration);

  // Changes the declaration of (`domain_uuid`, `channel_id`) if its
  // generation is still `expected_generation` (compare-and-set: a writer
  // that read an older version cannot overwrite a newer change). Returns the
  // new generation. ABORTED (naming both generations) if it moved; NOT_FOUND
  // if there is no such declaration; INVALID_ARGUMENT for a bad key, an
  // empty update, or values ValidateDeclaration refuses.
  absl::StatusOr<int64_t> Update(absl::string_view domain_uuid, absl::string_view channel_id,
                                 int64_t expected_generation, const DeclarationUpdate& update);

  // Removes the declaration of (`domain_uuid`, `channel_id`); with
  // `expected_generation`, only if that is still its generation (ABORTED if
  // not). NOT_FOUND if there is none; INVALID_ARGUMENT for a bad key.
  absl::Status Delete(absl::string_view domain_uuid, absl::string_view channel_id,
                      std::optional<int64_t> expected_generation = std::nullopt);

  // The declaration of (`domain_uuid`, `channel_id`). NOT_FOUND if there is
  // none; INVALID_ARGUMENT for a bad key; DATA_LOSS if its row is invalid.
  absl::StatusOr<ChannelDeclaration> Get(absl::string_view domain_uuid,
                                         absl::string_view channel_id);

  // The declarations of one domain, by channel id; empty if it has none.
  // INVALID_ARGUMENT if `domain_uuid` is not a UUID; DATA_LOSS if a row is
  // invalid.
  absl::StatusOr<std::vector<ChannelDeclaration>> ListForDomain(absl::string_view domain_uuid);

  // Every declaration, by domain UUID and channel id. DATA_LOSS if a row is
  // invalid.
  absl::StatusOr<std::vector<ChannelDeclaration>> ListAll();

  const std::string& path() const { return path_; }

 private:
  // The prepared statements, made once at Open.
  struct Statements {
    SqliteStatement begin;
    SqliteStatement commit;
    SqliteStatement rollback;
    SqliteStatement next_generation;
    SqliteStatement select_one;
    SqliteStatement select_domain;
    SqliteStatement select_all;
    SqliteStatement upsert;
    SqliteStatement delete_one;
  };

  DeclarationStore(std::string path, StoreLock lock, SqliteDb db);

  // Prepares the statements; DATA_LOSS if the file's tables are not what
  // its schema version says.
  absl::Status PrepareStatements() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Open's last check: every row valid, and the generation counter ahead of
  // every row's generation.
  absl::Status CheckContents() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Transactions: Begin, then Commit; Rollback after a failure (a no-op
  // when SQLite already ended the transaction).
  absl::Status Begin() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Commit() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Rollback() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The next value of the store-wide generation counter (in the open
  // transaction).
  absl::StatusOr<int64_t> NextGeneration() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Inserts or replaces `declaration` as it is.
  absl::Status Write(const ChannelDeclaration& declaration) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The declaration of a key (already validated), nullopt if none.
  absl::StatusOr<std::optional<ChannelDeclaration>> Find(const std::string& domain_uuid,
                                                         absl::string_view channel_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every row `select` returns, decoded; DATA_LOSS at the first invalid one.
  absl::StatusOr<std::vector<ChannelDeclaration>> ReadAll(SqliteStatement* select)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The rest of Put, Update and Delete, inside the transaction.
  absl::StatusOr<int64_t> PutLocked(const ChannelDeclaration& declaration)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int64_t> UpdateLocked(const std::string& domain_uuid, absl::string_view channel_id,
                                       int64_t expected_generation, const DeclarationUpdate& update)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DeleteLocked(const std::string& domain_uuid, absl::string_view channel_id,
                            std::optional<int64_t> expected_generation)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const StoreLock lock_;
  Mutex mu_;
  // Declared before stmts_, so that the statements are finalized first.
  SqliteDb db_ ABSL_GUARDED_BY(mu_);
  Statements stmts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_STORE_DECLARATION_STORE_H_
