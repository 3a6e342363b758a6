// Server: xenchand as one object. BuildAndStart(ServerOptions) builds and
// starts everything the daemon runs: the audit log, the policy (a file with
// its watcher, or the built-in one), the platform (real Xen, a running
// xensim, or platform objects the caller made), the channel engine, the
// metrics registry and its Prometheus exposer, the ChannelService, the gRPC
// server with its listeners (Unix sockets with peer credentials, mutual TLS,
// loopback plaintext), keepalive, health checking and reflection. main
// (xenchand_main.cc) only turns flags into ServerOptions and waits for
// signals; tests start a Server in their own process.
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
// (PolicyStore + PolicyWatcher: reloaded on change and on Reload()) or the
// built-in one (uid 0 and our own uid).
//
// Thread safety: Reload() and Shutdown() may be called from any thread;
// accessors are fixed after BuildAndStart.
#ifndef XENCHAN_SERVER_SERVER_H_
#define XENCHAN_SERVER_SERVER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backend/engine/engine.h"
#include "backend/util/mutex.h"
#include "server/config.h"

namespace grpc {
class Server;
}  // namespace grpc
namespace prometheus {
class Exposer;
class Registry;
}  // namespace prometheus

namespace xenchan {
namespace server {
namespace audit {
class AuditLog;
}  // namespace audit
}  // namespace server
namespace server {
namespace policy {
class PolicyStore;
class PolicyWatcher;
}  // namespace policy
}  // namespace server

namespace fleet {
class Fleet;
}  // namespace fleet

namespace server {

// The health-check service name that reports the fleet's etcd connection.
inline constexpr char kFleetHealthService[] = "xenchan.fleet";

class Authenticator;
class ChannelService;
class FleetService;
class ServerMetrics;
class UnixListener;
class UnixPeerRegistry;

struct ServerOptions {
  // Everything the config file and flags say (server/config.h); every key
  // keeps its meaning. Checked with Validate(config).
  ServerConfig config;
  // Ready-made platform objects for the engine (xenstore, event_channels and
  // grant_tables set), e.g. a test's simulated host. The engine's limits
  // still come from `config`. Unset: the platform is opened as
  // config.platform says (Xen, or the xensim at config.sim_state_dir).
  // With it, durable channels are kept only if config.state_dir is set.
  std::optional<EngineOptions> platform;
};

class Server {
 public:
  // Builds and starts the server. Errors: INVALID_ARGUMENT (a bad config,
  // bad TLS files), NOT_FOUND (unreadable TLS files), UNAVAILABLE (a
  // listener or the metrics port cannot be bound, the platform cannot be
  // opened), and whatever the policy file, audit log or engine refuse
  // with. The message says which part failed.
  static absl::StatusOr<std::unique_ptr<Server>> BuildAndStart(ServerOptions options);
  // Shuts down (see Shutdown) if that has not happened.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Where clients reach the server, in the order of config.listen: Unix
  // listeners as `unix:///path`, TCP listeners as `HOST:PORT` with the port
  // chosen for port 0.
  const std::vector<std::string>& addresses() const { return addresses_; }
  // The first Unix listener's target (`unix:///path`), empty if none.
  std::string unix_target() const;
  // The first TCP listener's `HOST:PORT`, empty if none.
  std::string tcp_target() const;
  // The port the metrics exposer listens on; 0 if metrics are off.
  int metrics_port() const { return metrics_port_; }
  // The engine, for tests that watch it directly. Valid until Shutdown.
  Engine* engine() { return engine_.get(); }

  // What SIGHUP does: reopens the audit log (first, so that the reload's
  // record lands in the new file) and reloads the policy file. Failures are
  // logged; the old file and policy stay in force.
  void Reload();

  // Graceful shutdown: stops accepting connections, reports NOT_SERVING,
  // ends every open call with UNAVAILABLE (SHUTTING_DOWN), gives calls
  // config.shutdown_grace to finish, then stops the engine (which leaves
  // xenstore as it is, so the next start recovers every channel) and closes
  // the audit log with a server_stop record naming `reason`. Blocks until
  // done. Idempotent.
  void Shutdown(absl::string_view reason = "shutdown");

 private:
  Server();
  absl::Status Start(ServerOptions options);

  ServerConfig config_;
  std::unique_ptr<audit::AuditLog> audit_log_;
  std::unique_ptr<policy::PolicyStore> policy_store_;
  std::unique_ptr<policy::PolicyWatcher> policy_watcher_;
  std::unique_ptr<Engine> engine_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::unique_ptr<UnixPeerRegistry> unix_peers_;
  std::unique_ptr<Authenticator> authenticator_;
  std::unique_ptr<ChannelService> service_;
  std::unique_ptr<FleetService> fleet_service_;  // answers FAILED_PRECONDITION without a fleet
  std::vector<std::unique_ptr<UnixListener>> unix_listeners_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<fleet::Fleet> fleet_;  // with --fleet-etcd
  std::vector<std::string> addresses_;
  int metrics_port_ = 0;

  bool started_ = false;  // server_start was recorded

  Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_SERVER_H_
