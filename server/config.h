// ServerConfig: everything xenchand's main needs, from a config file and
// command-line flags (flags win). Nothing here starts anything.
//
// Config file format (example: deploy/xenchand.conf): one `key = value` per
// line; `#` starts a comment line; blank lines are ignored; keys are the
// flag names without the leading `--`; `listen` may repeat. Values are
// taken verbatim after trimming spaces (no quoting). Durations use Abseil's
// syntax (`60s`, `500ms`, `10m`); sizes are plain byte counts.
//
// Keys / flags:
//   platform                  xen | sim                      (default xen)
//   sim-state-dir             DIR of a running `xensim serve` (platform sim)
//   state-dir                 xenchand's own state: the declarations of
//                             durable channels (declarations.db, SQLite)
//                             (/var/lib/xenchan; platform sim:
//                             SIM-STATE-DIR/xenchand)
//   listen                    gRPC listener, repeatable (PORT 0 picks a free
//                             port; it is logged):
//                               unix:///path (or unix:/path)  Unix socket;
//                                 callers identified by SO_PEERCRED
//                               HOST:PORT, [HOST]:PORT, tls://HOST:PORT
//                                 TCP with mutual TLS (needs tls-cert,
//                                 tls-key, tls-client-ca); any address
//                               insecure-tcp://HOST:PORT  plaintext TCP,
//                                 loopback HOST only (127.0.0.0/8, ::1,
//                                 localhost); callers are unauthenticated
//                             (default unix:///run/xenchan/xenchand.sock)
//   tls-cert, tls-key         PEM server certificate (chain) and key
//   tls-client-ca             PEM CA bundle that client certificates must
//                             chain to (required, verified)
//   tls-refresh-interval      re-read the three TLS files this often, so
//                             renewed certificates apply without a restart
//                             (0: read once at start)                (0s)
//   policy                    authorization policy file (policy/policy.h,
//                             deploy/policy.example); reloaded on SIGHUP and
//                             on change. Unset: a built-in policy granting
//                             every verb to uid 0 and to xenchand's own uid
//                             on the Unix socket, nothing to anyone else
//   audit-log                 audit log file (JSON lines); unset = none
//   audit-fsync-interval      longest time an audit line stays unsynced (1s)
//   metrics-listen            HOST:PORT for Prometheus /metrics; empty = off
//   max-call-time             longest Call without a deadline      (60s)
//   shutdown-grace            time streams get to finish at SIGTERM (5s)
//   buffer-limit-bytes        default retention buffer per channel (1048576)
//   write-queue-limit-bytes   default write queue per channel      (262144)
//   max-readers-per-channel   reading streams per channel          (16)
//   event-retention           lifecycle events kept for resuming    (10000)
//   watch-backlog-events      a watcher further behind than this is
//                             ended with SLOW_CONSUMER              (5000)
//   worker-threads            stream worker threads                 (2)
//   keepalive-time            server keepalive ping interval        (60s)
//   keepalive-timeout         ping ack timeout before closing       (20s)
//   min-client-ping-interval  clients may ping this often, also
//                             without calls                         (30s)
//
// Security: TCP listeners use mutual TLS unless `insecure-tcp://` is asked
// for explicitly, which is accepted on loopback addresses only.
//
// Thread safety: plain values and pure functions.
#ifndef XENCHAN_SERVER_CONFIG_H_
#define XENCHAN_SERVER_CONFIG_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/util/api_limits.h"

