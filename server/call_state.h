// CallState: what one ChannelService call holds for its whole life apart
// from gRPC: who called (identity, method, deadline), the quotas it holds and
// its read pacing, its byte counts and audit session, and its final status
// code. CallWakeups: how a call's logic asks to be run again (an engine
// wake-up, a timer), implemented by the gRPC shell (reactor_base.h) over the
// scheduler and by tests over plain threads.
//
// The reactor logic classes (attach_logic.h, write_logic.h, call_logic.h,
// watch_logic.h, read_logic.h) take a CallState and never see gRPC; their
// shells (*_reactor.cc) own both and translate gRPC's reactions.
//
// Thread safety: CallState is thread-safe (its fields are const, atomic or
// guarded by its own small locks); CallWakeups implementations must be.
#ifndef XENCHAN_SERVER_CALL_STATE_H_
#define XENCHAN_SERVER_CALL_STATE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backend/engine/session.h"
#include "backend/util/mutex.h"
#include "server/identity.h"
#include "server/quota/quota_manager.h"
#include "server/service_core.h"
#include "xenchan/v1/channel_service.pb.h"

namespace xenchan {
namespace server {

// The engine's form of a request's start point.
ReadStart EngineStart(const v1::ReadStart& start, ReadStart::Anchor default_anchor);
// The engine's form of a requested acknowledgement level (unset: ACCEPTED).
AckLevel FromProtoAck(v1::AckLevel a);

// Runs a call's logic again later, only while the call is alive (a task
// whose call has gone is dropped). Tasks run on other threads than the
// caller's and must not block. Thread-safe.
class CallWakeups {
 public:
  virtual ~CallWakeups() = default;
  // A callback for the engine (Session on_ready, event subscriptions): a
  // call of it runs `task` soon, never on the calling thread; calls while a
  // run is queued and has not started share that run (`task` must read the
  // state it acts on when it runs, as a pump does).
  virtual std::function<void()> Notifier(std::function<void()> task) = 0;
  // Runs `task` at `when` (or soon, if that has passed); returns an id for
  // Cancel.
  virtual uint64_t RunAt(absl::Time when, std::function<void()> task) = 0;
  // Drops a timer that has not started yet. Idempotent.
  virtual void Cancel(uint64_t id) = 0;
};

class CallState {
 public:
  // `core` and `wakeups` must outlive this object. `deadline` is the call's
  // (InfiniteFuture if none).
  CallState(std::shared_ptr<ServiceCore> core, std::string method, Identity identity,
            absl::Time deadline, CallWakeups* wakeups);
  CallState(const CallState&) = delete;
  CallState& operator=(const CallState&) = delete;

  ServiceCore& core() const { return *core_; }
  const std::shared_ptr<ServiceCore>& core_ptr() const { return core_; }
  const std::string& method() const { return method_; }
  const Identity& identity() const { return identity_; }
  absl::Time start() const { return start_; }
  absl::Time deadline() const { return deadline_; }
  CallWakeups& wakeups() const { return *wakeups_; }

  // Audit: a session on `resource` opened (Read, Attach, Write, Call).
  void AuditSessionOpened(const std::string& resource, const std::string& session,
                          absl::string_view role) ABSL_LOCKS_EXCLUDED(audit_mu_);
  // Audit: the session (if one opened) closed with `code`.
  void AuditSessionClosed(absl::StatusCode code) ABSL_LOCKS_EXCLUDED(audit_mu_);

  // Holds, for the whole call, one stream of this caller against `domain`
  // (empty: none) and, if `observed` names a channel, one observer of it.
  // RESOURCE_EXHAUSTED (QUOTA_EXCEEDED) if a quota is full.
  absl::Status AcquireQuota(const std::string& domain, const std::string& observed)
      ABSL_LOCKS_EXCLUDED(quota_mu_);
  // Gives back what AcquireQuota took (every end path does, once).
  void ReleaseQuotas() ABSL_LOCKS_EXCLUDED(quota_mu_);
  // Charges `n` bytes to this caller's bytes-per-second quota.
  absl::Status ChargeBytes(size_t n);
  // Bytes read from guests are paced, not refused: each delivered chunk is
  // charged to the caller's read bucket (ChargeRead), and while the bucket
  // is in debt the caller's streams read nothing: Paced says so and
  // has `wake` run once the debt is paid. (A Call's reply is charged when
  // complete: it paces the caller's later reads.)
  void ChargeRead(size_t n);
  bool Paced(std::function<void()> wake) ABSL_LOCKS_EXCLUDED(quota_mu_);

  // Bytes of this call's session: client to guest, guest to client.
  void CountIn(size_t n) { bytes_in_.fetch_add(n, std::memory_order_relaxed); }
  void CountOut(size_t n) { bytes_out_.fetch_add(n, std::memory_order_relaxed); }

  // The status code the call ended with (OK until it ends).
  void SetFinalCode(absl::StatusCode code) ABSL_LOCKS_EXCLUDED(final_mu_);
  absl::StatusCode final_code() const ABSL_LOCKS_EXCLUDED(final_mu_);

 private:
  const std::shared_ptr<ServiceCore> core_;
  const std::string method_;
  const Identity identity_;
  const absl::Time start_;
  const absl::Time deadline_;
  CallWakeups* const wakeups_;

  Mutex quota_mu_;
  std::vector<quota::QuotaManager::Lease> quota_leases_ ABSL_GUARDED_BY(quota_mu_);
  absl::Time paced_until_ ABSL_GUARDED_BY(quota_mu_) = absl::InfinitePast();
  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<uint64_t> bytes_out_{0};
  Mutex audit_mu_;
  std::string session_resource_ ABSL_GUARDED_BY(audit_mu_);
  std::string session_id_ ABSL_GUARDED_BY(audit_mu_);
  absl::Time session_opened_at_ ABSL_GUARDED_BY(audit_mu_);
  mutable Mutex final_mu_;
  absl::StatusCode final_code_ ABSL_GUARDED_BY(final_mu_) = absl::StatusCode::kOk;
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_CALL_STATE_H_
