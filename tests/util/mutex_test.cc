// Tests for the annotated Mutex/CondVar wrapper.
#include "backend/util/mutex.h"

#include <thread>

#include "gtest/gtest.h"

namespace xenchan {
namespace {

TEST(MutexTest, CondVarHandsOffBetweenThreads) {
  struct Shared {
    Mutex mu;
    CondVar cv;
    int value ABSL_GUARDED_BY(mu) = 0;
  } s;
  std::thread producer([&] {
    MutexLock lock(&s.mu);
    s.value = 42;
    s.cv.SignalAll();
  });
  {
    MutexLock lock(&s.mu);
    while (s.value == 0) s.cv.Wait(&s.mu);
    EXPECT_EQ(s.value, 42);
  }
  producer.join();
}

TEST(MutexTest, WaitWithDeadlineTimesOut) {
  Mutex mu;
  CondVar cv;
  MutexLock lock(&mu);
  EXPECT_TRUE(cv.WaitWithDeadline(&mu, absl::Now() + absl::Milliseconds(5)));
}

}  // namespace
}  // namespace xenchan
