// The engine's lifecycle event log: every change of a channel (appeared,
// connected, disconnected, epoch changed, state changed, stalled, unstalled,
// lease changed, gap, removed) gets one ChannelEvent with a revision one
// higher than the previous. Recent events are retained so a watcher can
// resume after a revision; subscribers are told (never blocked) that new
// events exist and pull them at their own pace, so a slow watcher only slows
// itself.
//
// Memory: with a MemoryBudget, retained events are charged to it (host-wide,
// an estimate of each event's size); a floor is reserved up front. When the
// budget has no room for a new event the oldest are let go first; if even
// that is not enough the new event is not retained (watchers resuming
// before it get OUT_OF_RANGE, as for any event no longer retained).
#ifndef XENCHAN_BACKEND_ENGINE_EVENT_LOG_H_
#define XENCHAN_BACKEND_ENGINE_EVENT_LOG_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "backend/engine/memory_budget.h"
#include "backend/engine/types.h"
#include "backend/util/mutex.h"

namespace xenchan {

// Thread-safe. Subscriber callbacks run on the appending thread with no lock
// of the log held; they must be quick and must not block.
class EventLog {
 public:
  // The first event gets `first_revision` + 1. At most `retain` events are
  // kept.
  EventLog(uint64_t first_revision, size_t retain, std::shared_ptr<MemoryBudget> budget = nullptr,
           size_t memory_floor = 0);

  // What one retained event is charged: its struct and its strings.
  static size_t MemoryCost(const ChannelEvent& event);
  // Bytes charged for retained events now.
  size_t memory_used() const ABSL_LOCKS_EXCLUDED(mu_);

  // Assigns the next revision to `event`, retains it, and notifies every
  // subscriber. Returns the revision.
  uint64_t Append(ChannelEvent event) ABSL_LOCKS_EXCLUDED(mu_);

  // The retained events with a revision greater than `after`, oldest first,
  // at most `max`. OUT_OF_RANGE if events after `after` are no longer
  // retained or `after` is in the future; the message names the oldest
  // revision still retained.
  absl::StatusOr<std::vector<ChannelEvent>> After(uint64_t after, size_t max) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // The revision of the newest event (the first revision if none yet).
  uint64_t revision() const ABSL_LOCKS_EXCLUDED(mu_);

  // Registers `notify`, called after every Append. Returns an id for
  // Unsubscribe. After Unsubscribe returns, `notify` is not running and will
  // not run again.
  uint64_t Subscribe(std::function<void()> notify) ABSL_LOCKS_EXCLUDED(mu_);
  void Unsubscribe(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_, notify_mu_);

 private:
  const size_t retain_;
  mutable Mutex mu_;
  std::deque<ChannelEvent> events_ ABSL_GUARDED_BY(mu_);
  std::deque<size_t> costs_ ABSL_GUARDED_BY(mu_);  // MemoryCost of events_[i]
  MemoryAccount memory_ ABSL_GUARDED_BY(mu_);
  uint64_t revision_ ABSL_GUARDED_BY(mu_);
  uint64_t next_subscriber_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, std::function<void()>> subscribers_ ABSL_GUARDED_BY(mu_);
  // Held while callbacks run, so Unsubscribe can wait for a running one.
  Mutex notify_mu_ ABSL_ACQUIRED_AFTER(mu_);
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_EVENT_LOG_H_
