// FleetService: the xenchan.v1.FleetService gRPC service (proto/xenchan/v1/
// fleet_service.proto), a thin adapter over a FleetReader (server/fleet/
// reader.h) that follows the fleet's records in etcd: ListHosts and
// LocateDomain answer inline from the reader's view (fleet_queries.h: no
// etcd call, so never a wait on etcd), WatchFleet streams through
// FleetWatchLogic (fleet_watch_logic.h) in a small reactor here. Errors are
// API errors (server/status.h), converted to the wire once, at the end of
// each call.
//
// Without an etcd client (xenchand started without --fleet-etcd) every call
// answers FAILED_PRECONDITION (FLEET_NOT_CONFIGURED).
//
// xenchand does not forward calls for domains other hosts run: clients
// resolve with LocateDomain and talk to the owning host directly
// (docs/FLEET.md, "Clients talk to the owning host", says why).
//
// Ownership: owns the reader (and its thread); shares the etcd client.
// Streams hold the service's shared state, so the service may go before the
// last stream's OnDone. Thread safety: all methods may be called from any
// thread.
#ifndef XENCHAN_SERVER_FLEET_SERVICE_H_
#define XENCHAN_SERVER_FLEET_SERVICE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/authorizer.h"
#include "server/etcd/client.h"
#include "server/fleet/reader.h"
#include "xenchan/v1/fleet_service.grpc.pb.h"

namespace xenchan {
namespace server {

struct FleetServiceState;  // shared with the streams

class FleetService final : public v1::FleetService::CallbackService {
 public:
  // Reads the fleet under `prefix` through `etcd` (null: not part of a
  // fleet). `access` as for ChannelService. INVALID_ARGUMENT for a bad
  // prefix. etcd being down is not an error: calls answer UNAVAILABLE
  // (FLEET_UNAVAILABLE) until the fleet was read once.
  static absl::StatusOr<std::unique_ptr<FleetService>> Create(
      std::shared_ptr<etcd::Client> etcd, std::string prefix, AccessControl access,
      fleet::FleetReaderOptions options = {});
  ~FleetService() override;

  // Ends every open WatchFleet with UNAVAILABLE (SHUTTING_DOWN); later calls
  // are refused the same way. Does not wait. Idempotent.
  void BeginShutdown();

  // The reader; null when not part of a fleet. For tests.
  const fleet::FleetReader* reader() const;
  // The same, for xenchand's fleet membership (departures.h) to follow.
  fleet::FleetReader* reader();

  grpc::ServerUnaryReactor* ListHosts(grpc::CallbackServerContext* context,
                                      const v1::ListHostsRequest* request,
                                      v1::ListHostsResponse* response) override;
  grpc::ServerUnaryReactor* LocateDomain(grpc::CallbackServerContext* context,
                                         const v1::LocateDomainRequest* request,
                                         v1::LocateDomainResponse* response) override;
  grpc::ServerWriteReactor<v1::WatchFleetResponse>* WatchFleet(
      grpc::CallbackServerContext* context, const v1::WatchFleetRequest* request) override;

 private:
  explicit FleetService(std::shared_ptr<FleetServiceState> state);
  std::shared_ptr<FleetServiceState> state_;
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_FLEET_SERVICE_H_
