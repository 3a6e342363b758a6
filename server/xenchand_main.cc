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
//
// Security (server/identity.h, DESIGN §6): Unix-socket listeners are accepted
// by UnixListener (peer credentials), TCP listeners use mutual TLS unless
// `insecure-tcp://` (loopback only) is asked for. The policy is a file
// (PolicyStore + PolicyWatcher: reloaded on change and on SIGHUP) or the
// built-in one (uid 0 and our own uid). SIGHUP also reopens the audit log.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
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
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"
#include "server/audit/audit_log.h"
#include "server/channel_service.h"
#include "server/config.h"
#include "server/identity.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/policy/policy.h"
#include "server/policy/policy_store.h"
#include "server/unix_listener.h"

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
  o.memory_budget_bytes = config.memory_budget_bytes;
  o.domain_memory_limit_bytes = config.domain_memory_limit_bytes;
  o.channel_memory_reserve_bytes = config.channel_memory_reserve_bytes;
  return o;
}

// The address a client would use, with the chosen port for port 0.
std::string BoundAddress(const ListenAddress& a, int selected_port) {
  if (a.unix) return "unix://" + a.path;
  const bool v6 = a.host.find(':') != std::string::npos;
  return absl::StrCat(v6 ? "[" : "", a.host, v6 ? "]" : "", ":", selected_port);
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The policy used without --policy: every verb for uid 0 and for our own uid
// (which only the Unix socket can present), nothing for anyone else.
absl::StatusOr<policy::Policy> BuiltInPolicy() {
  std::string text = "[identity unix:uid=0]\nallow verbs=* domain=* channel=*\n";
  if (getuid() != 0) {
    absl::StrAppend(&text, "[identity unix:uid=", getuid(), "]\nallow verbs=* domain=* channel=*\n");
  }
  return policy::Policy::Parse(text, "built-in policy");
}

// The credentials of TLS listeners: mutual TLS, client certificates required
// and verified against tls-client-ca.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> TlsCredentials(
    const ServerConfig& config) {
  auto cert = ReadFile(config.tls_cert);
  if (!cert.ok()) return cert.status();
  auto key = ReadFile(config.tls_key);
  if (!key.ok()) return key.status();
  auto ca = ReadFile(config.tls_client_ca);
  if (!ca.ok()) return ca.status();
  if (cert->find("-----BEGIN CERTIFICATE-----") == std::string::npos ||
      key->find("PRIVATE KEY-----") == std::string::npos ||
      ca->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return absl::InvalidArgumentError(
        "tls-cert and tls-client-ca must hold PEM certificates and tls-key a PEM private key");
  }
  if (config.tls_refresh_interval > absl::ZeroDuration()) {
    // gRPC's file-watching provider re-reads the three files every interval
    // and applies a consistent new set (a half-written key/cert pair is
    // kept out until both match).
    auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
        config.tls_key, config.tls_cert, config.tls_client_ca,
        static_cast<unsigned int>(absl::ToInt64Seconds(config.tls_refresh_interval)));
    grpc::experimental::TlsServerCredentialsOptions options(provider);
    options.watch_root_certs();
    options.watch_identity_key_cert_pairs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    return grpc::experimental::TlsServerCredentials(options);
  }
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = *ca;
  options.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(options);
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
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Log("info", "starting", {{"platform", config->platform}, {"sim_state_dir", config->sim_state_dir}});

  // Audit log first, so that the initial policy load is recorded.
  std::unique_ptr<audit::AuditLog> audit_log;
  if (!config->audit_log.empty()) {
    audit::AuditOptions audit_options;
    audit_options.path = config->audit_log;
    audit_options.fsync_interval = config->audit_fsync_interval;
    auto opened = audit::AuditLog::Open(audit_options);
    if (!opened.ok()) return Fail("cannot open the audit log", opened.status());
    audit_log = *std::move(opened);
    Log("info", "audit log", {{"path", config->audit_log}});
  }

  // The policy: a file (refuse to start if it is bad), or the built-in one.
  std::unique_ptr<policy::PolicyStore> policy_store;
  std::unique_ptr<policy::PolicyWatcher> policy_watcher;
  std::function<std::shared_ptr<const policy::Policy>()> current_policy;
  if (!config->policy.empty()) {
    policy::PolicyStore::Options store_options;
    store_options.path = config->policy;
    audit::AuditLog* audit = audit_log.get();
    store_options.on_reload = [audit, path = config->policy](const absl::Status& status,
                                                              const policy::ReloadStatus& totals) {
      const std::string outcome = status.ok() ? "ok" : "refused";
      if (status.ok()) {
        Log("info", "policy loaded", {{"path", path}, {"loaded", absl::StrCat(totals.loaded)}});
      } else {
        Log("error", "policy refused; the policy in force stays",
            {{"path", path}, {"error", std::string(status.message())}});
      }
      if (audit != nullptr) {
        audit->Event("policy_reload", {{"path", path},
                                       {"outcome", outcome},
                                       {"error", std::string(status.message())},
                                       {"loaded", absl::StrCat(totals.loaded)},
                                       {"failures", absl::StrCat(totals.failures)}});
      }
    };
    auto store = policy::PolicyStore::Create(std::move(store_options));
    if (!store.ok()) return Fail("bad policy file", store.status());
    policy_store = *std::move(store);
    const auto p = policy_store->Current();
    Log("info", "policy", {{"path", config->policy},
                           {"sections", absl::StrCat(p->section_count())},
                           {"rules", absl::StrCat(p->rule_count())}});
    auto watcher = policy::PolicyWatcher::Start(policy_store.get());
    if (!watcher.ok()) return Fail("cannot watch the policy file", watcher.status());
    policy_watcher = *std::move(watcher);
    policy::PolicyStore* s = policy_store.get();
    current_policy = [s] { return s->Current(); };
  } else {
    auto built_in = BuiltInPolicy();
    if (!built_in.ok()) return Fail("built-in policy", built_in.status());
    auto fixed = std::make_shared<const policy::Policy>(*std::move(built_in));
    current_policy = [fixed] { return fixed; };
    Log("info", "policy",
        {{"path", "(built-in)"},
         {"grants", absl::StrCat("every verb to unix:uid=0",
                                 getuid() != 0 ? absl::StrCat(" and unix:uid=", getuid()) : "",
                                 " on the Unix socket; nothing to anyone else")}});
  }
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
  service_options.quota.streams_per_caller = config->quota_streams_per_identity;
  service_options.quota.streams_per_domain = config->quota_streams_per_domain;
  service_options.quota.observers_per_channel_per_caller = config->quota_observers_per_channel;
  service_options.quota.bytes_per_second_per_caller = config->quota_bytes_per_second;
  service_options.quota.queued_bytes_per_caller = config->quota_queued_bytes;
  UnixPeerRegistry unix_peers;
  Authenticator authenticator(&unix_peers);
  AccessControl access;
  access.authenticator = &authenticator;
  access.policy = current_policy;
  access.audit = audit_log.get();
  auto service =
      std::make_unique<ChannelService>(engine->get(), &metrics, service_options, access);

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
  std::vector<ListenAddress> addresses;  // TCP
  std::vector<std::unique_ptr<int>> ports;
  std::vector<std::unique_ptr<UnixListener>> unix_listeners;
  std::shared_ptr<grpc::ServerCredentials> tls;
  for (const std::string& l : config->listen) {
    ListenAddress a = *ParseListenAddress(l);
    if (a.unix) {
      auto listener = UnixListener::Bind(a.path, 0660);
      if (!listener.ok()) return Fail("cannot listen", listener.status());
      unix_listeners.push_back(*std::move(listener));
      continue;
    }
    std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
    if (!a.insecure) {
      if (tls == nullptr) {
        auto made = TlsCredentials(*config);
        if (!made.ok()) return Fail("bad TLS configuration", made.status());
        tls = *std::move(made);
      }
      credentials = tls;
    }
    ports.push_back(std::make_unique<int>(0));
    builder.AddListeningPort(a.target, credentials, ports.back().get());
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
    if (*ports[i] == 0) {
      return Fail("cannot listen", absl::UnavailableError("binding " + addresses[i].target));
    }
    Log("info", "listening", {{"address", BoundAddress(addresses[i], *ports[i])},
                              {"transport", "tcp"},
                              {"security", addresses[i].insecure ? "insecure" : "mtls"}});
  }
  for (auto& listener : unix_listeners) {
    listener->Start(server.get(), &unix_peers);
    Log("info", "listening", {{"address", "unix://" + listener->path()},
                              {"transport", "unix"},
                              {"security", "peercred"}});
  }
  if (audit_log != nullptr) {
    audit_log->Event("server_start", {{"pid", absl::StrCat(getpid())},
                                      {"policy", config->policy.empty() ? "(built-in)"
                                                                        : config->policy}});
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  Log("info", "ready", {{"pid", absl::StrCat(getpid())}});

  int sig = 0;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    Log("info", "SIGHUP: reloading the policy and reopening the audit log");
    // Reopen first, so that the reload's record lands in the new file.
    if (audit_log != nullptr) {
      absl::Status reopened = audit_log->Reopen();
      if (!reopened.ok()) {
        Log("error", "audit log reopen failed; still writing the old file",
            {{"error", std::string(reopened.message())}});
      }
    }
    if (policy_store != nullptr) (void)policy_store->Reload();  // logged by on_reload
  }
  Log("info", "shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  for (auto& listener : unix_listeners) listener->Stop();
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
  unix_listeners.clear();
  policy_watcher.reset();
  if (audit_log != nullptr) {
    audit_log->Event("server_stop", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    audit_log->Close();
  }
  Log("info", "stopped");
  return 0;
}

}  // namespace
}  // namespace server
}  // namespace xenchan

int main(int argc, char** argv) { return xenchan::server::Main(argc, argv); }
