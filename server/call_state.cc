// CallState: quotas, pacing, audit of sessions and the final code of one
// call (see call_state.h).
#include "server/call_state.h"

#include <optional>
#include <utility>

namespace xenchan {
namespace server {

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
    case v1::ACK_LEVEL_DELIVERED:
      return AckLevel::kDelivered;
    case v1::ACK_LEVEL_CONSUMED:
      return AckLevel::kConsumed;
    default:
      return AckLevel::kAccepted;
  }
}

CallState::CallState(std::shared_ptr<ServiceCore> core, std::string method, Identity identity,
                     absl::Time deadline, CallWakeups* wakeups)
    : core_(std::move(core)),
      method_(std::move(method)),
      identity_(std::move(identity)),
      start_(absl::Now()),
      deadline_(deadline),
      wakeups_(wakeups) {}

void CallState::AuditSessionOpened(const std::string& resource, const std::string& session,
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

void CallState::AuditSessionClosed(absl::StatusCode code) {
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

absl::Status CallState::AcquireQuota(const std::string& domain, const std::string& observed) {
  const std::string key = ServiceCore::QuotaKey(identity_);
  auto stream = core_->quota.AcquireStream(key, domain.empty() ? "" : core_->QuotaDomain(domain));
  if (!stream.ok()) return core_->QuotaError(stream.status());
  std::optional<quota::QuotaManager::Lease> observer;
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

void CallState::ReleaseQuotas() {
  std::vector<quota::QuotaManager::Lease> leases;
  {
    MutexLock lock(&quota_mu_);
    leases.swap(quota_leases_);
  }
  leases.clear();
}

absl::Status CallState::ChargeBytes(size_t n) {
  return core_->QuotaError(core_->quota.ConsumeBytes(ServiceCore::QuotaKey(identity_), n));
}

void CallState::ChargeRead(size_t n) {
  core_->quota.ChargeRead(ServiceCore::QuotaKey(identity_), n);
}

bool CallState::Paced(std::function<void()> wake) {
  const absl::Duration delay = core_->quota.ReadDelay(ServiceCore::QuotaKey(identity_));
  if (delay <= absl::ZeroDuration()) return false;
  const absl::Time now = absl::Now();
  {
    MutexLock lock(&quota_mu_);
    if (paced_until_ > now) return true;  // a wake-up is due already
    paced_until_ = now + delay;
  }
  wakeups_->RunAt(now + delay, std::move(wake));
  return true;
}

void CallState::SetFinalCode(absl::StatusCode code) {
  MutexLock lock(&final_mu_);
  final_code_ = code;
}

absl::StatusCode CallState::final_code() const {
  MutexLock lock(&final_mu_);
  return final_code_;
}

}  // namespace server
}  // namespace xenchan
