// CallLogic: the state machine of one Call, without gRPC: queue for the
// write lease, write one framed request (a framing's preamble first, the
// request itself once the decoder has seen the preamble answered), decode the
// response from the guest-to-host bytes that follow (backend/framing). Errors after the
// request was written carry a PartialResponse detail. Its gRPC shell is
// call_reactor.cc.
//
// Events in: Start, Pump (engine wake-up: the lease, room, response bytes,
// state changes), Timeout (the deadline timer), OnCancel, OnShutdown,
// OnDone. Action out, through the port: the finish status (with the
// response filled in on success).
//
// Thread safety: every entry point may be called from any thread at any
// time; all state is guarded by `mu_`, which is held while the port is
// called.
#ifndef XENCHAN_SERVER_CALL_LOGIC_H_
#define XENCHAN_SERVER_CALL_LOGIC_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "backend/engine/ack_tracker.h"
#include "backend/engine/session.h"
#include "backend/framing/framing.h"
#include "backend/util/mutex.h"
#include "server/call_state.h"
#include "server/status.h"
#include "server/stream_ports.h"
#include "xenchan/v1/channel_service.pb.h"

namespace xenchan {
namespace server {

class CallLogic {
 public:
  // `call`, `port` and `response` must outlive the logic; `response` is
  // filled in before a successful finish.
  CallLogic(CallState* call, FinishPort* port, const v1::CallRequest& request,
            v1::CallResponse* response);
  CallLogic(const CallLogic&) = delete;
  CallLogic& operator=(const CallLogic&) = delete;

  // The call began: validate, authorize, open the session (queued for the
  // lease), start the deadline timer and try the exchange.
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  // The engine signalled the session.
  void Pump() ABSL_LOCKS_EXCLUDED(mu_);
  // The deadline (less the margin, or max_call_time) passed.
  void Timeout() ABSL_LOCKS_EXCLUDED(mu_);
  // The client cancelled the call.
  void OnCancel() ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the call with UNAVAILABLE (SHUTTING_DOWN).
  void OnShutdown() ABSL_LOCKS_EXCLUDED(mu_);
  // After gRPC's OnDone: cancel the timer. No port call follows.
  void OnDone() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Status Open() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Finishes once (releasing the lease first); later calls are ignored.
  void FinishLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::PartialResponse PartialLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WithPartial(ApiError e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes what may be written of out_ now; false once the call finished.
  bool WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads and decodes what the guest sent; false once the call finished or
  // nothing more is there, true when the decoder now lets more be written.
  bool ReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AbortedLocked(const absl::Status& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseSessionLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The frontend vanished and no removal followed within the grace.
  void FrontendGone() ABSL_LOCKS_EXCLUDED(mu_);

  // How long a Call whose frontend vanished waits for the removal that
  // tells why (DOMAIN_GONE or CHANNEL_REMOVED) before it ends NOT_CONNECTED.
  static constexpr absl::Duration kFrontendGoneGrace = absl::Seconds(2);

  CallState& call_;
  ServiceCore& core_;
  FinishPort* const port_;
  const v1::CallRequest request_;
  v1::CallResponse* const response_;
  Mutex mu_;
  absl::BitGen bitgen_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::string channel_ ABSL_GUARDED_BY(mu_);
  Framing framing_ ABSL_GUARDED_BY(mu_);
  uint32_t sync_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::string out_ ABSL_GUARDED_BY(mu_);            // the encoded preamble and request
  size_t preamble_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // of out_
  size_t written_ ABSL_GUARDED_BY(mu_) = 0;
  std::unique_ptr<Session> session_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<ResponseDecoder> decoder_ ABSL_GUARDED_BY(mu_);
  bool exchanging_ ABSL_GUARDED_BY(mu_) = false;
  bool got_data_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t request_offset_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t request_end_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t response_offset_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t timer_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t grace_timer_ ABSL_GUARDED_BY(mu_) = 0;  // FrontendGone's, once armed
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_CALL_LOGIC_H_
