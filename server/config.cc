// ServerConfig parsing (see the header).
#include "server/config.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace xenchan {
namespace server {
namespace {

absl::Status Bad(const std::string& key, const std::string& value, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(key, " = '", value, "': ", why));
}

absl::Status SetDuration(const std::string& key, const std::string& value, absl::Duration* out) {
  absl::Duration d;
  if (!absl::ParseDuration(value, &d) || d < absl::ZeroDuration()) {
    return Bad(key, value, "not a duration such as 60s or 500ms");
  }
  *out = d;
  return absl::OkStatus();
}

absl::Status SetSize(const std::string& key, const std::string& value, size_t min, size_t max,
                     size_t* out) {
  uint64_t v;
  if (!absl::SimpleAtoi(value, &v) || v < min || v > max) {
    return Bad(key, value, absl::StrCat("must be a number in ", min, "..", max));
  }
  *out = v;
  return absl::OkStatus();
}

bool IsLoopback(const std::string& host) {
  if (host == "localhost" || host == "::1") return true;
  std::vector<std::string> parts = absl::StrSplit(host, '.');
  if (parts.size() != 4 || parts[0] != "127") return false;
  for (const auto& p : parts) {
    int v;
    if (!absl::SimpleAtoi(p, &v) || v < 0 || v > 255) return false;
  }
  return true;
}

}  // namespace

absl::Status ApplySetting(ServerConfig* c, const std::string& key, const std::string& value) {
  if (key == "platform") {
    if (value != "xen" && value != "sim") return Bad(key, value, "must be xen or sim");
    c->platform = value;
  } else if (key == "sim-state-dir") {
    c->sim_state_dir = value;
  } else if (key == "state-dir") {
    c->state_dir = value;
  } else if (key == "listen") {
    c->listen.push_back(value);
  } else if (key == "metrics-listen") {
    c->metrics_listen = value;
  } else if (key == "max-call-time") {
    return SetDuration(key, value, &c->max_call_time);
  } else if (key == "shutdown-grace") {
    return SetDuration(key, value, &c->shutdown_grace);
  } else if (key == "buffer-limit-bytes") {
    return SetSize(key, value, kMinBufferLimitBytes, kMaxBufferLimitBytes, &c->buffer_limit_bytes);
  } else if (key == "write-queue-limit-bytes") {
    return SetSize(key, value, kMinWriteQueueLimitBytes, kMaxWriteQueueLimitBytes,
                   &c->write_queue_limit_bytes);
  } else if (key == "max-readers-per-channel") {
    return SetSize(key, value, 1, 1024, &c->max_readers_per_channel);
  } else if (key == "event-retention") {
    return SetSize(key, value, 100, 10000000, &c->event_retention);
  } else if (key == "watch-backlog-events") {
    return SetSize(key, value, 10, 10000000, &c->watch_backlog_events);
  } else if (key == "worker-threads") {
    size_t n;
    absl::Status s = SetSize(key, value, 1, 64, &n);
    if (s.ok()) c->worker_threads = static_cast<int>(n);
    return s;
  } else if (key == "keepalive-time") {
    return SetDuration(key, value, &c->keepalive_time);
  } else if (key == "keepalive-timeout") {
    return SetDuration(key, value, &c->keepalive_timeout);
  } else if (key == "min-client-ping-interval") {
    return SetDuration(key, value, &c->min_client_ping_interval);
  } else if (key == "tls-cert") {
    c->tls_cert = value;
  } else if (key == "tls-key") {
    c->tls_key = value;
  } else if (key == "tls-client-ca") {
    c->tls_client_ca = value;
  } else if (key == "tls-refresh-interval") {
    absl::Status s = SetDuration(key, value, &c->tls_refresh_interval);
    if (s.ok() && c->tls_refresh_interval != absl::ZeroDuration() &&
        (c->tls_refresh_interval < absl::Seconds(1) || c->tls_refresh_interval > absl::Hours(24))) {
      return Bad(key, value, "0 (off) or 1s..24h");
    }
    return s;
  } else if (key == "policy") {
    c->policy = value;
  } else if (key == "audit-log") {
    c->audit_log = value;
  } else if (key == "audit-fsync-interval") {
    return SetDuration(key, value, &c->audit_fsync_interval);
  } else if (key == "memory-budget-bytes") {
    return SetSize(key, value, 1 << 20, size_t{1} << 40, &c->memory_budget_bytes);
  } else if (key == "domain-memory-limit-bytes") {
    return SetSize(key, value, 0, size_t{1} << 40, &c->domain_memory_limit_bytes);
  } else if (key == "channel-memory-reserve-bytes") {
    return SetSize(key, value, 0, 64 << 20, &c->channel_memory_reserve_bytes);
  } else if (key == "quota-streams-per-identity") {
    return SetSize(key, value, 0, 1000000, &c->quota_streams_per_identity);
  } else if (key == "quota-streams-per-domain") {
    return SetSize(key, value, 0, 1000000, &c->quota_streams_per_domain);
  } else if (key == "quota-observers-per-channel") {
    return SetSize(key, value, 0, 1024, &c->quota_observers_per_channel);
  } else if (key == "quota-bytes-per-second") {
    return SetSize(key, value, 0, size_t{1} << 40, &c->quota_bytes_per_second);
  } else if (key == "quota-queued-bytes") {
    return SetSize(key, value, 0, size_t{1} << 40, &c->quota_queued_bytes);
  } else if (key == "fleet-etcd") {
    c->fleet_etcd = absl::StrSplit(value, ',', absl::SkipEmpty());
    if (c->fleet_etcd.empty()) return Bad(key, value, "no endpoint");
  } else if (key == "fleet-etcd-ca") {
    c->fleet_etcd_ca = value;
  } else if (key == "fleet-etcd-cert") {
    c->fleet_etcd_cert = value;
  } else if (key == "fleet-etcd-key") {
    c->fleet_etcd_key = value;
  } else if (key == "fleet-prefix") {
    c->fleet_prefix = value;
  } else if (key == "fleet-host-id") {
    c->fleet_host_id = value;
  } else if (key == "fleet-advertise") {
    c->fleet_advertise = value;
  } else if (key == "fleet-identity") {
    c->fleet_identity = value;
  } else if (key == "fleet-lease-ttl") {
    absl::Status s = SetDuration(key, value, &c->fleet_lease_ttl);
    if (s.ok() && (c->fleet_lease_ttl < absl::Seconds(2) || c->fleet_lease_ttl > absl::Hours(1))) {
      return Bad(key, value, "2s..1h");
    }
    return s;
  } else if (key == "fleet-timeout") {
    absl::Status s = SetDuration(key, value, &c->fleet_timeout);
    if (s.ok() &&
        (c->fleet_timeout < absl::Milliseconds(100) || c->fleet_timeout > absl::Minutes(1))) {
      return Bad(key, value, "100ms..1m");
    }
    return s;
  } else if (key == "fleet-moved-retention") {
    absl::Status s = SetDuration(key, value, &c->fleet_moved_retention);
    if (s.ok() && (c->fleet_moved_retention < absl::Seconds(1) ||
                   c->fleet_moved_retention > absl::Hours(24))) {
      return Bad(key, value, "1s..24h");
    }
    return s;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown setting '", key, "'"));
  }
  return absl::OkStatus();
}

