// ServiceCore: see service_core.h.
#include "server/service_core.h"

#include <algorithm>
#include <optional>
#include <utility>

namespace xenchan {
namespace server {

using absl::StatusCode;

ServiceCore::ServiceCore(Engine* engine, ServerMetrics* metrics, ChannelServiceOptions options,
                         AccessControl access)
    : engine(engine),
      view(engine),
      metrics(metrics),
      options(std::move(options)),
      authz(&view, std::move(access)),
      errors(&view,
             EngineErrors::Options{this->options.max_readers_per_channel,
                                   this->options.shutdown_retry_delay,
                                   this->options.max_channels_per_domain},
             &shutting_down),
      scheduler(std::make_unique<Scheduler>(this->options.worker_threads)),
      quota(this->options.quota) {}

absl::Time ServiceCore::WaitDeadline(absl::Time deadline) const {
  if (deadline == absl::InfiniteFuture()) return deadline;
  const absl::Duration left = deadline - absl::Now();
  return deadline - std::max(absl::ZeroDuration(), std::min(options.deadline_margin, left / 10));
}

void ServiceCore::Register(ReactorBase* r, std::weak_ptr<ReactorBase> w) {
  MutexLock lock(&mu_);
  live_[r] = std::move(w);
}

void ServiceCore::Unregister(ReactorBase* r) {
  MutexLock lock(&mu_);
  live_.erase(r);
}

std::vector<std::shared_ptr<ReactorBase>> ServiceCore::Live() {
  std::vector<std::shared_ptr<ReactorBase>> out;
  MutexLock lock(&mu_);
  for (auto& [r, w] : live_) {
    if (auto s = w.lock()) out.push_back(std::move(s));
  }
  return out;
}

std::string ServiceCore::QuotaKey(const Identity& id) {
  const std::string principals = id.principals.ToString();
  return principals.empty() ? "peer:" + id.peer : principals;
}

std::string ServiceCore::QuotaDomain(const std::string& domain) const {
  auto d = engine->GetDomain(domain);
  return d.ok() && !d->uuid.empty() ? d->uuid : domain;
}

absl::Status ServiceCore::QuotaError(const absl::Status& s) {
  std::optional<quota::QuotaExceeded> q = quota::QuotaExceededOf(s);
  if (!q.has_value()) return s;
  return QuotaApiError(*q, s);
}

ApiError ServiceCore::QuotaApiError(const quota::QuotaExceeded& quota, const absl::Status& s) {
  const char* name = quota::QuotaLimitName(quota.kind);
  metrics->QuotaExceeded(name);
  v1::LimitExceeded limit;
  limit.set_limit(name);
  limit.set_limit_value(quota.limit_value);
  limit.set_requested_value(quota.requested_value);
  return std::move(ApiError(StatusCode::kResourceExhausted, v1::ERROR_REASON_QUOTA_EXCEEDED,
                            std::string(s.message()))
                       .Metadata("limit", name)
                       .Detail(limit));
}

void ServiceCore::StartCountingEvents() {
  MutexLock lock(&metrics_mu_);
  metrics_cursor_ = engine->revision();
}

void ServiceCore::CountEvents() {
  MutexLock lock(&metrics_mu_);
  for (;;) {
    auto events = engine->EventsAfter(metrics_cursor_, 256);
    if (!events.ok()) {  // fell behind the retention: skip ahead
      metrics_cursor_ = engine->revision();
      break;
    }
    if (events->empty()) break;
    for (const ChannelEvent& e : *events) {
      metrics->EngineEvent(e.type);
      metrics_cursor_ = e.revision;
    }
  }
  const EngineStats stats = engine->stats();
  metrics->SetEngineFigures(stats.domains, stats.channels);
  const MemoryUsage memory = engine->memory().usage;
  metrics->SetMemoryFigures(memory.used, memory.peak, memory.limit, memory.refused);
}

}  // namespace server
}  // namespace xenchan
