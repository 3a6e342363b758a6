// Scheduler (server/scheduler.h): tasks run on its workers, timers in time
// order and never early, cancelled timers never, and Stop drops what is
// pending.
#include "server/scheduler.h"

#include <atomic>
#include <functional>
#include <vector>

#include "absl/time/clock.h"
#include "backend/util/mutex.h"
#include "gtest/gtest.h"
#include "tests/common/sync.h"

// Hand-offs between the test and the scheduler's threads go through
// tests/common/sync.h, which ThreadSanitizer can see (absl's cannot be).
namespace xenchan {
namespace server {
namespace {

TEST(SchedulerTest, RunsEveryTask) {
  Scheduler scheduler(2);
  testcommon::CountDownLatch done(100);
  std::atomic<int> ran{0};
  for (int i = 0; i < 100; ++i) {
    scheduler.Run([&] {
      ran.fetch_add(1);
      done.CountDown();
    });
  }
  ASSERT_TRUE(done.WaitWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(ran.load(), 100);
}

// A burst of wake-ups while a run is queued is one run; a wake-up during a
// run queues the next one.
TEST(SchedulerTest, ACoalescingCallbackQueuesAtMostOneRun) {
  Scheduler scheduler(1);
  testcommon::Notification blocker_started;
  testcommon::Notification release;
  scheduler.Run([&] {
    blocker_started.Notify();
    ASSERT_TRUE(release.WaitForNotificationWithTimeout(absl::Seconds(10)));
  });
  ASSERT_TRUE(blocker_started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  std::atomic<int> ran{0};
  testcommon::Notification in_run;
  testcommon::Notification finish_run;
  std::function<void()> wake;
  wake = scheduler.Coalescing([&] {
    if (ran.fetch_add(1) == 0) {
      in_run.Notify();
      ASSERT_TRUE(finish_run.WaitForNotificationWithTimeout(absl::Seconds(10)));
    }
  });
  for (int i = 0; i < 50; ++i) wake();  // the worker is busy: all queued as one
  release.Notify();
  ASSERT_TRUE(in_run.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(ran.load(), 1);
  for (int i = 0; i < 50; ++i) wake();  // during the run: one more
  finish_run.Notify();
  testcommon::Notification drained;
  scheduler.Run([&] { drained.Notify(); });  // after the second run (one worker)
  ASSERT_TRUE(drained.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(ran.load(), 2);
}

TEST(SchedulerTest, TimersRunInTimeOrderAndNotEarly) {
  Scheduler scheduler(1);
  Mutex mu;
  std::vector<int> order;
  testcommon::Notification second;
  const absl::Time start = absl::Now();
  absl::Time first_at;
  scheduler.RunAt(start + absl::Milliseconds(60), [&] {
    MutexLock lock(&mu);
    order.push_back(2);
    second.Notify();
  });
  scheduler.RunAt(start + absl::Milliseconds(20), [&] {
    MutexLock lock(&mu);
    first_at = absl::Now();
    order.push_back(1);
  });
  ASSERT_TRUE(second.WaitForNotificationWithTimeout(absl::Seconds(10)));
  MutexLock lock(&mu);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_GE(first_at - start, absl::Milliseconds(20));
}

TEST(SchedulerTest, PastTimersRunSoon) {
  Scheduler scheduler(1);
  testcommon::Notification ran;
  scheduler.RunAt(absl::Now() - absl::Hours(1), [&] { ran.Notify(); });
  EXPECT_TRUE(ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST(SchedulerTest, CancelledTimerNeverRuns) {
  Scheduler scheduler(1);
  std::atomic<bool> cancelled_ran{false};
  testcommon::Notification later;
  const uint64_t id =
      scheduler.RunAt(absl::Now() + absl::Milliseconds(20), [&] { cancelled_ran = true; });
  scheduler.Cancel(id);
  scheduler.Cancel(id);  // idempotent
  scheduler.RunAt(absl::Now() + absl::Milliseconds(60), [&] { later.Notify(); });
  ASSERT_TRUE(later.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(cancelled_ran.load());
}

TEST(SchedulerTest, StopDropsPendingWorkAndIsIdempotent) {
  Scheduler scheduler(2);
  std::atomic<bool> ran{false};
  scheduler.RunAt(absl::Now() + absl::Hours(1), [&] { ran = true; });
  scheduler.Stop();
  scheduler.Stop();
  scheduler.Run([&] { ran = true; });  // dropped
  EXPECT_FALSE(ran.load());
}

}  // namespace
}  // namespace server
}  // namespace xenchan
