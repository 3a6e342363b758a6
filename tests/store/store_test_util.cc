// Helpers for the declaration store's tests; see store_test_util.h.
#include "tests/store/store_test_util.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "backend/util/uuid.h"
#include "tests/common/files.h"

namespace xenchan {
namespace storetest {
namespace {

// A connection of its own to `path`, closed when it goes out of scope.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    rc_ = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  absl::Status status() const {
    if (rc_ == SQLITE_OK) return absl::OkStatus();
    return Error(rc_);
  }
  absl::Status Error(int rc) const {
    return absl::InternalError(
        absl::StrCat(db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc), " (", rc, ")"));
  }
  sqlite3* get() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
  int rc_ = SQLITE_OK;
};

// Prepares `sql` and steps to its first row; nullptr on failure (`*status` says why).
sqlite3_stmt* FirstRow(const RawDb& db, const std::string& sql, absl::Status* status) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db.get(), sql.c_str(), -1, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    *status = db.Error(rc);
    return nullptr;
  }
  rc = sqlite3_step(stmt);
  if (rc != SQLITE_ROW) {
    *status = rc == SQLITE_DONE ? absl::NotFoundError(absl::StrCat("no row: ", sql)) : db.Error(rc);
    sqlite3_finalize(stmt);
    return nullptr;
  }
  return stmt;
}

}  // namespace

std::string NewStorePath(const std::string& prefix) {
  const std::string dir = testcommon::MakeTempDir(prefix);
  if (dir.empty()) return "";
  return absl::StrCat(dir, "/state/declarations.db");
}

std::string DomainUuid(int domain) { return StableUuid(absl::StrCat("test-domain-", domain)); }

ChannelDeclaration SampleDeclaration(int domain, absl::string_view channel_id, int variant) {
  ChannelDeclaration d;
  d.domain_uuid = DomainUuid(domain);
  d.channel_id = std::string(channel_id);
  d.uid = StableUuid(absl::StrCat("test-channel-", domain, "/", channel_id));
  const bool odd = variant % 2 != 0;
  d.config.buffer_limit_bytes = kMinBufferLimitBytes + 4096 * static_cast<uint64_t>(variant);
  d.config.overflow =
      odd ? DeclaredChannelConfig::Overflow::kDropOldest : DeclaredChannelConfig::Overflow::kBlock;
  d.config.write_queue_limit_bytes =
      kMinWriteQueueLimitBytes + 1024 * static_cast<uint64_t>(variant);
  d.config.default_framing = odd ? "delimiter:0d0a" : "qemu-guest-agent";
  d.last_devid = 1 + static_cast<uint32_t>(variant) % kMaxDevid;
  d.create_time = absl::FromUnixSeconds(1700000000 + domain) + absl::Nanoseconds(variant + 1);
  return d;
}

absl::Status RawExec(const std::string& path, const std::string& sql) {
  RawDb db(path);
  if (!db.status().ok()) return db.status();
  const int rc = sqlite3_exec(db.get(), sql.c_str(), nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? absl::OkStatus() : db.Error(rc);
}

absl::StatusOr<int64_t> RawQueryInt(const std::string& path, const std::string& sql) {
  RawDb db(path);
  if (!db.status().ok()) return db.status();
  absl::Status status;
  sqlite3_stmt* stmt = FirstRow(db, sql, &status);
  if (stmt == nullptr) return status;
  const int64_t value = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  return value;
}

absl::StatusOr<std::string> RawQueryText(const std::string& path, const std::string& sql) {
  RawDb db(path);
  if (!db.status().ok()) return db.status();
  absl::Status status;
  sqlite3_stmt* stmt = FirstRow(db, sql, &status);
  if (stmt == nullptr) return status;
  const unsigned char* text = sqlite3_column_text(stmt, 0);
  std::string value = text != nullptr ? reinterpret_cast<const char*>(text) : "";
  sqlite3_finalize(stmt);
  return value;
}

}  // namespace storetest

void PrintTo(const ChannelDeclaration& d, std::ostream* os) {
  *os << "{" << d.domain_uuid << "/" << d.channel_id << " uid " << d.uid << " buffer "
      << d.config.buffer_limit_bytes << " " << OverflowName(d.config.overflow) << " queue "
      << d.config.write_queue_limit_bytes << " framing " << d.config.default_framing << " devid "
      << (d.last_devid.has_value() ? absl::StrCat(*d.last_devid) : "none") << " created "
      << absl::FormatTime(d.create_time) << " generation " << d.generation << "}";
}

}  // namespace xenchan
