// FleetService's unary queries (ListHosts, LocateDomain) as plain functions
// over a FleetReader's view, and what FleetService's calls share: who may
// see what (FleetAccess: this xenchand's policy and audit log, as
// ChannelService applies them), the records as API messages, and the
// fleet's own errors. No gRPC here: tests call these with a reader over a
// real etcd and a fixed policy.
//
// Verbs (proto/xenchan/v1/fleet_service.proto): seeing a domain needs any
// verb on it (as ListDomains/GetDomain), checked on the domain as the
// fleet's record names it (UUID and name), or, for a domain no host runs, on
// the name as given; hosts need an authenticated caller. Every decision
// goes to the audit log, under "/xenchan.v1.FleetService/<method>".
//
// Thread safety: thread-safe (the reader, the policy function and the audit
// log are).
#ifndef XENCHAN_SERVER_FLEET_QUERIES_H_
#define XENCHAN_SERVER_FLEET_QUERIES_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/authorizer.h"
#include "server/fleet/fleet_view.h"
#include "server/fleet/reader.h"
#include "server/identity.h"
#include "server/policy/policy.h"
#include "xenchan/v1/fleet_service.pb.h"

namespace xenchan {
namespace server {

// Authorization and audit of FleetService calls.
class FleetAccess {
 public:
  // `access` as for ChannelService (authenticator and policy required).
  explicit FleetAccess(AccessControl access) : access_(std::move(access)) {}

  Identity Authenticate(const grpc::CallbackServerContext& context) const {
    return access_.authenticator->Authenticate(context);
  }
  std::shared_ptr<const policy::Policy> Policy() const { return access_.policy(); }

  // "/xenchan.v1.FleetService/<method>".
  static std::string FullMethod(absl::string_view method);
  // UNAUTHENTICATED for a caller without principals (recorded).
  absl::Status RequireAuthenticated(const Identity& id, absl::string_view method,
                                    absl::string_view resource) const;
  // Records a listing filtered by the policy (after RequireAuthenticated).
  absl::Status AuthorizeListing(const Identity& id, absl::string_view method,
                                absl::string_view resource) const;
  // Checks that `id` holds some verb on `domain`; records the decision.
  // PERMISSION_DENIED (verb "any") names `resource`.
  absl::Status AuthorizeDomain(const Identity& id, absl::string_view method,
                               const policy::DomainRef& domain, const std::string& resource) const;

 private:
  const AccessControl access_;
};

// What FleetService's calls consult; reader null when xenchand is not part
// of a fleet. Both must outlive the call.
struct FleetContext {
  const fleet::FleetReader* reader = nullptr;
  const FleetAccess* access = nullptr;
};

// FAILED_PRECONDITION (FLEET_NOT_CONFIGURED).
absl::Status FleetNotConfigured();
// UNAVAILABLE (FLEET_UNAVAILABLE) with `cause`'s message.
absl::Status FleetUnavailable(const absl::Status& cause);
// UNAVAILABLE (SHUTTING_DOWN).
absl::Status FleetShuttingDown();

// The records as API messages.
v1::Host HostProto(const fleet::HostEntry& host);
v1::FleetDomain DomainProto(const fleet::DomainEntry& domain);

// Whether the policy lets `id` see `domain` (any verb), as lists and watches
// filter.
bool MaySeeDomain(const policy::Policy& policy, const Identity& id,
                  const fleet::DomainEntry& domain);

// Each returns OK with the response filled in, or the API error as the proto
// documents for the method (FLEET_NOT_CONFIGURED without a reader).
absl::Status ListHosts(const FleetContext& f, const Identity& id,
                       const v1::ListHostsRequest& request, v1::ListHostsResponse* response);
absl::Status LocateDomain(const FleetContext& f, const Identity& id,
                          const v1::LocateDomainRequest& request,
                          v1::LocateDomainResponse* response);

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_FLEET_QUERIES_H_
