// ServiceCore: the state ChannelService shares with its reactors: the engine
// (and a read-only view of it), metrics, options, the authorizer, the error
// classification, the scheduler that runs all stream work, the quotas, and
// the registry of open calls (for shutdown). Owned by ChannelService through
// a shared_ptr that every reactor also holds, so it outlives the last call.
//
// Thread safety: thread-safe; fields are const, atomic or guarded.
#ifndef XENCHAN_SERVER_SERVICE_CORE_H_
#define XENCHAN_SERVER_SERVICE_CORE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "backend/engine/engine.h"
#include "backend/util/mutex.h"
#include "server/authorizer.h"
#include "server/channel_service.h"
#include "server/engine_errors.h"
#include "server/engine_view.h"
#include "server/identity.h"
#include "server/metrics.h"
#include "server/quota/quota_manager.h"
#include "server/scheduler.h"
#include "server/status.h"

namespace xenchan {
namespace server {

class ReactorBase;

class ServiceCore {
 public:
  ServiceCore(Engine* engine, ServerMetrics* metrics, ChannelServiceOptions options,
              AccessControl access);

  Engine* const engine;
  const LiveEngineView view;
  ServerMetrics* const metrics;
  const ChannelServiceOptions options;
  const Authorizer authz;
  std::atomic<bool> shutting_down{false};
  const EngineErrors errors;
  std::unique_ptr<Scheduler> scheduler;
  quota::QuotaManager quota;

  // UNAVAILABLE (SHUTTING_DOWN).
  absl::Status ShuttingDownError() const { return errors.ShuttingDown(); }
  // See EngineErrors::ChannelGone.
  absl::Status Removed(const absl::Status& s, const std::string& channel) const {
    return errors.ChannelGone(s, channel);
  }

  // When a wait bounded by `deadline` must end (see deadline_margin).
  absl::Time WaitDeadline(absl::Time deadline) const;

  // The registry of open calls, for BeginShutdown.
  void Register(ReactorBase* r, std::weak_ptr<ReactorBase> w) ABSL_LOCKS_EXCLUDED(mu_);
  void Unregister(ReactorBase* r) ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::shared_ptr<ReactorBase>> Live() ABSL_LOCKS_EXCLUDED(mu_);

  // --- Quotas (see ChannelServiceOptions::quota). ---

  // Whose quotas a call uses: its principals, else its transport peer.
  static std::string QuotaKey(const Identity& id);
  // The domain key of a request's domain segment (its UUID when known).
  std::string QuotaDomain(const std::string& domain) const;
  // A quota::QuotaManager refusal as the API error (counted); other statuses as
  // they are.
  absl::Status QuotaError(const absl::Status& s);
  // The API error of the quota::QuotaManager refusal `s` that says `quota`
  // (RESOURCE_EXHAUSTED QUOTA_EXCEEDED with LimitExceeded; counted).
  ApiError QuotaApiError(const quota::QuotaExceeded& quota, const absl::Status& s);

  // --- Metrics. ---

  // Starts counting lifecycle events from the engine's current revision.
  void StartCountingEvents() ABSL_LOCKS_EXCLUDED(metrics_mu_);
  // Counts the engine's new lifecycle events and its figures into the
  // metrics.
  void CountEvents() ABSL_LOCKS_EXCLUDED(metrics_mu_);

 private:
  Mutex metrics_mu_;
  uint64_t metrics_cursor_ ABSL_GUARDED_BY(metrics_mu_) = 0;

  Mutex mu_;
  std::map<ReactorBase*, std::weak_ptr<ReactorBase>> live_ ABSL_GUARDED_BY(mu_);
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_SERVICE_CORE_H_
