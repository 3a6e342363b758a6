// AttachLogic: the Attach state machine (see attach_logic.h).
#include "server/attach_logic.h"

#include <deque>
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
namespace {

using absl::StatusCode;
using policy::Verb;

// Converts a session notice or data record of an Attach stream.
bool AttachMessage(SessionRecord& r, v1::AttachResponse* m, ServerMetrics* metrics) {
  switch (r.kind) {
    case SessionRecord::Kind::kData:
      if (r.data.empty()) return false;
      metrics->BytesToClients(r.data.size());
      m->mutable_data()->set_epoch(r.position.epoch);
      m->mutable_data()->set_offset(r.position.offset);
      m->mutable_data()->set_data(std::move(r.data));
      return true;
    case SessionRecord::Kind::kGap:
      metrics->StreamGap(r.lost);
      m->mutable_gap()->set_epoch(r.position.epoch);
      m->mutable_gap()->set_offset(r.position.offset);
      m->mutable_gap()->set_length(r.lost);
      return true;
    case SessionRecord::Kind::kEpochChange:
      ToProto(r.epoch_change, m->mutable_epoch_change());
      return true;
    case SessionRecord::Kind::kStall:
      m->mutable_stall()->set_stalled(r.stall.stalled);
      SetTime(r.stall.stall_start_time, m->mutable_stall()->mutable_stall_start_time());
      m->mutable_stall()->set_buffered_bytes(r.stall.buffered_bytes);
      return true;
    case SessionRecord::Kind::kStateChange: {
      v1::ChannelStateChange* s = m->mutable_state_change();
      s->set_state(ToProto(r.state.state));
      s->set_frontend_state(ToProto(r.state.frontend_state));
      s->set_backend_state(ToProto(r.state.backend_state));
      if (r.state.error.kind != ChannelErrorKind::kNone) {
        s->mutable_error()->set_kind(ToProto(r.state.error.kind));
        s->mutable_error()->set_message(r.state.error.message);
        SetTime(r.state.error.time, s->mutable_error()->mutable_time());
      }
      SetTime(r.state.time, s->mutable_time());
      return true;
    }
    case SessionRecord::Kind::kLeaseLost:
      if (r.new_holder.has_value()) {
        ToProto(*r.new_holder, m->mutable_lease_lost()->mutable_new_holder());
      } else {
        m->mutable_lease_lost();
      }
      return true;
  }
  return false;
}

absl::Status Violation(const std::string& why) {
  return ApiError(StatusCode::kInvalidArgument, v1::ERROR_REASON_STREAM_PROTOCOL_VIOLATION, why)
      .Field("AttachRequest", why);
}

}  // namespace

AttachLogic::AttachLogic(CallState* call, AttachPort* port)
    : OutStreamLogic(call, port), in_(port) {}

void AttachLogic::Start() {
  MutexLock lock(&mu_);
  if (core_.shutting_down) {
    EndNowLocked(core_.ShuttingDownError());
    return;
  }
  ReadNextLocked();
}

void AttachLogic::ReadNextLocked() {
  if (reading_ || half_closed_ || ending()) return;
  reading_ = true;
  in_->ReadNext(&request_);
}

