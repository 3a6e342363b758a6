// Fleet: xenchand's membership in a fleet (docs/FLEET.md), built from its
// --fleet-* settings: the etcd client, the publisher (with the view of the
// engine it publishes), the adopter of arriving domains' channels, and the
// departures that let go of channels whose domain moved to another host.
// Created before the engine (which calls ArrivalHandler), started after the
// gRPC server is listening (the host record carries the bound address),
// stopped before the engine goes.
//
// Thread safety: Stop and connected() may be called from any thread.
#ifndef XENCHAN_SERVER_FLEET_FLEET_H_
#define XENCHAN_SERVER_FLEET_FLEET_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backend/engine/engine.h"
#include "server/config.h"
#include "server/etcd/client.h"
#include "server/fleet/adopter.h"
#include "server/fleet/departures.h"
#include "server/fleet/publisher.h"
#include "server/fleet/reader.h"

namespace xenchan {
namespace fleet {

// The certificate identity this host advertises in its record:
// config.fleet_identity if set (a DNS name, else INVALID_ARGUMENT), else the
// first DNS SAN of config.tls_cert, else "" (no TLS, or no DNS SAN).
absl::StatusOr<std::string> AdvertisedIdentity(const server::ServerConfig& config);

class Fleet {
 public:
  // Checks the settings and makes the etcd client (before the engine, which
  // takes ArrivalHandler). INVALID_ARGUMENT for bad settings (host id,
  // prefix, endpoints, TLS files). etcd being down is not an error: the
  // fleet starts degraded.
  static absl::StatusOr<std::unique_ptr<Fleet>> Create(const server::ServerConfig& config);
  ~Fleet();

  // For EngineOptions::on_domain_arrival: hands arrivals to the adopter
  // (declined until Start).
  std::function<bool(uint32_t, const std::string&)> ArrivalHandler();

  // Joins: publishes `engine` (which outlives this object) and adopts
  // arriving domains' channels. `addresses`: the server's bound listen
  // addresses (for the default advertised address).
  // `on_connection_change(connected)` runs on the publisher's thread when
  // etcd is reached or lost. `reader` (FleetService's, which outlives
  // Stop) tells the engine which domains run on other hosts now.
  void Start(Engine* engine, const std::vector<std::string>& addresses,
             std::function<void(bool)> on_connection_change, FleetReader* reader);
  // Leaves the fleet: `graceful` revokes the host's lease.
  void Stop(bool graceful);

  PublisherStats stats() const;
  const std::shared_ptr<etcd::Client>& etcd() const { return etcd_; }
  const std::string& host_id() const { return host_id_; }

 private:
  Fleet() = default;
  server::ServerConfig config_;
  std::shared_ptr<etcd::Client> etcd_;
  std::shared_ptr<Adopter> adopter_;
  std::unique_ptr<Publisher> publisher_;
  std::unique_ptr<Departures> departures_;
  std::string host_id_;
  std::string identity_;  // advertised in the host record ("" for none)
};

// The engine as the publisher sees it: running domains with a UUID, and
// durable channels. Never blocks (the engine's registry lock only).
std::unique_ptr<LocalView> NewEngineView(Engine* engine);

}  // namespace fleet
}  // namespace xenchan

#endif  // XENCHAN_SERVER_FLEET_FLEET_H_
