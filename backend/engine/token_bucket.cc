// TokenBucket: the balance is kept as the time the bucket would be full
// again (full_at_), so it refills exactly, in integer nanoseconds, with no
// per-call arithmetic on fractions of a token.
#include "backend/engine/token_bucket.h"

#include <algorithm>

namespace xenchan {
namespace {

absl::Duration PerUnit(uint64_t capacity, absl::Duration period) {
  if (capacity == 0) return period;
  return period / static_cast<int64_t>(std::min<uint64_t>(capacity, INT64_MAX));
}

}  // namespace

TokenBucket::TokenBucket(uint64_t capacity, absl::Duration period)
    : per_unit_(PerUnit(capacity, period)), burst_(capacity == 0 ? absl::ZeroDuration() : period) {}

bool TokenBucket::Charge(absl::Time now, uint64_t units) {
  if (now < last_now_ && full_at_ != absl::InfinitePast()) {
    full_at_ -= last_now_ - now;  // the same balance against the new clock
  }
  last_now_ = now;
  full_at_ = std::max(full_at_, now) + per_unit_ * static_cast<int64_t>(units);
  // In debt when the bucket needs longer than a full refill to be full.
  const bool allowed = full_at_ - now <= burst_;
  if (!allowed && !limited_) ++limited_episodes_;
  limited_ = !allowed;
  return allowed;
}

}  // namespace xenchan