void AttachLogic::OnReadDone(bool ok) {
  MutexLock lock(&mu_);
  reading_ = false;
  if (ending()) return FlushLocked();
  if (!ok) {
    half_closed_ = true;
    if (!session_) return EndLocked(Violation("the stream ended before `open`"));
    if (role_ == SessionRole::kObserver) return EndLocked(absl::OkStatus());
    FillLocked();
    return FlushLocked();
  }
  v1::AttachRequest message = std::move(request_);
  request_.Clear();
  if (!session_) {
    if (message.kind_case() != v1::AttachRequest::kOpen) {
      return EndNowLocked(Violation("the first message must be `open`"));
    }
    absl::Status s = Open(message.open());
    if (!s.ok()) return EndNowLocked(s);
  } else if (message.kind_case() == v1::AttachRequest::kWrite) {
    const v1::AttachWrite& w = message.write();
    if (role_ != SessionRole::kWriter) {
      return EndLocked(Violation("an observer cannot write"));
    }
    if (w.sequence_id() == 0 || w.sequence_id() <= last_seq_) {
      return EndLocked(Violation(absl::StrCat("sequence_id ", w.sequence_id(),
                                              " does not increase (last ", last_seq_, ")")));
    }
    if (w.data().size() > kMaxStreamMessageBytes) {
      return EndLocked(PayloadTooLarge("write.data", w.data().size()));
    }
    if (absl::Status q = call_.ChargeBytes(w.data().size()); !q.ok()) return EndLocked(q);
    last_seq_ = w.sequence_id();
    pending_input_ = w;
  } else if (message.kind_case() == v1::AttachRequest::kOpen) {
    return EndLocked(Violation("`open` sent twice"));
  } else {
    return EndLocked(Violation("a message must set `open` or `write`"));
  }
  FillLocked();
  FlushLocked();
}

absl::Status AttachLogic::Open(const v1::AttachOpen& open) {
  absl::Status valid = ValidateAttachOpen(open);
  if (!valid.ok()) return valid;
  auto name = ParseChannelName(open.channel(), "open.channel");
  if (!name.ok()) return name.status();
  channel_ = open.channel();
  if (open.role() != v1::SESSION_ROLE_WRITER && open.role() != v1::SESSION_ROLE_OBSERVER) {
    return InvalidOption("open.role", "SESSION_ROLE_WRITER or SESSION_ROLE_OBSERVER");
  }
  absl::Status s = ValidateStart(open.start(), "open.start");
  if (!s.ok()) return s;
  if (!v1::AckLevel_IsValid(open.ack_level())) {
    return InvalidOption("open.ack_level", "unknown acknowledgement level");
  }
  const bool writer = open.role() == v1::SESSION_ROLE_WRITER;
  if (!writer) {
    if (open.ack_level() != v1::ACK_LEVEL_UNSPECIFIED) {
      return InvalidOption("open.ack_level", "observers do not write");
    }
    if (open.takeover()) return InvalidOption("open.takeover", "observers do not write");
    if (open.fail_fast()) return InvalidOption("open.fail_fast", "observers do not write");
  }
  // Observers need read; writers read and write; takeover also admin.
  const Authorizer& authz = core_.authz;
  const Identity& who = call_.identity();
  s = authz.Authorize(who, call_.method(), name->domain, name->channel_id, Verb::kRead);
  if (s.ok() && writer) {
    s = authz.Authorize(who, call_.method(), name->domain, name->channel_id, Verb::kWrite);
  }
  if (s.ok() && open.takeover()) {
    s = authz.Authorize(who, call_.method(), name->domain, name->channel_id, Verb::kAdmin);
  }
  if (!s.ok()) return s;
  s = call_.AcquireQuota(name->domain, writer ? "" : open.channel());
  if (!s.ok()) return s;
  const AckLevel ack_level = FromProtoAck(open.ack_level());
  acks_.emplace(ack_level);
  fail_fast_ = open.fail_fast();
  role_ = writer ? SessionRole::kWriter : SessionRole::kObserver;
  const ChannelRef ref{name->domain, name->channel_id};
  auto info = core_.engine->GetChannel(ref);
  if (!info.ok()) return core_.errors.ChannelNotFound(*name);
  if (writer && static_cast<int>(ack_level) > static_cast<int>(info->max_ack_level)) {
    return EngineErrors::AckLevelNotSupported(channel_, *info);
  }
  SessionOptions options;
  options.role = role_;
  options.kind = SessionKind::kAttach;
  options.identity = call_.identity().holder();
  options.start = EngineStart(open.start(), ReadStart::Anchor::kNext);
  options.takeover = open.takeover();
  // Woken by write progress only when an acknowledgement waits for it.
  options.progress_wakeups = ProgressWakeups::kAsked;
  options.on_ready = call_.wakeups().Notifier([this] { Pump(); });
  auto session = core_.engine->OpenSession(ref, std::move(options));
  if (!session.ok()) {
    std::optional<Position> requested;
    if (open.start().has_position()) {
      requested = Position{open.start().position().epoch(), open.start().position().offset()};
    }
    return core_.errors.SessionOpen(session.status(), *name, requested);
  }
  session_ = *std::move(session);
  core_.metrics->SessionOpened();
  call_.AuditSessionOpened(
      FormatChannelName(session_->info_at_open().domain_uuid, session_->info_at_open().channel_id),
      session_->id(), writer ? "writer" : "observer");
  v1::AttachResponse m;
  v1::AttachOpened* opened = m.mutable_opened();
  opened->set_session_id(session_->id());
  opened->set_role(open.role());
  *opened->mutable_channel() = ChannelProto(session_->info_at_open());
  if (session_->start_position().epoch != 0) {
    ToProto(session_->start_position(), opened->mutable_start_position());
  }
  Enqueue(std::move(m));
  return absl::OkStatus();
}

