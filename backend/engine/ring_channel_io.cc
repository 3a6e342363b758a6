// RingChannel: ring I/O of one ring channel and the event rate limits that
// bound what a guest's events may cost (see the header's "Ring I/O" and
// "Event rate limits").
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "backend/engine/ring_channel.h"

namespace xenchan {
namespace {

constexpr int kDrainRounds = 8;  // per Service call, to stay fair to other channels
constexpr absl::Duration kBadRingEventInterval = absl::Seconds(1);

}  // namespace

void RingChannel::BadRing(const absl::Status& status, absl::Time now) {
  const bool first = !bad_ring_reported_;
  bad_ring_reported_ = true;
  channel_->CountBadRing(std::string(status.message()), now, first);
  // An event for the first bad round of a streak, but at most one a second:
  // a guest alternating sane and corrupt indices must not flood the
  // engine-wide event log (and push other channels' events out of it).
  if (first && now >= last_bad_ring_event_ + kBadRingEventInterval) {
    last_bad_ring_event_ = now;
    channel_->Emit(ChannelEventType::kStateChanged);
  }
}

bool RingChannel::Service(absl::Time now) {
  if (!data_active_ || !ring_.has_value()) return false;
  bool moved = false;     // we moved an index
  bool wake = false;      // ... that a waiting guest must hear of
  bool progress = false;  // the guest moved in_cons since we last looked
  bool ring_ok = true;
  char buf[ConsoleRing::kOutSize];
  for (int round = 0; round < kDrainRounds; ++round) {
    // Reserved against the memory budget; AppendOutput settles it.
    const size_t want = channel_->ReserveOutput(sizeof(buf));
    if (want == 0) break;
    absl::StatusOr<size_t> n = ring_->DrainOut(buf, want);
    if (!n.ok()) {
      channel_->AppendOutput(buf, 0);
      BadRing(n.status(), now);
      ring_ok = false;
      break;
    }
    if (channel_->AppendOutput(buf, *n) > 0) gap_pending_ = true;
    if (*n == 0) break;
    moved = true;
    // A guest waits for room only when it found none (see DrainOut): a
    // notify after every drain would wake it for nothing, on every reply.
    wake = wake || ring_->out_was_full();
  }
  const int stall = channel_->UpdateStall(now, /*draining=*/true);
  if (stall > 0) channel_->Emit(ChannelEventType::kStalled);
  if (stall < 0) channel_->Emit(ChannelEventType::kUnstalled);

  size_t put = 0;
  uint64_t consumed = 0;
  if (ring_ok) {
    absl::StatusOr<size_t> free_in = ring_->InFree();
    if (!free_in.ok()) {
      BadRing(free_in.status(), now);
      ring_ok = false;
    } else if (*free_in > 0) {
      const size_t n = channel_->PeekInput(buf, std::min<size_t>(*free_in, ConsoleRing::kInSize));
      if (n > 0) {
        absl::StatusOr<size_t> w = ring_->FillIn(buf, n);
        if (!w.ok()) {
          BadRing(w.status(), now);
          ring_ok = false;
        } else {
          put = *w;
          moved = moved || put > 0;
          wake = wake || put > 0;
        }
      }
    }
  }
  if (ring_ok) {
    absl::StatusOr<uint64_t> c = ring_->InConsumed();
    if (c.ok()) {
      progress = *c != in_consumed_seen_;
      in_consumed_seen_ = *c;
      consumed = *c > in_base_ ? *c - in_base_ : 0;
    } else {
      BadRing(c.status(), now);
      ring_ok = false;
    }
  }
  if (ring_ok) {
    channel_->InputProgress(put, consumed);
    bad_ring_reported_ = false;
  } else if (put > 0) {
    channel_->InputProgress(put, 0);
  }
  wake = wake || kick_pending_;
  kick_pending_ = false;
  if (wake && local_port_.has_value()) {
    // A failing notify means the guest closed its port: the frontend state
    // will tell us what happened (§3.5.5).
    if (host_->evtchn().Notify(*local_port_).ok()) channel_->CountEvent(/*from_guest=*/false);
  }
  if (gap_pending_) MaybeEmitGap(now);
  return moved || progress;
}

void RingChannel::MaybeEmitGap(absl::Time now) {
  if (now < last_gap_event_ + kGapEventInterval) return;  // OnTimer comes back
  gap_pending_ = false;
  std::optional<DropReport> report = channel_->TakeDropReport();
  if (!report.has_value()) return;
  last_gap_event_ = now;
  channel_->Emit(ChannelEventType::kGap, std::nullopt, report);
}

void RingChannel::OnPortEvent(absl::Time now) {
  channel_->CountEvent(/*from_guest=*/true);
  Service(now);
  // What the guest moved since its previous event: bytes it produced into
  // `out` that we drained, plus bytes of `in` it consumed (both monotonic
  // and checked against the ring size, so scribbled indices count for
  // nothing). Service passes that did not come from an event (a session
  // wrote, memory was released) do not take this credit away.
  const uint64_t progress_now = ring_.has_value() ? ring_->out_consumed() + in_consumed_seen_ : 0;
  const uint64_t progress =
      progress_now > event_progress_seen_ ? progress_now - event_progress_seen_ : 0;
  event_progress_seen_ = progress_now;
  // A guest notifies once per move, and one pass may have covered two
  // moves (consumed input and the answer to it): an event that moved data
  // leaves credit for one more event without progress, charged as it was.
  // See the header: a spurious event is charged to both buckets; one that
  // moved data only for the part of an event its bytes do not pay for.
  uint64_t cap_units = kCapUnitsPerEvent;
  bool spurious = false;
  if (progress > 0) {
    cap_units -= std::min<uint64_t>(progress, kCapUnitsPerEvent);
    duplicate_units_ = cap_units;
  } else if (duplicate_units_.has_value()) {
    cap_units = *duplicate_units_;
    duplicate_units_.reset();
  } else {
    spurious = true;
  }
  if (spurious) channel_->CountSpuriousEvent();
  if (!local_port_.has_value()) return;
  bool allow = cap_units == 0 || cap_bucket_.Charge(now, cap_units);
  absl::Time until = allow ? absl::InfinitePast() : cap_bucket_.ready_at();
  if (spurious && !spurious_bucket_.Charge(now, 1)) {
    allow = false;
    until = std::max(until, spurious_bucket_.ready_at());
  }
  if (allow) {
    (void)host_->evtchn().Unmask(*local_port_);
    return;
  }
  // In debt: leave the port masked until the debt is repaid.
  masked_ = true;
  unmask_at_ = until;
  const uint64_t limited = cap_bucket_.limited_episodes() + spurious_bucket_.limited_episodes();
  if (limited != limited_seen_) {
    limited_seen_ = limited;
    channel_->CountRateLimited();
  }
}

}  // namespace xenchan
