// Unit tests of QuotaManager: each quota kind, RAII release on every path,
// the token bucket with an injected clock, the QUOTA_EXCEEDED payload, and
// concurrent acquire/release from many threads (run under TSan in CI).
#include "server/quota/quota_manager.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backend/util/mutex.h"
#include "gtest/gtest.h"

namespace xenchan {
namespace server {
namespace quota {
namespace {

uint64_t Exceeded(const QuotaManager& q, QuotaKind kind) {
  return q.exceeded()[static_cast<size_t>(kind)];
}

TEST(QuotaManagerTest, StreamsPerCallerAreLimitedAndGivenBackByTheLease) {
  QuotaLimits limits;
  limits.streams_per_caller = 2;
  QuotaManager q(limits);
  auto a = q.AcquireStream("alice", "vm1");
  auto b = q.AcquireStream("alice", "vm2");
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = q.AcquireStream("alice", "vm1");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  auto info = QuotaExceededOf(c.status());
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->kind, QuotaKind::kStreamsPerCaller);
  EXPECT_EQ(info->limit_value, 2u);
  EXPECT_EQ(info->requested_value, 3u);
  EXPECT_STREQ(QuotaLimitName(info->kind), "streams_per_identity");
  // Another caller is unaffected.
  EXPECT_TRUE(q.AcquireStream("bob", "vm1").ok());
  EXPECT_EQ(Exceeded(q, QuotaKind::kStreamsPerCaller), 1u);
  EXPECT_EQ(q.streams("alice"), 2u);
  a->Release();
  a->Release();  // idempotent
  EXPECT_EQ(q.streams("alice"), 1u);
  {
    auto d = q.AcquireStream("alice", "vm1");
    ASSERT_TRUE(d.ok());
    QuotaManager::Lease moved = *std::move(d);
    EXPECT_TRUE(moved.held());
    EXPECT_EQ(q.streams("alice"), 2u);
  }  // destroyed: given back
  EXPECT_EQ(q.streams("alice"), 1u);
}

TEST(QuotaManagerTest, StreamsPerDomainCountAllCallers) {
  QuotaLimits limits;
  limits.streams_per_domain = 2;
  QuotaManager q(limits);
  auto a = q.AcquireStream("alice", "vm1");
  auto b = q.AcquireStream("bob", "vm1");
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = q.AcquireStream("carol", "vm1");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(QuotaExceededOf(c.status())->kind, QuotaKind::kStreamsPerDomain);
  EXPECT_EQ(q.streams("carol"), 0u);  // neither count was charged
  EXPECT_TRUE(q.AcquireStream("carol", "vm2").ok());
  EXPECT_TRUE(q.AcquireStream("carol", "").ok());  // no domain: only the caller's count
  b->Release();
  EXPECT_EQ(q.domain_streams("vm1"), 1u);
  EXPECT_TRUE(q.AcquireStream("carol", "vm1").ok());
}

TEST(QuotaManagerTest, ObserversPerChannelPerCaller) {
  QuotaLimits limits;
  limits.observers_per_channel_per_caller = 1;
  QuotaManager q(limits);
  auto a = q.AcquireObserver("alice", "chan-1");
  ASSERT_TRUE(a.ok());
  auto again = q.AcquireObserver("alice", "chan-1");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(QuotaExceededOf(again.status())->kind, QuotaKind::kObserversPerChannel);
  EXPECT_TRUE(q.AcquireObserver("alice", "chan-2").ok());
  EXPECT_TRUE(q.AcquireObserver("bob", "chan-1").ok());
  a = absl::StatusOr<QuotaManager::Lease>(QuotaManager::Lease());  // the old lease is destroyed
  EXPECT_TRUE(q.AcquireObserver("alice", "chan-1").ok());
}

TEST(QuotaManagerTest, QueuedBytesShrinkAsTheGuestConsumes) {
  QuotaLimits limits;
  limits.queued_bytes_per_caller = 100;
  QuotaManager q(limits);
  auto a = q.AcquireQueued("alice", 70);
  ASSERT_TRUE(a.ok());
  auto b = q.AcquireQueued("alice", 40);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(QuotaExceededOf(b.status())->requested_value, 110u);
  a->Shrink(30);
  EXPECT_EQ(q.queued("alice"), 40u);
  EXPECT_EQ(a->amount(), 40u);
  EXPECT_TRUE(q.AcquireQueued("alice", 60).ok());  // that lease goes at once
  a->Release();
  EXPECT_EQ(q.queued("alice"), 0u);
  EXPECT_EQ(Exceeded(q, QuotaKind::kQueuedBytes), 1u);
}

TEST(QuotaManagerTest, QueuedLeasesAbsorbOneAnother) {
  QuotaLimits limits;
  limits.queued_bytes_per_caller = 100;
  QuotaManager q(limits);
  QuotaManager::Lease held;  // holds nothing yet
  auto a = q.AcquireQueued("alice", 30);
  ASSERT_TRUE(a.ok());
  held.Absorb(*std::move(a));
  EXPECT_TRUE(held.held());
  auto b = q.AcquireQueued("alice", 50);
  ASSERT_TRUE(b.ok());
  held.Absorb(*std::move(b));
  EXPECT_FALSE(b->held());
  EXPECT_EQ(held.amount(), 80u);
  EXPECT_EQ(q.queued("alice"), 80u);
  EXPECT_FALSE(q.AcquireQueued("alice", 21).ok());
  held.Shrink(80);
  EXPECT_EQ(q.queued("alice"), 0u);
  held.Release();
  EXPECT_EQ(q.queued("alice"), 0u);
}

TEST(QuotaManagerTest, TokenBucketRefillsAtTheRate) {
  QuotaLimits limits;
  limits.bytes_per_second_per_caller = 1000;
  limits.burst_bytes_per_caller = 2000;
  absl::Time now = absl::FromUnixSeconds(1000);
  QuotaManager q(limits, [&now] { return now; });
  EXPECT_TRUE(q.ConsumeBytes("alice", 1500).ok());  // a new caller starts with the burst
  EXPECT_TRUE(q.ConsumeBytes("alice", 500).ok());
  absl::Status s = q.ConsumeBytes("alice", 1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(QuotaExceededOf(s)->kind, QuotaKind::kBytesPerSecond);
  EXPECT_EQ(q.RetryAfter("alice", 500), absl::Milliseconds(500));
  EXPECT_EQ(q.RetryAfter("alice", 2001), absl::InfiniteDuration());
  now += absl::Milliseconds(500);
  EXPECT_EQ(q.RetryAfter("alice", 500), absl::ZeroDuration());
  EXPECT_TRUE(q.ConsumeBytes("alice", 500).ok());
  EXPECT_FALSE(q.ConsumeBytes("alice", 100).ok());
  EXPECT_TRUE(q.ConsumeBytes("bob", 2000).ok());  // buckets are per caller
  now += absl::Seconds(60);
  EXPECT_TRUE(q.ConsumeBytes("alice", 2000).ok());  // refills up to the burst only
  EXPECT_FALSE(q.ConsumeBytes("alice", 1).ok());
  EXPECT_EQ(Exceeded(q, QuotaKind::kBytesPerSecond), 3u);
}

TEST(QuotaManagerTest, ReadsArePacedByTheirOwnBucketNotRefused) {
  QuotaLimits limits;
  limits.bytes_per_second_per_caller = 1000;
  limits.burst_bytes_per_caller = 2000;
  absl::Time now = absl::FromUnixSeconds(1000);
  QuotaManager q(limits, [&now] { return now; });
  EXPECT_EQ(q.ReadDelay("alice"), absl::ZeroDuration());  // a new caller starts full
  q.ChargeRead("alice", 1500);
  EXPECT_EQ(q.ReadDelay("alice"), absl::ZeroDuration());
  q.ChargeRead("alice", 1500);  // one chunk into debt: 1000 bytes
  EXPECT_EQ(q.ReadDelay("alice"), absl::Seconds(1));
  EXPECT_EQ(q.ReadDelay("bob"), absl::ZeroDuration());  // per caller
  // Reading does not spend the write bucket, and nothing counts as exceeded.
  EXPECT_TRUE(q.ConsumeBytes("alice", 2000).ok());
  EXPECT_EQ(Exceeded(q, QuotaKind::kBytesPerSecond), 0u);
  now += absl::Milliseconds(500);
  EXPECT_EQ(q.ReadDelay("alice"), absl::Milliseconds(500));
  now += absl::Milliseconds(500);
  EXPECT_EQ(q.ReadDelay("alice"), absl::ZeroDuration());
  now += absl::Seconds(60);  // refills up to the burst only
  q.ChargeRead("alice", 2000);
  EXPECT_EQ(q.ReadDelay("alice"), absl::ZeroDuration());
  q.ChargeRead("alice", 1000);
  EXPECT_EQ(q.ReadDelay("alice"), absl::Seconds(1));
}

TEST(QuotaManagerTest, ZeroMeansUnlimited) {
  QuotaLimits limits;
  limits.streams_per_caller = 0;
  limits.streams_per_domain = 0;
  limits.observers_per_channel_per_caller = 0;
  limits.bytes_per_second_per_caller = 0;
  limits.queued_bytes_per_caller = 0;
  QuotaManager q(limits);
  std::vector<QuotaManager::Lease> leases;
  for (int i = 0; i < 1000; ++i) {
    leases.push_back(*q.AcquireStream("a", "d"));
    leases.push_back(*q.AcquireObserver("a", "c"));
  }
  EXPECT_TRUE(q.ConsumeBytes("a", uint64_t{1} << 40).ok());
  EXPECT_TRUE(q.AcquireQueued("a", uint64_t{1} << 40).ok());
}

TEST(QuotaManagerTest, IdleCallersAreForgotten) {
  QuotaLimits limits;
  absl::Time now = absl::FromUnixSeconds(1000);
  QuotaManager q(limits, [&now] { return now; });
  for (int i = 0; i < 5000; ++i) {
    auto l = q.AcquireStream(absl::StrCat("peer:", i), "d");
    ASSERT_TRUE(l.ok());
  }
  EXPECT_EQ(q.tracked_callers(), 0u);
  // A caller that drained its bucket is remembered until it refills.
  ASSERT_TRUE(q.ConsumeBytes("greedy", limits.bytes_per_second_per_caller).ok());
  { auto l = q.AcquireStream("greedy", "d"); }
  EXPECT_EQ(q.tracked_callers(), 1u);
  EXPECT_FALSE(q.ConsumeBytes("greedy", 1024).ok());
  now += absl::Seconds(2);
  { auto l = q.AcquireStream("greedy", "d"); }
  EXPECT_EQ(q.tracked_callers(), 0u);
}

TEST(QuotaManagerTest, ConcurrentCallersNeverExceedTheirQuotas) {
  QuotaLimits limits;
  limits.streams_per_caller = 5;
  limits.streams_per_domain = 12;
  limits.observers_per_channel_per_caller = 2;
  limits.queued_bytes_per_caller = 1000;
  limits.bytes_per_second_per_caller = 1 << 20;
  QuotaManager q(limits);
  constexpr int kThreads = 8;
  std::atomic<bool> over{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string caller = absl::StrCat("caller", t % 3);
      std::vector<QuotaManager::Lease> held;
      for (int i = 0; i < 3000; ++i) {
        switch (i % 4) {
          case 0: {
            auto l = q.AcquireStream(caller, "vm");
            if (l.ok()) held.push_back(*std::move(l));
            break;
          }
          case 1: {
            auto l = q.AcquireObserver(caller, "chan");
            if (l.ok()) held.push_back(*std::move(l));
            break;
          }
          case 2: {
            auto l = q.AcquireQueued(caller, 97);
            if (l.ok()) held.push_back(*std::move(l));
            (void)q.ConsumeBytes(caller, 512);
            break;
          }
          default:
            if (!held.empty()) held.erase(held.begin() + (i % held.size()));
            break;
        }
        if (q.streams(caller) > limits.streams_per_caller ||
            q.domain_streams("vm") > limits.streams_per_domain ||
            q.queued(caller) > limits.queued_bytes_per_caller) {
          over = true;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_FALSE(over.load());
  EXPECT_EQ(q.domain_streams("vm"), 0u);
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(q.streams(absl::StrCat("caller", c)), 0u);
    EXPECT_EQ(q.queued(absl::StrCat("caller", c)), 0u);
  }
  const auto exceeded = q.exceeded();
  EXPECT_GT(exceeded[static_cast<size_t>(QuotaKind::kStreamsPerCaller)] +
                exceeded[static_cast<size_t>(QuotaKind::kStreamsPerDomain)],
            0u);
  EXPECT_GT(exceeded[static_cast<size_t>(QuotaKind::kObserversPerChannel)], 0u);
}

TEST(QuotaExceededOfTest, OtherStatusesAreNotQuotas) {
  EXPECT_FALSE(QuotaExceededOf(absl::OkStatus()).has_value());
  EXPECT_FALSE(QuotaExceededOf(absl::ResourceExhaustedError("queue full")).has_value());
  absl::Status forged = absl::InvalidArgumentError("x");
  EXPECT_FALSE(QuotaExceededOf(forged).has_value());
}

}  // namespace
}  // namespace quota
}  // namespace server
}  // namespace xenchan
