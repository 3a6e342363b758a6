// ServerMetrics: xenchand's Prometheus metrics (DESIGN §7): RPCs and their
// latencies, bytes in both directions, sessions, watch events, and the
// engine's lifecycle events (stalls, gaps, epochs, ...). Exposed by
// xenchand_main with prometheus-cpp's Exposer (`--metrics-listen`).
//
// Thread-safe (prometheus-cpp metrics are atomic); the families are created
// once in the constructor.
#ifndef XENCHAN_SERVER_METRICS_H_
#define XENCHAN_SERVER_METRICS_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "backend/engine/types.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace xenchan {
namespace server {

class ServerMetrics {
 public:
  explicit ServerMetrics(std::shared_ptr<prometheus::Registry> registry);

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

  // An RPC began / ended with `code` after `latency` (for streams: their
  // whole life).
  void RpcStarted(const std::string& method);
  void RpcFinished(const std::string& method, absl::StatusCode code, absl::Duration latency);
  // Guest-to-host bytes sent to clients; host-to-guest bytes accepted from
  // clients.
  void BytesToClients(uint64_t n);
  void BytesFromClients(uint64_t n);
  // Gap records sent in Read/Attach streams.
  void StreamGap(uint64_t lost_bytes);
  // Engine sessions opened by the server (Attach, Read, Write, Call).
  void SessionOpened();
  void SessionClosed();
  // A lifecycle event of the engine (counted by type).
  void EngineEvent(ChannelEventType type);
  // Engine figures, refreshed by the caller.
  void SetEngineFigures(uint64_t domains, uint64_t channels);
  // The engine's memory budget (backend/engine/memory_budget.h): bytes
  // charged now, the peak, the cap, and charges refused so far.
  void SetMemoryFigures(uint64_t used, uint64_t peak, uint64_t limit, uint64_t refused);
  // A caller exceeded quota `limit` (server/quota: quota::QuotaLimitName).
  void QuotaExceeded(const std::string& limit);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& rpcs_started_;
  prometheus::Family<prometheus::Counter>& rpcs_finished_;
  prometheus::Family<prometheus::Histogram>& rpc_latency_;
  prometheus::Counter& bytes_to_clients_;
  prometheus::Counter& bytes_from_clients_;
  prometheus::Counter& stream_gaps_;
  prometheus::Counter& stream_gap_bytes_;
  prometheus::Gauge& sessions_;
  prometheus::Counter& sessions_total_;
  prometheus::Family<prometheus::Counter>& engine_events_;
  prometheus::Gauge& domains_;
  prometheus::Gauge& channels_;
  prometheus::Gauge& memory_used_;
  prometheus::Gauge& memory_peak_;
  prometheus::Gauge& memory_limit_;
  prometheus::Gauge& memory_refused_;
  prometheus::Family<prometheus::Counter>& quota_exceeded_;
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_METRICS_H_