absl::Status ApplyConfigText(ServerConfig* config, const std::string& text) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++n;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("line ", n, ": expected key = value"));
    }
    const std::string key(absl::StripAsciiWhitespace(line.substr(0, eq)));
    const std::string value(absl::StripAsciiWhitespace(line.substr(eq + 1)));
    absl::Status s = ApplySetting(config, key, value);
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("line ", n, ": ", s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<ServerConfig> ParseCommandLine(int argc, char** argv) {
  std::vector<std::pair<std::string, std::string>> flags;
  std::string config_file;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (!absl::StartsWith(arg, "--") || arg.size() == 2) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "'"));
    }
    arg = arg.substr(2);
    std::string key, value;
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      key = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else {
      key = arg;
      if (i + 1 >= argc)
        return absl::InvalidArgumentError(absl::StrCat("--", key, " needs a value"));
      value = argv[++i];
    }
    if (key == "config") {
      config_file = value;
    } else {
      flags.emplace_back(key, value);
    }
  }
  ServerConfig config;
  if (!config_file.empty()) {
    std::ifstream in(config_file);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file ", config_file));
    std::stringstream text;
    text << in.rdbuf();
    absl::Status s = ApplyConfigText(&config, text.str());
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(config_file, ": ", s.message()));
  }
  bool listen_flag = false;
  for (const auto& [key, value] : flags) {
    if (key == "listen" && !listen_flag) {
      config.listen.clear();
      listen_flag = true;
    }
    absl::Status s = ApplySetting(&config, key, value);
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("--", s.message()));
  }
  if (config.listen.empty()) config.listen.push_back(kDefaultListen);
  return config;
}

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& target) {
  ListenAddress a;
  if (absl::StartsWith(target, "unix:")) {
    a.unix = true;
    std::string path = target.substr(5);
    if (absl::StartsWith(path, "//")) path = path.substr(2);
    if (path.empty() || path[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("listen '", target, "': a Unix socket needs an absolute path"));
    }
    if (path.size() > 100) {
      return absl::InvalidArgumentError(absl::StrCat("listen '", target, "': path too long"));
    }
    a.path = path;
    a.target = "unix:" + path;
    return a;
  }
  std::string address = target;
  if (absl::StartsWith(address, "insecure-tcp://")) {
    a.insecure = true;
    address = address.substr(15);
  } else if (absl::StartsWith(address, "tls://")) {
    address = address.substr(6);
  }
  std::string host;
  std::string port;
  if (absl::StartsWith(address, "[")) {
    const size_t close = address.find("]:");
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("listen '", target, "': expected [HOST]:PORT"));
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos || address.find(':') != colon) {
      return absl::InvalidArgumentError(
          absl::StrCat("listen '", target,
                       "': expected unix:///path, HOST:PORT, [HOST]:PORT, tls://HOST:PORT or "
                       "insecure-tcp://HOST:PORT"));
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  if (host.empty() || !absl::SimpleAtoi(port, &a.port) || a.port < 0 || a.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("listen '", target, "': bad host or port"));
  }
  if (a.insecure && !IsLoopback(host)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen '", target,
        "': plaintext TCP is allowed on loopback addresses only (127.0.0.0/8, ::1, localhost); "
        "use mutual TLS (HOST:PORT with tls-cert, tls-key and tls-client-ca) or a Unix socket"));
  }
  a.host = host;
  const bool v6 = host.find(':') != std::string::npos;
  a.target = absl::StrCat(v6 ? "[" : "", host, v6 ? "]" : "", ":", port);
  return a;
}

