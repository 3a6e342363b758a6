// Notification and a countdown latch for tests, over xenchan::Mutex
// (std::mutex). Debian's Abseil is built without ThreadSanitizer, so TSan
// cannot see the synchronisation inside absl::Notification, absl::Mutex or
// absl::BlockingCounter and reports races on the data they protect; tests
// that hand data between threads use these instead. Thread-safe.
#ifndef XENCHAN_TESTS_COMMON_SYNC_H_
#define XENCHAN_TESTS_COMMON_SYNC_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/util/mutex.h"

namespace xenchan {
namespace testcommon {

// Set once; waiters return when it is set (or their timeout passes).
class Notification {
 public:
  void Notify() {
    MutexLock lock(&mu_);
    notified_ = true;
    cv_.SignalAll();
  }
  bool HasBeenNotified() {
    MutexLock lock(&mu_);
    return notified_;
  }
  // True if notified within `timeout`.
  bool WaitForNotificationWithTimeout(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    MutexLock lock(&mu_);
    while (!notified_) {
      if (cv_.WaitWithDeadline(&mu_, deadline) && !notified_) return false;  // timed out
    }
    return true;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  bool notified_ ABSL_GUARDED_BY(mu_) = false;
};

// Counts down from `count`; Wait returns when it reaches zero.
class CountDownLatch {
 public:
  explicit CountDownLatch(int count) : count_(count) {}
  void CountDown() {
    MutexLock lock(&mu_);
    if (count_ > 0 && --count_ == 0) cv_.SignalAll();
  }
  // True if the count reached zero within `timeout`.
  bool WaitWithTimeout(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    MutexLock lock(&mu_);
    while (count_ > 0) {
      if (cv_.WaitWithDeadline(&mu_, deadline) && count_ > 0) return false;  // timed out
    }
    return true;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  int count_ ABSL_GUARDED_BY(mu_);
};

}  // namespace testcommon
}  // namespace xenchan

#endif  // XENCHAN_TESTS_COMMON_SYNC_H_
