// FleetFollower: see fleet_follower.h; the rule it implements is
// docs/FLEET.md, "Following a channel across hosts".
#include "clients/lib/fleet_follower.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace xenchan {
namespace client {
namespace {

constexpr absl::Duration kFirstPause = absl::Milliseconds(100);
constexpr absl::Duration kLongestPause = absl::Seconds(1);

// Where the stream stands after `r` was delivered.
struct Next {
  uint64_t epoch = 0;
  uint64_t offset = 0;
};

void Advance(const v1::ReadResponse& r, std::optional<Next>* next) {
  if (r.has_data()) {
    *next = Next{r.data().epoch(), r.data().offset() + r.data().data().size()};
  } else if (r.has_gap()) {
    *next = Next{r.gap().epoch(), r.gap().offset() + r.gap().length()};
  } else if (r.has_epoch_change()) {
    *next = Next{r.epoch_change().epoch(), 0};
  }
}

std::string HostId(const v1::FleetDomain& d) {
  return std::string(absl::StripPrefix(d.host(), "hosts/"));
}

std::string Describe(const DomainLocation& l) {
  return absl::StrCat("host ", HostId(l.domain), ", domid ", l.domain.domid());
}

}  // namespace

FleetFollower::FleetFollower(FleetClient* fleet, std::string domain, std::string channel_id,
                             FollowOptions options)
    : fleet_(fleet),
      domain_(std::move(domain)),
      channel_id_(std::move(channel_id)),
      options_(std::move(options)) {}

void FleetFollower::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  if (call_ != nullptr) call_->TryCancel();
  cancel_cv_.notify_all();
}

bool FleetFollower::cancelled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cancelled_;
}

bool FleetFollower::SetCall(grpc::ClientContext* context) {
  std::lock_guard<std::mutex> lock(mu_);
  call_ = context;
  return !cancelled_;
}

bool FleetFollower::Pause(absl::Duration delay) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cancel_cv_.wait_for(lock, absl::ToChronoNanoseconds(delay),
                              [this] { return cancelled_; });
}

absl::StatusOr<DomainLocation> FleetFollower::WaitForOwner(const OwnerCondition& ok,
                                                           absl::Time deadline) {
  absl::Duration pause = kFirstPause;
  std::string last = "no record";
  for (;;) {
    if (cancelled()) return absl::CancelledError("cancelled");
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "domain ", domain_, " did not appear on another host within ",
          absl::FormatDuration(options_.relocate_timeout), " (last seen: ", last, ")"));
    }
    absl::StatusOr<DomainLocation> loc = fleet_->LocateDomain(domain_);
    if (loc.ok()) {
      last = Describe(*loc);
      if (ok(loc->domain)) return loc;
      // Not yet: wait for a change of its record after what LocateDomain saw.
      v1::WatchFleetRequest request;
      request.set_start_revision(loc->revision);
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(deadline));
      if (!SetCall(&context)) return absl::CancelledError("cancelled");
      bool changed = false;
      const std::string uuid = loc->domain.uuid();
      (void)fleet_->WatchFleet(
          request,
          [&](const v1::WatchFleetResponse& m) {
            if (m.has_domain() && m.domain().uuid() == uuid &&
                (m.type() == v1::FLEET_EVENT_TYPE_APPEARED ||
                 m.type() == v1::FLEET_EVENT_TYPE_CHANGED) &&
                ok(m.domain())) {
              changed = true;
              return false;
            }
            return true;
          },
          &context);
      SetCall(nullptr);
      if (changed) continue;  // look it up again: the answer carries the host's address
    } else {
      last = std::string(loc.status().message());
    }
    if (!Pause(std::min(pause, std::max(deadline - absl::Now(), absl::ZeroDuration())))) {
      return absl::CancelledError("cancelled");
    }
    pause = std::min(pause * 2, kLongestPause);
  }
}