std::string StateDir(const ServerConfig& config) {
  if (!config.state_dir.empty()) return config.state_dir;
  if (config.platform == "sim" && !config.sim_state_dir.empty()) {
    return config.sim_state_dir + "/xenchand";
  }
  return kDefaultStateDir;
}

absl::Status Validate(const ServerConfig& config) {
  if (config.platform == "sim" && config.sim_state_dir.empty()) {
    return absl::InvalidArgumentError("--platform=sim needs --sim-state-dir=DIR");
  }
  if (config.platform == "xen" && !config.sim_state_dir.empty()) {
    return absl::InvalidArgumentError("--sim-state-dir is only for --platform=sim");
  }
  const int tls_keys =
      !config.tls_cert.empty() + !config.tls_key.empty() + !config.tls_client_ca.empty();
  if (tls_keys != 0 && tls_keys != 3) {
    return absl::InvalidArgumentError(
        "tls-cert, tls-key and tls-client-ca go together (mutual TLS needs all three)");
  }
  for (const std::string& l : config.listen) {
    auto a = ParseListenAddress(l);
    if (!a.ok()) return a.status();
    if (!a->unix && !a->insecure && tls_keys != 3) {
      return absl::InvalidArgumentError(absl::StrCat(
          "listen '", l,
          "': a TCP listener uses mutual TLS and needs tls-cert, tls-key and tls-client-ca; "
          "for plaintext on loopback say insecure-tcp://127.0.0.1:PORT"));
    }
  }
  if (!config.metrics_listen.empty()) {
    auto a = ParseListenAddress(config.metrics_listen);
    if (!a.ok() || a->unix || a->insecure || !IsLoopback(a->host)) {
      return absl::InvalidArgumentError(absl::StrCat("metrics-listen '", config.metrics_listen,
                                                     "': expected a loopback HOST:PORT"));
    }
  }
  return absl::OkStatus();
}

