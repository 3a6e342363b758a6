// Server: builds, starts and stops everything xenchand runs (see server.h).
#include "server/server.h"

#include <unistd.h>

#include <chrono>
#include <exception>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"
#include "server/audit/audit_log.h"
#include "server/channel_service.h"
#include "server/fleet/fleet.h"
#include "server/fleet_service.h"
#include "server/identity.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/policy/policy.h"
#include "server/policy/policy_store.h"
#include "server/server_setup.h"
#include "server/unix_listener.h"

namespace xenchan {
namespace server {
namespace {

// The address a client would use, with the chosen port for port 0.
std::string BoundAddress(const ListenAddress& a, int selected_port) {
  if (a.unix) return "unix://" + a.path;
  const bool v6 = a.host.find(':') != std::string::npos;
  return absl::StrCat(v6 ? "[" : "", a.host, v6 ? "]" : "", ":", selected_port);
}

// `s` with `what` failed in front, so the caller can tell which part it was.
absl::Status Failed(absl::string_view what, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

}  // namespace

Server::Server() = default;

Server::~Server() { Shutdown("destroyed"); }

absl::StatusOr<std::unique_ptr<Server>> Server::BuildAndStart(ServerOptions options) {
  absl::Status valid = Validate(options.config);
  if (!valid.ok()) return Failed("bad configuration", valid);
  std::unique_ptr<Server> server(new Server());
  absl::Status started = server->Start(std::move(options));
  if (!started.ok()) {
    server->Shutdown("start failed");
    return started;
  }
  return server;
}

absl::Status Server::Start(ServerOptions options) {
  config_ = std::move(options.config);
  const ServerConfig& config = config_;

  // Audit log first, so that the initial policy load is recorded.
  if (!config.audit_log.empty()) {
    audit::AuditOptions audit_options;
    audit_options.path = config.audit_log;
    audit_options.fsync_interval = config.audit_fsync_interval;
    auto opened = audit::AuditLog::Open(audit_options);
    if (!opened.ok()) return Failed("cannot open the audit log", opened.status());
    audit_log_ = *std::move(opened);
    Log("info", "audit log", {{"path", config.audit_log}});
  }

  // The policy: a file (refuse to start if it is bad), or the built-in one.
  std::function<std::shared_ptr<const policy::Policy>()> current_policy;
  if (!config.policy.empty()) {
    auto store = OpenPolicyFile(config.policy, audit_log_.get());
    if (!store.ok()) return Failed("bad policy file", store.status());
    policy_store_ = *std::move(store);
    auto watcher = policy::PolicyWatcher::Start(policy_store_.get());
    if (!watcher.ok()) return Failed("cannot watch the policy file", watcher.status());
    policy_watcher_ = *std::move(watcher);
    policy::PolicyStore* s = policy_store_.get();
    current_policy = [s] { return s->Current(); };
  } else {
    auto built_in = BuiltInPolicy();
    if (!built_in.ok()) return Failed("built-in policy", built_in.status());
    auto fixed = std::make_shared<const policy::Policy>(*std::move(built_in));
    current_policy = [fixed] { return fixed; };
    Log("info", "policy",
        {{"path", "(built-in)"},
         {"grants", absl::StrCat("every verb to unix:uid=0",
                                 getuid() != 0 ? absl::StrCat(" and unix:uid=", getuid()) : "",
                                 " on the Unix socket; nothing to anyone else")}});
  }

  const bool platform_given = options.platform.has_value();
  absl::StatusOr<EngineOptions> engine_options =
      options.platform.has_value() ? *std::move(options.platform) : OpenPlatform(config);
  if (!engine_options.ok()) return Failed("platform unavailable", engine_options.status());
  ApplyEngineLimits(config, &*engine_options);
  // An in-process server with its own platform keeps declarations only if
  // it was given a state directory.
  if (!platform_given || !config.state_dir.empty()) {
    auto declarations = OpenDeclarations(config);
    if (!declarations.ok()) return Failed("declaration store unusable", declarations.status());
    Log("info", "declarations", {{"path", (*declarations)->path()}});
    engine_options->declarations = *std::move(declarations);
  }
  if (!config.fleet_etcd.empty()) {
    auto fleet = fleet::Fleet::Create(config);
    if (!fleet.ok()) return Failed("bad fleet settings", fleet.status());
    fleet_ = *std::move(fleet);
    engine_options->on_domain_arrival = fleet_->ArrivalHandler();
    engine_options->moved_channel_retention = config.fleet_moved_retention;
  }
  ChannelServiceOptions service_options = ServiceOptionsFrom(config);
  service_options.max_channels_per_domain = engine_options->max_channels_per_domain;
  auto engine = Engine::Create(*std::move(engine_options));
  if (!engine.ok()) return Failed("engine failed to start", engine.status());
  engine_ = *std::move(engine);

  registry_ = std::make_shared<prometheus::Registry>();
  metrics_ = std::make_unique<ServerMetrics>(registry_);
  if (!config.metrics_listen.empty()) {
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(config.metrics_listen);
    } catch (const std::exception& e) {  // prometheus-cpp reports bind errors by throwing
      return Failed("metrics listener failed", absl::UnavailableError(e.what()));
    }
    exposer_->RegisterCollectable(registry_);
    std::vector<int> ports = exposer_->GetListeningPorts();
    metrics_port_ = ports.empty() ? 0 : ports[0];
    Log("info", "metrics",
        {{"address", absl::StrCat(config.metrics_listen.substr(0, config.metrics_listen.rfind(':')),
                                  ":", metrics_port_)},
         {"path", "/metrics"}});
  }

