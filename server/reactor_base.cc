// ReactorBase: registration, wake-ups on the scheduler (see reactor_base.h).
#include "server/reactor_base.h"

#include <chrono>
#include <utility>

#include "server/log.h"

namespace xenchan {
namespace server {

absl::Time DeadlineOf(const grpc::CallbackServerContext& context) {
  const auto d = context.deadline();
  if (d == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(d);
}

ReactorBase::ReactorBase(std::shared_ptr<ServiceCore> core, std::string method,
                         grpc::CallbackServerContext* context)
    : core_(core),
      call_state_(std::move(core), std::move(method), core_->authz.Authenticate(*context),
                  DeadlineOf(*context), this) {}

std::function<void()> ReactorBase::Notifier(std::function<void()> task) {
  std::weak_ptr<ReactorBase> w = weak_from_this();
  // At most one pump queued per stream (Scheduler::Coalescing).
  return core_->scheduler->Coalescing([w, task = std::move(task)] {
    if (auto s = w.lock()) task();
  });
}

uint64_t ReactorBase::RunAt(absl::Time when, std::function<void()> task) {
  std::weak_ptr<ReactorBase> w = weak_from_this();
  return core_->scheduler->RunAt(when, [w, task = std::move(task)] {
    if (auto s = w.lock()) task();
  });
}

void ReactorBase::Cancel(uint64_t id) { core_->scheduler->Cancel(id); }

void ReactorBase::Later(std::function<void()> task) {
  std::weak_ptr<ReactorBase> w = weak_from_this();
  core_->scheduler->Run([w, task = std::move(task)] {
    if (auto s = w.lock()) task();
  });
}

void ReactorBase::Register(std::shared_ptr<ReactorBase> self) {
  self_ = std::move(self);
  core_->Register(this, self_);
  core_->metrics->RpcStarted(call_state_.method());
}

void ReactorBase::Unregister() {
  call_state_.ReleaseQuotas();  // every end path gives its quotas back here
  core_->Unregister(this);
  const absl::StatusCode code = call_state_.final_code();
  const absl::Duration took = absl::Now() - call_state_.start();
  core_->metrics->RpcFinished(call_state_.method(), code, took);
  Log("info", "rpc",
      {{"method", call_state_.method()},
       {"code", absl::StatusCodeToString(code)},
       {"peer", call_state_.identity().peer},
       {"identity", call_state_.identity().display()},
       {"duration", absl::FormatDuration(absl::Now() - call_state_.start())}});
  call_state_.AuditSessionClosed(code);
  self_.reset();
}

}  // namespace server
}  // namespace xenchan
