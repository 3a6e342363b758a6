// Channel: shared per-channel state (see the header).
#include "backend/engine/channel.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace xenchan {
namespace {

constexpr size_t kMaxNotices = 64;
constexpr size_t kEpochHistory = 32;

void SignalFd(int fd) {
  if (fd < 0) return;
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(fd, &one, sizeof(one));
}

}  // namespace

const size_t Channel::kSessionMemory =
    sizeof(Channel::SessionSlot) + kMaxNotices * sizeof(SessionRecord);

Channel::Channel(ChannelIdentity identity, ChannelConfig effective_config, std::string domain_name,
                 size_t max_readers, std::shared_ptr<Wakeup> wakeup, std::shared_ptr<EventLog> log,
                 absl::Time now, std::shared_ptr<MemoryBudget> budget, size_t memory_floor)
    : identity_(std::move(identity)),
      max_readers_(max_readers),
      wakeup_(std::move(wakeup)),
      log_(std::move(log)),
      buffer_(effective_config.buffer_limit_bytes,
              effective_config.overflow_policy.value_or(OverflowPolicy::kBlock), 0),
      queue_(effective_config.write_queue_limit_bytes),
      memory_(std::move(budget), identity_.domid, identity_.serial) {
  if (memory_floor > 0) {
    MutexLock lock(&mu_);
    (void)memory_.Reserve(memory_floor);  // none if the budget cannot take it now
  }
  info_.uid = identity_.uid;
  info_.channel_id = identity_.channel_id;
  info_.domain_uuid = identity_.domain_uuid;
  info_.domain_name = std::move(domain_name);
  info_.domid = identity_.domid;
  info_.devid = identity_.devid;
  info_.transport = identity_.transport;
  info_.config = effective_config;
  info_.max_ack_level =
      identity_.transport == Transport::kRing ? AckLevel::kConsumed : AckLevel::kDelivered;
  info_.create_time = now;
  info_.counters.start_time = now;
}

ChannelConfig Channel::config() const {
  MutexLock lock(&mu_);
  return info_.config;
}

ChannelInfo Channel::Info() const {
  MutexLock lock(&mu_);
  return InfoLocked();
}

ChannelInfo Channel::InfoLocked() const {
  ChannelInfo info = info_;
  info.epoch = buffer_.epoch();
  info.stalled = info_.stall_start_time != absl::InfinitePast();
  info.from_guest.earliest = buffer_.earliest();
  info.from_guest.next = buffer_.end();
  info.from_guest.buffered_bytes = buffer_.retained_bytes();
  // Unread: retained bytes beyond what the fastest reader was handed.
  uint64_t furthest = 0;
  for (const auto& [id, slot] : sessions_) furthest = std::max(furthest, slot.cursor.seq);
  const ReadCursor oldest = buffer_.OldestCursor();
  const ReadCursor tail = buffer_.TailCursor();
  info.from_guest.unread_bytes = tail.seq - std::min(tail.seq, std::max(furthest, oldest.seq));
  info.to_guest.accepted_offset = queue_.accepted_offset();
  info.to_guest.delivered_offset = queue_.delivered_offset();
  info.to_guest.consumed_offset = queue_.consumed_offset();
  info.to_guest.queued_bytes = queue_.queued();
  info.counters.bytes_dropped = buffer_.bytes_dropped();
  info.write_lease = lease_;
  info.observer_count = 0;
  for (const auto& [id, slot] : sessions_) {
    if (!slot.waiting_for_lease) ++info.observer_count;
  }
  return info;
}

void Channel::Emit(ChannelEventType type, std::optional<EpochChange> epoch_change,
                   std::optional<DropReport> drop, std::optional<LeaseChange> lease,
                   RemovalReason removal) {
  ChannelEvent event;
  event.type = type;
  event.time = absl::Now();
  event.channel = Info();
  event.epoch_change = std::move(epoch_change);
  event.drop_report = std::move(drop);
  event.lease_change = std::move(lease);
  event.removal_reason = removal;
  log_->Append(std::move(event));
}

void Channel::RunCallbacks(std::vector<std::function<void()>>& callbacks) {
  for (auto& cb : callbacks) cb();
}

