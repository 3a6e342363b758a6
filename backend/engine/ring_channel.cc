// RingChannel: the backend state machine of one ring channel: connecting,
// resume, disconnects, timers and unplug (ring I/O is in ring_channel_io.cc).
#include "backend/engine/ring_channel.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/engine/names.h"
#include "backend/engine/xenstore_layout.h"

namespace xenchan {
namespace {

constexpr uint32_t kMaxRef = 0x7fffffff;  // ring-ref is written with %d, ports fit in 31 bits

}  // namespace

RingChannel::RingChannel(RingHost* host, std::shared_ptr<Channel> channel, RingParams params)
    : host_(host),
      channel_(std::move(channel)),
      params_(std::move(params)),
      spurious_bucket_(params_.event_allowance, params_.event_period),
      cap_bucket_(uint64_t{params_.event_cap} * kCapUnitsPerEvent, params_.event_cap_period),
      frontend_limiter_(params_.frontend_change_allowance, params_.frontend_change_period) {}

RingChannel::~RingChannel() {
  Disconnect();
  // The engine is going away: nobody waits forever.
  ResolveConnectWaiters(absl::UnavailableError("the engine is shutting down"));
  std::vector<UnplugDone> waiters;
  waiters.swap(unplug_waiters_);
  for (auto& done : waiters) done(absl::UnavailableError("the engine is shutting down"));
}

absl::Status RingChannel::Start(XenbusState backend_state, absl::Time now) {
  be_state_ = backend_state;
  if (params_.resume_unplug_deadline.has_value()) {
    // An unplug was under way when the previous engine stopped: carry on
    // from where it got to (§2.3). Nothing is mapped in this process.
    unplugging_ = true;
    unplug_deadline_ = *params_.resume_unplug_deadline;
    state_ = ChannelState::kClosing;
    switch (be_state_) {
      case XenbusState::kUnknown:
      case XenbusState::kInitialising:
      case XenbusState::kInitWait:
        // Never connected: nothing the guest must release first.
      case XenbusState::kClosed:
        // Already unmapped; removing the directories was left to do.
        finish_unplug_pending_ = true;
        break;
      case XenbusState::kClosing:
        break;  // waiting for FE 6
      default:
        SetBackendState(XenbusState::kClosing);
        break;
    }
    channel_->SetState(state_, fe_state_, be_state_, std::nullopt);
    // Fires once at once: finishes, or reads FE to see whether it is 6.
    return host_->xs().Watch(params_.frontend_path, params_.watch_token);
  }
  if (be_state_ == XenbusState::kInitialising || be_state_ == XenbusState::kUnknown) {
    SetBackendState(XenbusState::kInitWait);
  }
  switch (be_state_) {
    case XenbusState::kInitWait:
    case XenbusState::kConnected:  // recovery: reconnects when the FE watch fires
      state_ = ChannelState::kWaitingForGuest;
      waiting_since_ = now;
      break;
    case XenbusState::kClosing:
    case XenbusState::kClosed:
      state_ = ChannelState::kDisconnected;
      break;
    default:
      state_ = ChannelState::kWaitingForGuest;
      waiting_since_ = now;
      break;
  }
  channel_->SetState(state_, fe_state_, be_state_, std::nullopt);
  // Fires once at once, which runs OnFrontendChanged.
  return host_->xs().Watch(params_.frontend_path, params_.watch_token);
}

std::optional<XenbusState> RingChannel::ReadFrontendState() {
  auto value = host_->xs().Read(kNoTransaction, NodePath(params_.frontend_path, kStateNode));
  if (!value.ok()) {
    if (value.status().code() == absl::StatusCode::kNotFound) return XenbusState::kUnknown;
    return std::nullopt;  // transient xenstore trouble: try on the next firing
  }
  std::optional<XenbusState> state = ParseXenbusState(*value);
  if (!state.has_value()) channel_->CountBadXenstore();
  return state;
}

std::optional<RingChannel::RingInfo> RingChannel::ReadRingInfo() {
  auto ref = host_->xs().Read(kNoTransaction, NodePath(params_.frontend_path, kRingRefNode));
  auto port = host_->xs().Read(kNoTransaction, NodePath(params_.frontend_path, kPortNode));
  if (!ref.ok() || !port.ok()) return std::nullopt;
  std::optional<uint32_t> r = ParseDecimal(*ref, kMaxRef);
  std::optional<uint32_t> p = ParseDecimal(*port, kMaxRef);
  if (!r.has_value() || !p.has_value() || *p == 0) {
    channel_->CountBadXenstore();
    return std::nullopt;
  }
  return RingInfo{*r, *p};
}

void RingChannel::SetBackendState(XenbusState state) {
  be_state_ = state;
  absl::Status s = host_->xs().Write(kNoTransaction, NodePath(params_.backend_path, kStateNode),
                                     absl::StrCat(static_cast<int>(state)));
  if (!s.ok()) {
    channel_->SetState(
        state_, fe_state_, be_state_,
        ChannelError{ChannelErrorKind::kXenstore,
                     absl::StrCat("writing backend state: ", s.message()), absl::Now()});
  }
}

void RingChannel::Publish(ChannelState state, std::optional<ChannelError> error,
                          bool was_connected) {
  const ChannelState before = state_;
  state_ = state;
  if (state != ChannelState::kWaitingForGuest) waiting_since_ = absl::InfiniteFuture();
  const bool changed = channel_->SetState(state, fe_state_, be_state_, error);
  if (was_connected && state != ChannelState::kConnected) {
    channel_->DiscardQueuedWrites();
    if (channel_->UpdateStall(absl::Now(), /*draining=*/false) < 0) {
      channel_->Emit(ChannelEventType::kUnstalled);
    }
    channel_->Emit(ChannelEventType::kDisconnected);
  } else if (changed && state != ChannelState::kConnected) {
    channel_->Emit(ChannelEventType::kStateChanged);
  } else if (changed && before == ChannelState::kConnected) {
    channel_->Emit(ChannelEventType::kStateChanged);
  }
}

void RingChannel::Disconnect() {
  // What the guest wrote last (a "shutting down" line, say) may still be in
  // the page: one last drain, as far as the buffer takes it, keeps it,
  // whatever ends the data path (the guest closing, its frontend removed,
  // its domain gone, a resume).
  if (data_active_ && ring_.has_value() && !final_drain_) {
    final_drain_ = true;
    Service(absl::Now());
    final_drain_ = false;
  }
  if (local_port_.has_value()) {
    host_->RoutePort(*local_port_, nullptr);
    (void)host_->evtchn().Unbind(*local_port_);  // the peer may be gone already
    local_port_.reset();
  }
  ring_.reset();
  mapping_.reset();
  data_active_ = false;
  masked_ = false;
  unmask_at_ = absl::InfiniteFuture();
}

void RingChannel::OnFrontendChanged(absl::Time now) {
  if (finished_ || frontend_deferred_) return;  // OnTimer reads it afresh
  if (!frontend_limiter_.Allow(now)) {
    frontend_deferred_ = true;
    if (frontend_limiter_.limited_periods() != frontend_limited_seen_) {
      frontend_limited_seen_ = frontend_limiter_.limited_periods();
      channel_->CountFrontendRateLimited();
    }
    return;
  }
  HandleFrontendChange(now);
}

void RingChannel::HandleFrontendChange(absl::Time now) {
  if (finish_unplug_pending_) {
    finish_unplug_pending_ = false;
    FinishUnplug(/*forced=*/false, now);
    return;
  }
  std::optional<XenbusState> fe = ReadFrontendState();
  if (!fe.has_value()) return;  // garbage is ignored (§3.5.4)
  fe_state_ = *fe;
  if (unplugging_) {
    if (fe_state_ == XenbusState::kClosed || fe_state_ == XenbusState::kUnknown) {
      FinishUnplug(/*forced=*/false, now);
    } else {
      channel_->SetState(state_, fe_state_, be_state_, std::nullopt);
    }
    return;
  }
  const bool was_connected = data_active_;
  switch (fe_state_) {
    case XenbusState::kUnknown:
    case XenbusState::kClosed: {
      // The guest itself closed the device (its shutdown or reboot path);
      // a frontend directory that vanished (the toolstack removed it) is not.
      if (fe_state_ == XenbusState::kClosed) guest_closed_ = true;
      Disconnect();
      if (be_state_ != XenbusState::kClosed) SetBackendState(XenbusState::kClosed);
      std::optional<ChannelError> error;
      if (fe_state_ == XenbusState::kUnknown) {
        error = ChannelError{ChannelErrorKind::kFrontendRemoved,
                             "the frontend directory or its state node is gone", now};
      }
      Publish(ChannelState::kDisconnected, error, was_connected);
      break;
    }
    case XenbusState::kClosing:
      guest_closed_ = true;
      if (data_active_ && ring_.has_value()) Service(now);  // its last words
      data_active_ = false;                                 // keep the mapping until FE=6
      if (be_state_ != XenbusState::kClosing) SetBackendState(XenbusState::kClosing);
      Publish(ChannelState::kDisconnected, std::nullopt, was_connected);
      break;
    case XenbusState::kInitialising:
      if (be_state_ == XenbusState::kClosed || be_state_ == XenbusState::kInitialising) {
        Disconnect();  // kexec reset: forget the old ring
        SetBackendState(XenbusState::kInitWait);
        Publish(ChannelState::kWaitingForGuest, std::nullopt, was_connected);
        waiting_since_ = now;
        timeout_reported_ = false;
      } else {
        channel_->SetState(state_, fe_state_, be_state_, std::nullopt);
      }
      break;
    case XenbusState::kInitialised:
    case XenbusState::kConnected:
      if (be_state_ == XenbusState::kInitWait || be_state_ == XenbusState::kInitialising) {
        Connect(EpochChangeReason::kGuestConnected, now);
      } else if (be_state_ == XenbusState::kConnected) {
        if (!mapping_) {
          Connect(params_.recovered && !ever_connected_ ? EpochChangeReason::kServerRestarted
                                                        : EpochChangeReason::kGuestConnected,
                  now);
        } else {
          // A resume publishes a new ring-ref/port and goes to 3, but the
          // guest moves on to 4 as soon as it sees our 4, so 3 may never be
          // observed: compare on every change while connected.
          std::optional<RingInfo> info = ReadRingInfo();
          if (!info.has_value() || info->ring_ref != connected_info_.ring_ref ||
              info->port != connected_info_.port) {
            Disconnect();  // quietly: the channel stays CONNECTED across a resume
            Connect(EpochChangeReason::kGuestResumed, now);
          } else {
            channel_->SetState(state_, fe_state_, be_state_, std::nullopt);
          }
        }
      } else {
        channel_->SetState(state_, fe_state_, be_state_, std::nullopt);
      }
      break;
    default:  // 2, 7, 8: nothing for us to do
      channel_->SetState(state_, fe_state_, be_state_, std::nullopt);
      break;
  }
}

void RingChannel::Connect(EpochChangeReason reason, absl::Time now) {
  const bool was_connected = state_ == ChannelState::kConnected;
  std::optional<RingInfo> info = ReadRingInfo();
  if (!info.has_value()) {
    Fail(ChannelErrorKind::kBadRingInfo, "ring-ref or port missing or not a valid number", now);
    return;
  }
  auto mapping = host_->gnttab().Map(domid(), info->ring_ref, /*writable=*/true);
  if (!mapping.ok()) {
    Fail(ChannelErrorKind::kGrantMapFailed,
         absl::StrCat("mapping grant ", info->ring_ref, ": ", mapping.status().ToString()), now);
    return;
  }
  auto port = host_->evtchn().BindInterdomain(domid(), info->port);
  if (!port.ok()) {
    Fail(ChannelErrorKind::kEventBindFailed,
         absl::StrCat("binding port ", info->port, ": ", port.status().ToString()), now);
    return;
  }
  mapping_ = *std::move(mapping);
  ring_.emplace(mapping_->data());
  local_port_ = *port;
  connected_info_ = *info;
  host_->RoutePort(*local_port_, this);
  in_base_ = ring_->in_produced();
  in_consumed_seen_ = 0;
  event_progress_seen_ = 0;  // a new ring counts from zero
  duplicate_units_.reset();
  kick_pending_ = true;

  // A new epoch, never reused for this channel (persisted before use).
  const uint64_t epoch = params_.persisted_epoch + 1;
  params_.persisted_epoch = epoch;
  (void)host_->xs().Write(kNoTransaction, NodePath(params_.backend_path, kEpochNode),
                          absl::StrCat(epoch));
  if (reason == EpochChangeReason::kGuestResumed && !was_connected) {
    reason = EpochChangeReason::kGuestConnected;
  }
  if (!ever_connected_ && params_.first_connect_reason.has_value()) {
    reason = *params_.first_connect_reason;
  }
  EpochChange change = channel_->BeginEpoch(epoch, reason, now);
  if (be_state_ != XenbusState::kConnected) SetBackendState(XenbusState::kConnected);
  data_active_ = true;
  ever_connected_ = true;
  bad_ring_reported_ = false;
  state_ = ChannelState::kConnected;
  waiting_since_ = absl::InfiniteFuture();
  channel_->SetState(ChannelState::kConnected, fe_state_, be_state_, std::nullopt);
  channel_->Emit(was_connected ? ChannelEventType::kEpochChanged : ChannelEventType::kConnected,
                 change);
  ResolveConnectWaiters(absl::OkStatus());
  Service(now);
}

void RingChannel::Fail(ChannelErrorKind kind, const std::string& message, absl::Time now) {
  const bool was_connected = data_active_ || state_ == ChannelState::kConnected;
  Disconnect();
  SetBackendState(XenbusState::kClosing);
  Publish(ChannelState::kFailed, ChannelError{kind, message, now}, was_connected);
  ResolveConnectWaiters(absl::FailedPreconditionError(absl::StrCat("channel failed: ", message)));
}

absl::Time RingChannel::NextDeadline() const {
  absl::Time t = absl::InfiniteFuture();
  if (finished_) return t;
  if (masked_) t = std::min(t, unmask_at_);
  if (frontend_deferred_) t = std::min(t, frontend_limiter_.period_end());
  if (unplugging_) t = std::min(t, unplug_deadline_);
  if (gap_pending_) t = std::min(t, last_gap_event_ + kGapEventInterval);
  if (state_ == ChannelState::kWaitingForGuest && !timeout_reported_ &&
      waiting_since_ != absl::InfiniteFuture()) {
    t = std::min(t, waiting_since_ + params_.connect_timeout);
  }
  for (const auto& [deadline, done] : connect_waiters_) t = std::min(t, deadline);
  return t;
}

void RingChannel::OnTimer(absl::Time now) {
  if (finished_) return;
  if (masked_ && now >= unmask_at_) {
    masked_ = false;
    unmask_at_ = absl::InfiniteFuture();
    if (local_port_.has_value()) (void)host_->evtchn().Unmask(*local_port_);
    Service(now);  // catch up with what arrived while masked
  }
  if (frontend_deferred_ && now >= frontend_limiter_.period_end()) {
    frontend_deferred_ = false;
    OnFrontendChanged(now);  // a new period: allowed
    if (finished_) return;
  }
  if (unplugging_ && now >= unplug_deadline_) {
    FinishUnplug(/*forced=*/true, now);
    return;
  }
  if (gap_pending_) MaybeEmitGap(now);
  if (state_ == ChannelState::kWaitingForGuest && !timeout_reported_ &&
      waiting_since_ != absl::InfiniteFuture() && now >= waiting_since_ + params_.connect_timeout) {
    timeout_reported_ = true;
    channel_->SetState(state_, fe_state_, be_state_,
                       ChannelError{ChannelErrorKind::kGuestNotConnecting,
                                    absl::StrCat("the guest has not connected within ",
                                                 absl::FormatDuration(params_.connect_timeout),
                                                 " (no PV console frontend?)"),
                                    now});
    channel_->Emit(ChannelEventType::kStateChanged);
  }
  std::vector<std::pair<absl::Time, ConnectDone>> keep;
  std::vector<ConnectDone> expired;
  for (auto& w : connect_waiters_) {
    if (now >= w.first) {
      expired.push_back(std::move(w.second));
    } else {
      keep.push_back(std::move(w));
    }
  }
  connect_waiters_ = std::move(keep);
  for (auto& done : expired) {
    done(absl::DeadlineExceededError("the guest did not connect in time; the channel remains"));
  }
}

void RingChannel::WaitConnected(absl::Time deadline, ConnectDone done) {
  if (finished_) {
    done(absl::NotFoundError("channel was removed"));
  } else if (state_ == ChannelState::kConnected) {
    done(absl::OkStatus());
  } else if (state_ == ChannelState::kFailed) {
    done(absl::FailedPreconditionError("channel failed"));
  } else {
    connect_waiters_.emplace_back(deadline, std::move(done));
  }
}

void RingChannel::ResolveConnectWaiters(const absl::Status& status) {
  std::vector<std::pair<absl::Time, ConnectDone>> waiters;
  waiters.swap(connect_waiters_);
  for (auto& w : waiters) w.second(status);
}

void RingChannel::Unplug(absl::Duration force_after, UnplugDone done, absl::Time now) {
  if (finished_) {
    done(absl::NotFoundError("channel was removed"));
    return;
  }
  unplug_waiters_.push_back(std::move(done));
  if (unplugging_) return;
  unplugging_ = true;
  unplug_deadline_ = now + std::max(force_after, absl::ZeroDuration());
  // Persist the intent first, so that an engine restarted at any later step
  // finishes the unplug (best effort: a failed write only loses that).
  (void)host_->xs().Write(kNoTransaction, NodePath(params_.backend_path, kUnpluggingNode),
                          absl::StrCat(absl::ToUnixMicros(unplug_deadline_)));
  const bool was_connected = data_active_;
  data_active_ = false;
  ResolveConnectWaiters(absl::NotFoundError("channel is being deleted"));
  if (!mapping_) {
    // Nothing mapped: nothing the guest must release first.
    Publish(ChannelState::kClosing, std::nullopt, was_connected);
    FinishUnplug(/*forced=*/false, now);
    return;
  }
  SetBackendState(XenbusState::kClosing);
  Publish(ChannelState::kClosing, std::nullopt, was_connected);
  if (fe_state_ == XenbusState::kClosed || fe_state_ == XenbusState::kUnknown) {
    FinishUnplug(/*forced=*/false, now);
  } else if (force_after <= absl::ZeroDuration()) {
    FinishUnplug(/*forced=*/true, now);
  }
}

void RingChannel::FinishUnplug(bool forced, absl::Time now) {
  Disconnect();
  SetBackendState(XenbusState::kClosed);
  XenStore& xs = host_->xs();
  (void)xs.Unwatch(params_.frontend_path, params_.watch_token);
  // Recorded (and persisted) before the guest can start dropping the device.
  host_->DevidReleased(domid(), channel_->identity().devid);
  (void)xs.Remove(kNoTransaction, params_.frontend_path);
  (void)xs.Remove(kNoTransaction, params_.backend_path);
  finished_ = true;
  unplugging_ = false;
  std::optional<ChannelError> error;
  if (forced) {
    error = ChannelError{ChannelErrorKind::kUnplugForced,
                         "the guest did not close its end in time; unplug forced", now};
  }
  state_ = ChannelState::kClosed;
  channel_->SetState(ChannelState::kClosed, fe_state_, be_state_, error);
  channel_->MarkRemoved(absl::NotFoundError("channel was deleted"));
  channel_->Emit(ChannelEventType::kRemoved, std::nullopt, std::nullopt, std::nullopt,
                 RemovalReason::kDeleted);
  DeleteResult result{channel_->Info(), forced};
  std::vector<UnplugDone> waiters;
  waiters.swap(unplug_waiters_);
  for (auto& done : waiters) done(result);
}

void RingChannel::ReleaseForDomainGone() {
  if (finished_) return;
  Disconnect();  // at once (after a last drain): a live mapping keeps the domain a zombie (§4.5)
  (void)host_->xs().Unwatch(params_.frontend_path, params_.watch_token);
  finished_ = true;
  domain_gone_ = true;
}

void RingChannel::ReportDomainGone() {
  if (!domain_gone_) return;
  domain_gone_ = false;
  state_ = ChannelState::kClosed;
  channel_->SetState(ChannelState::kClosed, fe_state_, be_state_, std::nullopt);
  channel_->MarkRemoved(absl::UnavailableError("the domain went away"));
  channel_->Emit(ChannelEventType::kRemoved, std::nullopt, std::nullopt, std::nullopt,
                 RemovalReason::kDomainGone);
  ResolveConnectWaiters(absl::UnavailableError("the domain went away"));
  DeleteResult result{channel_->Info(), false};
  std::vector<UnplugDone> waiters;
  waiters.swap(unplug_waiters_);
  for (auto& done : waiters) done(result);
}

void RingChannel::ReportDomainDown() {
  if (!domain_gone_) return;
  domain_gone_ = false;
  state_ = ChannelState::kDomainDown;
  channel_->SetDomainDown();
  channel_->Emit(ChannelEventType::kStateChanged);
  ResolveConnectWaiters(absl::UnavailableError("the domain went away"));
  std::vector<UnplugDone> waiters;
  waiters.swap(unplug_waiters_);
  for (auto& done : waiters) done(absl::UnavailableError("the domain went away"));
}

}  // namespace xenchan
