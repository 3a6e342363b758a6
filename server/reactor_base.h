// The machinery every ChannelService reactor shares (channel_service.h has
// the design): ReactorBase (lock, registration for shutdown and metrics,
// quotas and read pacing, audit of sessions, posting follow-up work to the
// scheduler), AsyncUnary (a unary call answered later) and OutStream (a
// stream of server messages with a bounded outbound queue and one write in
// flight).
//
// Lifetime: a reactor is kept alive by its own `self_` reference from Start
// until gRPC's OnDone has been handled, and by any task or engine callback in
// flight (they hold weak pointers and do nothing once it is gone).
//
// Thread safety: reactions only post to the scheduler; all state is guarded
// by the reactor's `mu_` (or its own small locks, as annotated).
#ifndef XENCHAN_SERVER_REACTOR_BASE_H_
#define XENCHAN_SERVER_REACTOR_BASE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "backend/engine/session.h"
#include "backend/util/mutex.h"
#include "grpcpp/grpcpp.h"
#include "server/identity.h"
#include "server/quota/quota_manager.h"
#include "server/service_core.h"
#include "server/status.h"

namespace xenchan {
namespace server {

// Most bytes one stream message carries.
inline constexpr size_t kMaxChunk = 64 * 1024;

// The call's deadline (InfiniteFuture if none).
absl::Time DeadlineOf(const grpc::CallbackServerContext& context);
// The engine's form of a request's start point.
ReadStart EngineStart(const v1::ReadStart& start, ReadStart::Anchor default_anchor);
// The engine's form of a requested acknowledgement level (unset: ACCEPTED).
AckLevel FromProtoAck(v1::AckLevel a);

class ReactorBase : public std::enable_shared_from_this<ReactorBase> {
 public:
  ReactorBase(std::shared_ptr<ServiceCore> core, std::string method,
              grpc::CallbackServerContext* context);
  virtual ~ReactorBase() = default;

  // Ends the call with UNAVAILABLE (SHUTTING_DOWN). Runs on the scheduler.
  virtual void Shutdown() = 0;

 protected:
  // Call once the object is owned by a shared_ptr.
  void Register(std::shared_ptr<ReactorBase> self);
  // After OnDone: no more gRPC operations; releases the self reference.
  void Unregister();

  // Audit: a session on `resource` opened (Read, Attach, Write, Call).
  void AuditSessionOpened(const std::string& resource, const std::string& session,
                          absl::string_view role);
  // Holds, for the whole call, one stream of this caller against `domain`
  // (empty: none) and, if `observed` names a channel, one observer of it.
  // RESOURCE_EXHAUSTED (QUOTA_EXCEEDED) if a quota is full.
  absl::Status AcquireQuota(const std::string& domain, const std::string& observed);
  // Charges `n` bytes to this caller's bytes-per-second quota.
  absl::Status ChargeBytes(size_t n);
  // Bytes read from guests are paced, not refused: each delivered chunk is
  // charged to the caller's read bucket (ChargeRead), and while the bucket
  // is in debt the caller's streams read nothing: Paced says so and
  // has `m` run once the debt is paid. (A Call's reply is charged when
  // complete: it paces the caller's later reads.)
  void ChargeRead(size_t n);
  template <class T>
  bool Paced(void (T::*m)()) {
    const absl::Duration delay = core_->quota.ReadDelay(ServiceCore::QuotaKey(identity_));
    if (delay <= absl::ZeroDuration()) return false;
    const absl::Time now = absl::Now();
    {
      MutexLock lock(&quota_mu_);
      if (paced_until_ > now) return true;  // a wake-up is due already
      paced_until_ = now + delay;
    }
    TimerAt(now + delay, m);
    return true;
  }

  // Bytes of this call's session: client to guest, guest to client.
  void CountIn(size_t n) { bytes_in_.fetch_add(n, std::memory_order_relaxed); }
  void CountOut(size_t n) { bytes_out_.fetch_add(n, std::memory_order_relaxed); }

  template <class T, class... A>
  void Later(void (T::*m)(A...), A... args) {
    std::weak_ptr<ReactorBase> w = weak_from_this();
    core_->scheduler->Run([w, m, args...] {
      if (auto s = w.lock()) (static_cast<T*>(s.get())->*m)(args...);
    });
  }
  // A callback for Session on_ready / event subscriptions: posts `m`.
  template <class T>
  std::function<void()> Notifier(void (T::*m)()) {
    std::weak_ptr<ReactorBase> w = weak_from_this();
    std::shared_ptr<ServiceCore> core = core_;
    return [w, m, core] {
      core->scheduler->Run([w, m] {
        if (auto s = w.lock()) (static_cast<T*>(s.get())->*m)();
      });
    };
  }
  // A timer running `m` at `when`; returns its id.
  template <class T>
  uint64_t TimerAt(absl::Time when, void (T::*m)()) {
    std::weak_ptr<ReactorBase> w = weak_from_this();
    return core_->scheduler->RunAt(when, [w, m] {
      if (auto s = w.lock()) (static_cast<T*>(s.get())->*m)();
    });
  }

