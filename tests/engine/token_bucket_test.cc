// Unit tests of TokenBucket, the per-channel event limits: deterministic,
// with an injected clock (no sleeps).
#include "backend/engine/token_bucket.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace xenchan {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

TEST(TokenBucket, BurstOfCapacityIsFreeThenTheNextChargeMasksForOneRefill) {
  TokenBucket bucket(30, absl::Milliseconds(300));  // one unit per 10 ms
  for (int i = 0; i < 30; ++i) EXPECT_TRUE(bucket.Charge(kT0, 1)) << i;
  EXPECT_EQ(bucket.limited_episodes(), 0u);
  EXPECT_FALSE(bucket.Charge(kT0, 1));
  // Masked only for the deficit (one unit), not for the rest of a window.
  EXPECT_EQ(bucket.ready_at(), kT0 + absl::Milliseconds(10));
  EXPECT_EQ(bucket.limited_episodes(), 1u);
}

TEST(TokenBucket, InDebtChargesAreTakenSoTheRateHoldsAtTheRefillRate) {
  TokenBucket bucket(30, absl::Milliseconds(300));
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(bucket.Charge(kT0, 1));
  // A guest that kicks again the moment it is unmasked: every charge is
  // refused and each unmask comes one refill later, so the events it gets
  // serviced are the burst plus one per 10 ms.
  absl::Time now = kT0;
  int serviced = 30;
  while (now < kT0 + absl::Seconds(3)) {
    EXPECT_FALSE(bucket.Charge(now, 1));
    ++serviced;
    ASSERT_GT(bucket.ready_at(), now);
    now = bucket.ready_at();
  }
  EXPECT_LE(serviced, 30 + 300 + 1);
  EXPECT_GE(serviced, 30 + 300 - 1);
  EXPECT_EQ(bucket.limited_episodes(), 1u);  // one unbroken episode
}

TEST(TokenBucket, RefillsWithTimeUpToCapacityOnly) {
  TokenBucket bucket(10, absl::Milliseconds(100));  // one unit per 10 ms
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(bucket.Charge(kT0, 1));
  // 50 ms later five units are back, not more.
  const absl::Time t1 = kT0 + absl::Milliseconds(50);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(bucket.Charge(t1, 1)) << i;
  EXPECT_FALSE(bucket.Charge(t1, 1));
  EXPECT_EQ(bucket.ready_at(), t1 + absl::Milliseconds(10));
  // An hour of quiet refills the bucket to its capacity, no further.
  const absl::Time t2 = t1 + absl::Hours(1);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(bucket.Charge(t2, 1)) << i;
  EXPECT_FALSE(bucket.Charge(t2, 1));
  EXPECT_EQ(bucket.limited_episodes(), 2u);
}

TEST(TokenBucket, ChargesOfSeveralUnitsAndOfNone) {
  TokenBucket bucket(64, absl::Milliseconds(64));  // one unit per ms
  EXPECT_TRUE(bucket.Charge(kT0, 32));
  EXPECT_TRUE(bucket.Charge(kT0, 32));
  EXPECT_TRUE(bucket.Charge(kT0, 0));  // an event its data paid for
  EXPECT_FALSE(bucket.Charge(kT0, 31));
  EXPECT_EQ(bucket.ready_at(), kT0 + absl::Milliseconds(31));
  EXPECT_FALSE(bucket.Charge(kT0, 0));  // still in debt
  EXPECT_TRUE(bucket.Charge(kT0 + absl::Milliseconds(31), 0));
}

TEST(TokenBucket, QuietChannelIsNeverLimited) {
  TokenBucket bucket(30, absl::Milliseconds(200));
  absl::Time t = kT0;
  for (int i = 0; i < 10000; ++i) {
    EXPECT_TRUE(bucket.Charge(t, 1)) << i;
    t += absl::Milliseconds(7);  // just under the refill rate of 6.67 ms
  }
  EXPECT_EQ(bucket.limited_episodes(), 0u);
}

TEST(TokenBucket, ZeroCapacityAllowsNothing) {
  TokenBucket bucket(0, absl::Milliseconds(200));
  EXPECT_FALSE(bucket.Charge(kT0, 1));
  EXPECT_EQ(bucket.ready_at(), kT0 + absl::Milliseconds(200));
}

TEST(TokenBucket, HugeCapacityNeverRefuses) {
  TokenBucket bucket(uint64_t{UINT32_MAX} * 32, absl::Milliseconds(200));
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(bucket.Charge(kT0, 32));
  EXPECT_EQ(bucket.limited_episodes(), 0u);
}

TEST(TokenBucket, ClockGoingBackwardsKeepsTheBalance) {
  TokenBucket bucket(2, absl::Seconds(2));  // one unit per second
  ASSERT_TRUE(bucket.Charge(kT0, 1));
  ASSERT_TRUE(bucket.Charge(kT0, 1));
  // The wall clock jumps back an hour: the bucket is as empty as before,
  // neither refilled nor stuck in debt for the hour.
  const absl::Time back = kT0 - absl::Hours(1);
  EXPECT_FALSE(bucket.Charge(back, 1));
  EXPECT_EQ(bucket.ready_at(), back + absl::Seconds(1));
  EXPECT_TRUE(bucket.Charge(back + absl::Seconds(3), 1));
}

}  // namespace
}  // namespace xenchan
