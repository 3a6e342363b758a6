// RateLimiter: fixed-window event allowance.
#include "backend/engine/rate_limiter.h"

namespace xenchan {

bool RateLimiter::Allow(absl::Time now) {
  if (period_start_ == absl::InfinitePast() || now >= period_start_ + period_ ||
      now < period_start_) {
    period_start_ = now;
    count_ = 0;
    limited_this_period_ = false;
  }
  ++count_;
  if (count_ <= allowance_) return true;
  if (!limited_this_period_) {
    limited_this_period_ = true;
    ++limited_periods_;
  }
  return false;
}

}  // namespace xenchan
