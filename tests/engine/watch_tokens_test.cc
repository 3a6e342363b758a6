// Unit tests of the engine's xenstore watch tokens (backend/engine/watch_tokens.h).
#include "backend/engine/watch_tokens.h"

#include "gtest/gtest.h"

namespace xenchan {
namespace {

using Kind = WatchTarget::Kind;

TEST(WatchTokens, FixedTokens) {
  EXPECT_EQ(ParseWatchToken(kIntroduceDomainToken).kind, Kind::kIntroduceDomain);
  EXPECT_EQ(ParseWatchToken(kReleaseDomainToken).kind, Kind::kReleaseDomain);
  EXPECT_EQ(ParseWatchToken(kToolstackBackendsToken).kind, Kind::kToolstackBackends);
}

TEST(WatchTokens, NumberedTokensRoundTrip) {
  WatchTarget t = ParseWatchToken(DomainNameWatchToken(0x7fef));
  EXPECT_EQ(t.kind, Kind::kDomainName);
  EXPECT_EQ(t.id, 0x7fefu);
  t = ParseWatchToken(ToolstackChannelWatchToken(42));
  EXPECT_EQ(t.kind, Kind::kToolstackChannel);
  EXPECT_EQ(t.id, 42u);
  t = ParseWatchToken(RingFrontendWatchToken(uint64_t{1} << 40));
  EXPECT_EQ(t.kind, Kind::kRingFrontend);
  EXPECT_EQ(t.id, uint64_t{1} << 40);
}

TEST(WatchTokens, TokensOfDifferentThingsDiffer) {
  EXPECT_NE(DomainNameWatchToken(5), ToolstackChannelWatchToken(5));
  EXPECT_NE(ToolstackChannelWatchToken(5), RingFrontendWatchToken(5));
  EXPECT_NE(std::string(kToolstackBackendsToken), ToolstackChannelWatchToken(5));
}

TEST(WatchTokens, AnythingElseIsUnknown) {
  for (const char* token : {"", "intro/", "fe", "fe/", "fe/x", "ts/", "name/", "name/-1",
                            "name/99999999999", "other/1", "Intro"}) {
    EXPECT_EQ(ParseWatchToken(token).kind, Kind::kUnknown) << token;
  }
}

}  // namespace
}  // namespace xenchan
