// What DeclarationStore::Open accepts and refuses: the file it creates, the
// files it must refuse with a clear start-up error naming the path (not a
// database, a corrupt page, another application's database, a newer
// schema, invalid rows, a counter behind the rows, missing tables) without
// changing them, and the migration machinery (an upgrade that keeps the
// rows, a failing step that leaves the file as it was, a bad step list).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "backend/store/declaration_store.h"
#include "backend/store/schema.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"
#include "tests/store/store_test_util.h"

namespace xenchan {
namespace {

using storetest::DomainUuid;
using storetest::RawExec;
using storetest::RawQueryInt;
using storetest::RawQueryText;
using storetest::SampleDeclaration;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// The schema version this build writes.
int64_t Current() { return DeclarationSchema().back().to_version; }

// A version after this build's: a column added and filled from the old rows.
std::vector<MigrationStep> SchemaNext() {
  std::vector<MigrationStep> steps = DeclarationSchema();
  steps.push_back({Current() + 1,
                   "ALTER TABLE declarations ADD COLUMN note TEXT NOT NULL DEFAULT '';"
                   "UPDATE declarations SET note = 'from before ' || channel_id;"});
  return steps;
}

// Only version 1, as the first xenchand with a store wrote it.
std::vector<MigrationStep> SchemaV1() { return {DeclarationSchema().front()}; }

class StoreOpenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = storetest::NewStorePath("store_open");
    ASSERT_FALSE(path_.empty());
  }

  // Opens the store, puts sample declarations on domain 1 for each of
  // `channels`, and closes it again.
  void Fill(const std::vector<std::string>& channels) {
    absl::StatusOr<std::unique_ptr<DeclarationStore>> store = DeclarationStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    int variant = 0;
    for (const std::string& channel : channels) {
      ASSERT_TRUE((*store)->Put(SampleDeclaration(1, channel, variant++)).ok());
    }
  }

  std::vector<ChannelDeclaration> ListAll() {
    absl::StatusOr<std::unique_ptr<DeclarationStore>> store = DeclarationStore::Open(path_);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return {};
    return (*store)->ListAll().value();
  }

  // Opens with `schema` and expects `code` with a message naming the path.
  absl::Status ExpectRefused(absl::StatusCode code,
                             absl::Span<const MigrationStep> schema = DeclarationSchema()) {
    absl::StatusOr<std::unique_ptr<DeclarationStore>> store = DeclarationStore::Open(path_, schema);
    EXPECT_FALSE(store.ok());
    if (store.ok()) return absl::OkStatus();
    EXPECT_EQ(store.status().code(), code) << store.status();
    EXPECT_THAT(store.status().message(), HasSubstr(path_));
    return store.status();
  }

  std::string path_;
};

TEST_F(StoreOpenTest, ANewFileIsAVersionedWalDatabaseWithXenchansId) {
  Fill({});
  EXPECT_EQ(RawQueryInt(path_, "PRAGMA user_version").value(), Current());
  EXPECT_EQ(RawQueryInt(path_, "PRAGMA application_id").value(), kDeclarationStoreApplicationId);
  EXPECT_EQ(RawQueryText(path_, "PRAGMA journal_mode").value(), "wal");
}

TEST_F(StoreOpenTest, AnEmptyFileBecomesAStore) {
  ASSERT_TRUE(DeclarationStore::Open(path_).ok());  // makes the directory
  ASSERT_EQ(unlink(path_.c_str()), 0);
  ASSERT_TRUE(testcommon::WriteFileAtomically(path_, ""));
  Fill({"a"});
  EXPECT_EQ(ListAll().size(), 1u);
}

TEST_F(StoreOpenTest, AFileThatIsNotADatabaseIsRefusedAndLeftAlone) {
  ASSERT_TRUE(DeclarationStore::Open(path_).ok());
  std::string garbage;
  while (garbage.size() < 8192) garbage += "this is not an SQLite database\n";
  ASSERT_TRUE(testcommon::WriteFileAtomically(path_, garbage));
  absl::Status status = ExpectRefused(absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("cannot be read as a declaration store"));
  EXPECT_EQ(testcommon::ReadFileOrEmpty(path_), garbage);
}