void Channel::WakeSessionsLocked(std::vector<std::function<void()>>* callbacks) {
  for (auto& [id, slot] : sessions_) {
    slot.wake_pending = true;
    SignalFd(slot.notify_fd);
    if (slot.on_ready) callbacks->push_back(slot.on_ready);
  }
}

void Channel::WakeForProgressLocked(uint64_t delivered_before,
                                    std::vector<std::function<void()>>* callbacks) {
  const uint64_t epoch = queue_.epoch();
  const uint64_t delivered = queue_.delivered_offset();
  const uint64_t consumed = queue_.consumed_offset();
  for (auto& [id, slot] : sessions_) {
    bool wake = slot.progress_wakeups == ProgressWakeups::kAll;
    if (!wake && slot.wants_room && delivered > delivered_before) {
      slot.wants_room = false;
      wake = true;
    }
    if (!wake && slot.progress_epoch == epoch &&
        ((slot.wake_delivered_at != 0 && delivered >= slot.wake_delivered_at) ||
         (slot.wake_consumed_at != 0 && consumed >= slot.wake_consumed_at))) {
      slot.wake_delivered_at = 0;
      slot.wake_consumed_at = 0;
      wake = true;
    }
    if (!wake) continue;
    slot.wake_pending = true;
    SignalFd(slot.notify_fd);
    if (slot.on_ready) callbacks->push_back(slot.on_ready);
  }
}

void Channel::PushNoticeLocked(SessionSlot& slot, SessionRecord record) {
  if (slot.notices.size() >= kMaxNotices) {
    // Drop the oldest state/stall notice: later ones supersede it.
    auto it = std::find_if(slot.notices.begin(), slot.notices.end(), [](const SessionRecord& r) {
      return r.kind == SessionRecord::Kind::kStateChange || r.kind == SessionRecord::Kind::kStall;
    });
    if (it != slot.notices.end()) slot.notices.erase(it);
  }
  slot.notices.push_back(std::move(record));
}

StateChange Channel::StateChangeLocked() const {
  StateChange sc;
  sc.state = info_.state;
  sc.frontend_state = info_.frontend_state;
  sc.backend_state = info_.backend_state;
  sc.error = info_.last_error;
  sc.time = absl::Now();
  return sc;
}

bool Channel::SetState(ChannelState state, XenbusState fe, XenbusState be,
                       std::optional<ChannelError> error) {
  std::vector<std::function<void()>> callbacks;
  {
    MutexLock lock(&mu_);
    const bool changed = info_.state != state || info_.frontend_state != fe ||
                         info_.backend_state != be || error.has_value();
    if (!changed) return false;
    info_.state = state;
    info_.frontend_state = fe;
    info_.backend_state = be;
    if (error.has_value()) info_.last_error = *error;
    SessionRecord rec;
    rec.kind = SessionRecord::Kind::kStateChange;
    rec.state = StateChangeLocked();
    for (auto& [id, slot] : sessions_) PushNoticeLocked(slot, rec);
    WakeSessionsLocked(&callbacks);
  }
  RunCallbacks(callbacks);
  return true;
}

EpochChange Channel::BeginEpoch(uint64_t epoch, EpochChangeReason reason, absl::Time now) {
  std::vector<std::function<void()>> callbacks;
  EpochChange change;
  {
    MutexLock lock(&mu_);
    change.previous_epoch = buffer_.epoch();
    change.previous_end_offset =
        buffer_.end().epoch == change.previous_epoch ? buffer_.end().offset : 0;
    change.epoch = buffer_.StartEpoch(epoch);
    change.reason = reason;
    change.time = now;
    epoch_changes_.push_back(change);
    while (epoch_changes_.size() > kEpochHistory) epoch_changes_.pop_front();
    info_.counters.bytes_discarded_to_guest += queue_.Reset(change.epoch);
    SyncMemoryLocked();
    ++info_.counters.epochs;
    info_.connect_time = now;
    WakeSessionsLocked(&callbacks);
  }
  RunCallbacks(callbacks);
  return change;
}

