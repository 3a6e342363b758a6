// Authorizer: see authorizer.h.
#include "server/authorizer.h"

#include "absl/strings/str_cat.h"
#include "backend/util/uuid.h"
#include "server/resource_names.h"
#include "server/status.h"

namespace xenchan {
namespace server {

using absl::StatusCode;
using policy::Verb;

std::string Authorizer::FullMethod(absl::string_view method) {
  return absl::StrCat("/xenchan.v1.ChannelService/", method);
}

audit::Caller Authorizer::CallerOf(const Identity& id) {
  return audit::Caller{id.principals.ToString(), id.peer};
}

policy::DomainRef Authorizer::ResolveDomain(const std::string& domain) const {
  auto d = engine_->GetDomain(domain);
  if (d.ok()) return policy::DomainRef{d->uuid, d->name};
  policy::DomainRef ref;
  if (std::optional<std::string> uuid = CanonicalUuid(domain)) {
    ref.uuid = *std::move(uuid);
  } else {
    ref.name = domain;
  }
  return ref;
}

absl::Status Authorizer::RequireAuthenticated(const Identity& id, absl::string_view method,
                                              absl::string_view resource,
                                              absl::string_view verb) const {
  if (id.authenticated()) return absl::OkStatus();
  if (access_.audit != nullptr) {
    access_.audit->Authorization(
        CallerOf(id), FullMethod(method), resource, verb, false,
        absl::StrCat("unauthenticated ", TransportName(id.transport), " caller"));
  }
  return ApiError(
      StatusCode::kUnauthenticated, v1::ERROR_REASON_UNAUTHENTICATED,
      absl::StrCat("no usable identity on this connection (", TransportName(id.transport),
                   "); use the Unix socket or a TLS client certificate"));
}

absl::Status Authorizer::Denied(const Identity& id, absl::string_view verb, const std::string& key,
                                const std::string& resource) const {
  return ApiError(StatusCode::kPermissionDenied, v1::ERROR_REASON_PERMISSION_DENIED,
                  absl::StrCat(id.display(), " may not ", verb, " ", resource))
      .Metadata("verb", std::string(verb))
      .Metadata(key, resource);
}

absl::Status Authorizer::Authorize(const Identity& id, absl::string_view method,
                                   const std::string& domain, const std::string& channel_id,
                                   Verb verb) const {
  const policy::DomainRef ref = ResolveDomain(domain);
  const std::string resource = FormatChannelName(ref.uuid.empty() ? domain : ref.uuid, channel_id);
  const absl::string_view verb_name = policy::VerbName(verb);
  absl::Status s = RequireAuthenticated(id, method, resource, verb_name);
  if (!s.ok()) return s;
  const policy::Decision d = Policy()->Check(id.principals, ref, channel_id, verb);
  if (access_.audit != nullptr) {
    access_.audit->Authorization(CallerOf(id), FullMethod(method), resource, verb_name, d.allowed,
                                 d.reason);
  }
  if (d.allowed) return absl::OkStatus();
  return Denied(id, verb_name, "channel", resource);
}

absl::Status Authorizer::AuthorizeDomain(const Identity& id, absl::string_view method,
                                         const std::string& domain,
                                         std::optional<Verb> verb) const {
  const policy::DomainRef ref = ResolveDomain(domain);
  const std::string resource = FormatDomainName(ref.uuid.empty() ? domain : ref.uuid);
  const std::string verb_name = verb.has_value() ? std::string(policy::VerbName(*verb)) : "any";
  absl::Status s = RequireAuthenticated(id, method, resource, verb_name);
  if (!s.ok()) return s;
  const policy::VerbSet held = Policy()->VerbsOnDomain(id.principals, ref);
  const bool allowed = verb.has_value() ? held.Contains(*verb) : !held.empty();
  if (access_.audit != nullptr) {
    access_.audit->Authorization(
        CallerOf(id), FullMethod(method), resource, verb_name, allowed,
        allowed ? absl::StrCat("holds ", held.ToString(), " on some channel of the domain")
                : absl::StrCat("no rule grants ", verb_name, " on any channel of the domain"));
  }
  if (allowed) return absl::OkStatus();
  return Denied(id, verb_name, "domain", resource);
}

absl::Status Authorizer::AuthorizeListing(const Identity& id, absl::string_view method,
                                          const std::string& resource,
                                          absl::string_view verb) const {
  absl::Status s = RequireAuthenticated(id, method, resource, verb);
  if (!s.ok()) return s;
  if (access_.audit != nullptr) {
    access_.audit->Authorization(CallerOf(id), FullMethod(method), resource, verb, true,
                                 "listing filtered by the policy");
  }
  return absl::OkStatus();
}

bool Authorizer::MayRead(const policy::Policy& p, const Identity& id, const ChannelInfo& c) {
  return p.Allows(id.principals, policy::DomainRef{c.domain_uuid, c.domain_name}, c.channel_id,
                  Verb::kRead);
}

}  // namespace server
}  // namespace xenchan
