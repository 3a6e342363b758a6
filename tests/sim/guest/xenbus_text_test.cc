#include "backend/sim/guest/xenbus_text.h"

#include "gtest/gtest.h"

namespace xenchan {
namespace sim {
namespace guest {
namespace {

TEST(ScanStateValueTest, ReadsLikeScanfPercentD) {
  EXPECT_EQ(ScanStateValue("1"), 1);
  EXPECT_EQ(ScanStateValue("4"), 4);
  EXPECT_EQ(ScanStateValue(" 3"), 3);
  EXPECT_EQ(ScanStateValue("5xyz"), 5);
  EXPECT_EQ(ScanStateValue("-2"), -2);
  EXPECT_EQ(ScanStateValue(""), std::nullopt);
  EXPECT_EQ(ScanStateValue("x1"), std::nullopt);
  EXPECT_EQ(ScanStateValue("-"), std::nullopt);
  EXPECT_EQ(ScanStateValue("99999999999999999999"), std::nullopt);
}

TEST(DevidFromNodenameTest, LastCharacterMinusZero) {
  EXPECT_EQ(DevidFromNodename("device/console/1"), 1);
  EXPECT_EQ(DevidFromNodename("device/console/9"), 9);
  EXPECT_EQ(DevidFromNodename("device/console/10"), 0);
  EXPECT_EQ(DevidFromNodename("device/console/11"), 1);
  EXPECT_EQ(DevidFromNodename("device/console/a"), 'a' - '0');
  EXPECT_EQ(DevidFromNodename(""), std::nullopt);
}

TEST(ParseBackendIdTest, StrictDecimalDomid) {
  EXPECT_EQ(ParseBackendId("0"), 0u);
  EXPECT_EQ(ParseBackendId("32751"), 32751u);
  EXPECT_EQ(ParseBackendId("32752"), std::nullopt);  // DOMID_FIRST_RESERVED
  EXPECT_EQ(ParseBackendId("0x0"), std::nullopt);
  EXPECT_EQ(ParseBackendId("01"), std::nullopt);
  EXPECT_EQ(ParseBackendId("-1"), std::nullopt);
  EXPECT_EQ(ParseBackendId(" 1"), std::nullopt);
  EXPECT_EQ(ParseBackendId(""), std::nullopt);
  EXPECT_EQ(ParseBackendId("123456"), std::nullopt);
}

TEST(IsSaneBackendPathTest, AbsoluteXenstorePaths) {
  EXPECT_TRUE(IsSaneBackendPath("/local/domain/0/backend/console/5/1"));
  EXPECT_TRUE(IsSaneBackendPath("/local/domain/0/backend/xenchan/5/1"));
  EXPECT_FALSE(IsSaneBackendPath(""));
  EXPECT_FALSE(IsSaneBackendPath("/"));
  EXPECT_FALSE(IsSaneBackendPath("local/domain/0"));
  EXPECT_FALSE(IsSaneBackendPath("/local//domain"));
  EXPECT_FALSE(IsSaneBackendPath("/local/domain/"));
  EXPECT_FALSE(IsSaneBackendPath("/local/dom ain"));
  EXPECT_FALSE(IsSaneBackendPath("/local/../x"));
  EXPECT_FALSE(IsSaneBackendPath(std::string("/a\0b", 4)));
  EXPECT_FALSE(IsSaneBackendPath("/" + std::string(3072, 'a')));
}

TEST(IsValidChannelNameTest, RegistryCharacters) {
  EXPECT_TRUE(IsValidChannelName("org.qemu.guest_agent.0"));
  EXPECT_TRUE(IsValidChannelName("a-b"));
  EXPECT_TRUE(IsValidChannelName(std::string(64, 'x')));
  EXPECT_FALSE(IsValidChannelName(std::string(65, 'x')));
  EXPECT_FALSE(IsValidChannelName(""));
  EXPECT_FALSE(IsValidChannelName("."));
  EXPECT_FALSE(IsValidChannelName(".."));
  EXPECT_FALSE(IsValidChannelName("a/b"));
  EXPECT_FALSE(IsValidChannelName("a b"));
}

TEST(XenbusErrorTextTest, ErrnoThenMessage) {
  EXPECT_EQ(XenbusErrorText(19, "xenbus_dev_probe on device/console/10"),
            "19 xenbus_dev_probe on device/console/10");
}

}  // namespace
}  // namespace guest
}  // namespace sim
}  // namespace xenchan
