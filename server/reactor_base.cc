// ReactorBase: registration, quotas, audit of sessions (see reactor_base.h).
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

ReadStart EngineStart(const v1::ReadStart& start, ReadStart::Anchor default_anchor) {
  ReadStart out;
  out.anchor = default_anchor;
  if (start.point_case() == v1::ReadStart::kAnchor) {
    if (start.anchor() == v1::START_ANCHOR_EARLIEST) out.anchor = ReadStart::Anchor::kEarliest;
    if (start.anchor() == v1::START_ANCHOR_NEXT) out.anchor = ReadStart::Anchor::kNext;
  } else if (start.point_case() == v1::ReadStart::kPosition) {
    out.position = Position{start.position().epoch(), start.position().offset()};
  }
  return out;
}

AckLevel FromProtoAck(v1::AckLevel a) {
  switch (a) {
    case v1::ACK_LEVEL_DELIVERED: return AckLevel::kDelivered;
    case v1::ACK_LEVEL_CONSUMED: return AckLevel::kConsumed;
    default: return AckLevel::kAccepted;
  }
}

ReactorBase::ReactorBase(std::shared_ptr<ServiceCore> core, std::string method,
                         grpc::CallbackServerContext* context)
    : core_(std::move(core)),
      method_(std::move(method)),
      context_(context),
      identity_(core_->authz.Authenticate(*context)),
      start_(absl::Now()),
      deadline_(DeadlineOf(*context)) {}

void ReactorBase::Register(std::shared_ptr<ReactorBase> self) {
  self_ = std::move(self);
  core_->Register(this, self_);
  core_->metrics->RpcStarted(method_);
}

void ReactorBase::Unregister() {
  std::vector<QuotaManager::Lease> leases;
  {
    MutexLock lock(&quota_mu_);
    leases.swap(quota_leases_);
  }
  leases.clear();  // every end path gives its quotas back here
  core_->Unregister(this);
  absl::StatusCode code;
  {
    MutexLock lock(&mu_);
    code = final_code_;
  }
  core_->metrics->RpcFinished(method_, code, absl::Now() - start_);
  Log("info", "rpc", {{"method", method_},
                      {"code", absl::StatusCodeToString(code)},
                      {"peer", identity_.peer},
                      {"identity", identity_.display()},
                      {"duration", absl::FormatDuration(absl::Now() - start_)}});
  AuditSessionClosed(code);
  self_.reset();
}

void ReactorBase::AuditSessionOpened(const std::string& resource, const std::string& session,
                                     absl::string_view role) {
  audit::AuditLog* audit = core_->authz.audit();
  if (audit == nullptr) return;
  {
    MutexLock lock(&audit_mu_);
    session_resource_ = resource;
    session_id_ = session;
    session_opened_at_ = absl::Now();
  }
  audit->SessionOpened(Authorizer::CallerOf(identity_), Authorizer::FullMethod(method_), resource,
                       session, role);
}

void ReactorBase::AuditSessionClosed(absl::StatusCode code) {
  audit::AuditLog* audit = core_->authz.audit();
  if (audit == nullptr) return;
  std::string resource, session;
  absl::Time opened;
  {
    MutexLock lock(&audit_mu_);
    if (session_id_.empty()) return;
    resource = session_resource_;
    session = session_id_;
    opened = session_opened_at_;
  }
  audit->SessionClosed(Authorizer::CallerOf(identity_), Authorizer::FullMethod(method_), resource,
                       session, bytes_in_.load(), bytes_out_.load(), absl::Now() - opened,
                       absl::StatusCodeToString(code));
}

absl::Status ReactorBase::AcquireQuota(const std::string& domain, const std::string& observed) {
  const std::string key = ServiceCore::QuotaKey(identity_);
  auto stream = core_->quota.AcquireStream(key, domain.empty() ? "" : core_->QuotaDomain(domain));
  if (!stream.ok()) return core_->QuotaError(stream.status());
  std::optional<QuotaManager::Lease> observer;
  if (!observed.empty()) {
    auto o = core_->quota.AcquireObserver(key, observed);
    if (!o.ok()) return core_->QuotaError(o.status());
    observer = *std::move(o);
  }
  MutexLock lock(&quota_mu_);
  quota_leases_.push_back(*std::move(stream));
  if (observer.has_value()) quota_leases_.push_back(*std::move(observer));
  return absl::OkStatus();
}

absl::Status ReactorBase::ChargeBytes(size_t n) {
  return core_->QuotaError(core_->quota.ConsumeBytes(ServiceCore::QuotaKey(identity_), n));
}

void ReactorBase::ChargeRead(size_t n) {
  core_->quota.ChargeRead(ServiceCore::QuotaKey(identity_), n);
}

}  // namespace server
}  // namespace xenchan
