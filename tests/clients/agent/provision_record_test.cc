// Unit tests of the agent's provisioned record: spec_id validation, the
// record's JSON round trip, and hostile record files (malformed, extra
// members, bad ids or times, oversize, a symlink) read back as absent.
#include "clients/agent/provision_record.h"

#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/common/files.h"

namespace xenchan {
namespace agent {
namespace {

TEST(ProvisionRecordTest, SpecIdsArePrintableBoundedAscii) {
  EXPECT_TRUE(IsValidSpecId("a"));
  EXPECT_TRUE(IsValidSpecId("sha256:0123abcd"));
  EXPECT_TRUE(IsValidSpecId(std::string(kMaxSpecIdBytes, 'x')));
  EXPECT_TRUE(IsValidSpecId("!~\"{}\\"));
  EXPECT_FALSE(IsValidSpecId(""));
  EXPECT_FALSE(IsValidSpecId(std::string(kMaxSpecIdBytes + 1, 'x')));
  EXPECT_FALSE(IsValidSpecId("a b"));
  EXPECT_FALSE(IsValidSpecId("a\nb"));
  EXPECT_FALSE(IsValidSpecId(std::string("a\0b", 3)));
  EXPECT_FALSE(IsValidSpecId("\x7f"));
  EXPECT_FALSE(IsValidSpecId("caf\xc3\xa9"));
}

TEST(ProvisionRecordTest, TimeFormatAndRoundTrip) {
  const absl::Time t = absl::FromUnixSeconds(1714564800);  // 2024-05-01 12:00:00 UTC
  EXPECT_EQ(FormatRecordTime(t), "2024-05-01T12:00:00Z");
  const ProvisionRecord r{"d1", FormatRecordTime(t)};
  EXPECT_EQ(json::Serialize(RecordToJson(r)), R"({"spec_id":"d1","at":"2024-05-01T12:00:00Z"})");
  absl::StatusOr<ProvisionRecord> back = ParseProvisionRecord(json::Serialize(RecordToJson(r)));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->spec_id, "d1");
  EXPECT_EQ(back->at, "2024-05-01T12:00:00Z");
}

TEST(ProvisionRecordTest, HostileRecordsAreRefused) {
  for (const std::string& bad : {
           std::string(""),
           std::string("not json"),
           std::string(R"(["d1","2024-05-01T12:00:00Z"])"),
           std::string(R"({"spec_id":"d1"})"),
           std::string(R"({"spec_id":"d1","at":"2024-05-01T12:00:00Z","extra":1})"),
           std::string(R"({"spec_id":"d 1","at":"2024-05-01T12:00:00Z"})"),
           std::string(R"({"spec_id":"","at":"2024-05-01T12:00:00Z"})"),
           std::string(R"({"spec_id":7,"at":"2024-05-01T12:00:00Z"})"),
           std::string(R"({"spec_id":"d1","at":"yesterday"})"),
           std::string(R"({"spec_id":"d1","at":"2024-05-01T12:00:00+02:00"})"),
           std::string(R"({"spec_id":"d1","at":12})"),
           R"({"spec_id":")" + std::string(kMaxSpecIdBytes + 1, 'x') +
               R"(","at":"2024-05-01T12:00:00Z"})",
           R"({"spec_id":"d1","at":"2024-05-01T12:00:00Z"})" +
               std::string(kMaxProvisionRecordBytes, ' '),
       }) {
    EXPECT_FALSE(ParseProvisionRecord(bad).ok()) << bad;
  }
}

class ProvisionRecordFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = testcommon::MakeTempDir("record");
    ASSERT_FALSE(base_.empty());
    dir_ = base_ + "/root";
    ASSERT_EQ(mkdir(dir_.c_str(), 0755), 0);
    auto root = TargetRoot::Open(dir_);
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = *std::move(root);
  }
  void TearDown() override { testcommon::RemoveTree(base_); }

  std::string base_, dir_;
  std::unique_ptr<TargetRoot> root_;
};

TEST_F(ProvisionRecordFileTest, WriteReadClear) {
  EXPECT_FALSE(ReadProvisionRecord(*root_).has_value());
  EXPECT_TRUE(ClearProvisionRecord(*root_).ok());  // none: fine
  ASSERT_TRUE(WriteProvisionRecord(*root_, {"spec-1", "2024-05-01T12:00:00Z"}).ok());
  EXPECT_EQ(testcommon::ReadFileOrEmpty(dir_ + kProvisionRecordPath),
            "{\"spec_id\":\"spec-1\",\"at\":\"2024-05-01T12:00:00Z\"}\n");
  std::optional<ProvisionRecord> r = ReadProvisionRecord(*root_);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->spec_id, "spec-1");
  ASSERT_TRUE(ClearProvisionRecord(*root_).ok());
  EXPECT_FALSE(ReadProvisionRecord(*root_).has_value());
}

TEST_F(ProvisionRecordFileTest, TamperedOrLinkedRecordReadsAsAbsent) {
  ASSERT_TRUE(WriteProvisionRecord(*root_, {"spec-1", "2024-05-01T12:00:00Z"}).ok());
  ASSERT_TRUE(testcommon::WriteFileAtomically(dir_ + kProvisionRecordPath, "{\"spec_id\":"));
  EXPECT_FALSE(ReadProvisionRecord(*root_).has_value());
  // A symlink pointing at a valid record elsewhere is not followed.
  const std::string elsewhere = base_ + "/elsewhere.json";
  ASSERT_TRUE(testcommon::WriteFileAtomically(
      elsewhere, R"({"spec_id":"forged","at":"2024-05-01T12:00:00Z"})"));
  ASSERT_EQ(unlink((dir_ + kProvisionRecordPath).c_str()), 0);
  ASSERT_EQ(symlink(elsewhere.c_str(), (dir_ + kProvisionRecordPath).c_str()), 0);
  EXPECT_FALSE(ReadProvisionRecord(*root_).has_value());
  // Clearing removes the link, not what it points to.
  ASSERT_TRUE(ClearProvisionRecord(*root_).ok());
  EXPECT_FALSE(testcommon::ReadFileOrEmpty(elsewhere).empty());
}

}  // namespace
}  // namespace agent
}  // namespace xenchan
