// Unit tests of the domain configuration checks shared by `domain create`
// and `domain restore` (ParseChannelSpecs, CheckNameAndUuid in host.h).
#include <string>
#include <vector>

#include "backend/sim/host.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace sim {
namespace {

using ::testing::HasSubstr;

TEST(HostConfigTest, ParsesChannelSpecsInOrder) {
  auto specs = ParseChannelSpecs({"name=a,connection=pty", "name=b,connection=socket,path=/tmp/b"});
  ASSERT_TRUE(specs.ok()) << specs.status();
  ASSERT_EQ(specs->size(), 2u);
  EXPECT_EQ((*specs)[0].name, "a");
  EXPECT_EQ((*specs)[1].path, "/tmp/b");
  EXPECT_TRUE(ParseChannelSpecs({}).ok());
}

TEST(HostConfigTest, RejectsBadOrDuplicateChannels) {
  EXPECT_THAT(std::string(ParseChannelSpecs({"name=a"}).status().message()),
              HasSubstr("channel 'name=a'"));
  EXPECT_THAT(
      std::string(
          ParseChannelSpecs({"name=a,connection=pty", "name=a,connection=pty"}).status().message()),
      HasSubstr("duplicate channel name a"));
  EXPECT_THAT(std::string(ParseChannelSpecs({"name=a,connection=socket,path=/p",
                                             "name=b,connection=socket,path=/p"})
                              .status()
                              .message()),
              HasSubstr("duplicate socket path /p"));
  std::vector<std::string> many;
  for (int i = 0; i < 65; ++i) many.push_back("name=c" + std::to_string(i) + ",connection=pty");
  EXPECT_FALSE(ParseChannelSpecs(many).ok());
}

TEST(HostConfigTest, ChecksNamesAndCanonicalisesUuids) {
  auto u = CheckNameAndUuid("vm", "01234567-89AB-CDEF-0123-456789ABCDEF");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(*u, "01234567-89ab-cdef-0123-456789abcdef");
  auto fresh = CheckNameAndUuid("vm", "");
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->size(), 36u);
  EXPECT_FALSE(CheckNameAndUuid("Domain-0", "").ok());
  EXPECT_FALSE(CheckNameAndUuid("bad name", "").ok());
  EXPECT_FALSE(CheckNameAndUuid("..", "").ok());
  EXPECT_FALSE(CheckNameAndUuid("vm", "not-a-uuid").ok());
}

}  // namespace
}  // namespace sim
}  // namespace xenchan
