// The gRPC machinery every ChannelService reactor shares (channel_service.h
// has the design): ReactorBase (registration for shutdown and metrics, the
// call's CallState, posting gRPC reactions and the logic's wake-ups to the
// scheduler) and AsyncUnary (a unary call answered later, for
// CreateChannel and DeleteChannel). What a call does is in its logic class
// (call_state.h lists them), which knows no gRPC; the reactors are the thin
// shells that forward gRPC's reactions to it and its reads, writes and
// finish to gRPC.
//
// Lifetime: a reactor is kept alive by its own `self_` reference from Start
// until gRPC's OnDone has been handled, and by any task or engine callback in
// flight (they hold weak pointers and do nothing once it is gone). It owns
// its logic, so the logic's tasks run only while it is alive.
//
// Thread safety: reactions post to the scheduler, except reads and write
// completions of streams, which run inline (Now) where they cannot block;
// the logic guards its own state (AsyncUnary's under its `mu_`).
#ifndef XENCHAN_SERVER_REACTOR_BASE_H_
#define XENCHAN_SERVER_REACTOR_BASE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "backend/util/mutex.h"
#include "grpcpp/grpcpp.h"
#include "server/call_state.h"
#include "server/service_core.h"
#include "server/status.h"

namespace xenchan {
namespace server {

// The call's deadline (InfiniteFuture if none).
absl::Time DeadlineOf(const grpc::CallbackServerContext& context);

class ReactorBase : public std::enable_shared_from_this<ReactorBase>, public CallWakeups {
 public:
  ReactorBase(std::shared_ptr<ServiceCore> core, std::string method,
              grpc::CallbackServerContext* context);
  ~ReactorBase() override = default;

  // Ends the call with UNAVAILABLE (SHUTTING_DOWN). Runs on the scheduler.
  virtual void Shutdown() = 0;

  // For ChannelService's destructor only, once the gRPC server has stopped
  // (every OnDone delivered) and the scheduler with it: a reactor whose
  // OnDone task the stopped scheduler dropped is ended here, as that task
  // would have ended it, instead of being kept alive by its self reference.
  void ReleaseAfterServerStopped() {
    if (self_ != nullptr) Unregister();
  }

  // CallWakeups over the scheduler, each task guarded by a weak pointer;
  // a notifier queues at most one run at a time.
  std::function<void()> Notifier(std::function<void()> task) override;
  uint64_t RunAt(absl::Time when, std::function<void()> task) override;
  void Cancel(uint64_t id) override;

 protected:
  // Call once the object is owned by a shared_ptr.
  void Register(std::shared_ptr<ReactorBase> self);
  // After OnDone: no more gRPC operations; gives the quotas back, records
  // the call's end and releases the self reference.
  void Unregister();
  // Runs `task` soon on the scheduler, if the call is still alive then.
  void Later(std::function<void()> task);
  // Runs `task` now, on the gRPC thread that delivered the reaction, for
  // reactions whose work cannot block (a client message handed to the
  // engine's non-blocking write path, the next write started when data is
  // ready): no hop to the scheduler. Later instead if this thread is inside
  // a port call (PortCall below: a logic's lock is held, and gRPC may
  // complete an operation on the thread that started it).
  template <class F>
  void Now(F&& task) {
    if (PortCall::active()) return Later(std::forward<F>(task));
    task();
  }

  // Marks the thread as inside a port call (the shell starting a read, a
  // write or the finish for its logic, whose lock is held) for its scope.
  class PortCall {
   public:
    PortCall() { ++depth_; }
    ~PortCall() { --depth_; }
    PortCall(const PortCall&) = delete;
    PortCall& operator=(const PortCall&) = delete;
    static bool active() { return depth_ > 0; }

   private:
    static inline thread_local int depth_ = 0;
  };

  const std::shared_ptr<ServiceCore> core_;
  CallState call_state_;

 private:
  std::shared_ptr<ReactorBase> self_;
};

// A unary call answered later (CreateChannel, DeleteChannel).
class AsyncUnary : public grpc::ServerUnaryReactor, public ReactorBase {
 public:
  using ReactorBase::ReactorBase;

  void OnCancel() override {
    Later([this] { Cancelled(); });
  }
  void OnDone() override {
    Later([this] {
      Cleanup();
      Unregister();
    });
  }
  void Shutdown() override {
    MutexLock lock(&mu_);
    FinishLocked(core_->ShuttingDownError());
  }

 protected:
  // Finishes once; later calls are ignored.
  void FinishLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    call_state_.SetFinalCode(status.code());
    Finish(ToGrpcStatus(status));
  }
  // Hook: runs after OnDone, on the scheduler.
  virtual void Cleanup() {}

  Mutex mu_;

 private:
  void Cancelled() {
    MutexLock lock(&mu_);
    FinishLocked(absl::CancelledError("the call was cancelled"));
  }
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_REACTOR_BASE_H_
