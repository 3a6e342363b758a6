// WatchFleet's state machine without gRPC (its shell is in
// fleet_service.cc): checks the request and the caller, sends a snapshot of
// the fleet (start_revision 0) or the changes after a revision, then SYNCED,
// then every change the FleetReader learns, filtered by the policy.
//
// Flow control: one write in flight; the logic pulls the next events from
// the reader's history only when the previous message was written, so a
// slow client costs nothing but its cursor. A client further behind than the
// history is kept ends with RESOURCE_EXHAUSTED (SLOW_CONSUMER); it resumes
// from the last revision it processed. Memory per stream: the snapshot's
// messages (bounded by the reader's limits) or one batch of events.
//
// Thread safety: every method may be called from any thread; the state is
// under `mu_`, and the port is called with it held (stream_ports.h).
// Lock order: reader's subscriber lock -> mu_ -> reader's lock; so OnDone,
// which unsubscribes, runs without mu_.
#ifndef XENCHAN_SERVER_FLEET_WATCH_LOGIC_H_
#define XENCHAN_SERVER_FLEET_WATCH_LOGIC_H_

#include <cstdint>
#include <deque>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "backend/util/mutex.h"
#include "server/fleet_queries.h"
#include "server/identity.h"
#include "server/stream_ports.h"
#include "xenchan/v1/fleet_service.pb.h"

namespace xenchan {
namespace server {

class FleetWatchLogic {
 public:
  // `fleet` and `port` must outlive the logic.
  FleetWatchLogic(FleetContext fleet, Identity id, v1::WatchFleetRequest request,
                  OutStreamPort<v1::WatchFleetResponse>* port);

  // Starts the stream; `subscribe` registers `on_change` (to be called on
  // every change of the fleet) with the reader and returns its id, which
  // OnDone gives back through `unsubscribe`. Finishes at once on an error.
  void Start(const std::function<uint64_t(std::function<void()>)>& subscribe,
             std::function<void()> on_change);
  // The reader's view changed.
  void OnChange() ABSL_LOCKS_EXCLUDED(mu_);
  void OnWriteDone(bool ok) ABSL_LOCKS_EXCLUDED(mu_);
  void OnCancel() ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the stream with UNAVAILABLE (SHUTTING_DOWN).
  void OnShutdown() ABSL_LOCKS_EXCLUDED(mu_);
  // After gRPC's OnDone: stops listening to the reader.
  void OnDone(const std::function<void(uint64_t)>& unsubscribe) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // The first messages: the snapshot, or a check of the resume revision.
  absl::Status Begin() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the next message if none is in flight, fetching events as needed.
  void Pump() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the events after cursor_ into queue_ (filtered).
  absl::Status Fetch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the policy lets the caller see the event's resource.
  bool Visible(const v1::WatchFleetResponse& event) const;

  const FleetContext fleet_;
  const Identity id_;
  const v1::WatchFleetRequest request_;
  OutStreamPort<v1::WatchFleetResponse>* const port_;

  Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // A finish waiting for the write in flight.
  bool finish_pending_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status finish_status_ ABSL_GUARDED_BY(mu_);
  // After a resume: SYNCED is owed once the replay has caught up.
  bool synced_owed_ ABSL_GUARDED_BY(mu_) = false;
  // The revision of the last event taken from the reader.
  int64_t cursor_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<v1::WatchFleetResponse> queue_ ABSL_GUARDED_BY(mu_);
  v1::WatchFleetResponse in_flight_ ABSL_GUARDED_BY(mu_);
  uint64_t subscription_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_FLEET_WATCH_LOGIC_H_
