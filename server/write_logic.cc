// WriteLogic: the Write state machine (see write_logic.h).
#include "server/write_logic.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/engine/memory_budget.h"
#include "server/convert.h"
#include "server/resource_names.h"
#include "server/validate.h"

namespace xenchan {
namespace server {

using absl::StatusCode;
using policy::Verb;

WriteLogic::WriteLogic(CallState* call, WritePort* port, v1::WriteResponse* response)
    : call_(*call), core_(call->core()), in_(port), response_(response) {}

void WriteLogic::Start() {
  MutexLock lock(&mu_);
  if (core_.shutting_down) return FinishLocked(core_.ShuttingDownError());
  if (call_.deadline() != absl::InfiniteFuture()) {
    timer_ = call_.wakeups().RunAt(core_.WaitDeadline(call_.deadline()), [this] { Timeout(); });
  }
  reading_ = true;
  in_->ReadNext(&request_);
}

void WriteLogic::OnShutdown() {
  MutexLock lock(&mu_);
  FinishLocked(WithProgress(ApiError(core_.ShuttingDownError().code(),
                                     v1::ERROR_REASON_SHUTTING_DOWN, "xenchand is shutting down")
                                .RetryAfter(core_.options.shutdown_retry_delay)));
}

#ifdef XENCHAN_PLANT_RACE_FOR_TEST
// Test-only (//tests/server:tsan_planted_race_test): clears `reading_`
// without `mu_`, a data race ThreadSanitizer must report.
void WriteLogic::ClearReadingUnlocked() { reading_ = false; }
#endif

void WriteLogic::FinishLocked(const absl::Status& status) {
  if (finished_) return;
  finished_ = true;
  call_.SetFinalCode(status.code());
  if (status.ok()) *response_->mutable_progress() = ProgressLocked();
  // Release the lease before the client hears the end, so that its next
  // Write or Call finds the channel free (OnDone closes again: a no-op).
  if (session_) session_->Close();
  in_->FinishWith(status);
}

WriteProgressTracker::Figures WriteLogic::FiguresLocked() {
  if (progress_.accepted() == 0 || !session_) return {};
  return progress_.Observe(session_->write_status());
}

v1::WriteProgress WriteLogic::ProgressLocked() {
  v1::WriteProgress p;
  const WriteProgressTracker::Figures f = FiguresLocked();
  if (f.accepted == 0) return p;
  p.set_epoch(f.epoch);
  p.set_start_offset(f.start_offset);
  p.set_accepted_bytes(f.accepted);
  p.set_delivered_bytes(f.delivered);
  p.set_consumed_bytes(f.consumed);
  return p;
}

absl::Status WriteLogic::WithProgress(ApiError e) {
  if (opened_) e.Detail(ProgressLocked());
  return e.Build();
}

void WriteLogic::OnReadDone(bool ok) {
#ifdef XENCHAN_PLANT_RACE_FOR_TEST
  ClearReadingUnlocked();
  MutexLock lock(&mu_);
#else
  MutexLock lock(&mu_);
  reading_ = false;
#endif
  if (finished_) return;
  if (!ok) {
    half_closed_ = true;
    if (!opened_) return FinishLocked(InvalidName("channel", "required in the first message"));
    PumpLocked();
    return AskProgressLocked();
  }
  v1::WriteRequest message = std::move(request_);
  request_.Clear();
  if (!opened_) {
    absl::Status s = Open(message);
    if (!s.ok()) return FinishLocked(s);
  } else if (!message.channel().empty() || message.ack_level() != 0 ||
             message.expected_epoch() != 0 || message.fail_fast() || message.takeover()) {
    return FinishLocked(WithProgress(
        ApiError(StatusCode::kInvalidArgument, v1::ERROR_REASON_STREAM_PROTOCOL_VIOLATION,
                 "only the first message may set fields other than data")
            .Field("WriteRequest", "later messages set only data")));
  }
  if (message.data().size() > kMaxStreamMessageBytes) {
    return FinishLocked(WithProgress(PayloadTooLarge("data", message.data().size())));
  }
  if (absl::Status q = call_.ChargeBytes(message.data().size()); !q.ok()) return FinishLocked(q);
  pending_ = std::move(*message.mutable_data());
  has_pending_ = true;
  PumpLocked();
  AskProgressLocked();
}

absl::Status WriteLogic::Open(const v1::WriteRequest& first) {
  absl::Status valid = ValidateWriteMessage(first, /*first=*/true);
  if (!valid.ok()) return valid;
  auto name = ParseChannelName(first.channel(), "channel");
  if (!name.ok()) return name.status();
  channel_ = first.channel();
  if (!v1::AckLevel_IsValid(first.ack_level())) {
    return InvalidOption("ack_level", "unknown acknowledgement level");
  }
  const Identity& who = call_.identity();
  absl::Status allowed =
      core_.authz.Authorize(who, call_.method(), name->domain, name->channel_id, Verb::kWrite);
  if (allowed.ok() && first.takeover()) {
    allowed =
        core_.authz.Authorize(who, call_.method(), name->domain, name->channel_id, Verb::kAdmin);
  }
  if (!allowed.ok()) return allowed;
  allowed = call_.AcquireQuota(name->domain, "");
  if (!allowed.ok()) return allowed;
  ack_level_ = FromProtoAck(first.ack_level());
  fail_fast_ = first.fail_fast();
  const ChannelRef ref{name->domain, name->channel_id};
  auto info = core_.engine->GetChannel(ref);
  if (!info.ok()) return core_.errors.ChannelNotFound(*name);
  if (static_cast<int>(ack_level_) > static_cast<int>(info->max_ack_level)) {
    return EngineErrors::AckLevelNotSupported(channel_, *info);
  }
  SessionOptions options;
  options.role = SessionRole::kWriter;
  options.kind = SessionKind::kWrite;
  options.identity = call_.identity().holder();
  options.takeover = first.takeover();
  // Woken only by the progress AskProgressLocked asks for (and room after a
  // full queue, state, lease and epoch changes, which wake every session).
  options.progress_wakeups = ProgressWakeups::kAsked;
  repump_ = call_.wakeups().Notifier([this] { Pump(); });
  options.on_ready = repump_;
  auto session = core_.engine->OpenSession(ref, std::move(options));
  if (!session.ok()) return core_.errors.SessionOpen(session.status(), *name, std::nullopt);
  session_ = *std::move(session);
  core_.metrics->SessionOpened();
  opened_ = true;
  const ChannelInfo& at_open = session_->info_at_open();
  call_.AuditSessionOpened(FormatChannelName(at_open.domain_uuid, at_open.channel_id),
                           session_->id(), "writer");
  if (at_open.state != ChannelState::kConnected) {
    return EngineErrors::NotConnected(absl::StrCat("the channel is ", ToString(at_open.state)),
                                      channel_, at_open)
        .Detail(v1::WriteProgress());
  }
  epoch_ = session_->write_status().epoch;
  if (first.expected_epoch() != 0 && first.expected_epoch() != epoch_) {
    return EngineErrors::EpochChanged(
               first.expected_epoch(), epoch_,
               absl::StrCat("the channel is in epoch ", epoch_, ", not ", first.expected_epoch()))
        .Metadata("channel", channel_)
        .Detail(v1::WriteProgress());
  }
  return absl::OkStatus();
}

void WriteLogic::Pump() {
  MutexLock lock(&mu_);
  if (finished_) return;
  PumpLocked();
  AskProgressLocked();
}

void WriteLogic::AskProgressLocked() {
  if (finished_ || !session_) return;
  const WriteProgressTracker::Figures f = FiguresLocked();
  if (f.accepted == 0) return;
  uint64_t delivered = 0;
  uint64_t consumed = 0;
  // The next delivery gives the caller's queued-bytes quota back (and lets
  // a write waiting for it go on).
  if (queued_.amount() > 0 && f.delivered < f.accepted) {
    delivered = f.start_offset + f.delivered + 1;
  }
  // A half-closed stream ends when its bytes reach the requested level.
  if (half_closed_) {
    if (ack_level_ == AckLevel::kDelivered && delivered == 0 && f.delivered < f.accepted) {
      delivered = f.start_offset + f.accepted;
    }
    if (ack_level_ == AckLevel::kConsumed && f.consumed < f.accepted) {
      consumed = f.start_offset + f.accepted;
    }
  }
  if (delivered == 0 && consumed == 0) return;
  // Reached meanwhile: pump again (never on this thread, see Notifier).
  if (!session_->WakeOnProgress(f.epoch, delivered, consumed)) repump_();
}

void WriteLogic::PumpLocked() {
  if (!session_) return;
  if (!session_->has_lease()) {
    return FinishLocked(WithProgress(
        EngineErrors::LeaseTakenOver(session_->info().write_lease).Metadata("channel", channel_)));
  }
  const WriteStatus ws = session_->write_status();
  if (ws.epoch != epoch_) {
    return FinishLocked(WithProgress(
        EngineErrors::EpochChanged(epoch_, ws.epoch,
                                   "the channel's epoch changed; undelivered bytes were "
                                   "discarded")
            .Metadata("channel", channel_)));
  }
  // Progress, remembered while the epoch holds.
  const WriteProgressTracker::Figures figures = FiguresLocked();
  // Bytes delivered to the guest leave the caller's queued-bytes quota.
  const uint64_t undelivered = figures.accepted - figures.delivered;
  if (queued_.amount() > undelivered) queued_.Shrink(queued_.amount() - undelivered);
  const uint64_t reached = WriteProgressTracker::BytesAt(figures, ack_level_);
  if (!ws.connected && (has_pending_ || reached < progress_.accepted())) {
    return FinishLocked(WithProgress(
        EngineErrors::NotConnected("the channel left CONNECTED; undelivered bytes were discarded",
                                   channel_, session_->info())));
  }
  if (has_pending_) {
    // The caller's queued bytes (accepted, not yet delivered, over all its
    // streams) must have room. A waiting writer whose own bytes hold the
    // quota waits for them to be delivered (on_ready brings it back);
    // otherwise the write is refused.
    auto lease =
        core_.quota.AcquireQueued(ServiceCore::QuotaKey(call_.identity()), pending_.size());
    if (!lease.ok()) {
      if (!fail_fast_ && queued_.amount() > 0) return;
      std::optional<quota::QuotaExceeded> q = quota::QuotaExceededOf(lease.status());
      if (!q.has_value()) return FinishLocked(lease.status());
      return FinishLocked(WithProgress(core_.QuotaApiError(*q, lease.status())));
    }
    auto range = session_->Write(pending_, epoch_);
    if (range.ok()) queued_.Absorb(*std::move(lease));  // else given back here
    if (range.ok()) {
      progress_.Accepted(epoch_, range->start, pending_.size());
      core_.metrics->BytesFromClients(pending_.size());
      call_.CountIn(pending_.size());
      pending_.clear();
      has_pending_ = false;
    } else if (range.status().code() == StatusCode::kResourceExhausted) {
      if (!fail_fast_) return;  // on_ready brings us back when room frees
      if (IsMemoryBudgetError(range.status())) {
        return FinishLocked(WithProgress(
            core_.errors.MemoryBudgetExhausted(range.status()).Metadata("channel", channel_)));
      }
      v1::LimitExceeded limit;
      limit.set_limit("write_queue_bytes");
      limit.set_limit_value(session_->info().config.write_queue_limit_bytes);
      limit.set_requested_value(session_->info().to_guest.queued_bytes + pending_.size());
      return FinishLocked(
          WithProgress(ApiError(StatusCode::kResourceExhausted, v1::ERROR_REASON_QUEUE_FULL,
                                "the write queue is full")
                           .Metadata("channel", channel_)
                           .Metadata("limit", "write_queue_bytes")
                           .Detail(limit)));
    } else if (range.status().code() == StatusCode::kFailedPrecondition) {
      return FinishLocked(WithProgress(EngineErrors::NotConnected(
          std::string(range.status().message()), channel_, session_->info())));
    } else if (range.status().code() == StatusCode::kAborted) {
      if (!session_->has_lease()) return PumpLocked();  // reports LEASE_TAKEN_OVER
      return FinishLocked(
          WithProgress(EngineErrors::EpochChanged(epoch_, session_->write_status().epoch,
                                                  std::string(range.status().message()))
                           .Metadata("channel", channel_)));
    } else {
      return FinishLocked(core_.Removed(range.status(), channel_));
    }
  }
  if (!half_closed_) {
    if (!reading_) {
      reading_ = true;
      in_->ReadNext(&request_);
    }
    return;
  }
  if (WriteProgressTracker::BytesAt(FiguresLocked(), ack_level_) >= progress_.accepted()) {
    FinishLocked(absl::OkStatus());
  }
}

void WriteLogic::Timeout() {
  MutexLock lock(&mu_);
  if (finished_) return;
  FinishLocked(
      WithProgress(ApiError(StatusCode::kDeadlineExceeded, v1::ERROR_REASON_GUEST_TIMEOUT,
                            "the deadline passed before the bytes reached the requested level")
                       .Metadata("channel", channel_)));
}

void WriteLogic::OnCancel() {
  MutexLock lock(&mu_);
  FinishLocked(absl::CancelledError("the call was cancelled"));
}

void WriteLogic::OnDone() {
  std::unique_ptr<Session> session;
  uint64_t timer;
  {
    MutexLock lock(&mu_);
    session = std::move(session_);
    timer = timer_;
    // The stream's end gives its share back (what it left in the channel's
    // write queue stays bounded by that queue and the memory budget).
    queued_.Release();
  }
  call_.wakeups().Cancel(timer);
  if (session) {
    session->Close();
    core_.metrics->SessionClosed();
  }
}

}  // namespace server
}  // namespace xenchan
