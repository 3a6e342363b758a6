// The fleet's etcd keys and values (docs/FLEET.md, "Key layout"): where each
// record lives, and its JSON encoding, with the strict checks every value
// read back from etcd goes through (etcd is not trusted more than a guest:
// a bad, oversized or unknown-version value is refused, never half-used).
// Pure functions; thread-safe.
#ifndef XENCHAN_SERVER_FLEET_RECORDS_H_
#define XENCHAN_SERVER_FLEET_RECORDS_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "xenchan/fleet/v1/records.pb.h"

namespace xenchan {
namespace fleet {

inline constexpr char kDefaultPrefix[] = "/xenchan/v1/";
inline constexpr uint32_t kRecordVersion = 1;
// The largest value accepted from etcd.
inline constexpr size_t kMaxValueBytes = 64 << 10;
// Host ids: 1..63 characters of [a-z0-9-], not starting with '-'.
inline constexpr size_t kMaxHostIdBytes = 63;
inline constexpr size_t kMaxApiAddressBytes = 256;
inline constexpr size_t kMaxNameBytes = 256;

// INVALID_ARGUMENT unless `prefix` starts and ends with '/', and holds only
// printable ASCII without spaces.
absl::Status ValidatePrefix(absl::string_view prefix);
// INVALID_ARGUMENT unless `host_id` is a valid host id (above).
absl::Status ValidateHostId(absl::string_view host_id);

// PREFIX + "hosts/", + "domains/", + "declarations/".
std::string HostsPrefix(absl::string_view prefix);
std::string DomainsPrefix(absl::string_view prefix);
std::string DeclarationsPrefix(absl::string_view prefix);
// PREFIX + "hosts/HOST_ID" and so on.
std::string HostKey(absl::string_view prefix, absl::string_view host_id);
std::string DomainKey(absl::string_view prefix, absl::string_view uuid);
// PREFIX + "declarations/UUID/": every declaration of one domain.
std::string DomainDeclarationsPrefix(absl::string_view prefix, absl::string_view uuid);
std::string DeclarationKey(absl::string_view prefix, absl::string_view uuid,
                           absl::string_view channel_id);

// JSON of a record (every field, enum values by name).
std::string Encode(const google::protobuf::Message& record);

// A value read from etcd at `key` (PREFIX included), checked: at most
// kMaxValueBytes, JSON of the record with no unknown fields, version 1,
// the ids in the key equal to the ones in the value, every field valid.
// INVALID_ARGUMENT (with the key) otherwise.
absl::StatusOr<fleet::v1::HostRecord> DecodeHost(absl::string_view prefix, absl::string_view key,
                                                 absl::string_view value);
absl::StatusOr<fleet::v1::DomainRecord> DecodeDomain(absl::string_view prefix,
                                                     absl::string_view key,
                                                     absl::string_view value);
absl::StatusOr<fleet::v1::DeclarationRecord> DecodeDeclaration(absl::string_view prefix,
                                                               absl::string_view key,
                                                               absl::string_view value);

}  // namespace fleet
}  // namespace xenchan

#endif  // XENCHAN_SERVER_FLEET_RECORDS_H_