void Channel::DiscardQueuedWrites() {
  std::vector<std::function<void()>> callbacks;
  {
    MutexLock lock(&mu_);
    info_.counters.bytes_discarded_to_guest += queue_.DiscardQueued();
    SyncMemoryLocked();
    WakeSessionsLocked(&callbacks);
  }
  RunCallbacks(callbacks);
}

size_t Channel::OutputCapacityLocked() const {
  const size_t held = buffer_.retained_bytes() + output_reserved_;
  const size_t room = memory_.Headroom();
  return room > MemoryBudget::kUnlimited - held ? MemoryBudget::kUnlimited : held + room;
}

void Channel::SyncMemoryLocked() {
  (void)memory_.Resize(buffer_.retained_bytes() + output_reserved_ + queue_.queued() +
                       session_bytes_);
}

size_t Channel::BufferSpace() const {
  MutexLock lock(&mu_);
  return buffer_.Space(OutputCapacityLocked());
}

size_t Channel::ReserveOutput(size_t max) {
  MutexLock lock(&mu_);
  return ReserveOutputLocked(max);
}

size_t Channel::ReserveOutputLocked(size_t max) {
  output_reservation_open_ = true;
  const size_t headroom = memory_.Headroom();
  const size_t capacity = OutputCapacityLocked();
  const size_t want = std::min(max, buffer_.Space(capacity));
  // Retained after the append: at most the buffer's own limit.
  const size_t retained = buffer_.retained_bytes();
  const size_t target = std::min(buffer_.limit(), retained + want);
  const size_t held = retained + output_reserved_;
  size_t short_by = 0;
  if (target > held) {
    const size_t extra = std::min(target - held, headroom);
    if (memory_.Charge(extra)) {
      output_reserved_ += extra;
      short_by = target - held - extra;
    } else {
      short_by = target - held;  // lost a race with a writer: the append drops or waits
    }
  }
  // Held back by the budget rather than by the buffer's own limit (BLOCK),
  // or about to drop for want of memory (DROP_OLDEST).
  const bool starved = buffer_.policy() == OverflowPolicy::kBlock
                           ? buffer_.Space(capacity) < std::min(max, buffer_.Space())
                           : short_by > 0;
  if (starved && memory_.budget() != nullptr) {
    memory_.budget()->Starved(identity_.domid, std::max<size_t>(short_by, 1), identity_.serial);
  }
  return want;
}

uint64_t Channel::AppendOutput(const char* data, size_t n) {
  std::vector<std::function<void()>> callbacks;
  uint64_t dropped;
  {
    MutexLock lock(&mu_);
    if (n > 0 && !output_reservation_open_) (void)ReserveOutputLocked(n);
    output_reservation_open_ = false;
    const size_t capacity = buffer_.retained_bytes() + output_reserved_;
    if (n == 0) {
      output_reserved_ = 0;
      SyncMemoryLocked();
      return 0;
    }
    const uint64_t before = buffer_.bytes_dropped();
    const Position end_before = buffer_.end();
    const bool ok = buffer_.Append(absl::string_view(data, n), capacity).ok();
    output_reserved_ = 0;
    SyncMemoryLocked();
    if (!ok) return 0;  // caller broke ReserveOutput()
    dropped = buffer_.bytes_dropped() - before;
    if (dropped > 0 && !drop_first_.has_value()) drop_first_ = end_before;
    info_.counters.bytes_from_guest += n;
    WakeSessionsLocked(&callbacks);
  }
  RunCallbacks(callbacks);
  return dropped;
}

void Channel::OnMemoryReleased() {
  std::vector<std::function<void()>> callbacks;
  {
    MutexLock lock(&mu_);
    if (!writers_wait_for_memory_) return;
    writers_wait_for_memory_ = false;
    WakeSessionsLocked(&callbacks);
  }
  RunCallbacks(callbacks);
}

size_t Channel::TrimReplay() {
  MutexLock lock(&mu_);
  const size_t n = buffer_.TrimHanded(MemoryBudget::kUnlimited);
  if (n > 0) SyncMemoryLocked();
  return n;
}