TEST_F(StoreOpenTest, ACorruptPageIsRefused) {
  Fill({"a", "b", "c"});
  const int64_t page_size = RawQueryInt(path_, "PRAGMA page_size").value();
  const int64_t root =
      RawQueryInt(path_, "SELECT rootpage FROM sqlite_schema WHERE name = 'declarations'").value();
  // The store checkpointed and removed its write-ahead log when it closed,
  // so every row is in the main file.
  ASSERT_NE(access((path_ + "-wal").c_str(), F_OK), 0);
  const int fd = open(path_.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const std::string scribble(64, '\x5a');
  ASSERT_EQ(pwrite(fd, scribble.data(), scribble.size(), (root - 1) * page_size),
            static_cast<ssize_t>(scribble.size()));
  close(fd);
  (void)ExpectRefused(absl::StatusCode::kDataLoss);
}

TEST_F(StoreOpenTest, ATruncatedFileIsRefused) {
  Fill({"a", "b", "c"});
  const int64_t page_size = RawQueryInt(path_, "PRAGMA page_size").value();
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  ASSERT_GT(st.st_size, 2 * page_size);
  ASSERT_EQ(truncate(path_.c_str(), 2 * page_size), 0);
  (void)ExpectRefused(absl::StatusCode::kDataLoss);
}

TEST_F(StoreOpenTest, AnotherApplicationsDatabaseIsRefused) {
  ASSERT_TRUE(DeclarationStore::Open(path_).ok());
  ASSERT_EQ(unlink(path_.c_str()), 0);
  // Tables but no application id.
  ASSERT_TRUE(testcommon::WriteFileAtomically(path_, ""));
  ASSERT_TRUE(RawExec(path_, "CREATE TABLE accounts (name TEXT)").ok());
  absl::Status status = ExpectRefused(absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("not a xenchan declaration store (application_id 0"));
  // Another application's id, even with nothing in it.
  ASSERT_TRUE(RawExec(path_, "DROP TABLE accounts; PRAGMA application_id = 42").ok());
  status = ExpectRefused(absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("application_id 42"));
  EXPECT_EQ(RawQueryInt(path_, "PRAGMA user_version").value(), 0);  // untouched
}

TEST_F(StoreOpenTest, ANewerSchemaIsRefusedNamingBothVersions) {
  Fill({"a"});
  ASSERT_TRUE(RawExec(path_, "PRAGMA user_version = 7").ok());
  absl::Status status = ExpectRefused(absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(),
              HasSubstr(absl::StrCat("schema version 7, newer than the newest this "
                                     "xenchand knows (",
                                     Current(), ")")));
  EXPECT_EQ(RawQueryInt(path_, "PRAGMA user_version").value(), 7);
  // The refusal released the lock: the next attempt meets the same refusal.
  status = ExpectRefused(absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), Not(HasSubstr("in use")));
}

TEST_F(StoreOpenTest, InvalidRowsAreRefusedListingEach) {
  Fill({"good1", "bad1", "good2", "bad2", "bad3"});
  ASSERT_TRUE(RawExec(path_,
                      "UPDATE declarations SET buffer_limit_bytes = 1 WHERE channel_id = 'bad1';"
                      "UPDATE declarations SET uid = upper(uid) WHERE channel_id = 'bad2';"
                      "UPDATE declarations SET default_framing = 'smoke signals' "
                      "  WHERE channel_id = 'bad3';")
                  .ok());
  absl::Status status = ExpectRefused(absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr("holds 3 invalid declarations"), HasSubstr("channel 'bad1'"),
                    HasSubstr("buffer_limit_bytes: 1 is outside"), HasSubstr("channel 'bad2'"),
                    HasSubstr("uid is not in lower case"), HasSubstr("channel 'bad3'"),
                    HasSubstr("default_framing"), HasSubstr("rowid "), HasSubstr(DomainUuid(1)),
                    Not(HasSubstr("channel 'good"))));
}

TEST_F(StoreOpenTest, ManyInvalidRowsAreCountedAndTheFirstTenListed) {
  std::vector<std::string> channels;
  for (int i = 0; i < 12; ++i) channels.push_back(absl::StrCat("c", i));
  Fill(channels);
  ASSERT_TRUE(RawExec(path_, "UPDATE declarations SET last_devid = 0").ok());
  absl::Status status = ExpectRefused(absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("holds 12 invalid declarations"), HasSubstr("; ...")));
}

TEST_F(StoreOpenTest, ACounterBehindTheRowsIsRefused) {
  Fill({"a", "b", "c"});
  ASSERT_TRUE(RawExec(path_, "UPDATE meta SET value = 1 WHERE key = 'last_generation'").ok());
  absl::Status status = ExpectRefused(absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("generation counter"));
  ASSERT_TRUE(RawExec(path_, "DELETE FROM meta").ok());
  (void)ExpectRefused(absl::StatusCode::kDataLoss);
}

TEST_F(StoreOpenTest, MissingTablesAreRefused) {
  Fill({"a"});
  ASSERT_TRUE(RawExec(path_, "DROP TABLE declarations").ok());
  absl::Status status = ExpectRefused(absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("does not hold the tables"));
}