  const std::shared_ptr<ServiceCore> core_;
  const std::string method_;
  grpc::CallbackServerContext* const context_;
  const Identity identity_;
  const absl::Time start_;
  const absl::Time deadline_;
  Mutex mu_;
  absl::StatusCode final_code_ ABSL_GUARDED_BY(mu_) = absl::StatusCode::kOk;

 private:
  void AuditSessionClosed(absl::StatusCode code);

  std::shared_ptr<ReactorBase> self_;
  Mutex quota_mu_;
  std::vector<QuotaManager::Lease> quota_leases_ ABSL_GUARDED_BY(quota_mu_);
  absl::Time paced_until_ ABSL_GUARDED_BY(quota_mu_) = absl::InfinitePast();
  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<uint64_t> bytes_out_{0};
  Mutex audit_mu_;
  std::string session_resource_ ABSL_GUARDED_BY(audit_mu_);
  std::string session_id_ ABSL_GUARDED_BY(audit_mu_);
  absl::Time session_opened_at_ ABSL_GUARDED_BY(audit_mu_);
};

// A unary call answered later (CreateChannel, DeleteChannel, Call).
class AsyncUnary : public grpc::ServerUnaryReactor, public ReactorBase {
 public:
  using ReactorBase::ReactorBase;

  void OnCancel() override { Later(&AsyncUnary::Cancelled); }
  void OnDone() override { Later(&AsyncUnary::Done); }
  void Shutdown() override {
    MutexLock lock(&mu_);
    FinishLocked(core_->ShuttingDownError());
  }

 protected:
  // Finishes once; later calls are ignored.
  void FinishLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    final_code_ = status.code();
    OnFinishLocked();
    Finish(ToGrpcStatus(status));
  }
  bool finished() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finished_; }
  // Hook: runs once, just before Finish.
  virtual void OnFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {}
  // Hook: runs after OnDone, on the scheduler.
  virtual void Cleanup() {}

 private:
  void Cancelled() {
    MutexLock lock(&mu_);
    FinishLocked(absl::CancelledError("the call was cancelled"));
  }
  void Done() {
    Cleanup();
    Unregister();
  }
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// A stream with server-to-client messages (WatchChannels, Read, Attach):
// a bounded outbound queue with one write in flight, and finishing after
// the queue has drained (or at once).
template <class Resp, class GrpcReactor>
class OutStream : public GrpcReactor, public ReactorBase {
 public:
  using ReactorBase::ReactorBase;

  void OnWriteDone(bool ok) override { Later(&OutStream::AfterWrite, ok); }
  void OnCancel() override { Later(&OutStream::Cancelled); }
  void OnDone() override { Later(&OutStream::Done); }
  void Shutdown() override {
    MutexLock lock(&mu_);
    EndNowLocked(core_->ShuttingDownError());
  }

 protected:
  // Produces messages while HasRoom(); ends the stream with End*Locked.
  virtual void FillLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;
  // Runs on the scheduler after OnDone (close sessions, cancel timers).
  virtual void Cleanup() {}

  bool HasRoom() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queue_.size() < core_->options.stream_queue_messages;
  }
  bool ending() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finish_.has_value(); }
  void Enqueue(Resp message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finish_.has_value()) return;
    queue_.push_back(std::move(message));
  }
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
      this->StartWrite(&current_);
      return;
    }
    if (finish_.has_value()) {
      finished_ = true;
      final_code_ = finish_->code();
      BeforeFinishLocked();
      this->Finish(ToGrpcStatus(*finish_));
    }
  }
  // Hook: runs once, just before Finish (release what the client's next
  // call may need: the write lease, the reader slot).
  virtual void BeforeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {}
  // Fills and flushes: the body of every wake-up.
  void Pump() {
    MutexLock lock(&mu_);
    if (finished_ || finish_.has_value()) {
      FlushLocked();
      return;
    }
    FillLocked();
    FlushLocked();
  }

 private:
  void AfterWrite(bool ok) {
    MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      EndNowLocked(absl::CancelledError("the client went away"));
      return;
    }
    if (!finish_.has_value()) FillLocked();
    FlushLocked();
  }
  void Cancelled() {
    MutexLock lock(&mu_);
    EndNowLocked(absl::CancelledError("the call was cancelled"));
  }
  void Done() {
    Cleanup();
    Unregister();
  }

  std::deque<Resp> queue_ ABSL_GUARDED_BY(mu_);
  Resp current_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> finish_ ABSL_GUARDED_BY(mu_);
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_REACTOR_BASE_H_
