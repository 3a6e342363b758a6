// Session: a reader / writer handle on one channel (see the header).
#include "backend/engine/session.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace xenchan {

absl::StatusOr<std::unique_ptr<Session>> Session::Open(std::shared_ptr<Channel> channel,
                                                       SessionOptions options) {
  Channel& ch = *channel;
  std::optional<LeaseChange> lease_change;
  std::optional<LeaseChange> lost_change;
  std::vector<std::function<void()>> callbacks;
  std::unique_ptr<Session> session;
  {
    MutexLock lock(&ch.mu_);
    auto fail = [](absl::Status s) { return s; };
    if (ch.removed_) return fail(ch.removed_status_);
    if (ch.info_.state == ChannelState::kClosing || ch.info_.state == ChannelState::kClosed) {
      return fail(absl::FailedPreconditionError("channel is closing"));
    }
    size_t readers = 0;
    for (const auto& [id, slot] : ch.sessions_) readers += slot.waiting_for_lease ? 0 : 1;
    if (readers >= ch.max_readers_) {
      return fail(absl::ResourceExhaustedError(
          absl::StrCat("channel already has ", readers, " reading sessions (the limit)")));
    }
    if (!ch.memory_.Charge(Channel::kSessionMemory, MemoryTier::kControl)) {
      return fail(MemoryBudgetError(absl::StrCat(
          "the memory budget has no room for another session of domain ", ch.identity_.domid)));
    }
    ch.session_bytes_ += Channel::kSessionMemory;
    auto fail_charged = [&](absl::Status s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ch.mu_) {
      ch.session_bytes_ -= Channel::kSessionMemory;
      ch.memory_.Release(Channel::kSessionMemory);
      return fail(std::move(s));
    };
    Channel::SessionSlot slot;
    slot.role = options.role;
    slot.kind = options.kind;
    slot.identity = options.identity;
    slot.on_ready = std::move(options.on_ready);
    slot.progress_wakeups = options.progress_wakeups;
    // Start point.
    if (options.start.position.has_value()) {
      auto cursor = ch.buffer_.CursorAt(*options.start.position);
      if (!cursor.ok()) {
        const Position e = ch.buffer_.earliest();
        return fail_charged(absl::OutOfRangeError(absl::StrCat(
            cursor.status().message(), " (earliest retained ", e.epoch, ":", e.offset, ")")));
      }
      slot.cursor = *cursor;
    } else if (options.start.anchor == ReadStart::Anchor::kEarliest) {
      slot.cursor = ch.buffer_.OldestCursor();
    } else {
      slot.cursor = ch.buffer_.TailCursor();
    }
    const uint64_t slot_id = ch.next_session_++;
    const std::string id = absl::StrCat("s", ch.identity_.serial, "-", slot_id);
    const absl::Time now = absl::Now();
    if (options.role == SessionRole::kWriter) {
      if (ch.lease_.has_value()) {
        if (options.takeover) {
          auto old = ch.sessions_.find(ch.lease_slot_);
          if (old != ch.sessions_.end()) {
            old->second.has_lease = false;
            old->second.lease_lost = true;
          }
          lost_change.emplace();
          lost_change->previous_holder = ch.lease_;
          lost_change->taken_over = true;
          ch.lease_.reset();
        } else if (options.queue_for_lease) {
          slot.waiting_for_lease = true;
          ch.lease_waiters_.push_back(slot_id);
        } else {
          return fail_charged(absl::FailedPreconditionError(
              absl::StrCat("write lease held by session ", ch.lease_->session_id, " of '",
                           ch.lease_->identity, "'")));
        }
      }
      if (!ch.lease_.has_value() && !slot.waiting_for_lease) {
        slot.has_lease = true;
        ch.lease_ = LeaseHolder{id, options.identity, options.kind, now};
        ch.lease_slot_ = slot_id;
        if (lost_change.has_value()) {
          lost_change->holder = ch.lease_;
        } else {
          lease_change.emplace();
          lease_change->holder = ch.lease_;
        }
      }
    }
    ch.sessions_.emplace(slot_id, std::move(slot));
    if (lost_change.has_value()) {
      // Tell the previous holder.
      for (auto& [sid, s] : ch.sessions_) {
        if (s.lease_lost && !s.lease_lost_delivered) {
          SessionRecord rec;
          rec.kind = SessionRecord::Kind::kLeaseLost;
          rec.new_holder = ch.lease_;
          ch.PushNoticeLocked(s, std::move(rec));
        }
      }
      ch.WakeSessionsLocked(&callbacks);
    }
    session.reset(new Session(channel, slot_id, id, options.role));
    session->start_position_ = ch.buffer_.PositionOfCursor(ch.sessions_.at(slot_id).cursor);
    session->info_at_open_ = ch.InfoLocked();
  }
  Channel::RunCallbacks(callbacks);
  const bool report = options.kind != SessionKind::kCall;
  if (report && lost_change.has_value()) {
    ch.Emit(ChannelEventType::kLeaseChanged, std::nullopt, std::nullopt, lost_change);
  } else if (report && lease_change.has_value()) {
    ch.Emit(ChannelEventType::kLeaseChanged, std::nullopt, std::nullopt, lease_change);
  }
  return session;
}