size_t Channel::memory_used() const {
  MutexLock lock(&mu_);
  return memory_.used();
}

size_t Channel::PeekInput(char* dst, size_t max) const {
  MutexLock lock(&mu_);
  return queue_.Peek(dst, max);
}

void Channel::InputProgress(size_t delivered, uint64_t consumed_offset) {
  std::vector<std::function<void()>> callbacks;
  {
    MutexLock lock(&mu_);
    const uint64_t d0 = queue_.delivered_offset();
    const uint64_t c0 = queue_.consumed_offset();
    queue_.MarkDelivered(delivered);
    queue_.SetConsumed(consumed_offset);
    if (delivered > 0) SyncMemoryLocked();
    info_.counters.bytes_to_guest += delivered;
    if (queue_.delivered_offset() == d0 && queue_.consumed_offset() == c0) return;
    WakeForProgressLocked(d0, &callbacks);
  }
  RunCallbacks(callbacks);
}

int Channel::UpdateStall(absl::Time now, bool draining) {
  std::vector<std::function<void()>> callbacks;
  int result = 0;
  {
    MutexLock lock(&mu_);
    const bool full = draining && buffer_.stalled(OutputCapacityLocked());
    const bool was = info_.stall_start_time != absl::InfinitePast();
    if (full == was) return 0;
    SessionRecord rec;
    rec.kind = SessionRecord::Kind::kStall;
    if (full) {
      info_.stall_start_time = now;
      ++info_.counters.stalls;
      result = 1;
    } else {
      info_.stall_start_time = absl::InfinitePast();
      result = -1;
    }
    rec.stall.stalled = full;
    rec.stall.stall_start_time = full ? now : absl::InfinitePast();
    rec.stall.buffered_bytes = buffer_.retained_bytes();
    for (auto& [id, slot] : sessions_) PushNoticeLocked(slot, rec);
    WakeSessionsLocked(&callbacks);
  }
  RunCallbacks(callbacks);
  return result;
}

void Channel::CountEvent(bool from_guest) {
  MutexLock lock(&mu_);
  if (from_guest) {
    ++info_.counters.events_from_guest;
  } else {
    ++info_.counters.events_to_guest;
  }
}

void Channel::CountSpuriousEvent() {
  MutexLock lock(&mu_);
  ++info_.counters.spurious_events_from_guest;
}

void Channel::CountFrontendRateLimited() {
  MutexLock lock(&mu_);
  ++info_.counters.frontend_rate_limited_periods;
}

void Channel::CountRateLimited() {
  MutexLock lock(&mu_);
  ++info_.counters.rate_limited_periods;
}

void Channel::CountBadRing(const std::string& message, absl::Time now, bool report) {
  MutexLock lock(&mu_);
  ++info_.counters.bad_ring_rounds;
  if (report) info_.last_error = {ChannelErrorKind::kBadRingIndices, message, now};
}

void Channel::CountBadXenstore() {
  MutexLock lock(&mu_);
  ++info_.counters.bad_xenstore_values;
}

std::optional<DropReport> Channel::TakeDropReport() {
  MutexLock lock(&mu_);
  const uint64_t dropped = buffer_.bytes_dropped();
  if (dropped == dropped_reported_) return std::nullopt;
  DropReport report;
  report.dropped_bytes = dropped - dropped_reported_;
  report.first_position = drop_first_.value_or(buffer_.earliest());
  report.end_position = buffer_.earliest();
  dropped_reported_ = dropped;
  drop_first_.reset();
  return report;
}

void Channel::MarkRemoved(absl::Status status) {
  std::vector<std::function<void()>> callbacks;
  {
    MutexLock lock(&mu_);
    removed_ = true;
    removed_status_ = std::move(status);
    lease_.reset();
    lease_waiters_.clear();
    for (auto& [id, slot] : sessions_) {
      slot.has_lease = false;
      slot.waiting_for_lease = false;
    }
    WakeSessionsLocked(&callbacks);
  }
  RunCallbacks(callbacks);
}

bool Channel::removed() const {
  MutexLock lock(&mu_);
  return removed_;
}

