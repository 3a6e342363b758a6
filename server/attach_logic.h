// AttachLogic: the state machine of one Attach call, without gRPC: a
// bidirectional session on a channel, as an observer or as the writer
// holding the write lease. Writers' writes are acknowledged (or rejected)
// per level by an AckTracker (backend/engine/ack_tracker.h); session notices
// (stalls, state changes, lease loss) are passed on. Its gRPC shell is
// attach_reactor.cc.
//
// Events in: Start, OnReadDone (a client message, or the client's
// half-close), OnWriteDone, OnCancel, OnShutdown, Pump (engine wake-up or
// the end of read pacing), OnDone. Actions out, through the port: the next
// read, the next write, the finish status.
//
// Thread safety: as OutStreamLogic: any entry point from any thread; state
// guarded by `mu_`.
#ifndef XENCHAN_SERVER_ATTACH_LOGIC_H_
#define XENCHAN_SERVER_ATTACH_LOGIC_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "backend/engine/ack_tracker.h"
#include "backend/engine/session.h"
#include "server/call_state.h"
#include "server/out_stream_logic.h"
#include "server/stream_ports.h"
#include "xenchan/v1/channel_service.pb.h"

namespace xenchan {
namespace server {

using AttachPort = BidiStreamPort<v1::AttachRequest, v1::AttachResponse>;

class AttachLogic : public OutStreamLogic<v1::AttachResponse> {
 public:
  // `call` and `port` must outlive the logic.
  AttachLogic(CallState* call, AttachPort* port);

  // The call began: read the first message (or end if shutting down).
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  // The read started last completed: `ok` with a message, else the client
  // half-closed.
  void OnReadDone(bool ok) ABSL_LOCKS_EXCLUDED(mu_);
  void OnDone() override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void ReadNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Open(const v1::AttachOpen& open) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Reject(uint64_t first, uint64_t last, AckLevel reached, uint64_t epoch,
              absl::StatusCode code, v1::ErrorReason reason, const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Tries to place the pending input. False while it waits for room.
  bool PlaceInputLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends acknowledgements and rejections of accepted writes, and asks the
  // session to be woken by the progress the next acknowledgement needs.
  void UpdateAcksLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The queued, not yet started ack at `level` that a newer one may replace.
  v1::WriteAck* QueuedAckLocked(v1::AckLevel level) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void BeforeFinishLocked() override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ReadPort<v1::AttachRequest>* const in_;
  v1::AttachRequest request_ ABSL_GUARDED_BY(mu_);
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool half_closed_ ABSL_GUARDED_BY(mu_) = false;
  std::string channel_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Session> session_ ABSL_GUARDED_BY(mu_);
  SessionRole role_ ABSL_GUARDED_BY(mu_) = SessionRole::kObserver;
  bool fail_fast_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<v1::AttachWrite> pending_input_ ABSL_GUARDED_BY(mu_);
  // Writes accepted and not yet acknowledged at the requested level; set
  // when the stream opens.
  std::optional<AckTracker> acks_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::LeaseHolder> new_holder_ ABSL_GUARDED_BY(mu_);
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_ATTACH_LOGIC_H_
