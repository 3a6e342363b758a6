// Resource names and page tokens (see the header).
#include "server/resource_names.h"

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backend/engine/names.h"
#include "server/status.h"

namespace xenchan {
namespace server {
namespace {

constexpr size_t kMaxDomainSegment = 256;
constexpr char kTokenVersion[] = "xc1";

bool ValidDomainSegment(absl::string_view s) {
  if (s.empty() || s.size() > kMaxDomainSegment) return false;
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '/') return false;
  }
  return true;
}

}  // namespace

std::string QuoteClientValue(absl::string_view value) {
  if (value.size() <= kMaxQuotedBytes) return absl::StrCat("'", value, "'");
  // Cut at a UTF-8 character boundary: the message must stay valid UTF-8
  // (protobuf refuses to serialize a google.rpc.Status otherwise).
  size_t cut = kMaxQuotedBytes;
  while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0) == 0x80) --cut;
  return absl::StrCat("'", value.substr(0, cut), "...'(", value.size(), " bytes)");
}

absl::StatusOr<DomainName> ParseDomainName(absl::string_view name, const std::string& field,
                                           bool allow_all) {
  if (name.empty()) return InvalidName(field, "required");
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() != 2 || parts[0] != "domains" || !ValidDomainSegment(parts[1])) {
    return InvalidName(
        field, absl::StrCat(QuoteClientValue(name), " is not of the form domains/{domain}"));
  }
  if (parts[1] == "-" && !allow_all) {
    return InvalidName(field, "the wildcard domains/- is not allowed here");
  }
  return DomainName{std::string(parts[1])};
}

absl::StatusOr<ChannelName> ParseChannelName(absl::string_view name, const std::string& field) {
  if (name.empty()) return InvalidName(field, "required");
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() != 4 || parts[0] != "domains" || parts[2] != "channels" ||
      !ValidDomainSegment(parts[1])) {
    return InvalidName(field,
                       absl::StrCat(QuoteClientValue(name),
                                    " is not of the form domains/{domain}/channels/{channel}"));
  }
  if (parts[1] == "-") return InvalidName(field, "the wildcard domains/- is not allowed here");
  if (!ValidateChannelId(parts[3]).ok()) {
    return InvalidName(field,
                       absl::StrCat(QuoteClientValue(parts[3]), " is not a valid channel id"));
  }
  return ChannelName{std::string(parts[1]), std::string(parts[3])};
}

std::string FormatDomainName(const std::string& uuid) { return absl::StrCat("domains/", uuid); }

std::string FormatChannelName(const std::string& domain_uuid, const std::string& channel_id) {
  return absl::StrCat("domains/", domain_uuid, "/channels/", channel_id);
}

std::string EncodePageToken(const std::string& fingerprint, const std::string& after_key) {
  return absl::WebSafeBase64Escape(absl::StrCat(kTokenVersion, "\n", fingerprint, "\n", after_key));
}

absl::StatusOr<std::string> DecodePageToken(const std::string& token,
                                            const std::string& fingerprint,
                                            const std::string& field) {
  auto bad = [&](const std::string& why) {
    return ApiError(absl::StatusCode::kInvalidArgument, v1::ERROR_REASON_INVALID_PAGE_TOKEN,
                    absl::StrCat(field, ": ", why))
        .Field(field, why)
        .Build();
  };
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw)) return bad("not a page token of this server");
  std::vector<std::string> parts = absl::StrSplit(raw, absl::MaxSplits('\n', 2));
  if (parts.size() != 3 || parts[0] != kTokenVersion) return bad("not a page token of this server");
  if (parts[1] != fingerprint) return bad("the token was issued for a different request");
  return parts[2];
}

}  // namespace server
}  // namespace xenchan
