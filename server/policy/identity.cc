// Identity construction and canonical text forms; see identity.h.
#include "server/policy/identity.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace xenchan {
namespace server {
namespace policy {

std::string Principal::ToString() const {
  switch (kind) {
    case Kind::kUri:
      // A URI without `scheme://` is marked so it cannot read like another kind.
      return absl::StrContains(value, "://") ? value : absl::StrCat("uri:", value);
    case Kind::kDns:
      return absl::StrCat("dns:", value);
    case Kind::kCommonName:
      return absl::StrCat("cn:", value);
    case Kind::kUnixUid:
      return absl::StrCat("unix:uid=", value);
    case Kind::kUnixGid:
      return absl::StrCat("unix:gid=", value);
  }
  return value;
}

Identity Identity::FromCertificate(const std::vector<std::string>& uri_sans,
                                   const std::vector<std::string>& dns_sans,
                                   absl::string_view common_name) {
  Identity id;
  for (const std::string& uri : uri_sans) {
    if (!uri.empty()) id.principals.push_back({Principal::Kind::kUri, uri});
  }
  for (const std::string& dns : dns_sans) {
    if (!dns.empty()) id.principals.push_back({Principal::Kind::kDns, absl::AsciiStrToLower(dns)});
  }
  if (id.principals.empty() && !common_name.empty()) {
    id.principals.push_back({Principal::Kind::kCommonName, std::string(common_name)});
  }
  return id;
}

Identity Identity::FromUnixPeer(uint32_t uid, const std::vector<uint32_t>& gids) {
  Identity id;
  id.principals.push_back({Principal::Kind::kUnixUid, absl::StrCat(uid)});
  for (uint32_t gid : gids) {
    Principal p{Principal::Kind::kUnixGid, absl::StrCat(gid)};
    if (std::find(id.principals.begin(), id.principals.end(), p) == id.principals.end()) {
      id.principals.push_back(std::move(p));
    }
  }
  return id;
}

std::string Identity::ToString() const {
  if (principals.empty()) return "anonymous";
  return absl::StrJoin(principals, ",",
                       [](std::string* out, const Principal& p) { out->append(p.ToString()); });
}

}  // namespace policy
}  // namespace server
}  // namespace xenchan
