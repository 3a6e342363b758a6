// ServerMetrics (see the header).
#include "server/metrics.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"

namespace xenchan {
namespace server {
namespace {

std::string CodeName(absl::StatusCode code) { return absl::StatusCodeToString(code); }

}  // namespace

ServerMetrics::ServerMetrics(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)),
      rpcs_started_(prometheus::BuildCounter()
                        .Name("xenchan_rpcs_started_total")
                        .Help("RPCs started, by method")
                        .Register(*registry_)),
      rpcs_finished_(prometheus::BuildCounter()
                         .Name("xenchan_rpcs_finished_total")
                         .Help("RPCs finished, by method and status code")
                         .Register(*registry_)),
      rpc_latency_(prometheus::BuildHistogram()
                       .Name("xenchan_rpc_duration_seconds")
                       .Help("Time from start to finish of RPCs, by method")
                       .Register(*registry_)),
      bytes_to_clients_(prometheus::BuildCounter()
                            .Name("xenchan_bytes_to_clients_total")
                            .Help("Guest-to-host bytes sent to clients in Read and Attach")
                            .Register(*registry_)
                            .Add({})),
      bytes_from_clients_(prometheus::BuildCounter()
                              .Name("xenchan_bytes_from_clients_total")
                              .Help("Host-to-guest bytes accepted from clients")
                              .Register(*registry_)
                              .Add({})),
      stream_gaps_(prometheus::BuildCounter()
                       .Name("xenchan_stream_gaps_total")
                       .Help("Gap records sent to clients")
                       .Register(*registry_)
                       .Add({})),
      stream_gap_bytes_(prometheus::BuildCounter()
                            .Name("xenchan_stream_gap_bytes_total")
                            .Help("Bytes reported lost in gap records sent to clients")
                            .Register(*registry_)
                            .Add({})),
      sessions_(prometheus::BuildGauge()
                    .Name("xenchan_sessions")
                    .Help("Open engine sessions (Attach, Read, Write, Call)")
                    .Register(*registry_)
                    .Add({})),
      sessions_total_(prometheus::BuildCounter()
                          .Name("xenchan_sessions_opened_total")
                          .Help("Engine sessions opened")
                          .Register(*registry_)
                          .Add({})),
      engine_events_(prometheus::BuildCounter()
                         .Name("xenchan_channel_events_total")
                         .Help("Channel lifecycle events, by type (stalls, gaps, epochs, ...)")
                         .Register(*registry_)),
      domains_(prometheus::BuildGauge()
                   .Name("xenchan_domains")
                   .Help("Guest domains known to the engine")
                   .Register(*registry_)
                   .Add({})),
      channels_(prometheus::BuildGauge()
                    .Name("xenchan_channels")
                    .Help("Channels known to the engine")
                    .Register(*registry_)
                    .Add({})),
      memory_used_(prometheus::BuildGauge()
                       .Name("xenchan_memory_budget_used_bytes")
                       .Help("Bytes charged to the engine's memory budget now")
                       .Register(*registry_)
                       .Add({})),
      memory_peak_(prometheus::BuildGauge()
                       .Name("xenchan_memory_budget_peak_bytes")
                       .Help("Most bytes ever charged to the engine's memory budget")
                       .Register(*registry_)
                       .Add({})),
      memory_limit_(prometheus::BuildGauge()
                        .Name("xenchan_memory_budget_limit_bytes")
                        .Help("The engine's memory budget (memory-budget-bytes)")
                        .Register(*registry_)
                        .Add({})),
      memory_refused_(prometheus::BuildGauge()
                          .Name("xenchan_memory_budget_refused")
                          .Help("Charges the memory budget refused since start (buffers held "
                                "back: BLOCK stalls, DROP_OLDEST drops, writes refused)")
                          .Register(*registry_)
                          .Add({})),
      quota_exceeded_(prometheus::BuildCounter()
                          .Name("xenchan_quota_exceeded_total")
                          .Help("Requests refused with QUOTA_EXCEEDED, by limit")
                          .Register(*registry_)) {}

void ServerMetrics::RpcStarted(const std::string& method) {
  rpcs_started_.Add({{"method", method}}).Increment();
}

void ServerMetrics::RpcFinished(const std::string& method, absl::StatusCode code,
                                absl::Duration latency) {
  rpcs_finished_.Add({{"method", method}, {"code", CodeName(code)}}).Increment();
  rpc_latency_
      .Add({{"method", method}},
           prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60})
      .Observe(absl::ToDoubleSeconds(latency));
}

void ServerMetrics::BytesToClients(uint64_t n) { bytes_to_clients_.Increment(n); }
void ServerMetrics::BytesFromClients(uint64_t n) { bytes_from_clients_.Increment(n); }

void ServerMetrics::StreamGap(uint64_t lost_bytes) {
  stream_gaps_.Increment();
  stream_gap_bytes_.Increment(lost_bytes);
}

void ServerMetrics::SessionOpened() {
  sessions_.Increment();
  sessions_total_.Increment();
}

void ServerMetrics::SessionClosed() { sessions_.Decrement(); }

void ServerMetrics::EngineEvent(ChannelEventType type) {
  engine_events_.Add({{"type", absl::AsciiStrToLower(ToString(type))}}).Increment();
}

void ServerMetrics::SetMemoryFigures(uint64_t used, uint64_t peak, uint64_t limit,
                                     uint64_t refused) {
  memory_used_.Set(static_cast<double>(used));
  memory_peak_.Set(static_cast<double>(peak));
  memory_limit_.Set(static_cast<double>(limit));
  memory_refused_.Set(static_cast<double>(refused));
}

void ServerMetrics::QuotaExceeded(const std::string& limit) {
  quota_exceeded_.Add({{"limit", limit}}).Increment();
}

void ServerMetrics::SetEngineFigures(uint64_t domains, uint64_t channels) {
  domains_.Set(static_cast<double>(domains));
  channels_.Set(static_cast<double>(channels));
}

}  // namespace server
}  // namespace xenchan