void AttachLogic::Reject(uint64_t first, uint64_t last, AckLevel reached, uint64_t epoch,
                         StatusCode code, v1::ErrorReason reason, const std::string& message) {
  v1::AttachResponse m;
  v1::WriteRejection* r = m.mutable_write_rejection();
  r->set_first_sequence_id(first);
  r->set_last_sequence_id(last);
  r->set_reached_level(ToProto(reached));
  r->set_epoch(epoch);
  r->set_code(static_cast<int32_t>(code));
  r->set_reason(reason);
  r->set_message(message);
  Enqueue(std::move(m));
}

bool AttachLogic::PlaceInputLocked() {
  if (!pending_input_.has_value()) return true;
  const v1::AttachWrite& w = *pending_input_;
  auto range = session_->Write(w.data(), w.expected_epoch());
  if (range.ok()) {
    core_.metrics->BytesFromClients(w.data().size());
    call_.CountIn(w.data().size());
    acks_->Add(w.sequence_id(), range->epoch, range->end);
    pending_input_.reset();
    return true;
  }
  const absl::Status& s = range.status();
  switch (s.code()) {
    case StatusCode::kResourceExhausted:
      if (!fail_fast_) return false;
      if (IsMemoryBudgetError(s)) {
        Reject(w.sequence_id(), w.sequence_id(), AckLevel::kNone, 0, StatusCode::kResourceExhausted,
               v1::ERROR_REASON_MEMORY_BUDGET_EXHAUSTED, std::string(s.message()));
        break;
      }
      Reject(w.sequence_id(), w.sequence_id(), AckLevel::kNone, 0, StatusCode::kResourceExhausted,
             v1::ERROR_REASON_QUEUE_FULL, "the write queue is full");
      break;
    case StatusCode::kFailedPrecondition:
      Reject(w.sequence_id(), w.sequence_id(), AckLevel::kNone, 0, StatusCode::kFailedPrecondition,
             v1::ERROR_REASON_NOT_CONNECTED, std::string(s.message()));
      break;
    case StatusCode::kAborted:
      if (session_->has_lease()) {
        Reject(w.sequence_id(), w.sequence_id(), AckLevel::kNone, 0, StatusCode::kAborted,
               v1::ERROR_REASON_EPOCH_CHANGED, std::string(s.message()));
      }
      // Otherwise the lease was taken over: the lease_lost notice follows.
      break;
    default:
      EndLocked(core_.Removed(s, channel_));
      break;
  }
  pending_input_.reset();
  return true;
}

