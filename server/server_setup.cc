// Server set-up helpers (see server_setup.h).
#include "server/server_setup.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/platform/sim/domain_control.h"
#include "backend/platform/sim/event_channels.h"
#include "backend/platform/sim/grant_tables.h"
#include "backend/platform/xen/domain_control.h"
#include "backend/platform/xen/event_channels.h"
#include "backend/platform/xen/grant_tables.h"
#include "backend/platform/xen/lib_xenstore.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "server/log.h"

namespace xenchan {
namespace server {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<EngineOptions> OpenPlatform(const ServerConfig& config) {
  EngineOptions o;
  if (config.platform == "sim") {
    const std::string& dir = config.sim_state_dir;
    auto xs = LibXenStore::Open(dir + "/xenstored.sock");
    if (!xs.ok()) return xs.status();
    auto ev = SimEventChannels::Create(dir + "/hypervisor.sock");
    if (!ev.ok()) return ev.status();
    auto gt = SimGrantTables::Create(dir + "/hypervisor.sock");
    if (!gt.ok()) return gt.status();
    auto dc = SimDomainControl::Create(dir + "/hypervisor.sock");
    if (!dc.ok()) return dc.status();
    o.xenstore = *std::move(xs);
    o.event_channels = *std::move(ev);
    o.grant_tables = *std::move(gt);
    o.domain_control = *std::move(dc);
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
    // Without /dev/xen/privcmd durable channels still work; only a restored
    // guest may resume before its channels exist (engine_hold.cc).
    auto dc = XenDomainControl::Create();
    if (dc.ok()) {
      o.domain_control = *std::move(dc);
    } else {
      Log("warning", "no domain control: returning domains are not held for their channels",
          {{"error", dc.status().ToString()}});
    }
  }
  return o;
}

void ApplyEngineLimits(const ServerConfig& config, EngineOptions* o) {
  o->buffer_limit_bytes = config.buffer_limit_bytes;
  o->write_queue_limit_bytes = config.write_queue_limit_bytes;
  o->max_readers_per_channel = config.max_readers_per_channel;
  o->event_retention = config.event_retention;
  o->memory_budget_bytes = config.memory_budget_bytes;
  o->domain_memory_limit_bytes = config.domain_memory_limit_bytes;
  o->channel_memory_reserve_bytes = config.channel_memory_reserve_bytes;
}

absl::StatusOr<std::unique_ptr<DeclarationStore>> OpenDeclarations(const ServerConfig& config) {
  return DeclarationStore::Open(StateDir(config) + "/declarations.db");
}

ChannelServiceOptions ServiceOptionsFrom(const ServerConfig& config) {
  ChannelServiceOptions o;
  o.max_call_time = config.max_call_time;
  o.worker_threads = config.worker_threads;
  o.max_readers_per_channel = config.max_readers_per_channel;
  o.watch_backlog_events = config.watch_backlog_events;
  o.quota.streams_per_caller = config.quota_streams_per_identity;
  o.quota.streams_per_domain = config.quota_streams_per_domain;
  o.quota.observers_per_channel_per_caller = config.quota_observers_per_channel;
  o.quota.bytes_per_second_per_caller = config.quota_bytes_per_second;
  o.quota.queued_bytes_per_caller = config.quota_queued_bytes;
  return o;
}

absl::StatusOr<policy::Policy> BuiltInPolicy() {
  std::string text = "[identity unix:uid=0]\nallow verbs=* domain=* channel=*\n";
  if (getuid() != 0) {
    absl::StrAppend(&text, "[identity unix:uid=", getuid(),
                    "]\nallow verbs=* domain=* channel=*\n");
  }
  return policy::Policy::Parse(text, "built-in policy");
}

absl::StatusOr<std::unique_ptr<policy::PolicyStore>> OpenPolicyFile(const std::string& path,
                                                                    audit::AuditLog* audit) {
  policy::PolicyStore::Options store_options;
  store_options.path = path;
  store_options.on_reload = [audit, path](const absl::Status& status,
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
  if (!store.ok()) return store.status();
  const auto p = (*store)->Current();
  Log("info", "policy",
      {{"path", path},
       {"sections", absl::StrCat(p->section_count())},
       {"rules", absl::StrCat(p->rule_count())}});
  return store;
}

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

}  // namespace server
}  // namespace xenchan