  unix_peers_ = std::make_unique<UnixPeerRegistry>();
  authenticator_ = std::make_unique<Authenticator>(unix_peers_.get());
  AccessControl access;
  access.authenticator = authenticator_.get();
  access.policy = current_policy;
  access.audit = audit_log_.get();
  service_ =
      std::make_unique<ChannelService>(engine_.get(), metrics_.get(), service_options, access);
  auto fleet_service = FleetService::Create(fleet_ != nullptr ? fleet_->etcd() : nullptr,
                                            config.fleet_prefix, access);
  if (!fleet_service.ok()) return Failed("fleet service", fleet_service.status());
  fleet_service_ = *std::move(fleet_service);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(config.keepalive_time)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(config.keepalive_timeout)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      static_cast<int>(absl::ToInt64Milliseconds(config.min_client_ping_interval)));
  struct Tcp {
    ListenAddress address;
    std::unique_ptr<int> port;
    size_t index;  // in config.listen
  };
  std::vector<Tcp> tcp;
  std::shared_ptr<grpc::ServerCredentials> tls;
  const std::vector<std::string> listen =
      config.listen.empty() ? std::vector<std::string>{kDefaultListen} : config.listen;
  addresses_.resize(listen.size());
  for (size_t i = 0; i < listen.size(); ++i) {
    auto parsed = ParseListenAddress(listen[i]);
    if (!parsed.ok()) return Failed("cannot listen", parsed.status());
    const ListenAddress& a = *parsed;
    if (a.unix) {
      auto listener = UnixListener::Bind(a.path, 0660);
      if (!listener.ok()) return Failed("cannot listen", listener.status());
      unix_listeners_.push_back(*std::move(listener));
      addresses_[i] = "unix://" + a.path;
      continue;
    }
    std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
    if (!a.insecure) {
      if (tls == nullptr) {
        auto made = TlsCredentials(config);
        if (!made.ok()) return Failed("bad TLS configuration", made.status());
        tls = *std::move(made);
      }
      credentials = tls;
    }
    tcp.push_back(Tcp{a, std::make_unique<int>(0), i});
    builder.AddListeningPort(a.target, credentials, tcp.back().port.get());
  }
  builder.RegisterService(service_.get());
  builder.RegisterService(fleet_service_.get());
  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr) {
    return Failed("cannot listen",
                  absl::UnavailableError(
                      absl::StrCat("binding failed for one of: ", absl::StrJoin(listen, ", "))));
  }
  for (const Tcp& t : tcp) {
    if (*t.port == 0) {
      return Failed("cannot listen", absl::UnavailableError("binding " + t.address.target));
    }
    addresses_[t.index] = BoundAddress(t.address, *t.port);
    Log("info", "listening",
        {{"address", addresses_[t.index]},
         {"transport", "tcp"},
         {"security", t.address.insecure ? "insecure" : "mtls"}});
  }
  for (auto& listener : unix_listeners_) {
    listener->Start(grpc_server_.get(), unix_peers_.get());
    Log("info", "listening",
        {{"address", "unix://" + listener->path()},
         {"transport", "unix"},
         {"security", "peercred"}});
  }
  if (audit_log_ != nullptr) {
    audit_log_->Event("server_start",
                      {{"pid", absl::StrCat(getpid())},
                       {"policy", config.policy.empty() ? "(built-in)" : config.policy}});
  }
  started_ = true;
  grpc_server_->GetHealthCheckService()->SetServingStatus(true);
  if (fleet_ != nullptr) {
    // Health service "xenchan.fleet": SERVING while etcd answers. Serving
    // itself never depends on it.
    grpc::HealthCheckServiceInterface* health = grpc_server_->GetHealthCheckService();
    health->SetServingStatus(kFleetHealthService, false);
    fleet_->Start(
        engine_.get(), addresses_,
        [health](bool connected) { health->SetServingStatus(kFleetHealthService, connected); },
        fleet_service_->reader());
  }
  return absl::OkStatus();
}

