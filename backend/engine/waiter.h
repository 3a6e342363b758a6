// Waiter: blocks a caller of a *AndWait wrapper until the engine thread
// hands over the command's result. Thread-safe.
#ifndef XENCHAN_BACKEND_ENGINE_WAITER_H_
#define XENCHAN_BACKEND_ENGINE_WAITER_H_

#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "backend/util/mutex.h"

namespace xenchan {

template <typename T>
class Waiter {
 public:
  void Set(T value) {
    MutexLock lock(&mu_);
    value_.emplace(std::move(value));
    cv_.SignalAll();
  }
  T Wait() {
    MutexLock lock(&mu_);
    while (!value_.has_value()) cv_.Wait(&mu_);
    return std::move(*value_);
  }

 private:
  Mutex mu_;
  CondVar cv_;
  std::optional<T> value_ ABSL_GUARDED_BY(mu_);
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_WAITER_H_
