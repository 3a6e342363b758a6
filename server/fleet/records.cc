#include "server/fleet/records.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backend/util/channel_id.h"
#include "backend/util/uuid.h"
#include "google/protobuf/util/json_util.h"

namespace xenchan {
namespace fleet {
namespace {

using fleet::v1::DeclarationRecord;
using fleet::v1::DomainRecord;
using fleet::v1::HostRecord;

// Domids a guest can have (Xen reserves 0x7ff0 and up).
constexpr uint32_t kMaxDomid = 0x7fef;

bool Printable(absl::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

absl::Status Bad(absl::string_view key, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("etcd value at ", key, ": ", why));
}

// The key's tail after `dir`, split at '/'; empty if the key is not under it.
std::vector<std::string> KeyParts(absl::string_view key, absl::string_view dir) {
  if (!absl::StartsWith(key, dir)) return {};
  return absl::StrSplit(key.substr(dir.size()), '/');
}

absl::Status Parse(absl::string_view key, absl::string_view value,
                   google::protobuf::Message* record) {
  if (value.size() > kMaxValueBytes) {
    return Bad(key, absl::StrCat(value.size(), " bytes, more than ", kMaxValueBytes));
  }
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status =
      google::protobuf::util::JsonStringToMessage(std::string(value), record, options);
  if (!status.ok()) return Bad(key, absl::StrCat("not a record: ", status.message().as_string()));
  return absl::OkStatus();
}

absl::Status CheckVersion(absl::string_view key, uint32_t version) {
  if (version != kRecordVersion) {
    return Bad(key,
               absl::StrCat("record version ", version, ", this xenchand reads ", kRecordVersion));
  }
  return absl::OkStatus();
}

absl::Status CheckName(absl::string_view key, absl::string_view what, absl::string_view name) {
  if (name.size() > kMaxNameBytes || !Printable(name)) {
    return Bad(key,
               absl::StrCat(what, " is not printable ASCII of at most ", kMaxNameBytes, " bytes"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidatePrefix(absl::string_view prefix) {
  if (prefix.size() < 2 || prefix.front() != '/' || prefix.back() != '/' || !Printable(prefix) ||
      absl::StrContains(prefix, ' ') || prefix.size() > 128) {
    return absl::InvalidArgumentError(
        absl::StrCat("fleet prefix '", prefix, "': expected /SOMETHING/ (printable, no spaces)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateHostId(absl::string_view host_id) {
  bool ok = !host_id.empty() && host_id.size() <= kMaxHostIdBytes && host_id.front() != '-';
  for (char c : host_id) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("host id '", host_id, "': 1..63 characters of [a-z0-9-], not starting '-'"));
  }
  return absl::OkStatus();
}

std::string HostsPrefix(absl::string_view prefix) { return absl::StrCat(prefix, "hosts/"); }
std::string DomainsPrefix(absl::string_view prefix) { return absl::StrCat(prefix, "domains/"); }
std::string DeclarationsPrefix(absl::string_view prefix) {
  return absl::StrCat(prefix, "declarations/");
}

std::string HostKey(absl::string_view prefix, absl::string_view host_id) {
  return absl::StrCat(HostsPrefix(prefix), host_id);
}

std::string DomainKey(absl::string_view prefix, absl::string_view uuid) {
  return absl::StrCat(DomainsPrefix(prefix), uuid);
}

std::string DomainDeclarationsPrefix(absl::string_view prefix, absl::string_view uuid) {
  return absl::StrCat(DeclarationsPrefix(prefix), uuid, "/");
}

std::string DeclarationKey(absl::string_view prefix, absl::string_view uuid,
                           absl::string_view channel_id) {
  return absl::StrCat(DomainDeclarationsPrefix(prefix, uuid), channel_id);
}

std::string Encode(const google::protobuf::Message& record) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(record, &out, options);
  return out;
}

absl::StatusOr<HostRecord> DecodeHost(absl::string_view prefix, absl::string_view key,
                                      absl::string_view value) {
  HostRecord r;
  if (absl::Status s = Parse(key, value, &r); !s.ok()) return s;
  if (absl::Status s = CheckVersion(key, r.version()); !s.ok()) return s;
  const std::vector<std::string> parts = KeyParts(key, HostsPrefix(prefix));
  if (parts.size() != 1 || parts[0] != r.host_id()) return Bad(key, "the host id is not the key's");
  if (absl::Status s = ValidateHostId(r.host_id()); !s.ok()) return Bad(key, s.message());
  if (r.api_address().empty() || r.api_address().size() > kMaxApiAddressBytes ||
      !Printable(r.api_address())) {
    return Bad(key, "the API address is empty, too long or not printable");
  }
  if (absl::Status s = CheckName(key, "the identity", r.identity()); !s.ok()) return s;
  if (absl::Status s = CheckName(key, "the version", r.xenchan_version()); !s.ok()) return s;
  if (r.started_at_unix_ms() < 0) return Bad(key, "a start time before 1970");
  return r;
}

absl::StatusOr<DomainRecord> DecodeDomain(absl::string_view prefix, absl::string_view key,
                                          absl::string_view value) {
  DomainRecord r;
  if (absl::Status s = Parse(key, value, &r); !s.ok()) return s;
  if (absl::Status s = CheckVersion(key, r.version()); !s.ok()) return s;
  const std::vector<std::string> parts = KeyParts(key, DomainsPrefix(prefix));
  if (parts.size() != 1 || parts[0] != r.uuid() || !IsUuid(r.uuid()) ||
      CanonicalUuid(r.uuid()) != r.uuid()) {
    return Bad(key, "the UUID is not the key's, or not a lower-case UUID");
  }
  if (absl::Status s = ValidateHostId(r.host_id()); !s.ok()) return Bad(key, s.message());
  if (r.domid() == 0 || r.domid() > kMaxDomid) return Bad(key, "a domid out of range");
  if (absl::Status s = CheckName(key, "the name", r.name()); !s.ok()) return s;
  if (r.state() != xenchan::v1::DOMAIN_STATE_RUNNING &&
      r.state() != xenchan::v1::DOMAIN_STATE_DYING) {
    return Bad(key, "a state other than running or dying");
  }
  return r;
}

absl::StatusOr<DeclarationRecord> DecodeDeclaration(absl::string_view prefix, absl::string_view key,
                                                    absl::string_view value) {
  DeclarationRecord r;
  if (absl::Status s = Parse(key, value, &r); !s.ok()) return s;
  if (absl::Status s = CheckVersion(key, r.version()); !s.ok()) return s;
  const std::vector<std::string> parts = KeyParts(key, DeclarationsPrefix(prefix));
  if (parts.size() != 2 || parts[0] != r.domain_uuid() || parts[1] != r.channel_id()) {
    return Bad(key, "the UUID and channel id are not the key's");
  }
  if (!IsUuid(r.domain_uuid()) || CanonicalUuid(r.domain_uuid()) != r.domain_uuid()) {
    return Bad(key, "not a lower-case domain UUID");
  }
  if (absl::Status s = ValidateChannelId(r.channel_id()); !s.ok()) return Bad(key, s.message());
  if (!IsUuid(r.uid()) || CanonicalUuid(r.uid()) != r.uid())
    return Bad(key, "not a lower-case uid");
  if (r.config().lifetime() != xenchan::v1::CHANNEL_LIFETIME_DURABLE) {
    return Bad(key, "a declaration that is not durable");
  }
  if (r.last_devid() > 0xffff) return Bad(key, "a devid out of range");
  if (absl::Status s = CheckName(key, "the domain name", r.domain_name()); !s.ok()) return s;
  if (!r.host_id().empty()) {
    if (absl::Status s = ValidateHostId(r.host_id()); !s.ok()) return Bad(key, s.message());
  }
  return r;
}

}  // namespace fleet
}  // namespace xenchan
