// WatchLogic: the state machine of one WatchChannels call, without gRPC: a
// snapshot of the matching channels (or a resume from a retained revision),
// SYNCED, then every lifecycle event as it happens, with PROGRESS heartbeats
// while nothing does. A watcher further behind than watch_backlog_events is
// ended with SLOW_CONSUMER. Its gRPC shell is watch_reactor.cc.
//
// Events in: Start, OnWriteDone, OnCancel, OnShutdown, Pump (the engine
// logged events), Heartbeat (its timer), OnDone. Actions out, through the
// port: the next write, the finish status.
//
// Thread safety: as OutStreamLogic: any entry point from any thread; state
// guarded by `mu_`.
#ifndef XENCHAN_SERVER_WATCH_LOGIC_H_
#define XENCHAN_SERVER_WATCH_LOGIC_H_

#include <cstdint>
#include <deque>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "backend/engine/engine.h"
#include "server/call_state.h"
#include "server/out_stream_logic.h"
#include "server/stream_ports.h"
#include "xenchan/v1/channel_service.pb.h"

namespace xenchan {
namespace server {

class WatchLogic : public OutStreamLogic<v1::WatchChannelsResponse> {
 public:
  // `call` and `port` must outlive the logic.
  WatchLogic(CallState* call, OutStreamPort<v1::WatchChannelsResponse>* port,
             const v1::WatchChannelsRequest& request);

  // The call began: validate, authorize, take the snapshot, subscribe to the
  // engine's events and start the heartbeat timer.
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  // The heartbeat timer fired: PROGRESS if nothing was sent since the last
  // one; the next heartbeat is scheduled.
  void Heartbeat() ABSL_LOCKS_EXCLUDED(mu_);
  void OnDone() override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Status Open() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the watcher gets events of `c`: its filter, and read access
  // under the policy in force when the event is sent (a reload applies to
  // open watches).
  bool Matches(const ChannelInfo& c) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static v1::WatchChannelsResponse Convert(const ChannelEvent& e);
  void SlowConsumer(uint64_t newest) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const v1::WatchChannelsRequest request_;
  bool one_domain_ ABSL_GUARDED_BY(mu_) = false;
  std::string domain_uuid_ ABSL_GUARDED_BY(mu_);
  uint64_t subscription_ ABSL_GUARDED_BY(mu_) = 0;
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t heartbeat_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<v1::WatchChannelsResponse> snapshot_ ABSL_GUARDED_BY(mu_);
  uint64_t cursor_ ABSL_GUARDED_BY(mu_) = 0;   // last revision processed
  uint64_t sync_at_ ABSL_GUARDED_BY(mu_) = 0;  // SYNCED once cursor_ reaches it
  bool synced_ ABSL_GUARDED_BY(mu_) = false;
  bool sent_since_heartbeat_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_WATCH_LOGIC_H_