Session::~Session() {
  Close();
  const int fd = notify_fd_.load();
  if (fd >= 0) close(fd);
}

int Session::notify_fd() const {
  const int known = notify_fd_.load(std::memory_order_acquire);
  if (known >= 0) return known;
  Channel& ch = *channel_;
  MutexLock lock(&ch.mu_);
  if (notify_fd_.load() >= 0) return notify_fd_.load();  // made meanwhile
  const int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return -1;
  auto it = ch.sessions_.find(slot_);
  // A closed session reads as readable: its owner's next Read says so.
  const bool pending = it == ch.sessions_.end() || it->second.wake_pending;
  if (it != ch.sessions_.end()) it->second.notify_fd = fd;
  if (pending) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(fd, &one, sizeof(one));
  }
  notify_fd_.store(fd, std::memory_order_release);
  return fd;
}

void Session::Close() {
  if (closed_.exchange(true)) return;
  Channel& ch = *channel_;
  std::optional<LeaseChange> released;
  std::optional<LeaseChange> granted;
  bool report_release = false;
  bool report_grant = false;
  std::vector<std::function<void()>> callbacks;
  {
    MutexLock lock(&ch.mu_);
    auto it = ch.sessions_.find(slot_);
    if (it == ch.sessions_.end()) return;
    if (it->second.has_lease && ch.lease_slot_ == slot_ && ch.lease_.has_value()) {
      released.emplace();
      released->previous_holder = ch.lease_;
      report_release = ch.lease_->kind != SessionKind::kCall;
      ch.lease_.reset();
    }
    ch.sessions_.erase(it);
    ch.session_bytes_ -= std::min(ch.session_bytes_, Channel::kSessionMemory);
    ch.SyncMemoryLocked();
    granted = ch.GrantToWaiterLocked(absl::Now());
    if (granted.has_value()) {
      report_grant = granted->holder->kind != SessionKind::kCall;
      if (released.has_value()) granted->previous_holder = released->previous_holder;
      ch.WakeSessionsLocked(&callbacks);
    }
  }
  Channel::RunCallbacks(callbacks);
  if (granted.has_value() && (report_grant || report_release)) {
    ch.Emit(ChannelEventType::kLeaseChanged, std::nullopt, std::nullopt, granted);
  } else if (report_release) {
    ch.Emit(ChannelEventType::kLeaseChanged, std::nullopt, std::nullopt, released);
  }
}

absl::StatusOr<std::vector<SessionRecord>> Session::Read(size_t max_bytes) {
  Channel& ch = *channel_;
  std::vector<SessionRecord> out;
  bool kick = false;
  {
    MutexLock lock(&ch.mu_);
    auto it = ch.sessions_.find(slot_);
    if (it == ch.sessions_.end()) return absl::FailedPreconditionError("session is closed");
    Channel::SessionSlot& slot = it->second;
    // Clear the wake-up first (under the lock that every wake-up takes):
    // anything that happens after this lock is released signals again.
    slot.wake_pending = false;
    if (slot.notify_fd >= 0) {
      uint64_t value;
      [[maybe_unused]] ssize_t n = read(slot.notify_fd, &value, sizeof(value));
    }
    if (slot.lease_lost_delivered) {
      return absl::AbortedError("the write lease was taken over by another session");
    }
    while (!slot.notices.empty()) {
      if (slot.notices.front().kind == SessionRecord::Kind::kLeaseLost) {
        slot.lease_lost_delivered = true;
      }
      out.push_back(std::move(slot.notices.front()));
      slot.notices.pop_front();
    }
    const bool was_full = ch.buffer_.stalled(ch.OutputCapacityLocked());
    ch.ConvertLocked(ch.buffer_.Read(&slot.cursor, max_bytes), &out);
    kick = was_full && !ch.buffer_.stalled(ch.OutputCapacityLocked());
    if (out.empty() && ch.removed_) return ch.removed_status_;
  }
  if (kick) ch.wakeup_->Kick(ch.serial());
  return out;
}

