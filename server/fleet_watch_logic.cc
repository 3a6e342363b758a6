// WatchFleet's state machine (see fleet_watch_logic.h).
#include "server/fleet_watch_logic.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/status.h"

namespace xenchan {
namespace server {
namespace {

using absl::StatusCode;

// Events taken from the reader at a time.
constexpr size_t kBatch = 64;

v1::FleetEventType TypeOf(fleet::FleetEvent::Type type) {
  switch (type) {
    case fleet::FleetEvent::Type::kAppeared:
      return v1::FLEET_EVENT_TYPE_APPEARED;
    case fleet::FleetEvent::Type::kChanged:
      return v1::FLEET_EVENT_TYPE_CHANGED;
    case fleet::FleetEvent::Type::kDisappeared:
      return v1::FLEET_EVENT_TYPE_DISAPPEARED;
    case fleet::FleetEvent::Type::kResynced:
      return v1::FLEET_EVENT_TYPE_SYNCED;
  }
  return v1::FLEET_EVENT_TYPE_UNSPECIFIED;
}

v1::WatchFleetResponse Synced(int64_t revision) {
  v1::WatchFleetResponse r;
  r.set_revision(revision);
  r.set_type(v1::FLEET_EVENT_TYPE_SYNCED);
  return r;
}

}  // namespace

FleetWatchLogic::FleetWatchLogic(FleetContext fleet, Identity id, v1::WatchFleetRequest request,
                                 OutStreamPort<v1::WatchFleetResponse>* port)
    : fleet_(fleet), id_(std::move(id)), request_(std::move(request)), port_(port) {}

void FleetWatchLogic::Start(const std::function<uint64_t(std::function<void()>)>& subscribe,
                            std::function<void()> on_change) {
  {
    MutexLock lock(&mu_);
    absl::Status s = Begin();
    if (!s.ok()) {
      FinishLocked(s);
      return;
    }
  }
  // Subscribed without mu_ (lock order); a change in between is not lost:
  // Pump always reads what follows cursor_.
  const uint64_t id = subscribe(std::move(on_change));
  MutexLock lock(&mu_);
  subscription_ = id;
  started_ = true;
  Pump();
}

absl::Status FleetWatchLogic::Begin() {
  if (fleet_.reader == nullptr) return FleetNotConfigured();
  if (request_.start_revision() < 0) {
    return InvalidOption("start_revision", "must not be negative");
  }
  if (absl::Status s = fleet_.access->AuthorizeListing(id_, "WatchFleet", "hosts,domains");
      !s.ok()) {
    return s;
  }
  const int64_t start = request_.start_revision();
  const int64_t compacted = fleet_.reader->compacted_revision();
  absl::Status result;
  absl::Status read = fleet_.reader->Read([&](const fleet::FleetView& view) {
    mu_.AssertHeld();  // runs within this function's locked scope
    if (start == 0) {
      for (const auto& [key, host] : view.hosts()) {
        v1::WatchFleetResponse r;
        r.set_revision(view.revision());
        r.set_type(v1::FLEET_EVENT_TYPE_EXISTING);
        *r.mutable_host() = HostProto(host);
        queue_.push_back(std::move(r));
      }
      for (const auto& [key, domain] : view.domains()) {
        v1::WatchFleetResponse r;
        r.set_revision(view.revision());
        r.set_type(v1::FLEET_EVENT_TYPE_EXISTING);
        *r.mutable_domain() = DomainProto(domain);
        queue_.push_back(std::move(r));
      }
      queue_.push_back(Synced(view.revision()));
      cursor_ = view.revision();
      return;
    }
    if (start < view.floor() || start > view.revision()) {
      v1::RetainedRevisions detail;
      detail.set_requested_revision(start);
      detail.set_earliest_revision(view.floor());
      detail.set_current_revision(view.revision());
      const std::string why =
          start > view.revision()
              ? absl::StrCat("revision ", start,
                             " is newer than the newest this xenchand has seen (", view.revision(),
                             ")")
          : start < compacted
              ? absl::StrCat("revision ", start,
                             " was compacted in etcd (its history now starts at ", compacted, ")")
              : absl::StrCat("revision ", start,
                             " is older than this xenchand's history of the fleet (from ",
                             view.floor(), ")");
      result = ApiError(StatusCode::kOutOfRange, v1::ERROR_REASON_REVISION_NOT_RETAINED,
                        absl::StrCat(why, ": restart the watch with start_revision 0"))
                   .Detail(detail);
      return;
    }
    cursor_ = start;
    synced_owed_ = true;
  });
  if (!read.ok()) return FleetUnavailable(read);
  if (!result.ok()) queue_.clear();
  return result;
}

absl::Status FleetWatchLogic::Fetch() {
  std::vector<fleet::FleetEvent> events;
  int64_t current = 0;
  absl::Status range;
  absl::Status read = fleet_.reader->Read([&](const fleet::FleetView& view) {
    mu_.AssertHeld();  // runs within this function's locked scope
    range = view.EventsAfter(cursor_, kBatch, &events);
    current = view.revision();
  });
  if (!read.ok()) return FleetUnavailable(read);
  if (!range.ok()) {
    return ApiError(StatusCode::kResourceExhausted, v1::ERROR_REASON_SLOW_CONSUMER,
                    absl::StrCat("this stream fell behind the fleet history this xenchand keeps (",
                                 range.message(), "): resume from the last revision processed"))
        .Metadata("limit", "fleet_history_events");
  }
  for (const fleet::FleetEvent& e : events) {
    cursor_ = e.revision;
    v1::WatchFleetResponse r;
    r.set_revision(e.revision);
    r.set_type(TypeOf(e.type));
    if (e.kind == fleet::FleetEvent::Kind::kHost) *r.mutable_host() = HostProto(e.host);
    if (e.kind == fleet::FleetEvent::Kind::kDomain) *r.mutable_domain() = DomainProto(e.domain);
    if (Visible(r)) queue_.push_back(std::move(r));
  }
  if (events.size() < kBatch && synced_owed_) {
    // Caught up with the reader: everything up to `current` was sent.
    synced_owed_ = false;
    cursor_ = current;
    queue_.push_back(Synced(current));
  }
  return absl::OkStatus();
}

bool FleetWatchLogic::Visible(const v1::WatchFleetResponse& event) const {
  if (!event.has_domain()) return true;
  return fleet_.access->Policy()->CanSeeDomain(
      id_.principals, policy::DomainRef{event.domain().uuid(), event.domain().display_name()});
}

void FleetWatchLogic::Pump() {
  if (!started_ || writing_ || finished_) return;
  if (finish_pending_) {
    FinishLocked(finish_status_);
    return;
  }
  if (queue_.empty()) {
    absl::Status s = Fetch();
    if (!s.ok()) {
      FinishLocked(s);
      return;
    }
    if (queue_.empty()) return;
  }
  in_flight_ = std::move(queue_.front());
  queue_.pop_front();
  writing_ = true;
  port_->WriteNext(&in_flight_);
}

void FleetWatchLogic::FinishLocked(const absl::Status& status) {
  if (finished_) return;
  if (writing_) {
    if (!finish_pending_) {
      finish_pending_ = true;
      finish_status_ = status;
    }
    return;
  }
  finished_ = true;
  port_->FinishWith(status);
}

void FleetWatchLogic::OnChange() {
  MutexLock lock(&mu_);
  Pump();
}

void FleetWatchLogic::OnWriteDone(bool ok) {
  MutexLock lock(&mu_);
  writing_ = false;
  if (!ok) {
    FinishLocked(absl::CancelledError("the client went away"));
    return;
  }
  Pump();
}

void FleetWatchLogic::OnCancel() {
  MutexLock lock(&mu_);
  FinishLocked(absl::CancelledError("the call was cancelled"));
}

void FleetWatchLogic::OnShutdown() {
  MutexLock lock(&mu_);
  FinishLocked(FleetShuttingDown());
}

void FleetWatchLogic::OnDone(const std::function<void(uint64_t)>& unsubscribe) {
  uint64_t id;
  {
    MutexLock lock(&mu_);
    id = subscription_;
    subscription_ = 0;
    finished_ = true;
  }
  if (id != 0) unsubscribe(id);
}

}  // namespace server
}  // namespace xenchan
