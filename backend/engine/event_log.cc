// EventLog: revisions, retention and subscribers of lifecycle events.
#include "backend/engine/event_log.h"

#include "absl/strings/str_cat.h"

namespace xenchan {

EventLog::EventLog(uint64_t first_revision, size_t retain)
    : retain_(retain == 0 ? 1 : retain), revision_(first_revision) {}

uint64_t EventLog::Append(ChannelEvent event) {
  std::vector<std::function<void()>> notify;
  uint64_t rev;
  {
    MutexLock lock(&mu_);
    rev = ++revision_;
    event.revision = rev;
    events_.push_back(std::move(event));
    while (events_.size() > retain_) events_.pop_front();
    for (const auto& [id, fn] : subscribers_) notify.push_back(fn);
  }
  MutexLock lock(&notify_mu_);
  for (auto& fn : notify) fn();
  return rev;
}

absl::StatusOr<std::vector<ChannelEvent>> EventLog::After(uint64_t after, size_t max) const {
  MutexLock lock(&mu_);
  if (after > revision_) {
    return absl::OutOfRangeError(
        absl::StrCat("revision ", after, " is in the future; current is ", revision_));
  }
  const uint64_t oldest = events_.empty() ? revision_ + 1 : events_.front().revision;
  if (after + 1 < oldest) {
    return absl::OutOfRangeError(absl::StrCat("events after revision ", after,
                                              " are no longer retained; oldest retained is ",
                                              oldest));
  }
  std::vector<ChannelEvent> out;
  for (size_t i = after + 1 - oldest; i < events_.size() && out.size() < max; ++i) {
    out.push_back(events_[i]);
  }
  return out;
}

uint64_t EventLog::revision() const {
  MutexLock lock(&mu_);
  return revision_;
}

uint64_t EventLog::Subscribe(std::function<void()> notify) {
  MutexLock lock(&mu_);
  const uint64_t id = next_subscriber_++;
  subscribers_[id] = std::move(notify);
  return id;
}

void EventLog::Unsubscribe(uint64_t id) {
  {
    MutexLock lock(&mu_);
    subscribers_.erase(id);
  }
  MutexLock wait(&notify_mu_);  // a callback copied before the erase has finished
}

}  // namespace xenchan
