// xenchand: parses the configuration, builds the platform (real Xen or a
// running xensim), the engine, the gRPC server with its listeners, health
// checking, reflection and keepalive, and Prometheus metrics; then serves
// until SIGTERM/SIGINT and shuts down gracefully. Nothing else lives here.
//
// Keepalive, chosen on purpose (see gRPC doc/keepalive.md):
//  - keepalive-time 60 s / keepalive-timeout 20 s: Attach, Read and Watch
//    streams are long-lived and often idle (a quiet guest); the server pings
//    an idle connection every minute and drops it if no ack arrives within
//    20 s, so streams of vanished clients (a controller whose host died,
//    NAT state lost) release their sessions and write leases within ~80 s
//    instead of holding a lease for hours.
//  - min-client-ping-interval 30 s, also without calls: clients may keep
//    their own keepalive at 30 s or more (our client library uses 60 s) on
//    idle long-lived streams; faster pings are treated as abuse (the
//    default ping-strike policy then closes the connection).
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backend/engine/engine.h"
#include "backend/platform/sim/event_channels.h"
#include "backend/platform/sim/grant_tables.h"
#include "backend/platform/xen/event_channels.h"
#include "backend/platform/xen/grant_tables.h"
#include "backend/platform/xen/lib_xenstore.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"
#include "server/channel_service.h"
#include "server/config.h"
#include "server/log.h"
#include "server/metrics.h"

namespace xenchan {
namespace server {
namespace {

absl::StatusOr<EngineOptions> PlatformOptions(const ServerConfig& config) {
  EngineOptions o;
  if (config.platform == "sim") {
    const std::string& dir = config.sim_state_dir;
    auto xs = LibXenStore::Open(dir + "/xenstored.sock");
    if (!xs.ok()) return xs.status();
    auto ev = SimEventChannels::Create(dir + "/hypervisor.sock");
    if (!ev.ok()) return ev.status();
    auto gt = SimGrantTables::Create(dir + "/hypervisor.sock");
    if (!gt.ok()) return gt.status();
    o.xenstore = *std::move(xs);
    o.event_channels = *std::move(ev);
    o.grant_tables = *std::move(gt);
  } else {
    auto xs = LibXenStore::Open("");
    if (!xs.ok()) return xs.status();
    auto ev = XenEventChannels::Create();
    if (!ev.ok()) return ev.status();
    auto gt = XenGrantTables::Create();
    if (!gt.ok()) return gt.status();
    o.xenstore = *std::move(xs);
    o.event_channels = *std::move(ev);
    o.grant_tables = *std::move(gt);
  }
  o.buffer_limit_bytes = config.buffer_limit_bytes;
  o.write_queue_limit_bytes = config.write_queue_limit_bytes;
  o.max_readers_per_channel = config.max_readers_per_channel;
  o.event_retention = config.event_retention;
  return o;
}

// The address a client would use, with the chosen port for port 0.
std::string BoundAddress(const ListenAddress& a, int selected_port) {
  if (a.unix) return "unix://" + a.path;
  const bool v6 = a.host.find(':') != std::string::npos;
  return absl::StrCat(v6 ? "[" : "", a.host, v6 ? "]" : "", ":", selected_port);
}

int Fail(const std::string& what, const absl::Status& s) {
  Log("error", what, {{"error", std::string(s.message())}, {"code", absl::StatusCodeToString(s.code())}});
  return 1;
}

int Main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(Usage().c_str(), stdout);
      return 0;
    }
  }
  auto config = ParseCommandLine(argc, argv);
  if (!config.ok()) {
    std::fprintf(stderr, "xenchand: %s\n\n%s", std::string(config.status().message()).c_str(),
                 Usage().c_str());
    return 2;
  }
  absl::Status valid = Validate(*config);
  if (!valid.ok()) {
    std::fprintf(stderr, "xenchand: %s\n", std::string(valid.message()).c_str());
    return 2;
  }
  // Signals are taken by sigwait below; every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Log("info", "starting", {{"platform", config->platform}, {"sim_state_dir", config->sim_state_dir}});
  auto options = PlatformOptions(*config);
  if (!options.ok()) return Fail("platform unavailable", options.status());
  auto engine = Engine::Create(*std::move(options));
  if (!engine.ok()) return Fail("engine failed to start", engine.status());

  auto registry = std::make_shared<prometheus::Registry>();
  ServerMetrics metrics(registry);
  std::unique_ptr<prometheus::Exposer> exposer;
  if (!config->metrics_listen.empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(config->metrics_listen);
    } catch (const std::exception& e) {  // prometheus-cpp reports bind errors by throwing
      return Fail("metrics listener failed", absl::UnavailableError(e.what()));
    }
    exposer->RegisterCollectable(registry);
    std::vector<int> ports = exposer->GetListeningPorts();
    Log("info", "metrics",
        {{"address", absl::StrCat(config->metrics_listen.substr(0, config->metrics_listen.rfind(':')),
                                  ":", ports.empty() ? 0 : ports[0])},
         {"path", "/metrics"}});
  }

  ChannelServiceOptions service_options;
  service_options.max_call_time = config->max_call_time;
  service_options.worker_threads = config->worker_threads;
  service_options.max_readers_per_channel = config->max_readers_per_channel;
  service_options.watch_backlog_events = config->watch_backlog_events;
  auto service = std::make_unique<ChannelService>(engine->get(), &metrics, service_options);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(config->keepalive_time)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(config->keepalive_timeout)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      static_cast<int>(absl::ToInt64Milliseconds(config->min_client_ping_interval)));
  std::vector<ListenAddress> addresses;
  std::vector<std::unique_ptr<int>> ports;
  for (const std::string& l : config->listen) {
    ListenAddress a = *ParseListenAddress(l);
    if (a.unix) {
      const std::string dir = a.path.substr(0, a.path.rfind('/'));
      if (!dir.empty()) mkdir(dir.c_str(), 0755);  // EEXIST is fine
    }
    ports.push_back(std::make_unique<int>(0));
    builder.AddListeningPort(a.target, grpc::InsecureServerCredentials(), ports.back().get());
    addresses.push_back(a);
  }
  builder.RegisterService(service.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    return Fail("cannot listen", absl::UnavailableError(absl::StrCat(
                                     "binding failed for one of: ",
                                     absl::StrJoin(config->listen, ", "))));
  }
  for (size_t i = 0; i < addresses.size(); ++i) {
    if (*ports[i] == 0 && !addresses[i].unix) {
      return Fail("cannot listen", absl::UnavailableError("binding " + addresses[i].target));
    }
    if (addresses[i].unix) chmod(addresses[i].path.c_str(), 0660);
    Log("info", "listening", {{"address", BoundAddress(addresses[i], *ports[i])},
                              {"transport", addresses[i].unix ? "unix" : "tcp"}});
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  Log("info", "ready", {{"pid", absl::StrCat(getpid())}});

  int sig = 0;
  sigwait(&stop_signals, &sig);
  Log("info", "shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  server->GetHealthCheckService()->SetServingStatus(false);
  service->BeginShutdown();
  server->Shutdown(std::chrono::system_clock::now() +
                   absl::ToChronoMilliseconds(config->shutdown_grace));
  server->Wait();
  // Order: the server (which calls into the service), the service (which
  // holds an engine subscription), then the engine. The engine leaves
  // xenstore as it is, so the next start recovers every channel (re-map,
  // re-bind).
  server.reset();
  service.reset();
  engine->reset();
  Log("info", "stopped");
  return 0;
}

}  // namespace
}  // namespace server
}  // namespace xenchan

int main(int argc, char** argv) { return xenchan::server::Main(argc, argv); }
