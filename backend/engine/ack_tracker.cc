// AckTracker: see ack_tracker.h.
#include "backend/engine/ack_tracker.h"

#include <algorithm>

namespace xenchan {

AckLevel ReachedLevel(const WriteStatus& ws, uint64_t epoch, uint64_t end) {
  if (ws.epoch != epoch) return AckLevel::kAccepted;
  if (ws.consumed_offset >= end) return AckLevel::kConsumed;
  if (ws.delivered_offset >= end) return AckLevel::kDelivered;
  return AckLevel::kAccepted;
}

AckTracker::AckTracker(AckLevel requested)
    : top_(std::max(static_cast<int>(requested), static_cast<int>(AckLevel::kAccepted))) {}

void AckTracker::Add(uint64_t sequence_id, uint64_t epoch, uint64_t end) {
  pending_.push_back(Pending{sequence_id, epoch, end, AckLevel::kAccepted});
}

AckTracker::Update AckTracker::Observe(const WriteStatus& ws) {
  Update update;
  if (pending_.empty()) return update;
  std::array<const Pending*, 4> best = {nullptr, nullptr, nullptr, nullptr};
  std::array<bool, 4> blocked = {false, false, false, false};
  std::deque<Pending> keep;
  struct Failed {
    Pending w;
    bool epoch_changed;
  };
  std::vector<Failed> failed;
  for (Pending& p : pending_) {
    const AckLevel now = ReachedLevel(ws, p.epoch, p.end);
    if (static_cast<int>(now) > static_cast<int>(p.reached)) p.reached = now;
    const bool same_epoch = ws.epoch == p.epoch;
    const bool done = static_cast<int>(p.reached) >= top_;
    if (!done && (!same_epoch || !ws.connected)) {
      failed.push_back(Failed{p, !same_epoch});
      continue;
    }
    for (int l = 1; l <= top_; ++l) {
      if (!blocked[l] && static_cast<int>(p.reached) >= l) {
        best[l] = &p;
      } else {
        blocked[l] = true;
      }
    }
    if (!done) keep.push_back(p);
  }
  for (int l = 1; l <= top_; ++l) {
    if (best[l] != nullptr && best[l]->seq > acked_[l]) {
      acked_[l] = best[l]->seq;
      update.acks.push_back(
          Ack{best[l]->seq, static_cast<AckLevel>(l), best[l]->epoch, best[l]->end});
    }
  }
  for (size_t i = 0; i < failed.size();) {
    size_t j = i;
    while (j + 1 < failed.size() && failed[j + 1].w.reached == failed[i].w.reached &&
           failed[j + 1].epoch_changed == failed[i].epoch_changed) {
      ++j;
    }
    update.rejections.push_back(Rejection{failed[i].w.seq, failed[j].w.seq, failed[i].w.reached,
                                          failed[i].w.epoch, failed[i].epoch_changed});
    i = j + 1;
  }
  pending_ = std::move(keep);
  return update;
}

AckTracker::Wanted AckTracker::NextProgress() const {
  Wanted w;
  if (pending_.empty()) return w;
  w.epoch = pending_.front().epoch;
  constexpr int kDelivered = static_cast<int>(AckLevel::kDelivered);
  constexpr int kConsumed = static_cast<int>(AckLevel::kConsumed);
  for (const Pending& p : pending_) {
    if (p.epoch != w.epoch) break;  // a later epoch's writes wait for that one's turn
    const int reached = static_cast<int>(p.reached);
    if (w.delivered == 0 && top_ >= kDelivered && reached < kDelivered) w.delivered = p.end;
    if (w.consumed == 0 && top_ >= kConsumed && reached < kConsumed) w.consumed = p.end;
    if ((w.delivered != 0 || top_ < kDelivered) && (w.consumed != 0 || top_ < kConsumed)) break;
  }
  return w;
}

}  // namespace xenchan
