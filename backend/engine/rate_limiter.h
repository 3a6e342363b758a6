// Fixed-window event allowance (XEN-CHANNELS §3.5.3, xenconsoled's
// RATE_LIMIT_ALLOWANCE / RATE_LIMIT_PERIOD): `allowance` counted events are
// allowed in each `period`; past that the caller keeps the port masked until
// the period ends, so the counted events cost the engine at most `allowance`
// wake-ups per period and cannot starve quiet channels. Ring channels hold
// their frontend (xenstore) changes to one; their events go through token
// buckets instead (token_bucket.h, ring_channel.h).
#ifndef XENCHAN_BACKEND_ENGINE_RATE_LIMITER_H_
#define XENCHAN_BACKEND_ENGINE_RATE_LIMITER_H_

#include <cstdint>

#include "absl/time/time.h"

namespace xenchan {

// Thread safety: none (owned by the engine thread). Times are passed in, so
// tests need no clock.
class RateLimiter {
 public:
  RateLimiter(uint32_t allowance, absl::Duration period) : allowance_(allowance), period_(period) {}

  // Counts one event at `now`. True if the port may be unmasked at once;
  // false if the allowance of the current period is used up: then keep the
  // port masked until period_end().
  bool Allow(absl::Time now);

  // End of the current period (meaningful after Allow returned false).
  absl::Time period_end() const { return period_start_ + period_; }
  // Periods in which the limit was hit.
  uint64_t limited_periods() const { return limited_periods_; }

 private:
  const uint32_t allowance_;
  const absl::Duration period_;
  absl::Time period_start_ = absl::InfinitePast();
  uint32_t count_ = 0;
  bool limited_this_period_ = false;
  uint64_t limited_periods_ = 0;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_RATE_LIMITER_H_
