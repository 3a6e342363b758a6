// WatchLogic: the WatchChannels state machine (see watch_logic.h).
#include "server/watch_logic.h"

#include <algorithm>
#include <deque>
#include <string>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/engine/retained_revisions.h"
#include "server/convert.h"
#include "server/queries.h"
#include "server/resource_names.h"
#include "server/validate.h"

namespace xenchan {
namespace server {

using absl::StatusCode;
using policy::Verb;

WatchLogic::WatchLogic(CallState* call, OutStreamPort<v1::WatchChannelsResponse>* port,
                       const v1::WatchChannelsRequest& request)
    : OutStreamLogic(call, port), request_(request) {}

void WatchLogic::Start() {
  MutexLock lock(&mu_);
  absl::Status s = Open();
  if (!s.ok()) {
    EndNowLocked(s);
    return;
  }
  subscription_ = core_.engine->SubscribeEvents(call_.wakeups().Notifier([this] { Pump(); }));
  subscribed_ = true;
  heartbeat_ =
      call_.wakeups().RunAt(absl::Now() + core_.options.watch_heartbeat, [this] { Heartbeat(); });
  FillLocked();
  FlushLocked();
}

absl::Status WatchLogic::Open() {
  if (core_.shutting_down) return core_.ShuttingDownError();
  absl::Status valid = ValidateRequest(request_);
  if (!valid.ok()) return valid;
  auto parent = ParseDomainName(request_.parent(), "parent", /*allow_all=*/true);
  if (!parent.ok()) return parent.status();
  absl::Status s = ValidateFilter(request_.filter(), "filter");
  if (!s.ok()) return s;
  const Identity& who = call_.identity();
  s = parent->all() ? core_.authz.AuthorizeListing(who, call_.method(), "domains/-", "read")
                    : core_.authz.AuthorizeDomain(who, call_.method(), parent->domain, Verb::kRead);
  if (!s.ok()) return s;
  s = call_.AcquireQuota(parent->all() ? "" : parent->domain, "");
  if (!s.ok()) return s;
  if (!parent->all()) {
    auto domain = core_.engine->GetDomain(parent->domain);
    if (!domain.ok()) return EngineErrors::DomainNotFound(parent->domain);
    domain_uuid_ = domain->uuid;
    one_domain_ = true;
  }
  if (request_.start_revision() == 0) {
    EngineSnapshot snap = core_.engine->Snapshot();
    std::sort(
        snap.channels.begin(), snap.channels.end(), [](const ChannelInfo& a, const ChannelInfo& b) {
          return std::tie(a.domain_uuid, a.channel_id) < std::tie(b.domain_uuid, b.channel_id);
        });
    const absl::Time now = absl::Now();
    for (const ChannelInfo& c : snap.channels) {
      if (!Matches(c)) continue;
      v1::WatchChannelsResponse m;
      m.set_revision(snap.revision);
      m.set_type(v1::CHANNEL_EVENT_TYPE_EXISTING);
      SetTime(now, m.mutable_event_time());
      *m.mutable_channel() = ChannelProto(c);
      snapshot_.push_back(std::move(m));
    }
    cursor_ = snap.revision;
    sync_at_ = snap.revision;
    return absl::OkStatus();
  }
  const uint64_t current = core_.engine->revision();
  if (!core_.engine->EventsAfter(request_.start_revision(), 0).ok()) {
    const Engine* engine = core_.engine;
    const uint64_t earliest = EarliestResumableRevision(
        current, [engine](uint64_t r) { return engine->EventsAfter(r, 0).ok(); });
    v1::RetainedRevisions retained;
    retained.set_requested_revision(request_.start_revision());
    retained.set_earliest_revision(earliest);
    retained.set_current_revision(current);
    return ApiError(StatusCode::kOutOfRange, v1::ERROR_REASON_REVISION_NOT_RETAINED,
                    absl::StrCat("revision ", request_.start_revision(),
                                 " cannot be resumed from; retained ", earliest, "..", current))
        .Detail(retained);
  }
  cursor_ = request_.start_revision();
  sync_at_ = current;
  return absl::OkStatus();
}

bool WatchLogic::Matches(const ChannelInfo& c) const {
  if (one_domain_ && c.domain_uuid != domain_uuid_) return false;
  if (!MatchesFilter(c, request_.filter())) return false;
  return Authorizer::MayRead(*core_.authz.Policy(), call_.identity(), c);
}

void WatchLogic::FillLocked() {
  while (HasRoom() && !snapshot_.empty()) {
    Enqueue(std::move(snapshot_.front()));
    snapshot_.pop_front();
  }
  while (HasRoom() && snapshot_.empty() && !ending()) {
    if (!synced_ && cursor_ >= sync_at_) {
      v1::WatchChannelsResponse m;
      m.set_revision(sync_at_);
      m.set_type(v1::CHANNEL_EVENT_TYPE_SYNCED);
      SetTime(absl::Now(), m.mutable_event_time());
      Enqueue(std::move(m));
      synced_ = true;
      sent_since_heartbeat_ = true;
      continue;
    }
    // Only events that happened since the watch began count: a resumed
    // watch catches up on everything up to sync_at_ at its own pace (the
    // retention bounds that part).
    const uint64_t newest = core_.engine->revision();
    const uint64_t floor = std::max(cursor_, sync_at_);
    if (newest > floor && newest - floor > core_.options.watch_backlog_events) {
      SlowConsumer(newest);
      return;
    }
    auto events = core_.engine->EventsAfter(cursor_, core_.options.stream_queue_messages);
    if (!events.ok()) {
      SlowConsumer(newest);
      return;
    }
    if (events->empty()) return;
    for (ChannelEvent& e : *events) {
      if (!HasRoom()) break;
      cursor_ = e.revision;
      if (!Matches(e.channel)) continue;
      Enqueue(Convert(e));
      sent_since_heartbeat_ = true;
      if (!synced_ && cursor_ >= sync_at_) break;
    }
  }
}

v1::WatchChannelsResponse WatchLogic::Convert(const ChannelEvent& e) {
  v1::WatchChannelsResponse m;
  m.set_revision(e.revision);
  m.set_type(ToProto(e.type));
  SetTime(e.time, m.mutable_event_time());
  *m.mutable_channel() = ChannelProto(e.channel);
  if (e.epoch_change.has_value()) ToProto(*e.epoch_change, m.mutable_epoch_change());
  if (e.drop_report.has_value()) {
    v1::DropReport* d = m.mutable_drop_report();
    d->set_dropped_bytes(e.drop_report->dropped_bytes);
    ToProto(e.drop_report->first_position, d->mutable_first_position());
    ToProto(e.drop_report->end_position, d->mutable_end_position());
  }
  if (e.lease_change.has_value()) {
    v1::LeaseChange* l = m.mutable_lease_change();
    if (e.lease_change->previous_holder.has_value()) {
      ToProto(*e.lease_change->previous_holder, l->mutable_previous_holder());
    }
    if (e.lease_change->holder.has_value()) {
      ToProto(*e.lease_change->holder, l->mutable_holder());
    }
    l->set_taken_over(e.lease_change->taken_over);
  }
  if (e.type == ChannelEventType::kRemoved) m.set_removal_reason(ToProto(e.removal_reason));
  return m;
}

void WatchLogic::SlowConsumer(uint64_t newest) {
  v1::LimitExceeded limit;
  limit.set_limit("watch_backlog_events");
  limit.set_limit_value(core_.options.watch_backlog_events);
  limit.set_requested_value(newest - cursor_);
  EndLocked(ApiError(StatusCode::kResourceExhausted, v1::ERROR_REASON_SLOW_CONSUMER,
                     absl::StrCat("the watcher fell ", newest - cursor_,
                                  " events behind; resume from revision ", cursor_))
                .Metadata("limit", "watch_backlog_events")
                .Detail(limit));
}

void WatchLogic::Heartbeat() {
  MutexLock lock(&mu_);
  if (ending()) return;
  if (!sent_since_heartbeat_ && synced_ && HasRoom()) {
    FillLocked();
    v1::WatchChannelsResponse m;
    m.set_revision(cursor_);
    m.set_type(v1::CHANNEL_EVENT_TYPE_PROGRESS);
    SetTime(absl::Now(), m.mutable_event_time());
    Enqueue(std::move(m));
    FlushLocked();
  }
  sent_since_heartbeat_ = false;
  heartbeat_ =
      call_.wakeups().RunAt(absl::Now() + core_.options.watch_heartbeat, [this] { Heartbeat(); });
}

void WatchLogic::OnDone() {
  uint64_t heartbeat;
  bool subscribed;
  uint64_t subscription;
  {
    MutexLock lock(&mu_);
    heartbeat = heartbeat_;
    subscribed = subscribed_;
    subscription = subscription_;
    subscribed_ = false;
  }
  call_.wakeups().Cancel(heartbeat);
  if (subscribed) core_.engine->UnsubscribeEvents(subscription);
}

}  // namespace server
}  // namespace xenchan
