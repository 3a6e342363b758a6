// The declaration record's validation and its row format: what may be
// stored, and that any value read back that no valid declaration has is
// refused with DATA_LOSS naming the column.
#include "backend/store/declaration.h"

#include <string>

#include "absl/status/status.h"
#include "backend/store/declaration_row.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/store/store_test_util.h"

namespace xenchan {
namespace {

using storetest::SampleDeclaration;
using ::testing::HasSubstr;

TEST(ValidateDeclarationTest, SamplesAreValid) {
  for (int variant = 0; variant < 4; ++variant) {
    EXPECT_TRUE(ValidateDeclaration(SampleDeclaration(1, "org.xenchan.agent.0", variant)).ok());
  }
  ChannelDeclaration no_devid = SampleDeclaration(1, "a");
  no_devid.last_devid.reset();
  EXPECT_TRUE(ValidateDeclaration(no_devid).ok());
}

TEST(ValidateDeclarationTest, UuidsMustBeCanonicalLowerCase) {
  ChannelDeclaration d = SampleDeclaration(1, "a");
  d.domain_uuid = "not-a-uuid";
  EXPECT_THAT(ValidateDeclaration(d).message(), HasSubstr("domain_uuid is not a UUID"));
  d = SampleDeclaration(1, "a");
  d.domain_uuid = "ABCDEF01-2345-6789-abcd-ef0123456789";
  EXPECT_THAT(ValidateDeclaration(d).message(), HasSubstr("domain_uuid is not in lower case"));
  d = SampleDeclaration(1, "a");
  d.uid = "{" + d.uid + "}";
  EXPECT_EQ(ValidateDeclaration(d).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ValidateDeclarationTest, ChannelIdAsTheEngineHasIt) {
  EXPECT_TRUE(ValidateChannelId("org.qemu.guest_agent.0").ok());
  EXPECT_TRUE(ValidateChannelId(std::string(kMaxChannelIdBytes, 'x')).ok());
  EXPECT_TRUE(ValidateChannelId("0-A_b.c").ok());
  for (const std::string& bad : {std::string(), std::string(kMaxChannelIdBytes + 1, 'x'),
                                 std::string(".hidden"), std::string("-x"), std::string("a/b"),
                                 std::string("a b"), std::string("a\0b", 3), std::string("é")}) {
    EXPECT_EQ(ValidateChannelId(bad).code(), absl::StatusCode::kInvalidArgument)
        << "'" << bad << "'";
  }
}

TEST(ValidateDeclarationTest, LimitsFromApiLimits) {
  ChannelDeclaration d = SampleDeclaration(1, "a");
  d.config.buffer_limit_bytes = kMinBufferLimitBytes;
  d.config.write_queue_limit_bytes = kMaxWriteQueueLimitBytes;
  EXPECT_TRUE(ValidateDeclaration(d).ok());
  d.config.buffer_limit_bytes = kMaxBufferLimitBytes;
  d.config.write_queue_limit_bytes = kMinWriteQueueLimitBytes;
  EXPECT_TRUE(ValidateDeclaration(d).ok());
  d.config.buffer_limit_bytes = kMinBufferLimitBytes - 1;
  EXPECT_THAT(ValidateDeclaration(d).message(), HasSubstr("buffer_limit_bytes 4095 is outside"));
  d.config.buffer_limit_bytes = kMaxBufferLimitBytes + 1;
  EXPECT_EQ(ValidateDeclaration(d).code(), absl::StatusCode::kInvalidArgument);
  d = SampleDeclaration(1, "a");
  d.config.write_queue_limit_bytes = kMaxWriteQueueLimitBytes + 1;
  EXPECT_THAT(ValidateDeclaration(d).message(), HasSubstr("write_queue_limit_bytes"));
  d = SampleDeclaration(1, "a");
  d.config.overflow = static_cast<DeclaredChannelConfig::Overflow>(7);
  EXPECT_THAT(ValidateDeclaration(d).message(), HasSubstr("overflow"));
}

TEST(ValidateDeclarationTest, FramingMustParse) {
  ChannelDeclaration d = SampleDeclaration(1, "a");
  for (const char* good : {"newline", "length-prefix", "qemu-guest-agent", "delimiter:00ff"}) {
    d.config.default_framing = good;
    EXPECT_TRUE(ValidateDeclaration(d).ok()) << good;
  }
  for (const char* bad : {"", "Newline", "delimiter:", "delimiter:0A", "delimiter:abc"}) {
    d.config.default_framing = bad;
    EXPECT_THAT(ValidateDeclaration(d).message(), HasSubstr("default_framing")) << bad;
  }
}

TEST(ValidateDeclarationTest, DevidAndCreateTime) {
  ChannelDeclaration d = SampleDeclaration(1, "a");
  d.last_devid = kMaxDevid;
  EXPECT_TRUE(ValidateDeclaration(d).ok());
  for (uint32_t bad : {0u, kMaxDevid + 1}) {
    d.last_devid = bad;
    EXPECT_THAT(ValidateDeclaration(d).message(), HasSubstr("last_devid")) << bad;
  }
  d = SampleDeclaration(1, "a");
  for (absl::Time bad : {absl::UnixEpoch(), absl::InfinitePast(), absl::InfiniteFuture(),
                         absl::UnixEpoch() - absl::Seconds(1)}) {
    d.create_time = bad;
    EXPECT_THAT(ValidateDeclaration(d).message(), HasSubstr("create_time"));
  }
}

TEST(OverflowNameTest, RoundTripsAndRefusesOthers) {
  for (auto overflow :
       {DeclaredChannelConfig::Overflow::kBlock, DeclaredChannelConfig::Overflow::kDropOldest}) {
    EXPECT_EQ(ParseOverflowName(OverflowName(overflow)), overflow);
  }
  EXPECT_EQ(OverflowName(DeclaredChannelConfig::Overflow::kDropOldest), std::string("DROP_OLDEST"));
  EXPECT_FALSE(ParseOverflowName("block").has_value());
  EXPECT_FALSE(ParseOverflowName("").has_value());
}

TEST(DeclarationRowTest, RoundTrips) {
  for (int variant = 0; variant < 3; ++variant) {
    ChannelDeclaration d = SampleDeclaration(2, "org.xenchan.agent.0", variant);
    d.generation = 17 + variant;
    if (variant == 2) d.last_devid.reset();
    const StoredRow row = EncodeDeclarationRow(d);
    EXPECT_EQ(row[kColumnLastDevid].type,
              variant == 2 ? StoredValue::Type::kNull : StoredValue::Type::kInteger);
    absl::StatusOr<ChannelDeclaration> back = DecodeDeclarationRow(row);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, d);
  }
}

TEST(DeclarationRowTest, ColumnNamesMatchTheEnum) {
  EXPECT_EQ(std::string(DeclarationColumnNames()[kColumnDomainUuid]), "domain_uuid");
  EXPECT_EQ(std::string(DeclarationColumnNames()[kColumnGeneration]), "generation");
}

// A valid row with one value replaced.
StoredRow RowWith(DeclarationColumn column, StoredValue value) {
  ChannelDeclaration d = SampleDeclaration(3, "chan");
  d.generation = 5;
  StoredRow row = EncodeDeclarationRow(d);
  row[column] = std::move(value);
  return row;
}

void ExpectRefused(const StoredRow& row, const std::string& mention) {
  absl::StatusOr<ChannelDeclaration> decoded = DecodeDeclarationRow(row);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(decoded.status().message(), HasSubstr(mention));
}

TEST(DeclarationRowTest, WrongTypesRefusedNamingTheColumn) {
  StoredValue real;
  real.type = StoredValue::Type::kReal;
  real.real = 4096;
  StoredValue blob;
  blob.type = StoredValue::Type::kBlob;
  blob.bytes = "BLOCK";
  ExpectRefused(RowWith(kColumnDomainUuid, StoredValue::Integer(1)), "column domain_uuid");
  ExpectRefused(RowWith(kColumnChannelId, StoredValue::Null()), "column channel_id");
  ExpectRefused(RowWith(kColumnUid, blob), "column uid: expected TEXT, found a BLOB of 5 bytes");
  ExpectRefused(RowWith(kColumnBufferLimitBytes, real), "column buffer_limit_bytes");
  ExpectRefused(RowWith(kColumnBufferLimitBytes, StoredValue::Text("4096")),
                "column buffer_limit_bytes: expected INTEGER, found '4096'");
  ExpectRefused(RowWith(kColumnOverflowPolicy, blob), "column overflow_policy");
  ExpectRefused(RowWith(kColumnWriteQueueLimitBytes, StoredValue::Null()),
                "column write_queue_limit_bytes");
  ExpectRefused(RowWith(kColumnDefaultFraming, StoredValue::Integer(0)), "column default_framing");
  ExpectRefused(RowWith(kColumnLastDevid, StoredValue::Text("3")), "column last_devid");
  ExpectRefused(RowWith(kColumnCreateTimeUnixNanos, StoredValue::Null()),
                "column create_time_unix_nanos");
  ExpectRefused(RowWith(kColumnGeneration, real), "column generation");
}

TEST(DeclarationRowTest, ValuesNoDeclarationHasRefused) {
  ExpectRefused(
      RowWith(kColumnDomainUuid, StoredValue::Text("ABCDEF01-2345-6789-abcd-ef0123456789")),
      "domain_uuid is not in lower case");
  ExpectRefused(RowWith(kColumnChannelId, StoredValue::Text("../etc")), "channel id");
  ExpectRefused(RowWith(kColumnUid, StoredValue::Text("x")), "uid is not a UUID");
  ExpectRefused(RowWith(kColumnBufferLimitBytes, StoredValue::Integer(-1)),
                "column buffer_limit_bytes: -1 is outside 4096..67108864");
  ExpectRefused(RowWith(kColumnOverflowPolicy, StoredValue::Text("block")),
                "column overflow_policy: 'block' is neither BLOCK nor DROP_OLDEST");
  ExpectRefused(RowWith(kColumnWriteQueueLimitBytes, StoredValue::Integer(INT64_MAX)),
                "column write_queue_limit_bytes");
  ExpectRefused(RowWith(kColumnDefaultFraming, StoredValue::Text("delimiter:zz")),
                "default_framing");
  ExpectRefused(RowWith(kColumnLastDevid, StoredValue::Integer(0)), "column last_devid");
  ExpectRefused(RowWith(kColumnLastDevid, StoredValue::Integer(10)), "column last_devid");
  ExpectRefused(RowWith(kColumnCreateTimeUnixNanos, StoredValue::Integer(0)),
                "column create_time_unix_nanos");
  ExpectRefused(RowWith(kColumnCreateTimeUnixNanos, StoredValue::Integer(INT64_MAX)),
                "column create_time_unix_nanos");
  ExpectRefused(RowWith(kColumnGeneration, StoredValue::Integer(0)), "column generation: 0");
  ExpectRefused(RowWith(kColumnGeneration, StoredValue::Integer(-3)), "column generation");
}

TEST(DeclarationRowTest, DescribeRowKeyEscapesAndCuts) {
  StoredRow row = RowWith(kColumnChannelId, StoredValue::Text(std::string("a\nb\0c", 5)));
  EXPECT_THAT(DescribeRowKey(row), HasSubstr("channel 'a\\nb\\x00"));
  row = RowWith(kColumnDomainUuid, StoredValue::Text(std::string(200, 'x')));
  EXPECT_THAT(DescribeRowKey(row), HasSubstr("'" + std::string(80, 'x') + "'..."));
  // Escapes count towards the 80 characters: 20 bytes of \xff each.
  row = RowWith(kColumnDomainUuid, StoredValue::Text(std::string(200, '\xff')));
  std::string twenty;
  for (int i = 0; i < 20; ++i) twenty += "\\xff";
  EXPECT_THAT(DescribeRowKey(row), HasSubstr("domain '" + twenty + "'..."));
  row = RowWith(kColumnDomainUuid, StoredValue::Null());
  EXPECT_THAT(DescribeRowKey(row), HasSubstr("domain NULL"));
}

}  // namespace
}  // namespace xenchan
