// The unary queries of ChannelService (ListDomains, GetDomain, ListChannels,
// GetChannel) as plain functions over an EngineView: validate the request,
// authorize the caller, answer from the engine's state. Engine queries only
// take short locks, so the service answers these inline on gRPC's thread.
// No gRPC here: tests call them with a fixed view and policy.
//
// Lists are sorted by domain UUID (then channel id), paged with opaque page
// tokens (server/resource_names.h), and show only what the caller may see:
// domains where it holds any verb, channels it may read.
//
// Thread safety: as thread-safe as the view and the authorizer (both are).
#ifndef XENCHAN_SERVER_QUERIES_H_
#define XENCHAN_SERVER_QUERIES_H_

#include "absl/status/status.h"
#include "backend/engine/types.h"
#include "server/authorizer.h"
#include "server/engine_errors.h"
#include "server/engine_view.h"
#include "server/identity.h"
#include "xenchan/v1/channel_service.pb.h"

namespace xenchan {
namespace server {

// What the queries consult; all must outlive the call.
struct QueryContext {
  const EngineView* engine = nullptr;
  const Authorizer* authz = nullptr;
  const EngineErrors* errors = nullptr;
};

// Each returns OK with the response filled in, or the API error
// (INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND) as the
// proto documents for the method.
absl::Status ListDomains(const QueryContext& q, const Identity& id,
                         const v1::ListDomainsRequest& request, v1::ListDomainsResponse* response);
absl::Status GetDomain(const QueryContext& q, const Identity& id,
                       const v1::GetDomainRequest& request, v1::GetDomainResponse* response);
absl::Status ListChannels(const QueryContext& q, const Identity& id,
                          const v1::ListChannelsRequest& request,
                          v1::ListChannelsResponse* response);
absl::Status GetChannel(const QueryContext& q, const Identity& id,
                        const v1::GetChannelRequest& request, v1::GetChannelResponse* response);

// Whether channel `c` passes a list or watch filter (id prefix, transports).
bool MatchesFilter(const ChannelInfo& c, const v1::ChannelFilter& filter);

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_QUERIES_H_
