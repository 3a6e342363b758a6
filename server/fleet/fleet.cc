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

  // A channel DOMAIN_DOWN without being durable is a copy this host let go
  // because its domain moved (engine_moved.cc): no other channel waits for
  // a domain that is not running here.
  std::vector<std::pair<std::string, std::string>> MovedAway() override {
    std::vector<std::pair<std::string, std::string>> out;
    for (const ChannelInfo& c : engine_->ListChannels()) {
      if (c.state != ChannelState::kDomainDown || c.domain_uuid.empty() ||
          c.config.lifetime == ChannelLifetime::kDurable) {
        continue;
      }
      out.emplace_back(c.domain_uuid, c.channel_id);
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

absl::StatusOr<std::unique_ptr<Fleet>> Fleet::Create(const server::ServerConfig& config) {
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
  fleet->config_ = config;
  fleet->etcd_ = std::shared_ptr<etcd::Client>(*std::move(client));
  fleet->host_id_ = host_id;
  ChannelConfig defaults;
  defaults.buffer_limit_bytes = config.buffer_limit_bytes;
  defaults.write_queue_limit_bytes = config.write_queue_limit_bytes;
  fleet->adopter_ = std::make_shared<Adopter>(fleet->etcd_, config.fleet_prefix, defaults);
  fleet->departures_ = std::make_unique<Departures>(host_id);
  return fleet;
}

std::function<std::string(const std::string&)> Fleet::ElsewhereLookup() const {
  return departures_->Lookup();
}

std::function<bool(uint32_t, const std::string&)> Fleet::ArrivalHandler() {
  std::shared_ptr<Adopter> adopter = adopter_;
  return [adopter](uint32_t domid, const std::string& uuid) { return adopter->Offer(domid, uuid); };
}

void Fleet::Start(Engine* engine, const std::vector<std::string>& addresses,
                  std::function<void(bool)> on_connection_change, FleetReader* reader) {
  PublisherOptions p;
  p.prefix = config_.fleet_prefix;
  p.host.set_host_id(host_id_);
  p.host.set_api_address(config_.fleet_advertise.empty() ? DefaultAdvertise(addresses)
                                                         : config_.fleet_advertise);
  p.host.set_xenchan_version(kXenchanVersion);
  p.host.set_started_at_unix_ms(absl::ToUnixMillis(absl::Now()));
  p.lease_ttl = config_.fleet_lease_ttl;
  p.on_connection_change = std::move(on_connection_change);
  publisher_ = std::make_unique<Publisher>(etcd_, std::move(p), NewEngineView(engine));
  publisher_->Start();
  adopter_->Start(engine);
  departures_->Start(engine, reader);
  server::Log("info", "fleet",
              {{"host", host_id_},
               {"etcd", absl::StrJoin(config_.fleet_etcd, ",")},
               {"prefix", config_.fleet_prefix}});
}

PublisherStats Fleet::stats() const {
  return publisher_ != nullptr ? publisher_->stats() : PublisherStats{};
}

Fleet::~Fleet() { Stop(false); }

void Fleet::Stop(bool graceful) {
  adopter_->Stop();
  departures_->Stop();
  if (publisher_ != nullptr) publisher_->Stop(graceful);
}

}  // namespace fleet
}  // namespace xenchan
