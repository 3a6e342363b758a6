// UUIDs in their canonical text form (RFC 9562: 8-4-4-4-12 hex digits):
// validating, normalising, formatting, and making new ones, random (the
// engine's channel uids, xensim's domains) or derived from a key (channels
// whose identity the toolstack defines). Pure functions apart from NewUuid's
// per-thread generator; thread-safe.
#ifndef XENCHAN_BACKEND_UTIL_UUID_H_
#define XENCHAN_BACKEND_UTIL_UUID_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace xenchan {

// True for a canonical UUID in lower, upper or mixed case: 36 characters,
// '-' at 8, 13, 18 and 23, hex digits elsewhere. No braces, no "urn:uuid:".
bool IsUuid(absl::string_view text);

// `text` in lower case if IsUuid(text), else nullopt. xenstore, xl and the
// API compare UUIDs as lower-case strings.
std::optional<std::string> CanonicalUuid(absl::string_view text);

// The 128-bit value `high`:`low` (most significant half first) in lower-case
// canonical form; no version or variant bits are set.
std::string FormatUuid(uint64_t high, uint64_t low);

// A fresh random UUID (version 4, RFC variant), lower case.
std::string NewUuid();

// A UUID derived from `key` (the same key gives the same UUID in every
// process and build): two FNV-1a 64-bit hashes of `key`, marked version 8
// (custom) and RFC variant. For identities the toolstack defines.
std::string StableUuid(absl::string_view key);

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_UTIL_UUID_H_