absl::Status FleetFollower::Run(const std::function<bool(const v1::ReadResponse&)>& on_message) {
  absl::StatusOr<DomainLocation> owner = fleet_->LocateDomain(domain_);
  if (!owner.ok()) return owner.status();
  DomainLocation current = *std::move(owner);
  std::unique_ptr<Client> client;
  v1::ReadStart start = options_.start;
  if (start.point_case() == v1::ReadStart::POINT_NOT_SET) {
    start.set_anchor(v1::START_ANCHOR_EARLIEST);
  }
  std::optional<Next> next;               // one past what was delivered on this host
  std::optional<v1::EpochChange> moving;  // the move, reported before the new host's first
  std::optional<absl::Time> retry_until;  // while the new owner does not serve the channel yet
  bool stopped = false;                   // the caller's on_message said stop

  auto deliver = [&](const v1::ReadResponse& r) {
    Advance(r, &next);
    if (!on_message(r)) stopped = true;
    return !stopped;
  };

  for (;;) {
    if (cancelled()) return absl::OkStatus();
    if (client == nullptr) {
      absl::StatusOr<std::unique_ptr<Client>> made = fleet_->ConnectToHost(current.host);
      if (!made.ok()) return made.status();
      client = *std::move(made);
      if (options_.on_host) options_.on_host(current);
    }
    v1::ReadRequest request;
    request.set_channel(absl::StrCat("domains/", current.domain.uuid(), "/channels/", channel_id_));
    *request.mutable_start() = start;
    request.set_follow(true);
    std::optional<v1::EpochChange> migrated;  // the host said the domain moved
    bool received = false;
    grpc::ClientContext context;
    if (!SetCall(&context)) return absl::OkStatus();
    absl::Status end = client->Read(
        request,
        [&](const v1::ReadResponse& r) {
          received = true;
          if (moving.has_value()) {
            // The first message from the new owner: one epoch change for
            // the move, into the epoch this host starts with.
            v1::ReadResponse change;
            v1::EpochChange* e = change.mutable_epoch_change();
            *e = *moving;
            moving.reset();
            if (r.has_epoch_change()) {
              e->set_epoch(r.epoch_change().epoch());
              if (!e->has_time()) *e->mutable_time() = r.epoch_change().time();
              return deliver(change);  // folded into the move's
            }
            e->set_epoch(r.has_data() ? r.data().epoch() : r.gap().epoch());
            if (!deliver(change)) return false;
            if (r.has_data() && r.data().offset() > 0) {  // evicted before we came
              v1::ReadResponse gap;
              gap.mutable_gap()->set_epoch(r.data().epoch());
              gap.mutable_gap()->set_offset(0);
              gap.mutable_gap()->set_length(r.data().offset());
              if (!deliver(gap)) return false;
            }
          }
          if (r.has_epoch_change() &&
              r.epoch_change().reason() == v1::EPOCH_CHANGE_REASON_DOMAIN_MIGRATED) {
            migrated = r.epoch_change();
            return false;  // re-resolve before anything of the new epoch
          }
          return deliver(r);
        },
        &context);
    SetCall(nullptr);
    if (stopped || cancelled()) return absl::OkStatus();
    if (received) retry_until.reset();
    const absl::Time deadline = absl::Now() + options_.relocate_timeout;
    const std::string here = HostId(current.domain);
    const uint32_t domid = current.domain.domid();

    std::optional<DomainLocation> target;  // the owner to move to
    if (migrated.has_value()) {
      absl::StatusOr<DomainLocation> found = WaitForOwner(
          [&](const v1::FleetDomain& d) { return HostId(d) != here || d.domid() != domid; },
          deadline);
      if (!found.ok()) return cancelled() ? absl::OkStatus() : found.status();
      if (HostId(found->domain) == here) {
        // A migration within this host: the new incarnation's bytes follow
        // on the same channel here.
        v1::ReadResponse change;
        *change.mutable_epoch_change() = *migrated;
        if (!deliver(change)) return absl::OkStatus();
        start.mutable_position()->set_epoch(next->epoch);
        start.mutable_position()->set_offset(next->offset);
        current = *std::move(found);
        continue;
      }
      moving = *migrated;
      target = *std::move(found);
    } else if (end.code() != absl::StatusCode::kUnavailable &&
               end.code() != absl::StatusCode::kNotFound) {
      return end;  // OK, or an error the rule leaves to the caller
    } else if (moving.has_value()) {
      // The new owner does not serve the channel yet (still adopting its
      // declaration) or is not reachable yet: again, within the bound.
      if (absl::Now() >= *retry_until) return end;
      if (!Pause(kFirstPause)) return absl::OkStatus();
      continue;
    } else if (end.code() == absl::StatusCode::kNotFound && !received && !next.has_value()) {
      return end;  // nothing was ever read here: a wrong name, not a move
    } else {
      const bool unavailable = end.code() == absl::StatusCode::kUnavailable;
      absl::StatusOr<DomainLocation> found = WaitForOwner(
          [&](const v1::FleetDomain& d) { return unavailable || HostId(d) != here; }, deadline);
      if (!found.ok()) return cancelled() ? absl::OkStatus() : found.status();
      if (HostId(found->domain) == here) {
        // The same host again (it restarted, or the connection broke):
        // resume where delivery stopped, within the bound.
        if (next.has_value()) {
          start.mutable_position()->set_epoch(next->epoch);
          start.mutable_position()->set_offset(next->offset);
        }
        if (!retry_until.has_value()) retry_until = deadline;
        if (absl::Now() >= *retry_until) return end;
        current = *std::move(found);
        client.reset();
        if (!Pause(kFirstPause)) return absl::OkStatus();
        continue;
      }
      v1::EpochChange e;
      e.set_previous_epoch(next.has_value() ? next->epoch : 0);
      e.set_previous_end_offset(next.has_value() ? next->offset : 0);
      e.set_reason(v1::EPOCH_CHANGE_REASON_DOMAIN_MIGRATED);
      moving = e;
      target = *std::move(found);
    }
    // Move to the new owner, from the start of what it holds.
    current = *std::move(target);
    client.reset();
    start.Clear();
    start.set_anchor(v1::START_ANCHOR_EARLIEST);
    next.reset();
    retry_until = absl::Now() + options_.relocate_timeout;
  }
}

}  // namespace client
}  // namespace xenchan
