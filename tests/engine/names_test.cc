// Unit tests of the strict parsers and validators in backend/engine/names.h.
#include "backend/engine/names.h"

#include "gtest/gtest.h"

namespace xenchan {
namespace {

TEST(ValidateChannelId, AcceptsRegistryStyleNames) {
  EXPECT_TRUE(ValidateChannelId("org.example.agent.1").ok());
  EXPECT_TRUE(ValidateChannelId("a").ok());
  EXPECT_TRUE(ValidateChannelId("9_x-y.z").ok());
  EXPECT_TRUE(ValidateChannelId(std::string(64, 'a')).ok());
}

TEST(ValidateChannelId, RejectsEverythingElse) {
  for (const std::string& bad :
       {std::string(), std::string(65, 'a'), std::string(".a"), std::string("-a"),
        std::string("a/b"), std::string("a b"), std::string("a\nb"),
        std::string("\xc3\xa9t\xc3\xa9"), std::string("a\0b", 3)}) {
    EXPECT_EQ(ValidateChannelId(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ParseDecimal, StrictDecimal) {
  EXPECT_EQ(ParseDecimal("0", 10), 0u);
  EXPECT_EQ(ParseDecimal("10", 10), 10u);
  EXPECT_EQ(ParseDecimal("2147483647", 0x7fffffff), 0x7fffffffu);
  for (const char* bad :
       {"", "11", "-1", "+1", " 1", "1 ", "01", "0x10", "1a", "99999999999", "4294967296", "1\n"}) {
    EXPECT_FALSE(ParseDecimal(bad, 10).has_value()) << bad;
  }
  EXPECT_FALSE(ParseDecimal("2147483648", 0x7fffffff).has_value());
  EXPECT_FALSE(ParseDecimal(std::string("1\0", 2), 10).has_value());
}

TEST(ParseXenbusState, OnlyZeroToEight) {
  EXPECT_EQ(ParseXenbusState("4"), XenbusState::kConnected);
  EXPECT_EQ(ParseXenbusState("0"), XenbusState::kUnknown);
  EXPECT_EQ(ParseXenbusState("8"), XenbusState::kReconfigured);
  EXPECT_FALSE(ParseXenbusState("9").has_value());
  EXPECT_FALSE(ParseXenbusState("4 ").has_value());
  EXPECT_FALSE(ParseXenbusState("").has_value());
}

TEST(Paths, LibxlShapes) {
  EXPECT_EQ(FrontendPath(3, 2), "/local/domain/3/device/console/2");
  EXPECT_EQ(BackendPath(0, "xenchan", 3, 2), "/local/domain/0/backend/xenchan/3/2");
}

}  // namespace
}  // namespace xenchan
