// FleetFollower: follows one channel's guest output across the hosts of a
// fleet (docs/FLEET.md, "Following a channel across hosts"). It reads from
// the host that runs the domain (FleetClient::LocateDomain); when that host
// says the domain moved (an epoch change with reason DOMAIN_MIGRATED) or the
// stream ends UNAVAILABLE or NOT_FOUND, it waits for the domain's owner in
// the fleet (LocateDomain, then WatchFleet, bounded), connects to it, and
// continues from the beginning of the channel there, reporting the move as
// one epoch change with reason DOMAIN_MIGRATED: bytes delivered are not
// delivered again and no byte either host retained is skipped (a loss the
// new host reports is delivered as a Gap).
//
// Ownership: borrows the FleetClient, which must outlive the follower.
// Thread safety: Run on one thread at a time; Cancel from any thread.
#ifndef XENCHAN_CLIENTS_LIB_FLEET_FOLLOWER_H_
#define XENCHAN_CLIENTS_LIB_FLEET_FOLLOWER_H_

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clients/lib/client.h"
#include "clients/lib/fleet_client.h"
#include "grpcpp/grpcpp.h"

namespace xenchan {
namespace client {

struct FollowOptions {
  // Where to start on the first host. Unset: START_ANCHOR_EARLIEST.
  v1::ReadStart start;
  // How long one re-resolution may wait for the domain's owner (and for the
  // new owner to serve the channel) before Run fails DEADLINE_EXCEEDED.
  absl::Duration relocate_timeout = absl::Seconds(30);
  // Told each time the follower starts reading from a host (the first, and
  // each one it moves to). Optional; runs on Run's thread.
  std::function<void(const DomainLocation&)> on_host;
};

class FleetFollower {
 public:
  // Follows `channel_id` of `domain` (a name, a UUID or `domains/...`),
  // resolving through `fleet`.
  FleetFollower(FleetClient* fleet, std::string domain, std::string channel_id,
                FollowOptions options = {});

  // Follows until `on_message` returns false or Cancel is called (then OK),
  // or an error the rule does not handle: the first LocateDomain's error;
  // a stream error other than UNAVAILABLE and NOT_FOUND (e.g.
  // PERMISSION_DENIED, OUT_OF_RANGE); NOT_FOUND from a host that still owns
  // the domain, or before anything was read there; DEADLINE_EXCEEDED when
  // the owner did not appear (or serve the channel) within relocate_timeout.
  // `on_message` gets data, gaps and epoch changes in stream order, a move
  // as one EpochChange (reason DOMAIN_MIGRATED).
  absl::Status Run(const std::function<bool(const v1::ReadResponse&)>& on_message);

  // Ends Run (with OK) as soon as possible. Thread-safe; does not wait.
  void Cancel();

 private:
  // When a record satisfies a re-resolution.
  using OwnerCondition = std::function<bool(const v1::FleetDomain&)>;

  // LocateDomain, then WatchFleet from its revision, until the domain's
  // record satisfies `ok`, or `deadline` (DEADLINE_EXCEEDED), or Cancel
  // (CANCELLED).
  absl::StatusOr<DomainLocation> WaitForOwner(const OwnerCondition& ok, absl::Time deadline);
  // Sleeps `delay`, or less if cancelled; false if cancelled.
  bool Pause(absl::Duration delay);
  // Registers the context of the call in flight (nullptr: none) so that
  // Cancel can end it; false if already cancelled.
  bool SetCall(grpc::ClientContext* context);
  bool cancelled() const;

  FleetClient* const fleet_;
  const std::string domain_;
  const std::string channel_id_;
  const FollowOptions options_;

  // std::mutex, not absl::Mutex: Debian's Abseil is not built for
  // ThreadSanitizer, which would not see absl::Mutex's ordering.
  mutable std::mutex mu_;
  std::condition_variable cancel_cv_;    // signalled by Cancel
  bool cancelled_ = false;               // guarded by mu_
  grpc::ClientContext* call_ = nullptr;  // guarded by mu_
};

}  // namespace client
}  // namespace xenchan

#endif  // XENCHAN_CLIENTS_LIB_FLEET_FOLLOWER_H_