absl::StatusOr<WriteQueue::Range> Session::Write(absl::string_view data, uint64_t expected_epoch) {
  if (data.size() > kMaxWrite) {
    return absl::InvalidArgumentError(
        absl::StrCat("write of ", data.size(), " bytes exceeds the 64 KiB limit"));
  }
  Channel& ch = *channel_;
  absl::StatusOr<WriteQueue::Range> range;
  {
    MutexLock lock(&ch.mu_);
    if (ch.removed_) return ch.removed_status_;
    auto it = ch.sessions_.find(slot_);
    if (it == ch.sessions_.end()) return absl::FailedPreconditionError("session is closed");
    if (it->second.lease_lost) {
      return absl::AbortedError("the write lease was taken over by another session");
    }
    if (!it->second.has_lease) {
      return absl::FailedPreconditionError("this session does not hold the write lease");
    }
    if (ch.info_.state != ChannelState::kConnected) {
      return absl::FailedPreconditionError(
          absl::StrCat("channel is not connected (", ToString(ch.info_.state), ")"));
    }
    if (expected_epoch != 0 && expected_epoch != ch.buffer_.epoch()) {
      return absl::AbortedError(
          absl::StrCat("epoch is ", ch.buffer_.epoch(), ", not ", expected_epoch));
    }
    if (data.size() > ch.queue_.room()) {
      it->second.wants_room = true;  // kAsked: woken at the next delivery
      return absl::ResourceExhaustedError(
          absl::StrCat("write of ", data.size(), " bytes does not fit in the ", ch.queue_.room(),
                       " bytes left in the write queue"));
    }
    if (!ch.memory_.Charge(data.size())) {
      // Woken (notify_fd) once memory is released.
      ch.writers_wait_for_memory_ = true;
      return MemoryBudgetError(absl::StrCat("write of ", data.size(),
                                            " bytes does not fit in the memory budget of ",
                                            "domain ", ch.identity_.domid, " now"));
    }
    range = ch.queue_.Append(data);
    if (!range.ok()) {
      ch.memory_.Release(data.size());
      return range.status();
    }
  }
  ch.wakeup_->Kick(ch.serial());
  return range;
}

WriteStatus Session::write_status() const {
  Channel& ch = *channel_;
  MutexLock lock(&ch.mu_);
  WriteStatus s;
  s.connected = ch.info_.state == ChannelState::kConnected && !ch.removed_;
  s.epoch = ch.queue_.epoch();
  s.accepted_offset = ch.queue_.accepted_offset();
  s.delivered_offset = ch.queue_.delivered_offset();
  s.consumed_offset = ch.queue_.consumed_offset();
  s.room = ch.queue_.room();
  return s;
}

bool Session::WakeOnProgress(uint64_t epoch, uint64_t delivered, uint64_t consumed) {
  Channel& ch = *channel_;
  MutexLock lock(&ch.mu_);
  auto it = ch.sessions_.find(slot_);
  if (it == ch.sessions_.end()) return false;  // closed: its next Read says so
  if (ch.queue_.epoch() != epoch) return false;
  if ((delivered != 0 && ch.queue_.delivered_offset() >= delivered) ||
      (consumed != 0 && ch.queue_.consumed_offset() >= consumed)) {
    return false;
  }
  Channel::SessionSlot& slot = it->second;
  slot.progress_epoch = epoch;
  slot.wake_delivered_at = delivered;
  slot.wake_consumed_at = consumed;
  return true;
}

bool Session::has_lease() const {
  Channel& ch = *channel_;
  MutexLock lock(&ch.mu_);
  auto it = ch.sessions_.find(slot_);
  return it != ch.sessions_.end() && it->second.has_lease;
}

ChannelInfo Session::info() const { return channel_->Info(); }

}  // namespace xenchan
