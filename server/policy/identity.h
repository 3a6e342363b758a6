// Identity: the principals a caller presents, as the transport authenticated
// them. The policy (policy.h) grants verbs to identity patterns; a caller is
// granted what any one of its principals is granted.
//
// Principals are typed, so that no certificate field can pose as another
// kind (a URI SAN reading `unix:uid=0` stays a URI and never matches a
// `unix:uid=0` rule). Each kind has a canonical text form, used in the policy
// file, in audit records and in lease holder names:
//   URI SAN          the URI itself, e.g. `spiffe://example.org/controller`
//                    (`uri:` + URI when it has no `scheme://`, e.g.
//                    `uri:urn:example:ctl`)
//   DNS SAN          `dns:` + the lower-cased name, e.g. `dns:ctl.example.org`
//   subject CN       `cn:` + the common name, e.g. `cn:provisioner`
//   Unix peer uid    `unix:uid=` + decimal uid, e.g. `unix:uid=0`
//   Unix peer gid    `unix:gid=` + decimal gid, e.g. `unix:gid=1001`
//
// Which principals a transport presents (build them with the helpers below):
//   mTLS:   every URI SAN and every DNS SAN of the verified client
//           certificate; the subject CN only when the certificate has
//           neither (FromCertificate applies that rule).
//   Unix:   the peer's uid and gid from SO_PEERCRED, plus any supplementary
//           group ids the server chose to look up (FromUnixPeer).
// An Identity with no principals is unauthenticated and is granted nothing.
//
// Thread safety: plain values.
#ifndef XENCHAN_SERVER_POLICY_IDENTITY_H_
#define XENCHAN_SERVER_POLICY_IDENTITY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace xenchan {
namespace server {
namespace policy {

struct Principal {
  enum class Kind { kUri, kDns, kCommonName, kUnixUid, kUnixGid };
  Kind kind = Kind::kUri;
  // The bare value: the URI, the (lower-cased) DNS name, the CN, or the
  // decimal uid/gid.
  std::string value;

  // The canonical text form (see the file comment).
  std::string ToString() const;
  bool operator==(const Principal& other) const {
    return kind == other.kind && value == other.value;
  }
};

struct Identity {
  std::vector<Principal> principals;

  // The principals of a verified client certificate: one per URI SAN and per
  // DNS SAN (DNS names lower-cased; empty entries skipped); `common_name`
  // only if there is no usable SAN at all (and it is not empty).
  static Identity FromCertificate(const std::vector<std::string>& uri_sans,
                                  const std::vector<std::string>& dns_sans,
                                  absl::string_view common_name);
  // The principals of a Unix-socket peer: its uid and each gid in `gids`
  // (duplicates dropped; order kept).
  static Identity FromUnixPeer(uint32_t uid, const std::vector<uint32_t>& gids);

  bool authenticated() const { return !principals.empty(); }
  // The canonical forms joined by `,` (e.g. `unix:uid=0,unix:gid=0`), or
  // `anonymous` for an unauthenticated identity. For logs and audit records.
  std::string ToString() const;
};

}  // namespace policy
}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_POLICY_IDENTITY_H_
