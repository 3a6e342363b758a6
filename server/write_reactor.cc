// Write: a client stream of bytes to the guest, holding the write lease. The
// call ends once every byte reached the requested level (or fails with a
// WriteProgress detail saying how far they got, from a
// WriteProgressTracker, backend/engine/write_progress.h). Bytes accepted and
// not yet delivered count against the caller's queued-bytes quota.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/engine/memory_budget.h"
#include "backend/engine/write_progress.h"
#include "server/convert.h"
#include "server/reactor_base.h"
#include "server/reactors.h"
#include "server/resource_names.h"
#include "server/validate.h"

namespace xenchan {
namespace server {
namespace {

using absl::StatusCode;
using policy::Verb;

class WriteReactor : public grpc::ServerReadReactor<v1::WriteRequest>, public ReactorBase {
 public:
  WriteReactor(std::shared_ptr<ServiceCore> core, grpc::CallbackServerContext* context,
               v1::WriteResponse* response)
      : ReactorBase(std::move(core), "Write", context), response_(response) {}

  void Start(std::shared_ptr<ReactorBase> self) {
    Register(std::move(self));
    MutexLock lock(&mu_);
    if (core_->shutting_down) return FinishLocked(core_->ShuttingDownError());
    if (deadline_ != absl::InfiniteFuture()) {
      timer_ = TimerAt(core_->WaitDeadline(deadline_), &WriteReactor::Timeout);
    }
    reading_ = true;
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override { Later(&WriteReactor::AfterRead, ok); }
  void OnCancel() override { Later(&WriteReactor::Cancelled); }
  void OnDone() override { Later(&WriteReactor::Done); }
  void Shutdown() override {
    MutexLock lock(&mu_);
    FinishLocked(WithProgress(ApiError(core_->ShuttingDownError().code(),
                                       v1::ERROR_REASON_SHUTTING_DOWN,
                                       "xenchand is shutting down")
                                  .RetryAfter(core_->options.shutdown_retry_delay)));
  }

 private:
  void FinishLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    final_code_ = status.code();
    if (status.ok()) *response_->mutable_progress() = ProgressLocked();
    // Release the lease before the client hears the end, so that its next
    // Write or Call finds the channel free (Cleanup closes again: a no-op).
    if (session_) session_->Close();
    Finish(ToGrpcStatus(status));
  }

  WriteProgressTracker::Figures FiguresLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (progress_.accepted() == 0 || !session_) return {};
    return progress_.Observe(session_->write_status());
  }

  v1::WriteProgress ProgressLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
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

  // `e` with the WriteProgress detail (every error after the first message).
  absl::Status WithProgress(ApiError e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (opened_) e.Detail(ProgressLocked());
    return e.Build();
  }

  void AfterRead(bool ok) {
    MutexLock lock(&mu_);
    reading_ = false;
    if (finished_) return;
    if (!ok) {
      half_closed_ = true;
      if (!opened_) return FinishLocked(InvalidName("channel", "required in the first message"));
      return PumpLocked();
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
    if (message.data().size() > Session::kMaxWrite) {
      return FinishLocked(WithProgress(
          ApiError(StatusCode::kInvalidArgument, v1::ERROR_REASON_PAYLOAD_TOO_LARGE,
                   absl::StrCat("message of ", message.data().size(), " bytes; at most 65536"))
              .Field("data", "at most 65536 bytes")));
    }
    if (absl::Status q = ChargeBytes(message.data().size()); !q.ok()) return FinishLocked(q);
    pending_ = std::move(*message.mutable_data());
    has_pending_ = true;
    PumpLocked();
  }

  absl::Status Open(const v1::WriteRequest& first) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::Status valid = ValidateWriteMessage(first, /*first=*/true);
    if (!valid.ok()) return valid;
    auto name = ParseChannelName(first.channel(), "channel");
    if (!name.ok()) return name.status();
    channel_ = first.channel();
    if (!v1::AckLevel_IsValid(first.ack_level())) {
      return InvalidOption("ack_level", "unknown acknowledgement level");
    }
    absl::Status allowed =
        core_->authz.Authorize(identity_, method_, name->domain, name->channel_id, Verb::kWrite);
    if (allowed.ok() && first.takeover()) {
      allowed =
          core_->authz.Authorize(identity_, method_, name->domain, name->channel_id, Verb::kAdmin);
    }
    if (!allowed.ok()) return allowed;
    allowed = AcquireQuota(name->domain, "");
    if (!allowed.ok()) return allowed;
    ack_level_ = FromProtoAck(first.ack_level());
    fail_fast_ = first.fail_fast();
    const ChannelRef ref{name->domain, name->channel_id};
    auto info = core_->engine->GetChannel(ref);
    if (!info.ok()) return core_->errors.ChannelNotFound(*name);
    if (static_cast<int>(ack_level_) > static_cast<int>(info->max_ack_level)) {
      return EngineErrors::AckLevelNotSupported(channel_, *info);
    }
    SessionOptions options;
    options.role = SessionRole::kWriter;
    options.kind = SessionKind::kWrite;
    options.identity = identity_.holder();
    options.takeover = first.takeover();
    options.on_ready = Notifier(&WriteReactor::Pump);
    auto session = core_->engine->OpenSession(ref, std::move(options));
    if (!session.ok()) return core_->errors.SessionOpen(session.status(), *name, std::nullopt);
    session_ = *std::move(session);
    core_->metrics->SessionOpened();
    opened_ = true;
    const ChannelInfo& at_open = session_->info_at_open();
    AuditSessionOpened(FormatChannelName(at_open.domain_uuid, at_open.channel_id), session_->id(),
                       "writer");
    if (at_open.state != ChannelState::kConnected) {
      return EngineErrors::NotConnected(absl::StrCat("the channel is ", ToString(at_open.state)),
                                        channel_, at_open)
          .Detail(v1::WriteProgress());
    }
    epoch_ = session_->write_status().epoch;
    if (first.expected_epoch() != 0 && first.expected_epoch() != epoch_) {
      return EngineErrors::EpochChanged(first.expected_epoch(), epoch_,
                                        absl::StrCat("the channel is in epoch ", epoch_, ", not ",
                                                     first.expected_epoch()))
          .Metadata("channel", channel_)
          .Detail(v1::WriteProgress());
    }
    return absl::OkStatus();
  }

