// ReadLogic: the Read state machine (see read_logic.h).
#include "server/read_logic.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "server/convert.h"
#include "server/resource_names.h"
#include "server/validate.h"

namespace xenchan {
namespace server {

using policy::Verb;

ReadLogic::ReadLogic(CallState* call, OutStreamPort<v1::ReadResponse>* port,
                     const v1::ReadRequest& request)
    : OutStreamLogic(call, port), request_(request) {}

void ReadLogic::Start() {
  MutexLock lock(&mu_);
  absl::Status s = Open();
  if (!s.ok()) {
    EndNowLocked(s);
    return;
  }
  FillLocked();
  FlushLocked();
}

absl::Status ReadLogic::Open() {
  if (core_.shutting_down) return core_.ShuttingDownError();
  absl::Status valid = ValidateRequest(request_);
  if (!valid.ok()) return valid;
  auto name = ParseChannelName(request_.channel(), "channel");
  if (!name.ok()) return name.status();
  absl::Status s = ValidateStart(request_.start(), "start");
  if (!s.ok()) return s;
  s = core_.authz.Authorize(call_.identity(), call_.method(), name->domain, name->channel_id,
                            Verb::kRead);
  if (!s.ok()) return s;
  s = call_.AcquireQuota(name->domain, request_.channel());
  if (!s.ok()) return s;
  channel_ = request_.channel();
  SessionOptions options;
  options.role = SessionRole::kObserver;
  options.identity = call_.identity().holder();
  options.start = EngineStart(request_.start(), ReadStart::Anchor::kEarliest);
  options.progress_wakeups = ProgressWakeups::kAsked;  // a reader has no use for write progress
  options.on_ready = call_.wakeups().Notifier([this] { Pump(); });
  auto session =
      core_.engine->OpenSession(ChannelRef{name->domain, name->channel_id}, std::move(options));
  if (!session.ok()) {
    std::optional<Position> requested;
    if (request_.start().has_position()) {
      requested =
          Position{request_.start().position().epoch(), request_.start().position().offset()};
    }
    return core_.errors.SessionOpen(session.status(), *name, requested);
  }
  session_ = *std::move(session);
  core_.metrics->SessionOpened();
  const ChannelInfo& info = session_->info_at_open();
  call_.AuditSessionOpened(FormatChannelName(info.domain_uuid, info.channel_id), session_->id(),
                           "reader");
  end_ = info.from_guest.next;
  pos_ = session_->start_position();
  return absl::OkStatus();
}

bool ReadLogic::AtEnd() const {
  return pos_.epoch > end_.epoch || (pos_.epoch == end_.epoch && pos_.offset >= end_.offset);
}

void ReadLogic::FillLocked() {
  if (!session_) return;
  while (HasRoom() && !ending()) {
    if (!request_.follow() && AtEnd()) return EndLocked(absl::OkStatus());
    size_t want = kMaxStreamMessageBytes;
    if (request_.max_bytes() != 0) {
      want = std::min<uint64_t>(want, request_.max_bytes() - sent_);
    }
    if (call_.Paced([this] { Pump(); })) return;
    auto records = session_->Read(want);
    if (!records.ok()) return EndLocked(core_.Removed(records.status(), channel_));
    if (records->empty()) {
      if (!request_.follow()) EndLocked(absl::OkStatus());
      return;
    }
    for (SessionRecord& r : *records) {
      v1::ReadResponse m;
      switch (r.kind) {
        case SessionRecord::Kind::kData: {
          std::string data = std::move(r.data);
          if (!request_.follow() && r.position.epoch == end_.epoch &&
              r.position.offset + data.size() > end_.offset) {
            data.resize(end_.offset > r.position.offset ? end_.offset - r.position.offset : 0);
          }
          if (data.empty()) continue;
          m.mutable_data()->set_epoch(r.position.epoch);
          m.mutable_data()->set_offset(r.position.offset);
          pos_ = Position{r.position.epoch, r.position.offset + data.size()};
          sent_ += data.size();
          core_.metrics->BytesToClients(data.size());
          call_.CountOut(data.size());
          call_.ChargeRead(data.size());
          m.mutable_data()->set_data(std::move(data));
          break;
        }
        case SessionRecord::Kind::kGap:
          m.mutable_gap()->set_epoch(r.position.epoch);
          m.mutable_gap()->set_offset(r.position.offset);
          m.mutable_gap()->set_length(r.lost);
          pos_ = Position{r.position.epoch, r.position.offset + r.lost};
          core_.metrics->StreamGap(r.lost);
          break;
        case SessionRecord::Kind::kEpochChange:
          ToProto(r.epoch_change, m.mutable_epoch_change());
          pos_ = Position{r.epoch_change.epoch, 0};
          break;
        default:
          continue;  // notices are for Attach
      }
      Enqueue(std::move(m));
      if (request_.max_bytes() != 0 && sent_ >= request_.max_bytes()) {
        return EndLocked(absl::OkStatus());
      }
      if (!request_.follow() && AtEnd()) return EndLocked(absl::OkStatus());
    }
  }
}

void ReadLogic::BeforeFinishLocked() {
  if (session_) session_->Close();  // OnDone closes again: a no-op
}

void ReadLogic::OnDone() {
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
