// See fleet.h.
#include "server/fleet/fleet.h"

#include <unistd.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "server/convert.h"
#include "server/fleet/records.h"
#include "server/log.h"
#include "server/version.h"

namespace xenchan {
namespace fleet {
namespace {

class EngineView : public LocalView {
 public:
  explicit EngineView(Engine* engine) : engine_(engine) {}

  std::vector<v1::DomainRecord> Domains() override {
    std::vector<v1::DomainRecord> out;
    for (const DomainInfo& d : engine_->ListDomains()) {
      if (d.uuid.empty() || d.state == DomainState::kNotRunning) continue;
      v1::DomainRecord r;
      r.set_uuid(d.uuid);
      r.set_domid(d.domid);
      r.set_name(d.name);
      r.set_state(server::ToProto(d.state));
      out.push_back(std::move(r));
    }
    return out;
  }

  std::vector<v1::DeclarationRecord> Declarations() override {
    std::vector<v1::DeclarationRecord> out;
    for (const ChannelInfo& c : engine_->ListChannels()) {
      if (c.config.lifetime != ChannelLifetime::kDurable || c.domain_uuid.empty()) continue;
      v1::DeclarationRecord r;
      r.set_domain_uuid(c.domain_uuid);
      r.set_channel_id(c.channel_id);
      r.set_uid(c.uid);
      server::ToProto(c.config, r.mutable_config());
      r.set_last_devid(c.devid);
      r.set_domain_name(c.domain_name);
      out.push_back(std::move(r));
    }
    return out;
  }

 private:
  Engine* const engine_;
};

std::string DefaultHostId() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "";
  std::string id = absl::AsciiStrToLower(name);
  const size_t dot = id.find('.');
  if (dot != std::string::npos) id.resize(dot);
  return id;
}

// The first TCP address, else the first.
std::string DefaultAdvertise(const std::vector<std::string>& addresses) {
  for (const std::string& a : addresses) {
    if (!absl::StartsWith(a, "unix://")) return a;
  }
  return addresses.empty() ? "" : addresses[0];
}

}  // namespace

std::unique_ptr<LocalView> NewEngineView(Engine* engine) {
  return std::make_unique<EngineView>(engine);
}

absl::StatusOr<std::unique_ptr<Fleet>> Fleet::Start(
    const server::ServerConfig& config, Engine* engine, const std::vector<std::string>& addresses,
    std::function<void(bool)> on_connection_change) {
  if (absl::Status s = ValidatePrefix(config.fleet_prefix); !s.ok()) return s;
  const std::string host_id = config.fleet_host_id.empty() ? DefaultHostId() : config.fleet_host_id;
  if (absl::Status s = ValidateHostId(host_id); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        s.message(),
        config.fleet_host_id.empty() ? " (from the hostname: set --fleet-host-id)" : ""));
  }
  etcd::ClientOptions options;
  options.endpoints = config.fleet_etcd;
  options.ca_file = config.fleet_etcd_ca;
  options.cert_file = config.fleet_etcd_cert;
  options.key_file = config.fleet_etcd_key;
  options.rpc_timeout = config.fleet_timeout;
  auto client = etcd::Client::Create(options);
  if (!client.ok()) return client.status();
  std::unique_ptr<Fleet> fleet(new Fleet());
  fleet->etcd_ = std::shared_ptr<etcd::Client>(*std::move(client));
  fleet->host_id_ = host_id;
  PublisherOptions p;
  p.prefix = config.fleet_prefix;
  p.host.set_host_id(host_id);
  p.host.set_api_address(config.fleet_advertise.empty() ? DefaultAdvertise(addresses)
                                                        : config.fleet_advertise);
  p.host.set_xenchan_version(kXenchanVersion);
  p.host.set_started_at_unix_ms(absl::ToUnixMillis(absl::Now()));
  p.lease_ttl = config.fleet_lease_ttl;
  p.on_connection_change = std::move(on_connection_change);
  fleet->publisher_ =
      std::make_unique<Publisher>(fleet->etcd_, std::move(p), NewEngineView(engine));
  fleet->publisher_->Start();
  server::Log("info", "fleet",
              {{"host", host_id},
               {"etcd", absl::StrJoin(config.fleet_etcd, ",")},
               {"prefix", config.fleet_prefix}});
  return fleet;
}

Fleet::~Fleet() { Stop(false); }

void Fleet::Stop(bool graceful) {
  if (publisher_ != nullptr) publisher_->Stop(graceful);
}

}  // namespace fleet
}  // namespace xenchan