  void Pump() {
    MutexLock lock(&mu_);
    if (!finished_) PumpLocked();
  }

  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
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
      return FinishLocked(WithProgress(EngineErrors::NotConnected(
          "the channel left CONNECTED; undelivered bytes were discarded", channel_,
          session_->info())));
    }
    if (has_pending_) {
      // The caller's queued bytes (accepted, not yet delivered, over all its
      // streams) must have room. A waiting writer whose own bytes hold the
      // quota waits for them to be delivered (on_ready brings it back);
      // otherwise the write is refused.
      auto lease = core_->quota.AcquireQueued(ServiceCore::QuotaKey(identity_), pending_.size());
      if (!lease.ok()) {
        if (!fail_fast_ && queued_.amount() > 0) return;
        std::optional<QuotaExceeded> q = QuotaExceededOf(lease.status());
        if (!q.has_value()) return FinishLocked(lease.status());
        return FinishLocked(WithProgress(core_->QuotaApiError(*q, lease.status())));
      }
      auto range = session_->Write(pending_, epoch_);
      if (range.ok()) queued_.Absorb(*std::move(lease));  // else given back here
      if (range.ok()) {
        progress_.Accepted(epoch_, range->start, pending_.size());
        core_->metrics->BytesFromClients(pending_.size());
        CountIn(pending_.size());
        pending_.clear();
        has_pending_ = false;
      } else if (range.status().code() == StatusCode::kResourceExhausted) {
        if (!fail_fast_) return;  // on_ready brings us back when room frees
        if (IsMemoryBudgetError(range.status())) {
          return FinishLocked(WithProgress(
              core_->errors.MemoryBudgetExhausted(range.status()).Metadata("channel", channel_)));
        }
        v1::LimitExceeded limit;
        limit.set_limit("write_queue_bytes");
        limit.set_limit_value(session_->info().config.write_queue_limit_bytes);
        limit.set_requested_value(session_->info().to_guest.queued_bytes + pending_.size());
        return FinishLocked(WithProgress(
            ApiError(StatusCode::kResourceExhausted, v1::ERROR_REASON_QUEUE_FULL,
                     "the write queue is full")
                .Metadata("channel", channel_)
                .Metadata("limit", "write_queue_bytes")
                .Detail(limit)));
      } else if (range.status().code() == StatusCode::kFailedPrecondition) {
        return FinishLocked(WithProgress(EngineErrors::NotConnected(
            std::string(range.status().message()), channel_, session_->info())));
      } else if (range.status().code() == StatusCode::kAborted) {
        if (!session_->has_lease()) return PumpLocked();  // reports LEASE_TAKEN_OVER
        return FinishLocked(WithProgress(
            EngineErrors::EpochChanged(epoch_, session_->write_status().epoch,
                                       std::string(range.status().message()))
                .Metadata("channel", channel_)));
      } else {
        return FinishLocked(core_->Removed(range.status(), channel_));
      }
    }
    if (!half_closed_) {
      if (!reading_) {
        reading_ = true;
        StartRead(&request_);
      }
      return;
    }
    if (WriteProgressTracker::BytesAt(FiguresLocked(), ack_level_) >= progress_.accepted()) {
      FinishLocked(absl::OkStatus());
    }
  }

  void Timeout() {
    MutexLock lock(&mu_);
    if (finished_) return;
    FinishLocked(WithProgress(
        ApiError(StatusCode::kDeadlineExceeded, v1::ERROR_REASON_GUEST_TIMEOUT,
                 "the deadline passed before the bytes reached the requested level")
            .Metadata("channel", channel_)));
  }

  void Cancelled() {
    MutexLock lock(&mu_);
    FinishLocked(absl::CancelledError("the call was cancelled"));
  }

  void Done() {
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
    core_->scheduler->Cancel(timer);
    if (session) {
      session->Close();
      core_->metrics->SessionClosed();
    }
    Unregister();
  }

  v1::WriteResponse* const response_;
  v1::WriteRequest request_ ABSL_GUARDED_BY(mu_);
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool half_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool opened_ ABSL_GUARDED_BY(mu_) = false;
  std::string channel_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Session> session_ ABSL_GUARDED_BY(mu_);
  AckLevel ack_level_ ABSL_GUARDED_BY(mu_) = AckLevel::kAccepted;
  bool fail_fast_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;  // the epoch the stream writes in
  WriteProgressTracker progress_ ABSL_GUARDED_BY(mu_);
  // This stream's share of its caller's queued-bytes quota: accepted bytes
  // less what has been delivered.
  QuotaManager::Lease queued_ ABSL_GUARDED_BY(mu_);
  std::string pending_ ABSL_GUARDED_BY(mu_);
  bool has_pending_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t timer_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

grpc::ServerReadReactor<v1::WriteRequest>* StartWrite(std::shared_ptr<ServiceCore> core,
                                                      grpc::CallbackServerContext* context,
                                                      v1::WriteResponse* response) {
  auto r = std::make_shared<WriteReactor>(std::move(core), context, response);
  r->Start(r);
  return r.get();
}

}  // namespace server
}  // namespace xenchan
