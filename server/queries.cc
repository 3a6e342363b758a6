// The unary queries (see queries.h).
#include "server/queries.h"

#include <algorithm>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/convert.h"
#include "server/resource_names.h"
#include "server/status.h"
#include "server/validate.h"

namespace xenchan {
namespace server {

using policy::Verb;

bool MatchesFilter(const ChannelInfo& c, const v1::ChannelFilter& filter) {
  if (!filter.channel_id_prefix().empty() &&
      c.channel_id.compare(0, filter.channel_id_prefix().size(), filter.channel_id_prefix()) != 0) {
    return false;
  }
  bool any = false;
  bool match = false;
  for (int t : filter.transports()) {
    if (t == v1::TRANSPORT_UNSPECIFIED) continue;
    any = true;
    if (ToProto(c.transport) == t) match = true;
  }
  return !any || match;
}

absl::Status ListDomains(const QueryContext& q, const Identity& id,
                         const v1::ListDomainsRequest& request, v1::ListDomainsResponse* response) {
  absl::Status valid = ValidateRequest(request);
  if (!valid.ok()) return valid;
  auto size = PageSize(request.page_size());
  if (!size.ok()) return size.status();
  absl::Status allowed = q.authz->AuthorizeListing(id, "ListDomains", "domains", "any");
  if (!allowed.ok()) return allowed;
  const std::shared_ptr<const policy::Policy> policy = q.authz->Policy();
  std::string after;
  if (!request.page_token().empty()) {
    auto key = DecodePageToken(request.page_token(), "domains", "page_token");
    if (!key.ok()) return key.status();
    after = *key;
  }
  std::vector<DomainInfo> domains = q.engine->Snapshot().domains;
  std::sort(domains.begin(), domains.end(),
            [](const DomainInfo& a, const DomainInfo& b) { return a.uuid < b.uuid; });
  for (const DomainInfo& d : domains) {
    if (!after.empty() && d.uuid <= after) continue;
    if (!policy->CanSeeDomain(id.principals, policy::DomainRef{d.uuid, d.name})) continue;
    if (response->domains_size() == *size) {
      response->set_next_page_token(
          EncodePageToken("domains", response->domains().rbegin()->uuid()));
      break;
    }
    ToProto(d, response->add_domains());
  }
  return absl::OkStatus();
}

absl::Status GetDomain(const QueryContext& q, const Identity& id,
                       const v1::GetDomainRequest& request, v1::GetDomainResponse* response) {
  absl::Status valid = ValidateRequest(request);
  if (!valid.ok()) return valid;
  auto name = ParseDomainName(request.name(), "name", /*allow_all=*/false);
  if (!name.ok()) return name.status();
  absl::Status allowed = q.authz->AuthorizeDomain(id, "GetDomain", name->domain, std::nullopt);
  if (!allowed.ok()) return allowed;
  auto domain = q.engine->GetDomain(name->domain);
  if (!domain.ok()) return EngineErrors::DomainNotFound(name->domain);
  ToProto(*domain, response->mutable_domain());
  return absl::OkStatus();
}

absl::Status ListChannels(const QueryContext& q, const Identity& id,
                          const v1::ListChannelsRequest& request,
                          v1::ListChannelsResponse* response) {
  absl::Status valid = ValidateRequest(request);
  if (!valid.ok()) return valid;
  auto parent = ParseDomainName(request.parent(), "parent", /*allow_all=*/true);
  if (!parent.ok()) return parent.status();
  auto size = PageSize(request.page_size());
  if (!size.ok()) return size.status();
  absl::Status s = ValidateFilter(request.filter(), "filter");
  if (!s.ok()) return s;
  std::vector<ChannelState> states;
  for (int st : request.states()) {
    if (!v1::ChannelState_IsValid(st)) {
      return InvalidOption("states", absl::StrCat("unknown channel state ", st));
    }
    if (auto e = FromProto(static_cast<v1::ChannelState>(st))) states.push_back(*e);
  }
  std::string after;
  if (!request.page_token().empty()) {
    auto key = DecodePageToken(request.page_token(), ListFingerprint(request), "page_token");
    if (!key.ok()) return key.status();
    after = *key;
  }
  absl::Status allowed =
      parent->all() ? q.authz->AuthorizeListing(id, "ListChannels", "domains/-", "read")
                    : q.authz->AuthorizeDomain(id, "ListChannels", parent->domain, Verb::kRead);
  if (!allowed.ok()) return allowed;
  const std::shared_ptr<const policy::Policy> policy = q.authz->Policy();
  std::string domain_uuid;
  if (!parent->all()) {
    auto domain = q.engine->GetDomain(parent->domain);
    if (!domain.ok()) return EngineErrors::DomainNotFound(parent->domain);
    domain_uuid = domain->uuid;
  }
  std::vector<ChannelInfo> channels = q.engine->Snapshot().channels;
  std::sort(channels.begin(), channels.end(), [](const ChannelInfo& a, const ChannelInfo& b) {
    return std::tie(a.domain_uuid, a.channel_id) < std::tie(b.domain_uuid, b.channel_id);
  });
  for (const ChannelInfo& c : channels) {
    if (!parent->all() && c.domain_uuid != domain_uuid) continue;
    if (!MatchesFilter(c, request.filter())) continue;
    if (!states.empty() && std::find(states.begin(), states.end(), c.state) == states.end()) {
      continue;
    }
    if (!Authorizer::MayRead(*policy, id, c)) continue;
    const std::string key = c.domain_uuid + "/" + c.channel_id;
    if (!after.empty() && key <= after) continue;
    if (response->channels_size() == *size) {
      const v1::Channel& last = *response->channels().rbegin();
      response->set_next_page_token(
          EncodePageToken(ListFingerprint(request), last.domain_uuid() + "/" + last.channel_id()));
      break;
    }
    *response->add_channels() = ChannelProto(c);
  }
  return absl::OkStatus();
}

absl::Status GetChannel(const QueryContext& q, const Identity& id,
                        const v1::GetChannelRequest& request, v1::GetChannelResponse* response) {
  absl::Status valid = ValidateRequest(request);
  if (!valid.ok()) return valid;
  auto name = ParseChannelName(request.name(), "name");
  if (!name.ok()) return name.status();
  absl::Status allowed =
      q.authz->Authorize(id, "GetChannel", name->domain, name->channel_id, Verb::kRead);
  if (!allowed.ok()) return allowed;
  auto info = q.engine->GetChannel(ChannelRef{name->domain, name->channel_id});
  if (!info.ok()) return q.errors->ChannelNotFound(*name);
  *response->mutable_channel() = ChannelProto(*info);
  return absl::OkStatus();
}

}  // namespace server
}  // namespace xenchan