void Channel::SetDomainName(const std::string& name) {
  MutexLock lock(&mu_);
  info_.domain_name = name;
}

void Channel::SetDomainDown() {
  SetState(ChannelState::kDomainDown, XenbusState::kUnknown, XenbusState::kUnknown, std::nullopt);
  DiscardQueuedWrites();
}

void Channel::Rebind(uint32_t domid, uint32_t devid, const std::string& domain_name) {
  MutexLock lock(&mu_);
  identity_.domid = domid;
  identity_.devid = devid;
  info_.domid = domid;
  info_.devid = devid;
  info_.domain_name = domain_name;
  memory_.MoveToDomain(domid);
}

void Channel::SetToolstackEndpoint(const std::string& endpoint) {
  MutexLock lock(&mu_);
  info_.toolstack_endpoint = endpoint;
}

absl::Status Channel::CheckConfig(const ChannelConfig& config) const {
  MutexLock lock(&mu_);
  if (config.write_queue_limit_bytes < queue_.queued()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "a write queue limit of ", config.write_queue_limit_bytes, " bytes is below the ",
        queue_.queued(), " bytes queued for the guest now; retry once they are delivered"));
  }
  return absl::OkStatus();
}

void Channel::UpdateConfig(const ChannelConfig& config) {
  std::vector<std::function<void()>> callbacks;
  {
    MutexLock lock(&mu_);
    queue_.SetLimit(config.write_queue_limit_bytes);
    const Position earliest = buffer_.earliest();
    const uint64_t dropped_before = buffer_.bytes_dropped();
    buffer_.SetPolicy(config.overflow_policy.value_or(OverflowPolicy::kBlock));
    if (buffer_.SetLimit(config.buffer_limit_bytes) > 0) SyncMemoryLocked();
    if (buffer_.bytes_dropped() > dropped_before && !drop_first_.has_value()) {
      drop_first_ = earliest;
    }
    info_.config = config;
    WakeSessionsLocked(&callbacks);
  }
  RunCallbacks(callbacks);
}

void Channel::SetMaxAckLevel(AckLevel level) {
  MutexLock lock(&mu_);
  info_.max_ack_level = level;
}

void Channel::ConvertLocked(std::vector<OutputRecord> in, std::vector<SessionRecord>* out) const {
  for (OutputRecord& r : in) {
    SessionRecord rec;
    rec.position = r.position;
    switch (r.kind) {
      case OutputRecord::Kind::kData:
        rec.kind = SessionRecord::Kind::kData;
        rec.data = std::move(r.data);
        break;
      case OutputRecord::Kind::kGap:
        rec.kind = SessionRecord::Kind::kGap;
        rec.lost = r.lost;
        break;
      case OutputRecord::Kind::kEpoch: {
        rec.kind = SessionRecord::Kind::kEpochChange;
        rec.epoch_change.previous_epoch = r.previous_epoch;
        rec.epoch_change.epoch = r.position.epoch;
        rec.epoch_change.previous_end_offset = r.previous_end_offset;
        for (const EpochChange& e : epoch_changes_) {
          if (e.epoch == r.position.epoch) {
            rec.epoch_change.reason = e.reason;
            rec.epoch_change.time = e.time;
          }
        }
        break;
      }
    }
    out->push_back(std::move(rec));
  }
}

std::optional<LeaseChange> Channel::GrantToWaiterLocked(absl::Time now) {
  if (lease_.has_value() || removed_) return std::nullopt;
  while (!lease_waiters_.empty()) {
    const uint64_t next = lease_waiters_.front();
    lease_waiters_.pop_front();
    auto it = sessions_.find(next);
    if (it == sessions_.end()) continue;
    SessionSlot& slot = it->second;
    slot.waiting_for_lease = false;
    slot.has_lease = true;
    lease_ =
        LeaseHolder{absl::StrCat("s", identity_.serial, "-", next), slot.identity, slot.kind, now};
    lease_slot_ = next;
    slot.wake_pending = true;
    SignalFd(slot.notify_fd);
    LeaseChange change;
    change.holder = lease_;
    return change;
  }
  return std::nullopt;
}

}  // namespace xenchan
