// Unit tests of RateLimiter: the per-channel event allowance.
#include "backend/engine/rate_limiter.h"

#include "gtest/gtest.h"

namespace xenchan {
namespace {

TEST(RateLimiter, AllowsAllowancePerPeriodThenMasksUntilItEnds) {
  RateLimiter limiter(30, absl::Milliseconds(200));
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  for (int i = 0; i < 30; ++i) EXPECT_TRUE(limiter.Allow(t0 + absl::Milliseconds(i))) << i;
  EXPECT_FALSE(limiter.Allow(t0 + absl::Milliseconds(31)));
  EXPECT_EQ(limiter.period_end(), t0 + absl::Milliseconds(200));
  EXPECT_FALSE(limiter.Allow(t0 + absl::Milliseconds(100)));
  EXPECT_EQ(limiter.limited_periods(), 1u);
  // A new period starts with a full allowance.
  EXPECT_TRUE(limiter.Allow(t0 + absl::Milliseconds(200)));
  EXPECT_EQ(limiter.limited_periods(), 1u);
}

TEST(RateLimiter, QuietChannelNeverLimited) {
  RateLimiter limiter(30, absl::Milliseconds(200));
  absl::Time t = absl::FromUnixSeconds(5);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(limiter.Allow(t));
    t += absl::Milliseconds(10);  // 20 per period
  }
  EXPECT_EQ(limiter.limited_periods(), 0u);
}

TEST(RateLimiter, ClockGoingBackwardsStartsAPeriod) {
  RateLimiter limiter(1, absl::Seconds(1));
  const absl::Time t0 = absl::FromUnixSeconds(100);
  EXPECT_TRUE(limiter.Allow(t0));
  EXPECT_FALSE(limiter.Allow(t0));
  EXPECT_TRUE(limiter.Allow(t0 - absl::Seconds(5)));
}

}  // namespace
}  // namespace xenchan