v1::WriteAck* AttachLogic::QueuedAckLocked(v1::AckLevel level) {
  std::deque<v1::AttachResponse>& q = queued();
  for (auto it = q.rbegin(); it != q.rend(); ++it) {
    if (it->has_write_ack()) {
      if (it->write_ack().level() == level) return it->mutable_write_ack();
      continue;
    }
    // Data and acks of other levels may be passed; anything else (a
    // rejection, a notice) keeps its place after the acks before it.
    if (!it->has_data()) break;
  }
  return nullptr;
}

void AttachLogic::UpdateAcksLocked() {
  while (!acks_->empty()) {
    const AckTracker::Update update = acks_->Observe(session_->write_status());
    for (const AckTracker::Ack& ack : update.acks) {
      // Acks are cumulative: one still queued at this level is superseded
      // (a burst of writes gets one ACCEPTED ack per completed send, each
      // covering the newest write).
      v1::WriteAck* a = QueuedAckLocked(ToProto(ack.level));
      v1::AttachResponse m;
      if (a == nullptr) a = m.mutable_write_ack();
      a->set_sequence_id(ack.sequence_id);
      a->set_level(ToProto(ack.level));
      a->set_epoch(ack.epoch);
      a->set_end_offset(ack.end_offset);
      if (m.has_write_ack()) Enqueue(std::move(m));
    }
    for (const AckTracker::Rejection& r : update.rejections) {
      const bool ec = r.epoch_changed;
      Reject(r.first_sequence_id, r.last_sequence_id, r.reached, r.epoch,
             ec ? StatusCode::kAborted : StatusCode::kFailedPrecondition,
             ec ? v1::ERROR_REASON_EPOCH_CHANGED : v1::ERROR_REASON_NOT_CONNECTED,
             ec ? "the epoch changed before the bytes reached the guest"
                : "the channel left CONNECTED before the bytes reached the guest");
    }
    // Ask the engine for the progress the next ack waits for (the session
    // is not woken by any other); if it came meanwhile, observe again.
    const AckTracker::Wanted w = acks_->NextProgress();
    if (w.delivered == 0 && w.consumed == 0) return;
    if (session_->WakeOnProgress(w.epoch, w.delivered, w.consumed)) return;
  }
}

void AttachLogic::FillLocked() {
  if (!session_ || ending()) return;
  if (role_ != SessionRole::kWriter || PlaceInputLocked()) ReadNextLocked();
  if (role_ == SessionRole::kWriter) UpdateAcksLocked();
  while (HasRoom() && !ending()) {
    if (call_.Paced([this] { Pump(); })) break;
    auto records = session_->Read(kMaxStreamMessageBytes);
    if (!records.ok()) {
      if (records.status().code() == StatusCode::kAborted) {
        ApiError e(StatusCode::kAborted, v1::ERROR_REASON_LEASE_TAKEN_OVER,
                   "an administrator's session took the write lease over");
        e.Metadata("channel", channel_);
        if (new_holder_.has_value()) e.Detail(*new_holder_);
        return EndLocked(e);
      }
      return EndLocked(core_.Removed(records.status(), channel_));
    }
    if (records->empty()) break;
    for (SessionRecord& r : *records) {
      v1::AttachResponse m;
      if (!AttachMessage(r, &m, core_.metrics)) continue;
      if (m.has_data()) {
        call_.CountOut(m.data().data().size());
        call_.ChargeRead(m.data().data().size());
      }
      if (m.has_lease_lost()) new_holder_ = m.lease_lost().new_holder();
      Enqueue(std::move(m));
    }
  }
  if (role_ == SessionRole::kWriter && half_closed_ && !pending_input_.has_value() &&
      acks_->empty() && !ending()) {
    EndLocked(absl::OkStatus());
  }
}

void AttachLogic::BeforeFinishLocked() {
  if (session_) session_->Close();  // OnDone closes again: a no-op
}

void AttachLogic::OnDone() {
  std::unique_ptr<Session> session;
  {
    MutexLock lock(&mu_);
    session = std::move(session_);
  }
  if (session) {
    session->Close();
    core_.metrics->SessionClosed();
  }
}

}  // namespace server
}  // namespace xenchan
