// FleetService's queries and shared pieces (see fleet_queries.h).
#include "server/fleet_queries.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backend/util/uuid.h"
#include "google/protobuf/util/time_util.h"
#include "server/fleet/records.h"
#include "server/resource_names.h"
#include "server/status.h"
#include "server/validate.h"

namespace xenchan {
namespace server {

using absl::StatusCode;

std::string FleetAccess::FullMethod(absl::string_view method) {
  return absl::StrCat("/xenchan.v1.FleetService/", method);
}

absl::Status FleetAccess::RequireAuthenticated(const Identity& id, absl::string_view method,
                                               absl::string_view resource) const {
  if (id.authenticated()) return absl::OkStatus();
  if (access_.audit != nullptr) {
    access_.audit->Authorization(
        Authorizer::CallerOf(id), FullMethod(method), resource, "any", false,
        absl::StrCat("unauthenticated ", TransportName(id.transport), " caller"));
  }
  return ApiError(
      StatusCode::kUnauthenticated, v1::ERROR_REASON_UNAUTHENTICATED,
      absl::StrCat("no usable identity on this connection (", TransportName(id.transport),
                   "); use the Unix socket or a TLS client certificate"));
}

absl::Status FleetAccess::AuthorizeListing(const Identity& id, absl::string_view method,
                                           absl::string_view resource) const {
  if (absl::Status s = RequireAuthenticated(id, method, resource); !s.ok()) return s;
  if (access_.audit != nullptr) {
    access_.audit->Authorization(Authorizer::CallerOf(id), FullMethod(method), resource, "any",
                                 true, "listing filtered by the policy");
  }
  return absl::OkStatus();
}

absl::Status FleetAccess::AuthorizeDomain(const Identity& id, absl::string_view method,
                                          const policy::DomainRef& domain,
                                          const std::string& resource) const {
  if (absl::Status s = RequireAuthenticated(id, method, resource); !s.ok()) return s;
  const policy::VerbSet held = Policy()->VerbsOnDomain(id.principals, domain);
  const bool allowed = !held.empty();
  if (access_.audit != nullptr) {
    access_.audit->Authorization(
        Authorizer::CallerOf(id), FullMethod(method), resource, "any", allowed,
        allowed ? absl::StrCat("holds ", held.ToString(), " on some channel of the domain")
                : "no rule grants any verb on any channel of the domain");
  }
  if (allowed) return absl::OkStatus();
  return ApiError(StatusCode::kPermissionDenied, v1::ERROR_REASON_PERMISSION_DENIED,
                  absl::StrCat(id.display(), " may not see ", resource))
      .Metadata("verb", "any")
      .Metadata("domain", resource);
}

absl::Status FleetNotConfigured() {
  return ApiError(StatusCode::kFailedPrecondition, v1::ERROR_REASON_FLEET_NOT_CONFIGURED,
                  "this xenchand is not part of a fleet (started without --fleet-etcd): ask a "
                  "xenchand of the fleet");
}

absl::Status FleetUnavailable(const absl::Status& cause) {
  return ApiError(StatusCode::kUnavailable, v1::ERROR_REASON_FLEET_UNAVAILABLE,
                  absl::StrCat("the fleet is not known yet: ", cause.message()))
      .RetryAfter(absl::Seconds(1));
}

absl::Status FleetShuttingDown() {
  return ApiError(StatusCode::kUnavailable, v1::ERROR_REASON_SHUTTING_DOWN,
                  "xenchand is shutting down")
      .RetryAfter(absl::Seconds(1));
}

v1::Host HostProto(const fleet::HostEntry& host) {
  const fleet::v1::HostRecord& r = host.record;
  v1::Host h;
  h.set_name("hosts/" + r.host_id());
  h.set_host_id(r.host_id());
  h.set_api_address(r.api_address());
  h.set_identity(r.identity());
  h.set_xenchan_version(r.xenchan_version());
  *h.mutable_start_time() =
      google::protobuf::util::TimeUtil::MillisecondsToTimestamp(r.started_at_unix_ms());
  h.set_revision(host.mod_revision);
  return h;
}

v1::FleetDomain DomainProto(const fleet::DomainEntry& domain) {
  const fleet::v1::DomainRecord& r = domain.record;
  v1::FleetDomain d;
  d.set_name(FormatDomainName(r.uuid()));
  d.set_uuid(r.uuid());
  d.set_display_name(r.name());
  d.set_host("hosts/" + r.host_id());
  d.set_domid(r.domid());
  d.set_state(r.state());
  d.set_revision(domain.mod_revision);
  return d;
}

bool MaySeeDomain(const policy::Policy& policy, const Identity& id,
                  const fleet::DomainEntry& domain) {
  return policy.CanSeeDomain(id.principals,
                             policy::DomainRef{domain.record.uuid(), domain.record.name()});
}

absl::Status ListHosts(const FleetContext& f, const Identity& id,
                       const v1::ListHostsRequest& request, v1::ListHostsResponse* response) {
  if (f.reader == nullptr) return FleetNotConfigured();
  auto size = PageSize(request.page_size());
  if (!size.ok()) return size.status();
  std::string after;
  if (!request.page_token().empty()) {
    auto key = DecodePageToken(request.page_token(), "hosts", "page_token");
    if (!key.ok()) return key.status();
    after = *key;
  }
  if (absl::Status s = f.access->AuthorizeListing(id, "ListHosts", "hosts"); !s.ok()) return s;
  absl::Status read = f.reader->Read([&](const fleet::FleetView& view) {
    response->set_revision(view.revision());
    for (auto it = view.hosts().upper_bound(after); it != view.hosts().end(); ++it) {
      if (response->hosts_size() == *size) {
        response->set_next_page_token(
            EncodePageToken("hosts", response->hosts().rbegin()->host_id()));
        break;
      }
      *response->add_hosts() = HostProto(it->second);
    }
  });
  return read.ok() ? read : FleetUnavailable(read);
}

absl::Status LocateDomain(const FleetContext& f, const Identity& id,
                          const v1::LocateDomainRequest& request,
                          v1::LocateDomainResponse* response) {
  constexpr absl::string_view kMethod = "LocateDomain";
  if (f.reader == nullptr) return FleetNotConfigured();
  auto name = ParseDomainName(request.name(), "name", /*allow_all=*/false);
  if (!name.ok()) return name.status();
  const std::optional<std::string> uuid = CanonicalUuid(name->domain);
  // The records that answer to the name, and their hosts, copied out of the
  // reader's lock.
  std::vector<fleet::DomainEntry> candidates;
  std::vector<std::optional<fleet::HostEntry>> hosts;
  int64_t revision = 0;
  absl::Status read = f.reader->Read([&](const fleet::FleetView& view) {
    revision = view.revision();
    if (uuid.has_value()) {
      auto it = view.domains().find(*uuid);
      if (it != view.domains().end()) candidates.push_back(it->second);
    } else {
      for (const auto& [key, entry] : view.domains()) {
        if (entry.record.name() == name->domain) candidates.push_back(entry);
      }
    }
    for (const fleet::DomainEntry& d : candidates) {
      auto it = view.hosts().find(d.record.host_id());
      hosts.push_back(it == view.hosts().end() ? std::nullopt
                                               : std::optional<fleet::HostEntry>(it->second));
    }
  });
  if (!read.ok()) return FleetUnavailable(read);

  if (candidates.empty()) {
    // Decided on the name as given, so that the answer to an unauthorized
    // caller does not depend on existence.
    policy::DomainRef ref;
    if (uuid.has_value()) {
      ref.uuid = *uuid;
    } else {
      ref.name = name->domain;
    }
    const std::string resource = FormatDomainName(uuid.value_or(name->domain));
    if (absl::Status s = f.access->AuthorizeDomain(id, kMethod, ref, resource); !s.ok()) return s;
    return ApiError(
               StatusCode::kNotFound, v1::ERROR_REASON_DOMAIN_NOT_FOUND,
               absl::StrCat("no host of the fleet runs domain ", QuoteClientValue(name->domain)))
        .Metadata("domain", resource);
  }
  const std::shared_ptr<const policy::Policy> policy = f.access->Policy();
  std::vector<size_t> visible;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (MaySeeDomain(*policy, id, candidates[i])) visible.push_back(i);
  }
  const size_t chosen = visible.empty() ? 0 : visible[0];
  const fleet::v1::DomainRecord& record = candidates[chosen].record;
  if (absl::Status s =
          f.access->AuthorizeDomain(id, kMethod, policy::DomainRef{record.uuid(), record.name()},
                                    FormatDomainName(record.uuid()));
      !s.ok()) {
    return s;
  }
  if (visible.size() > 1) {
    v1::AmbiguousDomain detail;
    for (size_t i : visible) *detail.add_candidates() = DomainProto(candidates[i]);
    return ApiError(StatusCode::kFailedPrecondition, v1::ERROR_REASON_DOMAIN_NAME_AMBIGUOUS,
                    absl::StrCat(visible.size(), " domains of the fleet are named ",
                                 QuoteClientValue(name->domain), ": use a UUID"))
        .Detail(detail);
  }
  const v1::FleetDomain domain = DomainProto(candidates[chosen]);
  if (!hosts[chosen].has_value()) {
    return ApiError(StatusCode::kUnavailable, v1::ERROR_REASON_HOST_NOT_REGISTERED,
                    absl::StrCat("domain ", record.uuid(), " is published by host '",
                                 record.host_id(), "', which has no valid host record"))
        .Metadata("domain", domain.name())
        .Detail(domain)
        .RetryAfter(absl::Seconds(1));
  }
  *response->mutable_domain() = domain;
  *response->mutable_host() = HostProto(*hosts[chosen]);
  response->set_revision(revision);
  return absl::OkStatus();
}

}  // namespace server
}  // namespace xenchan
