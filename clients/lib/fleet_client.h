// FleetClient: the fleet half of the C++ client library, over the generated
// xenchan.v1.FleetService stub. Any xenchand of a fleet answers where a
// domain runs (LocateDomain); the client then talks to that host directly,
// with the same TLS options, checking the host's advertised certificate
// identity (docs/FLEET.md, "Clients talk to the owning host"). xenchanctl
// --fleet is built on it.
//
// Errors are absl::Status with the server's google.rpc.Status attached, as
// Client's (ReasonOf, DetailOf in client.h).
//
// Thread safety: a FleetClient may be used from several threads at once.
#ifndef XENCHAN_CLIENTS_LIB_FLEET_CLIENT_H_
#define XENCHAN_CLIENTS_LIB_FLEET_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "clients/lib/client.h"
#include "grpcpp/grpcpp.h"
#include "xenchan/v1/fleet_service.grpc.pb.h"

namespace xenchan {
namespace client {

// Where a domain runs.
struct DomainLocation {
  v1::FleetDomain domain;
  v1::Host host;
  int64_t revision = 0;  // the etcd revision the answer reflects (a WatchFleet start)
};

// A domain's location and a connection to its host.
struct ResolvedDomain {
  DomainLocation location;
  std::unique_ptr<Client> client;
};

class FleetClient {
 public:
  // A fleet client through the xenchand at `target` (any host of the
  // fleet), with `options` for it and for the hosts it leads to.
  // INVALID_ARGUMENT / NOT_FOUND as MakeChannel.
  static absl::StatusOr<std::unique_ptr<FleetClient>> Connect(const std::string& target,
                                                              ConnectOptions options = {});

  v1::FleetService::Stub& stub() { return *stub_; }

  // Every host (all pages).
  absl::StatusOr<std::vector<v1::Host>> ListHosts();
  // Where `domain` runs: a name, a UUID or `domains/...`. NOT_FOUND
  // (DOMAIN_NOT_FOUND), FAILED_PRECONDITION (DOMAIN_NAME_AMBIGUOUS),
  // UNAVAILABLE (HOST_NOT_REGISTERED) as the server says.
  absl::StatusOr<DomainLocation> LocateDomain(const std::string& domain);
  // A connection to `host`'s xenchand at its API address, with this
  // client's options; over TLS the host's identity is the name checked in
  // its certificate (unless it advertises none).
  absl::StatusOr<std::unique_ptr<Client>> ConnectToHost(const v1::Host& host) const;
  // LocateDomain, then ConnectToHost.
  absl::StatusOr<ResolvedDomain> ResolveDomain(const std::string& domain);

  // WatchFleet: `on_message` runs for every message; returning false cancels
  // the stream (the result is then OK). `context` may be given to cancel
  // from another thread; it must be fresh.
  absl::Status WatchFleet(const v1::WatchFleetRequest& request,
                          const std::function<bool(const v1::WatchFleetResponse&)>& on_message,
                          grpc::ClientContext* context = nullptr);

 private:
  FleetClient(std::shared_ptr<grpc::Channel> channel, ConnectOptions options);
  void Prepare(grpc::ClientContext* context) const;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::FleetService::Stub> stub_;
  ConnectOptions options_;
};

}  // namespace client
}  // namespace xenchan

#endif  // XENCHAN_CLIENTS_LIB_FLEET_CLIENT_H_
