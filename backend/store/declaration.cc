// Validation of durable channel declarations; see declaration.h.
#include "backend/store/declaration.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "backend/framing/framing.h"
#include "backend/util/uuid.h"

namespace xenchan {
namespace {

// OK if `text` is a UUID in canonical lower-case form; INVALID_ARGUMENT
// naming `field` otherwise.
absl::Status ValidateCanonicalUuid(absl::string_view field, absl::string_view text) {
  const std::optional<std::string> canonical = CanonicalUuid(text);
  if (!canonical.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is not a UUID"));
  }
  if (*canonical != text) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is not in lower case"));
  }
  return absl::OkStatus();
}

absl::Status ValidateRange(absl::string_view field, uint64_t value, uint64_t min, uint64_t max) {
  if (value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " ", value, " is outside ", min, "..", max));
  }
  return absl::OkStatus();
}

}  // namespace

const char* OverflowName(DeclaredChannelConfig::Overflow overflow) {
  switch (overflow) {
    case DeclaredChannelConfig::Overflow::kBlock:
      return "BLOCK";
    case DeclaredChannelConfig::Overflow::kDropOldest:
      return "DROP_OLDEST";
  }
  return "BLOCK";
}

std::optional<DeclaredChannelConfig::Overflow> ParseOverflowName(absl::string_view name) {
  if (name == "BLOCK") return DeclaredChannelConfig::Overflow::kBlock;
  if (name == "DROP_OLDEST") return DeclaredChannelConfig::Overflow::kDropOldest;
  return std::nullopt;
}

absl::Status ValidateDeclaredConfig(const DeclaredChannelConfig& config) {
  absl::Status status = ValidateRange("buffer_limit_bytes", config.buffer_limit_bytes,
                                      kMinBufferLimitBytes, kMaxBufferLimitBytes);
  if (!status.ok()) return status;
  if (config.overflow != DeclaredChannelConfig::Overflow::kBlock &&
      config.overflow != DeclaredChannelConfig::Overflow::kDropOldest) {
    return absl::InvalidArgumentError("overflow policy is neither BLOCK nor DROP_OLDEST");
  }
  status = ValidateRange("write_queue_limit_bytes", config.write_queue_limit_bytes,
                         kMinWriteQueueLimitBytes, kMaxWriteQueueLimitBytes);
  if (!status.ok()) return status;
  const absl::StatusOr<Framing> framing = ParseFramingSpec(config.default_framing);
  if (!framing.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("default_framing: ", framing.status().message()));
  }
  return absl::OkStatus();
}

absl::Status ValidateDeclaration(const ChannelDeclaration& declaration) {
  absl::Status status = ValidateCanonicalUuid("domain_uuid", declaration.domain_uuid);
  if (!status.ok()) return status;
  status = ValidateChannelId(declaration.channel_id);
  if (!status.ok()) return status;
  status = ValidateCanonicalUuid("uid", declaration.uid);
  if (!status.ok()) return status;
  status = ValidateDeclaredConfig(declaration.config);
  if (!status.ok()) return status;
  if (declaration.last_devid.has_value()) {
    status = ValidateRange("last_devid", *declaration.last_devid, 1, kMaxDevid);
    if (!status.ok()) return status;
  }
  if (declaration.domain_name.size() > kMaxDeclaredDomainNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("domain_name is longer than ", kMaxDeclaredDomainNameBytes, " bytes"));
  }
  for (char c : declaration.domain_name) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError("domain_name holds a byte that is not printable ASCII");
    }
  }
  // int64 nanoseconds reach to 2262; ToUnixNanos saturates beyond.
  const int64_t nanos = absl::ToUnixNanos(declaration.create_time);
  if (nanos <= 0 || nanos == std::numeric_limits<int64_t>::max()) {
    return absl::InvalidArgumentError("create_time must be after the Unix epoch and before 2262");
  }
  return absl::OkStatus();
}

}  // namespace xenchan
