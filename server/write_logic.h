// WriteLogic: the state machine of one Write call, without gRPC: a client
// stream of bytes to the guest, holding the write lease. The call ends once
// every byte reached the requested level (or fails with a WriteProgress
// detail saying how far they got, from a WriteProgressTracker,
// backend/engine/write_progress.h). Bytes accepted and not yet delivered
// count against the caller's queued-bytes quota. Its gRPC shell is
// write_reactor.cc.
//
// Events in: Start, OnReadDone (a client message, or the client's
// half-close), Pump (engine wake-up: room, delivery, lease or state
// changes), Timeout (the deadline timer), OnCancel, OnShutdown, OnDone.
// Actions out, through the port: the next read, the finish status (with
// the response's progress filled in on success).
//
// Thread safety: every entry point may be called from any thread at any
// time; all state is guarded by `mu_`, which is held while the port is
// called.
#ifndef XENCHAN_SERVER_WRITE_LOGIC_H_
#define XENCHAN_SERVER_WRITE_LOGIC_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "backend/engine/session.h"
#include "backend/engine/write_progress.h"
#include "backend/util/mutex.h"
#include "server/call_state.h"
#include "server/quota/quota_manager.h"
#include "server/status.h"
#include "server/stream_ports.h"
#include "xenchan/v1/channel_service.pb.h"

namespace xenchan {
namespace server {

class WriteLogic {
 public:
  using WritePort = InStreamPort<v1::WriteRequest>;

  // `call`, `port` and `response` must outlive the logic; `response` is
  // filled in before a successful finish.
  WriteLogic(CallState* call, WritePort* port, v1::WriteResponse* response);
  WriteLogic(const WriteLogic&) = delete;
  WriteLogic& operator=(const WriteLogic&) = delete;

  // The call began: start the deadline timer and read the first message.
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  // The read started last completed: `ok` with a message, else the client
  // half-closed.
  void OnReadDone(bool ok) ABSL_LOCKS_EXCLUDED(mu_);
  // The engine signalled the session (room, delivery, lease, state).
  void Pump() ABSL_LOCKS_EXCLUDED(mu_);
  // The deadline (less the margin) passed.
  void Timeout() ABSL_LOCKS_EXCLUDED(mu_);
  // The client cancelled the call.
  void OnCancel() ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the call with UNAVAILABLE (SHUTTING_DOWN) and its progress.
  void OnShutdown() ABSL_LOCKS_EXCLUDED(mu_);
  // After gRPC's OnDone: close the session, cancel the timer, give the
  // queued-bytes share back. No port call follows.
  void OnDone() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void FinishLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  WriteProgressTracker::Figures FiguresLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::WriteProgress ProgressLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `e` with the WriteProgress detail (every error after the first message).
  absl::Status WithProgress(ApiError e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Open(const v1::WriteRequest& first) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Asks the session to be woken by the progress the stream waits for: the
  // next delivery while it holds queued-bytes quota, and its requested level
  // once half-closed.
  void AskProgressLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
#ifdef XENCHAN_PLANT_RACE_FOR_TEST
  void ClearReadingUnlocked() ABSL_NO_THREAD_SAFETY_ANALYSIS;
#endif

  CallState& call_;
  ServiceCore& core_;
  WritePort* const in_;
  v1::WriteResponse* const response_;
  Mutex mu_;
  v1::WriteRequest request_ ABSL_GUARDED_BY(mu_);
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool half_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool opened_ ABSL_GUARDED_BY(mu_) = false;
  std::string channel_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Session> session_ ABSL_GUARDED_BY(mu_);
  AckLevel ack_level_ ABSL_GUARDED_BY(mu_) = AckLevel::kAccepted;
  bool fail_fast_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;  // the epoch the stream writes in
  WriteProgressTracker progress_ ABSL_GUARDED_BY(mu_);
  // This stream's share of its caller's queued-bytes quota: accepted bytes
  // less what has been delivered.
  quota::QuotaManager::Lease queued_ ABSL_GUARDED_BY(mu_);
  std::string pending_ ABSL_GUARDED_BY(mu_);
  bool has_pending_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t timer_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void()> repump_ ABSL_GUARDED_BY(mu_);  // runs Pump soon, elsewhere
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_WRITE_LOGIC_H_
