// CallLogic: the Call state machine (see call_logic.h).
#include "server/call_logic.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/convert.h"
#include "server/resource_names.h"
#include "server/validate.h"

namespace xenchan {
namespace server {

namespace {

using absl::StatusCode;
using policy::Verb;

// PartialResponse.response is cut to this many bytes (see PartialLocked).
constexpr size_t kMaxPartialResponseDetailBytes = 4096;

}  // namespace

CallLogic::CallLogic(CallState* call, FinishPort* port, const v1::CallRequest& request,
                     v1::CallResponse* response)
    : call_(*call), core_(call->core()), port_(port), request_(request), response_(response) {}

void CallLogic::Start() {
  MutexLock lock(&mu_);
  absl::Status s = Open();
  if (!s.ok()) return FinishLocked(s);
  const absl::Time end = call_.deadline() == absl::InfiniteFuture()
                             ? absl::Now() + core_.options.max_call_time
                             : core_.WaitDeadline(call_.deadline());
  timer_ = call_.wakeups().RunAt(end, [this] { Timeout(); });
  PumpLocked();
}

void CallLogic::OnCancel() {
  MutexLock lock(&mu_);
  FinishLocked(absl::CancelledError("the call was cancelled"));
}

void CallLogic::OnShutdown() {
  MutexLock lock(&mu_);
  FinishLocked(core_.ShuttingDownError());
}

void CallLogic::FinishLocked(const absl::Status& status) {
  if (finished_) return;
  finished_ = true;
  call_.SetFinalCode(status.code());
  ReleaseSessionLocked();
  port_->FinishWith(status);
}

absl::Status CallLogic::Open() {
  if (core_.shutting_down) return core_.ShuttingDownError();
  absl::Status valid = ValidateRequest(request_);
  if (!valid.ok()) return valid;
  auto name = ParseChannelName(request_.channel(), "channel");
  if (!name.ok()) return name.status();
  channel_ = request_.channel();
  absl::Status allowed = core_.authz.Authorize(call_.identity(), call_.method(), name->domain,
                                               name->channel_id, Verb::kCall);
  if (!allowed.ok()) return allowed;
  allowed = call_.AcquireQuota(name->domain, "");
  if (allowed.ok()) allowed = call_.ChargeBytes(request_.request().size());
  if (!allowed.ok()) return allowed;
  const ChannelRef ref{name->domain, name->channel_id};
  auto info = core_.engine->GetChannel(ref);
  if (!info.ok()) return core_.errors.ChannelNotFound(*name);
  framing_ = request_.has_framing() ? FromProto(request_.framing())
                                    : info->config.default_framing.value_or(Framing{});
  sync_id_ = absl::Uniform<uint32_t>(bitgen_, 1, 1u << 30);
  auto encoded = EncodeCallRequest(framing_, request_.request(), sync_id_);
  if (!encoded.ok()) return InvalidOption("request", std::string(encoded.status().message()));
  preamble_bytes_ = encoded->preamble.size();
  out_ = absl::StrCat(encoded->preamble, encoded->request);
  SessionOptions options;
  options.role = SessionRole::kWriter;
  options.kind = SessionKind::kCall;
  options.identity = call_.identity().holder();
  options.queue_for_lease = true;
  options.start.anchor = ReadStart::Anchor::kNext;
  // Woken by the reply, the lease, and room after a full queue; how far the
  // request got is read only when the call ends (PartialLocked).
  options.progress_wakeups = ProgressWakeups::kAsked;
  options.on_ready = call_.wakeups().Notifier([this] { Pump(); });
  auto session = core_.engine->OpenSession(ref, std::move(options));
  if (!session.ok()) return core_.errors.SessionOpen(session.status(), *name, std::nullopt);
  session_ = *std::move(session);
  core_.metrics->SessionOpened();
  call_.AuditSessionOpened(FormatChannelName(info->domain_uuid, info->channel_id), session_->id(),
                           "call");
  return absl::OkStatus();
}

v1::PartialResponse CallLogic::PartialLocked() {
  v1::PartialResponse p;
  p.set_epoch(epoch_);
  AckLevel level = AckLevel::kNone;
  if (written_ > 0) {
    level = AckLevel::kAccepted;
    if (written_ == out_.size()) {
      level = ReachedLevel(session_->write_status(), epoch_, request_end_);
    }
  }
  p.set_request_level(ToProto(level));
  p.set_request_offset(request_offset_);
  p.set_response_offset(response_offset_);
  // Bounded to fit gRPC's trailers (clients refuse metadata beyond 8 KiB
  // by default); the whole response can be read from response_offset.
  if (decoder_) p.set_response(decoder_->Partial().substr(0, kMaxPartialResponseDetailBytes));
  return p;
}

absl::Status CallLogic::WithPartial(ApiError e) {
  e.Metadata("channel", channel_);
  if (exchanging_) e.Detail(PartialLocked());
  return e.Build();
}

void CallLogic::Pump() {
  MutexLock lock(&mu_);
  if (!finished_) PumpLocked();
}

void CallLogic::PumpLocked() {
  if (!session_ || finished_) return;
  if (!exchanging_) {
    if (!session_->has_lease()) {
      // Still queued; make sure the channel is still there.
      auto records = session_->Read(kMaxStreamMessageBytes);
      if (!records.ok()) return FinishLocked(core_.Removed(records.status(), channel_));
      return;
    }
    // Our turn. Bytes that arrived before are not part of the response.
    for (;;) {
      auto records = session_->Read(kMaxStreamMessageBytes);
      if (!records.ok()) return FinishLocked(core_.Removed(records.status(), channel_));
      if (records->empty()) break;
    }
    const WriteStatus ws = session_->write_status();
    if (!ws.connected) {
      const ChannelInfo info = session_->info();
      return FinishLocked(EngineErrors::NotConnected(
          absl::StrCat("the channel is ", ToString(info.state)), channel_, info));
    }
    const ChannelInfo info = session_->info();
    exchanging_ = true;
    epoch_ = ws.epoch;
    request_offset_ = ws.accepted_offset;
    request_end_ = request_offset_ + out_.size();
    response_offset_ = info.from_guest.next.epoch == epoch_ ? info.from_guest.next.offset : 0;
    decoder_ = NewResponseDecoder(framing_, sync_id_);
  }
  // The preamble's answer lets the rest of the request go.
  while (WriteLocked() && ReadLocked()) {
  }
}

bool CallLogic::WriteLocked() {
  // Only the preamble until the decoder has seen it answered.
  const size_t limit = decoder_->ReadyForRequest() ? out_.size() : preamble_bytes_;
  while (written_ < limit) {
    const size_t n = std::min(Session::kMaxWrite, limit - written_);
    auto range = session_->Write(absl::string_view(out_).substr(written_, n), epoch_);
    if (range.ok()) {
      if (written_ == 0) {
        request_offset_ = range->start;
        request_end_ = request_offset_ + out_.size();
      }
      written_ += n;
      core_.metrics->BytesFromClients(n);
      call_.CountIn(n);
      continue;
    }
    const absl::Status& s = range.status();
    if (s.code() == StatusCode::kResourceExhausted) break;  // room frees: on_ready
    if (s.code() == StatusCode::kFailedPrecondition) {
      FinishLocked(WithPartial(ApiError(StatusCode::kFailedPrecondition,
                                        v1::ERROR_REASON_NOT_CONNECTED, std::string(s.message()))));
      return false;
    }
    FinishLocked(s.code() == StatusCode::kAborted ? AbortedLocked(s) : core_.Removed(s, channel_));
    return false;
  }
  return true;
}

bool CallLogic::ReadLocked() {
  const bool was_ready = decoder_->ReadyForRequest();
  for (;;) {
    auto records = session_->Read(kMaxStreamMessageBytes);
    if (!records.ok()) {
      if (records.status().code() == StatusCode::kAborted) {
        FinishLocked(AbortedLocked(records.status()));
        return false;
      }
      FinishLocked(WithPartial(ApiError(
          records.status().code() == StatusCode::kNotFound ? StatusCode::kNotFound
                                                           : StatusCode::kUnavailable,
          records.status().code() == StatusCode::kNotFound ? v1::ERROR_REASON_CHANNEL_REMOVED
                                                           : v1::ERROR_REASON_DOMAIN_GONE,
          std::string(records.status().message()))));
      return false;
    }
    if (records->empty()) return false;
    for (SessionRecord& r : *records) {
      switch (r.kind) {
        case SessionRecord::Kind::kData: {
          if (!got_data_) {
            got_data_ = true;
            if (r.position.epoch == epoch_) response_offset_ = r.position.offset;
          }
          auto done = decoder_->Feed(r.data);
          if (!done.ok()) {
            FinishLocked(WithPartial(ApiError(StatusCode::kResourceExhausted,
                                              v1::ERROR_REASON_RESPONSE_TOO_LARGE,
                                              "the response exceeds 1 MiB")
                                         .Metadata("limit", "call_response_bytes")));
            return false;
          }
          if (done->has_value()) {
            call_.CountOut((*done)->size());
            call_.ChargeRead((*done)->size());  // paces the caller's next reads
            response_->set_response(**done);
            response_->set_epoch(epoch_);
            response_->set_request_offset(request_offset_);
            response_->set_response_offset(response_offset_);
            FinishLocked(absl::OkStatus());
            return false;
          }
          break;
        }
        case SessionRecord::Kind::kEpochChange:
          FinishLocked(WithPartial(EngineErrors::EpochChanged(
              epoch_, r.epoch_change.epoch, "the guest reconnected during the call")));
          return false;
        case SessionRecord::Kind::kStateChange:
          // CLOSED is the final state of a removed channel; the removal's
          // status follows at once (the domain went away: DOMAIN_GONE;
          // the channel was deleted: CHANNEL_REMOVED) and is read next,
          // now or at the next wake-up.
          // A frontend whose directory vanished (frontend state unknown) was
          // removed by the toolstack: the domain is being destroyed or the
          // device unplugged, and that removal's status (DOMAIN_GONE,
          // CHANNEL_REMOVED) follows in a moment: wait for it, a little.
          if (r.state.state == ChannelState::kDisconnected &&
              r.state.frontend_state == XenbusState::kUnknown) {
            if (grace_timer_ == 0) {
              grace_timer_ = call_.wakeups().RunAt(absl::Now() + kFrontendGoneGrace,
                                                   [this] { FrontendGone(); });
            }
            break;
          }
          if (r.state.state != ChannelState::kConnected && r.state.state != ChannelState::kClosed) {
            FinishLocked(WithPartial(ApiError(
                StatusCode::kFailedPrecondition, v1::ERROR_REASON_NOT_CONNECTED,
                absl::StrCat("the channel left CONNECTED (", ToString(r.state.state), ")"))));
            return false;
          }
          break;
        case SessionRecord::Kind::kLeaseLost:
          FinishLocked(AbortedLocked(absl::AbortedError("lease taken over")));
          return false;
        default:
          break;
      }
    }
    if (!was_ready && decoder_->ReadyForRequest()) return true;
  }
}

absl::Status CallLogic::AbortedLocked(const absl::Status& s) {
  if (!session_->has_lease()) {
    return WithPartial(EngineErrors::LeaseTakenOver(session_->info().write_lease));
  }
  return WithPartial(
      EngineErrors::EpochChanged(epoch_, session_->write_status().epoch, std::string(s.message())));
}

void CallLogic::FrontendGone() {
  MutexLock lock(&mu_);
  if (finished_) return;
  FinishLocked(WithPartial(ApiError(StatusCode::kFailedPrecondition, v1::ERROR_REASON_NOT_CONNECTED,
                                    "the channel left CONNECTED (its frontend is gone)")));
}

void CallLogic::Timeout() {
  MutexLock lock(&mu_);
  if (finished_ || !session_) return;
  if (!exchanging_) {
    ApiError e(StatusCode::kDeadlineExceeded, v1::ERROR_REASON_LEASE_WAIT_TIMEOUT,
               "the deadline passed while waiting for the write lease; nothing was sent");
    e.Metadata("channel", channel_);
    const ChannelInfo info = session_->info();
    if (info.write_lease.has_value()) {
      v1::LeaseHolder holder;
      ToProto(*info.write_lease, &holder);
      e.Detail(holder);
    }
    return FinishLocked(e);
  }
  FinishLocked(WithPartial(ApiError(StatusCode::kDeadlineExceeded, v1::ERROR_REASON_GUEST_TIMEOUT,
                                    "the guest did not answer in time")));
}

void CallLogic::ReleaseSessionLocked() {
  // Release the lease at once so the next Call can start.
  if (session_) {
    session_->Close();
    session_.reset();
    core_.metrics->SessionClosed();
  }
}

void CallLogic::OnDone() {
  uint64_t timer;
  uint64_t grace;
  {
    MutexLock lock(&mu_);
    timer = timer_;
    grace = grace_timer_;
  }
  call_.wakeups().Cancel(timer);
  if (grace != 0) call_.wakeups().Cancel(grace);
}

}  // namespace server
}  // namespace xenchan
