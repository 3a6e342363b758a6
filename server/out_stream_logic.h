// OutStreamLogic: the server-to-client half every streaming logic with
// server messages shares (WatchChannels, Read, Attach): a bounded outbound
// queue (`stream_queue_messages`) with one write in flight, and finishing
// after the queue has drained (or at once). Subclasses produce messages in
// FillLocked while HasRoom() and end the stream with End*Locked.
//
// Ownership: the gRPC shell owns the logic, its CallState and its port, and
// keeps them alive while any task of the logic may run (call_state.h).
//
// Thread safety: every entry point may be called from any thread at any
// time (the shell runs write completions on gRPC's threads and posts engine
// wake-ups and the other reactions to the scheduler's workers); all state
// is guarded by `mu_`, which is held while the port is called.
#ifndef XENCHAN_SERVER_OUT_STREAM_LOGIC_H_
#define XENCHAN_SERVER_OUT_STREAM_LOGIC_H_

#include <deque>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "backend/util/mutex.h"
#include "server/call_state.h"
#include "server/stream_ports.h"

namespace xenchan {
namespace server {

template <class Resp>
class OutStreamLogic {
 public:
  // `call` and `port` must outlive the logic.
  OutStreamLogic(CallState* call, OutStreamPort<Resp>* port)
      : call_(*call), core_(call->core()), out_(port) {}
  virtual ~OutStreamLogic() = default;
  OutStreamLogic(const OutStreamLogic&) = delete;
  OutStreamLogic& operator=(const OutStreamLogic&) = delete;

  // The write started last completed (`ok`: it was sent).
  void OnWriteDone(bool ok) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      EndNowLocked(absl::CancelledError("the client went away"));
      return;
    }
    if (!finish_.has_value()) FillLocked();
    FlushLocked();
  }
  // The client cancelled the call.
  void OnCancel() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    EndNowLocked(absl::CancelledError("the call was cancelled"));
  }
  // Ends the call with UNAVAILABLE (SHUTTING_DOWN).
  void OnShutdown() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    EndNowLocked(core_.ShuttingDownError());
  }
  // Fills and flushes: the body of every wake-up (engine data, pacing).
  void Pump() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    if (finished_ || finish_.has_value()) {
      FlushLocked();
      return;
    }
    FillLocked();
    FlushLocked();
  }
  // After gRPC's OnDone: close sessions, cancel timers. No port call follows.
  virtual void OnDone() {}

 protected:
  // Produces messages while HasRoom(); ends the stream with End*Locked.
  virtual void FillLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;
  // Hook: runs once, just before Finish (release what the client's next
  // call may need: the write lease, the reader slot).
  virtual void BeforeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {}

  bool HasRoom() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queue_.size() < core_.options.stream_queue_messages;
  }
  bool ending() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finish_.has_value(); }
  void Enqueue(Resp message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finish_.has_value()) return;
    queue_.push_back(std::move(message));
  }
  // The messages queued and not yet started, oldest first, for a subclass
  // that folds a new message into a queued one it supersedes.
  std::deque<Resp>& queued() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return queue_; }
  // Ends the stream with `status` once the queued messages are written.
  void EndLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!finish_.has_value()) finish_ = status;
    FlushLocked();
  }
  // Ends the stream with `status` now, dropping queued messages.
  void EndNowLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    queue_.clear();
    EndLocked(status);
  }
  // Starts the next write or the finish.
  void FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_) return;
    if (!queue_.empty()) {
      current_ = std::move(queue_.front());
      queue_.pop_front();
      writing_ = true;
      out_->WriteNext(&current_);
      return;
    }
    if (finish_.has_value()) {
      finished_ = true;
      call_.SetFinalCode(finish_->code());
      BeforeFinishLocked();
      out_->FinishWith(*finish_);
    }
  }

  CallState& call_;
  ServiceCore& core_;
  Mutex mu_;

 private:
  OutStreamPort<Resp>* const out_;
  std::deque<Resp> queue_ ABSL_GUARDED_BY(mu_);
  Resp current_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> finish_ ABSL_GUARDED_BY(mu_);
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_OUT_STREAM_LOGIC_H_
