// Unit tests for the xl.cfg channel spec parser.
#include "backend/sim/channel_spec.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace sim {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(ChannelSpecTest, SocketChannel) {
  auto parsed = ParseChannelSpec("name=org.example.agent.0,connection=socket,path=/run/a.sock");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->spec.name, "org.example.agent.0");
  EXPECT_EQ(parsed->spec.connection, ChannelConnection::kSocket);
  EXPECT_EQ(parsed->spec.path, "/run/a.sock");
  EXPECT_EQ(parsed->spec.backend_domid, 0u);
  EXPECT_THAT(parsed->warnings, IsEmpty());
}

TEST(ChannelSpecTest, PtyChannelWithBackendAndWhitespace) {
  auto parsed = ParseChannelSpec(" backend=Domain-0 , name = x_y-1 ,connection=pty,");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->spec.name, "x_y-1");
  EXPECT_EQ(parsed->spec.connection, ChannelConnection::kPty);
  EXPECT_EQ(parsed->spec.path, "");
  EXPECT_STREQ(ChannelConnectionName(parsed->spec.connection), "pty");
}

TEST(ChannelSpecTest, BackendSpellingsOfDom0) {
  for (const char* b : {"0", "dom0", "Domain-0"}) {
    EXPECT_TRUE(ParseChannelSpec(std::string("backend=") + b + ",name=a,connection=pty").ok()) << b;
  }
  auto bad = ParseChannelSpec("backend=driverdom,name=a,connection=pty");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("backend"));
}

TEST(ChannelSpecTest, UppercaseConnectionIsUnknownLikeXl) {
  auto parsed = ParseChannelSpec("name=a,connection=SOCKET,path=/x");
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("unknown channel connection"));
  EXPECT_FALSE(ParseChannelSpec("name=a,connection=Pty").ok());
}

TEST(ChannelSpecTest, UnknownKeysWarnAndAreIgnored) {
  auto parsed = ParseChannelSpec("name=a,colour=blue,connection=pty,path=/ignored");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->warnings.size(), 2u);
  EXPECT_THAT(parsed->warnings[0], HasSubstr("colour"));
  EXPECT_THAT(parsed->warnings[1], HasSubstr("path is ignored"));
  EXPECT_EQ(parsed->spec.path, "");
}

TEST(ChannelSpecTest, LaterDuplicateKeyWins) {
  auto parsed = ParseChannelSpec("name=a,name=b,connection=socket,connection=pty");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->spec.name, "b");
  EXPECT_EQ(parsed->spec.connection, ChannelConnection::kPty);
}

TEST(ChannelSpecTest, Errors) {
  struct Case {
    const char* spec;
    const char* message;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"", "no name"},
           {"connection=pty", "no name"},
           {"name=a", "no connection"},
           {"name=a,connection=", "unknown channel connection"},
           {"name=a,connection=socket", "requires a path"},
           {"name=a,connection=socket,path=", "requires a path"},
           {"name=a b,connection=pty", "invalid"},
           {"name=,connection=pty", "invalid"},
           {"name=a/b,connection=pty", "invalid"},
           {"name=a,connection", "not KEY=VALUE"},
       }) {
    auto parsed = ParseChannelSpec(c.spec);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << c.spec;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(c.message)) << c.spec;
  }
}

TEST(ChannelSpecTest, NameLengthLimit) {
  const std::string ok(64, 'n');
  const std::string too_long(65, 'n');
  EXPECT_TRUE(IsValidChannelName(ok));
  EXPECT_FALSE(IsValidChannelName(too_long));
  EXPECT_TRUE(ParseChannelSpec("name=" + ok + ",connection=pty").ok());
  EXPECT_FALSE(ParseChannelSpec("name=" + too_long + ",connection=pty").ok());
}

TEST(ChannelSpecTest, SocketPathLengthLimit) {
  const std::string ok = "/" + std::string(106, 'p');
  const std::string too_long = "/" + std::string(107, 'p');
  EXPECT_TRUE(ParseChannelSpec("name=a,connection=socket,path=" + ok).ok());
  EXPECT_FALSE(ParseChannelSpec("name=a,connection=socket,path=" + too_long).ok());
}

}  // namespace
}  // namespace sim
}  // namespace xenchan
