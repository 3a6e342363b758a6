// Parsing of xenchan.v1 resource names (`domains/{domain}`,
// `domains/{domain}/channels/{channel}`, the `domains/-` wildcard) and the
// opaque page tokens of the List methods. Pure functions; thread-safe.
//
// Errors are API errors (server/status.h): INVALID_ARGUMENT with
// INVALID_NAME, INVALID_CHANNEL_ID or INVALID_PAGE_TOKEN and a BadRequest
// naming `field`.
#ifndef XENCHAN_SERVER_RESOURCE_NAMES_H_
#define XENCHAN_SERVER_RESOURCE_NAMES_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace xenchan {
namespace server {

// A parsed `domains/{domain}` (domain is a UUID or a display name; `-` only
// where allowed).
struct DomainName {
  std::string domain;
  bool all() const { return domain == "-"; }
};

// A parsed `domains/{domain}/channels/{channel}`.
struct ChannelName {
  std::string domain;
  std::string channel_id;
};

// A client-supplied value for an error message or detail: quoted, with at
// most kMaxQuotedBytes of it and, when longer, its size ("'abc...'...(70000
// bytes)"). Error messages and details travel in response trailers, which
// clients limit (gRPC's default is 8 KiB), so a server must never echo a
// request's strings whole.
constexpr size_t kMaxQuotedBytes = 128;
std::string QuoteClientValue(absl::string_view value);

// `allow_all`: accept `domains/-`.
absl::StatusOr<DomainName> ParseDomainName(absl::string_view name, const std::string& field,
                                           bool allow_all);
absl::StatusOr<ChannelName> ParseChannelName(absl::string_view name, const std::string& field);

std::string FormatDomainName(const std::string& uuid);
std::string FormatChannelName(const std::string& domain_uuid, const std::string& channel_id);

// Page tokens: the position after which the next page starts, bound to a
// fingerprint of the request's other parameters so a token cannot be reused
// with a different request. Encoded web-safe base64; opaque to clients.
std::string EncodePageToken(const std::string& fingerprint, const std::string& after_key);
// The after_key of `token`; INVALID_ARGUMENT (INVALID_PAGE_TOKEN) if it does
// not decode or was made for another fingerprint.
absl::StatusOr<std::string> DecodePageToken(const std::string& token,
                                            const std::string& fingerprint,
                                            const std::string& field);

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_RESOURCE_NAMES_H_
