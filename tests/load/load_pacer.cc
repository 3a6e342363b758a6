// See load_pacer.h.
#include "tests/load/load_pacer.h"

#include <time.h>

#include <algorithm>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace xenchan {
namespace load {

uint64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t Pacer::Wait(const std::atomic<bool>& stop) {
  const uint64_t due = next_;
  next_ += interval_;
  for (uint64_t now = MonoNs(); now < due && !stop.load(std::memory_order_relaxed);
       now = MonoNs()) {
    absl::SleepFor(absl::Nanoseconds(std::min<uint64_t>(due - now, 50'000'000)));
  }
  return due;
}

}  // namespace load
}  // namespace xenchan
