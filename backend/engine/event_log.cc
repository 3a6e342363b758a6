// EventLog: revisions, retention and subscribers of lifecycle events.
#include "backend/engine/event_log.h"

#include "absl/strings/str_cat.h"

namespace xenchan {

EventLog::EventLog(uint64_t first_revision, size_t retain, std::shared_ptr<MemoryBudget> budget,
                   size_t memory_floor)
    : retain_(retain == 0 ? 1 : retain),
      memory_(std::move(budget), MemoryBudget::kHostWide, 0),
      revision_(first_revision) {
  if (memory_floor > 0) {
    MutexLock lock(&mu_);
    (void)memory_.Reserve(memory_floor);
  }
}

size_t EventLog::MemoryCost(const ChannelEvent& e) {
  const ChannelInfo& c = e.channel;
  size_t n = sizeof(ChannelEvent) + c.uid.size() + c.channel_id.size() + c.domain_uuid.size() +
             c.domain_name.size() + c.last_error.message.size() + c.toolstack_endpoint.size();
  if (c.write_lease.has_value()) {
    n += c.write_lease->session_id.size() + c.write_lease->identity.size();
  }
  if (e.lease_change.has_value()) {
    for (const auto* h : {&e.lease_change->holder, &e.lease_change->previous_holder}) {
      if (h->has_value()) n += (*h)->session_id.size() + (*h)->identity.size();
    }
  }
  return n;
}

size_t EventLog::memory_used() const {
  MutexLock lock(&mu_);
  return memory_.used();
}

uint64_t EventLog::Append(ChannelEvent event) {
  std::vector<std::function<void()>> notify;
  uint64_t rev;
  {
    MutexLock lock(&mu_);
    rev = ++revision_;
    event.revision = rev;
    const size_t cost = MemoryCost(event);
    auto pop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      memory_.Release(costs_.front());
      costs_.pop_front();
      events_.pop_front();
    };
    while (events_.size() >= retain_) pop();
    bool charged = memory_.Charge(cost, MemoryTier::kControl);
    while (!charged && !events_.empty()) {
      pop();
      charged = memory_.Charge(cost, MemoryTier::kControl);
    }
    if (charged) {
      events_.push_back(std::move(event));
      costs_.push_back(cost);
    }
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
    return absl::OutOfRangeError(absl::StrCat(
        "events after revision ", after, " are no longer retained; oldest retained is ", oldest));
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