std::string Usage() {
  return R"(xenchand: the xenchan gRPC server (one per Xen host).

Usage: xenchand [--config FILE] [--key=value ...]

  --config FILE              read settings from FILE (key = value lines; see
                             deploy/xenchand.conf); flags override it
  --platform xen|sim         real Xen host, or a running xensim (default xen)
  --sim-state-dir DIR        state directory of `xensim serve` (platform sim)
  --state-dir DIR            xenchand's state: durable channel declarations
                             (default /var/lib/xenchan; sim: SIM-STATE-DIR/xenchand)
  --listen TARGET            gRPC listener; repeatable (PORT 0: any free port):
                               unix:///path      Unix socket, callers known
                                                 by uid/gid (SO_PEERCRED)
                               HOST:PORT, [HOST]:PORT, tls://HOST:PORT
                                                 mutual TLS (--tls-*)
                               insecure-tcp://127.0.0.1:PORT
                                                 plaintext, loopback only,
                                                 callers unauthenticated
                             Default unix:///run/xenchan/xenchand.sock
  --tls-cert FILE            PEM server certificate chain (TLS listeners)
  --tls-key FILE             PEM server private key
  --tls-client-ca FILE       PEM CA(s) client certificates must chain to
  --tls-refresh-interval D   re-read the TLS files this often (renewed
                             certificates without a restart); 0 = once (0s)
  --policy FILE              authorization policy (deploy/policy.example);
                             reloaded on SIGHUP and when the file changes.
                             Default: every verb for uid 0 and xenchand's
                             own uid on the Unix socket, nothing else
  --audit-log FILE           append-only audit log (JSON lines); off if unset;
                             reopened on SIGHUP (log rotation)
  --audit-fsync-interval D   longest time an audit line stays unsynced (1s)
  --metrics-listen HOST:PORT Prometheus /metrics (loopback); off by default
  --max-call-time D          longest Call without a deadline (60s)
  --shutdown-grace D         time given to streams at SIGTERM (5s)
  --buffer-limit-bytes N     default guest-to-host buffer per channel (1048576)
  --write-queue-limit-bytes N default host-to-guest queue per channel (262144)
  --max-readers-per-channel N reading streams per channel (16)
  --event-retention N        lifecycle events kept for resuming watches (10000)
  --watch-backlog-events N   a watcher this many events behind ends with
                             RESOURCE_EXHAUSTED SLOW_CONSUMER (5000)
  --worker-threads N         stream worker threads (2)
  --keepalive-time D         server keepalive ping interval (60s)
  --keepalive-timeout D      keepalive ack timeout (20s)
  --min-client-ping-interval D  how often clients may ping (30s)
  --memory-budget-bytes N    all buffered bytes of the server together, never
                             exceeded (268435456)
  --domain-memory-limit-bytes N  buffered bytes of one guest's channels
                             (67108864; 0: only the global budget)
  --channel-memory-reserve-bytes N  reserved per channel at creation (65536)
  --quota-streams-per-identity N  open streams and Calls per caller (4096)
  --quota-streams-per-domain N   open streams and Calls per domain (16384)
  --quota-observers-per-channel N  reading streams per caller per channel
                             (0: only --max-readers-per-channel applies)
  --quota-bytes-per-second N  bytes a caller sends to guests per second,
                             one second's worth banked (33554432); writes
                             beyond it are refused. Bytes it reads from
                             guests have a bucket of their own at the same
                             rate and are paced, not refused: its streams
                             wait until the bucket is out of debt
  --quota-queued-bytes N     a caller's Write bytes accepted and not yet
                             delivered to guests, over its streams (8388608)
  Quotas answer RESOURCE_EXHAUSTED QUOTA_EXCEEDED; 0 turns one off.

Fleet (docs/FLEET.md; off unless --fleet-etcd is given):
  --fleet-etcd URLS          etcd endpoints, comma-separated: unix:///PATH,
                             http://HOST:PORT or https://HOST:PORT
  --fleet-etcd-ca FILE       the CA of the etcd members' certificates (https)
  --fleet-etcd-cert FILE     our client certificate for etcd, and its key:
  --fleet-etcd-key FILE      production etcd clusters require them
  --fleet-prefix PREFIX      where in etcd this fleet lives (/xenchan/v1/)
  --fleet-host-id ID         this host's id ([a-z0-9-], at most 63; default:
                             the hostname, lower-cased)
  --fleet-advertise ADDR     the API address clients of other hosts should
                             use (default: the first TCP --listen address,
                             else the first one)
  --fleet-identity NAME      the name clients of other hosts check in this
                             host's server certificate (default: its first
                             DNS SAN, from --tls-cert; none without TLS)
  --fleet-lease-ttl DUR      the host's etcd lease; its records go this long
                             after a crash (10s; 2s..1h)
  --fleet-timeout DUR        every etcd call's deadline (2s); etcd never
                             blocks serving: when it is away the fleet is
                             reported degraded and re-synced later
  --fleet-moved-retention DUR
                             how long a channel whose domain moved to
                             another host stays readable here (10m; 1s..24h)

Logs are key=value lines on stderr; `msg=listening address=...` names every
bound address (with the chosen port), `msg=ready` follows once serving.
SIGTERM/SIGINT shut down gracefully: streams end with UNAVAILABLE, channels
stay recoverable by the next start. SIGHUP re-reads the policy file (a bad
file is refused and the old policy stays) and reopens the audit log.
)";
}

}  // namespace server
}  // namespace xenchan
