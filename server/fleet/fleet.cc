// See fleet.h.
#include "server/fleet/fleet.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "server/convert.h"
#include "server/fleet/records.h"
#include "server/log.h"
#include "server/tls_identity.h"
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

  // Every channel change is an event with a revision (UpdateChannel's too);
  // the domains' fields are hashed, since a domain without channels changes
  // without an event. ListDomains is a copy of a few small structs.
  uint64_t Generation() override {
    size_t h = absl::HashOf(engine_->revision());
    for (const DomainInfo& d : engine_->ListDomains()) {
      h = absl::HashOf(h, d.uuid, d.domid, d.name, static_cast<int>(d.state));
    }
    return h;
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

// A name a client can expect in a TLS handshake: a DNS name.
bool IsDnsName(absl::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (char c : name) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-' && c != '.') return false;
  }
  return name.front() != '.' && name.front() != '-';
}

}  // namespace

absl::StatusOr<std::string> AdvertisedIdentity(const server::ServerConfig& config) {
  if (!config.fleet_identity.empty()) {
    if (!IsDnsName(config.fleet_identity)) {
      return absl::InvalidArgumentError(
          absl::StrCat("fleet-identity '", config.fleet_identity,
                       "': expected a lower-case DNS name, the one in this host's certificate"));
    }
    return config.fleet_identity;
  }
  if (config.tls_cert.empty()) return std::string();
  std::ifstream in(config.tls_cert);
  std::stringstream pem;
  pem << in.rdbuf();
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read tls-cert ", config.tls_cert));
  auto identity = server::IdentityFromCertificatePem(pem.str());
  if (!identity.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls-cert ", config.tls_cert, ": ", identity.status().message()));
  }
  for (const server::policy::Principal& p : identity->principals) {
    if (p.kind == server::policy::Principal::Kind::kDns && IsDnsName(p.value)) return p.value;
  }
  return std::string();  // no DNS SAN: clients check the address they dial
}

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
  auto identity = AdvertisedIdentity(config);
  if (!identity.ok()) return identity.status();
  fleet->identity_ = *std::move(identity);
  AdopterOptions adopter;
  adopter.prefix = config.fleet_prefix;
  adopter.defaults.buffer_limit_bytes = config.buffer_limit_bytes;
  adopter.defaults.write_queue_limit_bytes = config.write_queue_limit_bytes;
  adopter.host_id = host_id;
  fleet->adopter_ = std::make_shared<Adopter>(fleet->etcd_, std::move(adopter));
  DeparturesOptions departures;
  departures.prefix = config.fleet_prefix;
  departures.host_id = host_id;
  fleet->departures_ = std::make_unique<Departures>(fleet->etcd_, departures);
  return fleet;
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
  p.host.set_identity(identity_);
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