std::string Server::unix_target() const {
  for (const std::string& a : addresses_) {
    if (a.rfind("unix://", 0) == 0) return a;
  }
  return "";
}

std::string Server::tcp_target() const {
  for (const std::string& a : addresses_) {
    if (!a.empty() && a.rfind("unix://", 0) != 0) return a;
  }
  return "";
}

void Server::Reload() {
  MutexLock lock(&shutdown_mu_);
  if (shut_down_) return;
  if (audit_log_ != nullptr) {
    absl::Status reopened = audit_log_->Reopen();
    if (!reopened.ok()) {
      Log("error", "audit log reopen failed; still writing the old file",
          {{"error", std::string(reopened.message())}});
    }
  }
  if (policy_store_ != nullptr) (void)policy_store_->Reload();  // logged by on_reload
}

void Server::Shutdown(absl::string_view reason) {
  MutexLock lock(&shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  for (auto& listener : unix_listeners_) listener->Stop();
  if (grpc_server_ != nullptr) grpc_server_->GetHealthCheckService()->SetServingStatus(false);
  // Leave the fleet first: the host's records go at once (lease revoked).
  if (fleet_ != nullptr) fleet_->Stop(/*graceful=*/true);
  if (service_ != nullptr) service_->BeginShutdown();
  if (fleet_service_ != nullptr) fleet_service_->BeginShutdown();
  if (grpc_server_ != nullptr) {
    grpc_server_->Shutdown(std::chrono::system_clock::now() +
                           absl::ToChronoMilliseconds(config_.shutdown_grace));
    grpc_server_->Wait();
  }
  // Order: the server (which calls into the service), the service (which
  // holds an engine subscription), then the engine. The engine leaves
  // xenstore as it is, so the next start recovers every channel (re-map,
  // re-bind).
  grpc_server_.reset();
  service_.reset();
  fleet_service_.reset();
  fleet_.reset();  // reads the engine
  engine_.reset();
  unix_listeners_.clear();
  policy_watcher_.reset();
  exposer_.reset();
  if (audit_log_ != nullptr) {
    if (started_) audit_log_->Event("server_stop", {{"signal", std::string(reason)}});
    audit_log_->Close();
  }
}

}  // namespace server
}  // namespace xenchan