namespace xenchan {
namespace server {

struct ServerConfig {
  std::string platform = "xen";
  std::string sim_state_dir;
  std::string state_dir;            // empty: DefaultStateDir
  std::vector<std::string> listen;  // empty: the default Unix socket
  std::string metrics_listen;
  absl::Duration max_call_time = absl::Seconds(60);
  absl::Duration shutdown_grace = absl::Seconds(5);
  size_t buffer_limit_bytes = kDefaultBufferLimitBytes;
  size_t write_queue_limit_bytes = kDefaultWriteQueueLimitBytes;
  size_t max_readers_per_channel = 16;
  size_t event_retention = 10000;
  size_t watch_backlog_events = 5000;
  int worker_threads = 2;
  absl::Duration keepalive_time = absl::Seconds(60);
  absl::Duration keepalive_timeout = absl::Seconds(20);
  absl::Duration min_client_ping_interval = absl::Seconds(30);
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  absl::Duration tls_refresh_interval = absl::ZeroDuration();
  std::string policy;
  std::string audit_log;
  absl::Duration audit_fsync_interval = absl::Seconds(1);
  // Memory budget of the engine (backend/engine/memory_budget.h).
  size_t memory_budget_bytes = size_t{256} << 20;
  size_t domain_memory_limit_bytes = size_t{64} << 20;
  size_t channel_memory_reserve_bytes = size_t{64} << 10;
  // Quotas (server/quota/quota_manager.h); 0: no limit.
  size_t quota_streams_per_identity = 4096;
  size_t quota_streams_per_domain = 16384;
  size_t quota_observers_per_channel = 0;
  size_t quota_bytes_per_second = size_t{32} << 20;
  size_t quota_queued_bytes = size_t{8} << 20;
  // The fleet (docs/FLEET.md); off while fleet_etcd is empty.
  std::vector<std::string> fleet_etcd;  // etcd endpoints
  std::string fleet_etcd_ca;
  std::string fleet_etcd_cert;
  std::string fleet_etcd_key;
  std::string fleet_prefix = "/xenchan/v1/";
  std::string fleet_host_id;    // empty: the machine's hostname, lower-cased
  std::string fleet_advertise;  // empty: the first TCP listen address, else the first
  std::string fleet_identity;   // empty: the first DNS SAN of tls_cert (none without TLS)
  absl::Duration fleet_lease_ttl = absl::Seconds(10);
  absl::Duration fleet_timeout = absl::Seconds(2);
  // How long a channel whose domain moved to another host stays readable
  // here (docs/FLEET.md, "The source host lets go of a channel that moved").
  absl::Duration fleet_moved_retention = absl::Minutes(10);
};

inline constexpr char kDefaultListen[] = "unix:///run/xenchan/xenchand.sock";
inline constexpr char kDefaultStateDir[] = "/var/lib/xenchan";

// config.state_dir, or its default for the platform.
std::string StateDir(const ServerConfig& config);

// Sets one key. INVALID_ARGUMENT for an unknown key or a bad value. `listen`
// appends.
absl::Status ApplySetting(ServerConfig* config, const std::string& key, const std::string& value);

// Applies a config file's text. INVALID_ARGUMENT naming the line.
absl::Status ApplyConfigText(ServerConfig* config, const std::string& text);

// Parses the command line: `--config FILE` (read first), then every
// `--key=value` / `--key value` flag. `--listen` flags replace the file's
// listeners. INVALID_ARGUMENT for anything else; NOT_FOUND if the config
// file cannot be read.
absl::StatusOr<ServerConfig> ParseCommandLine(int argc, char** argv);

// Checks the whole config (platform, sim-state-dir, listeners).
absl::Status Validate(const ServerConfig& config);

// A listener: `unix` with a path, or TCP (mutual TLS, or plaintext when
// `insecure`) with host and port.
struct ListenAddress {
  bool unix = false;
  bool insecure = false;  // insecure-tcp:// (loopback only)
  std::string path;       // unix
  std::string host;       // tcp, without brackets
  int port = 0;           // tcp
  // The gRPC target form to bind (`unix:/path`, `HOST:PORT`).
  std::string target;
};

// Parses a listen target (see `listen` above). INVALID_ARGUMENT for
// malformed targets and for non-loopback insecure-tcp://.
absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& target);

// Usage text for --help.
std::string Usage();

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_CONFIG_H_