TEST_F(StoreOpenTest, AnUpgradeKeepsEveryRow) {
  Fill({"a", "b", "c"});
  const std::vector<ChannelDeclaration> before = ListAll();
  ASSERT_EQ(before.size(), 3u);
  const std::vector<MigrationStep> next = SchemaNext();
  {
    absl::StatusOr<std::unique_ptr<DeclarationStore>> store = DeclarationStore::Open(path_, next);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ((*store)->ListAll().value(), before);
    EXPECT_TRUE((*store)->Put(SampleDeclaration(2, "d")).ok());  // works on the new shape
  }
  EXPECT_EQ(RawQueryInt(path_, "PRAGMA user_version").value(), Current() + 1);
  EXPECT_EQ(RawQueryText(path_, "SELECT note FROM declarations WHERE channel_id = 'b'").value(),
            "from before b");
  // This build refuses the upgraded file.
  absl::Status status = ExpectRefused(absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(
      status.message(),
      HasSubstr(absl::StrCat("schema version ", Current() + 1,
                             ", newer than the newest this xenchand knows (", Current(), ")")));
}

TEST_F(StoreOpenTest, AVersion1FileGainsTheDomainNameColumn) {
  // A file as the first xenchand with a store left it: version 1, one row.
  // (An empty file is a valid empty SQLite database.)
  ASSERT_EQ(mkdir(path_.substr(0, path_.rfind('/')).c_str(), 0700), 0);
  ASSERT_TRUE(testcommon::WriteFileAtomically(path_, ""));
  ASSERT_TRUE(
      RawExec(path_, absl::StrCat(SchemaV1().front().sql, "PRAGMA user_version = 1; ",
                                  "PRAGMA application_id = ", kDeclarationStoreApplicationId))
          .ok());
  ASSERT_TRUE(RawExec(path_,
                      "INSERT INTO declarations (domain_uuid, channel_id, uid, buffer_limit_bytes, "
                      "overflow_policy, write_queue_limit_bytes, default_framing, last_devid, "
                      "create_time_unix_nanos, generation) VALUES ('" +
                          storetest::DomainUuid(1) +
                          "', 'a', '0b8f5c2e-1d3a-4e5f-8a9b-0c1d2e3f4a5b', 1048576, 'BLOCK', "
                          "262144, 'newline', 3, 1000, 1); "
                          "UPDATE meta SET value = 1 WHERE key = 'last_generation'")
                  .ok());
  absl::StatusOr<std::unique_ptr<DeclarationStore>> store = DeclarationStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(RawQueryInt(path_, "PRAGMA user_version").value(), 2);
  absl::StatusOr<ChannelDeclaration> a = (*store)->Get(storetest::DomainUuid(1), "a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->domain_name, "");
  EXPECT_EQ(a->last_devid, 3u);
  DeclarationUpdate named;
  named.domain_name = "web-01";
  ASSERT_TRUE((*store)->Update(storetest::DomainUuid(1), "a", a->generation, named).ok());
  EXPECT_EQ((*store)->Get(storetest::DomainUuid(1), "a")->domain_name, "web-01");
}

TEST_F(StoreOpenTest, ANewFileTakesEveryStepAtOnce) {
  ASSERT_TRUE(DeclarationStore::Open(path_, SchemaNext()).ok());
  EXPECT_EQ(RawQueryInt(path_, "PRAGMA user_version").value(), Current() + 1);
  EXPECT_EQ(RawQueryInt(path_,
                        "SELECT count(*) FROM pragma_table_info('declarations') "
                        "WHERE name = 'note'")
                .value(),
            1);
}

TEST_F(StoreOpenTest, AFailingStepLeavesTheFileAsItWas) {
  Fill({"a", "b"});
  const std::vector<ChannelDeclaration> before = ListAll();
  std::vector<MigrationStep> broken = DeclarationSchema();
  broken.push_back({Current() + 1,
                    "ALTER TABLE declarations ADD COLUMN note TEXT;"
                    "UPDATE declarations SET note = no_such_function(channel_id);"});
  absl::Status status = ExpectRefused(absl::StatusCode::kInternal, broken);
  EXPECT_THAT(status.message(), HasSubstr(absl::StrCat("migrate the schema to version ",
                                                       Current() + 1, " (from ", Current(), ")")));
  EXPECT_EQ(RawQueryInt(path_, "PRAGMA user_version").value(), Current());
  EXPECT_EQ(RawQueryInt(path_,
                        "SELECT count(*) FROM pragma_table_info('declarations') "
                        "WHERE name = 'note'")
                .value(),
            0);
  EXPECT_EQ(ListAll(), before);
}

TEST_F(StoreOpenTest, AMisnumberedStepListIsABug) {
  std::vector<MigrationStep> skipped = DeclarationSchema();
  skipped.push_back({Current() + 2, "SELECT 1"});
  EXPECT_EQ(DeclarationStore::Open(path_, skipped).status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(DeclarationStore::Open(path_, {}).status().code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(ValidateMigrationSteps(SchemaNext()).ok());
}

}  // namespace
}  // namespace xenchan
