// Token bucket for a guest's event channel: the per-channel event rate limits
// (ring_channel.h, "Event rate limits"). It holds up to `capacity` units and
// refills at `capacity` units per `period`; every charge is taken, even one
// the bucket cannot afford (the work it stands for is already done), and a
// bucket in debt tells its caller to keep the port masked only until the
// debt is repaid, not until the end of a window. A burst of `capacity` units
// costs nothing; past that, charges are held to the refill rate.
//
// This is xenconsoled's "allowance per period" (XEN-CHANNELS §3.5.3) without
// its fixed window, which masks a port for the rest of the window however
// small the excess.
#ifndef XENCHAN_BACKEND_ENGINE_TOKEN_BUCKET_H_
#define XENCHAN_BACKEND_ENGINE_TOKEN_BUCKET_H_

#include <cstdint>

#include "absl/time/time.h"

namespace xenchan {

// Thread safety: none (owned by the engine thread). Times are passed in, so
// tests inject their own clock and need no sleeps.
class TokenBucket {
 public:
  // `capacity` 0 allows nothing: every charge puts the bucket in debt for
  // `period` per unit. A capacity so large that one unit refills in under a
  // nanosecond never refuses.
  TokenBucket(uint64_t capacity, absl::Duration period);

  // Takes `units` at `now`. True if the bucket could afford them (the port
  // may be unmasked at once); false if it is now in debt: keep the port
  // masked until ready_at(). A clock that went backwards keeps the balance.
  bool Charge(absl::Time now, uint64_t units);

  // When the debt is repaid (the balance is back to zero); meaningful after
  // Charge returned false.
  absl::Time ready_at() const { return full_at_ - burst_; }
  // Times the bucket went from affording its charges to refusing one.
  uint64_t limited_episodes() const { return limited_episodes_; }

 private:
  const absl::Duration per_unit_;  // refill time of one unit
  const absl::Duration burst_;     // refill time of a full bucket
  // When the bucket would be full again (the past: it is full).
  absl::Time full_at_ = absl::InfinitePast();
  absl::Time last_now_ = absl::InfinitePast();
  bool limited_ = false;
  uint64_t limited_episodes_ = 0;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_TOKEN_BUCKET_H_
