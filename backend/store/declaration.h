// A durable channel declaration (DESIGN §3 "Lifetime", issue 12): what
// xenchand keeps on disk so that a channel declared for a domain's UUID is
// hot-added again whenever a domain with that UUID appears (reboot, restore,
// incoming migration, xenchand or dom0 restart). Plain value types and their
// validation; DeclarationStore (declaration_store.h) keeps them.
//
// Pure functions; thread-safe.
#ifndef XENCHAN_BACKEND_STORE_DECLARATION_H_
#define XENCHAN_BACKEND_STORE_DECLARATION_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backend/util/api_limits.h"
#include "backend/util/channel_id.h"

namespace xenchan {

// A declared channel's configuration: the fields of the proto's
// ChannelConfig that a durable channel keeps, always explicit (no "unset,
// take the default": the defaults are filled in when it is declared).
struct DeclaredChannelConfig {
  // What happens when the retention buffer is full (proto OverflowPolicy);
  // stored as the proto's names, "BLOCK" and "DROP_OLDEST". The engine has
  // its own enum (backend/engine/output_buffer.h); the store does not depend
  // on the engine, which sits above it.
  enum class Overflow { kBlock, kDropOldest };

  // The guest-to-host retention buffer: kMinBufferLimitBytes..kMaxBufferLimitBytes.
  uint64_t buffer_limit_bytes = kDefaultBufferLimitBytes;
  Overflow overflow = Overflow::kBlock;
  // The host-to-guest write queue: kMinWriteQueueLimitBytes..kMaxWriteQueueLimitBytes.
  uint64_t write_queue_limit_bytes = kDefaultWriteQueueLimitBytes;
  // The default Call framing as FramingSpec text (backend/framing/framing.h):
  // "newline", "length-prefix", "qemu-guest-agent" or "delimiter:<hex>".
  std::string default_framing = "newline";

  friend bool operator==(const DeclaredChannelConfig& a, const DeclaredChannelConfig& b) {
    return a.buffer_limit_bytes == b.buffer_limit_bytes && a.overflow == b.overflow &&
           a.write_queue_limit_bytes == b.write_queue_limit_bytes &&
           a.default_framing == b.default_framing;
  }
  friend bool operator!=(const DeclaredChannelConfig& a, const DeclaredChannelConfig& b) {
    return !(a == b);
  }
};

// One durable channel: keyed by (domain_uuid, channel_id).
struct ChannelDeclaration {
  // The domain's UUID in canonical lower-case form (backend/util/uuid.h).
  std::string domain_uuid;
  // The channel id (the xenstore `name`): 1..kMaxChannelIdBytes bytes of
  // [A-Za-z0-9._-] starting with a letter or digit.
  std::string channel_id;
  // The channel's uid, canonical lower-case; the same in every incarnation,
  // and unique among declarations.
  std::string uid;
  DeclaredChannelConfig config;
  // The devid the channel had last (1..kMaxDevid), preferred when it is
  // re-created; unset until it has had one.
  std::optional<uint32_t> last_devid;
  // The domain's name when it was last seen (xenstore's
  // /local/domain/D/name), so that a restarted xenchand finds a not-running
  // domain by name too; empty if unknown (schema version 1 had no name). At
  // most kMaxDeclaredDomainNameBytes printable ASCII bytes.
  std::string domain_name;
  // When the channel was declared; after the Unix epoch, kept to the
  // nanosecond.
  absl::Time create_time = absl::InfinitePast();
  // Set by the store: a store-wide counter value taken by every change of
  // this declaration, so it is > 0, grows with each change and is never
  // reused, even after a delete and a new declaration of the same key.
  // Callers pass it back to DeclarationStore::Update as a compare-and-set.
  int64_t generation = 0;

  friend bool operator==(const ChannelDeclaration& a, const ChannelDeclaration& b) {
    return a.domain_uuid == b.domain_uuid && a.channel_id == b.channel_id && a.uid == b.uid &&
           a.config == b.config && a.last_devid == b.last_devid && a.create_time == b.create_time &&
           a.generation == b.generation && a.domain_name == b.domain_name;
  }
  friend bool operator!=(const ChannelDeclaration& a, const ChannelDeclaration& b) {
    return !(a == b);
  }
};

// The longest domain name a declaration keeps (longer names are not kept).
inline constexpr size_t kMaxDeclaredDomainNameBytes = 256;

// "BLOCK" or "DROP_OLDEST".
const char* OverflowName(DeclaredChannelConfig::Overflow overflow);
// The inverse of OverflowName; nullopt for any other text.
std::optional<DeclaredChannelConfig::Overflow> ParseOverflowName(absl::string_view name);

// OK if every field of `config` is within the API's limits and its framing
// parses; INVALID_ARGUMENT naming the first field that is not.
absl::Status ValidateDeclaredConfig(const DeclaredChannelConfig& config);

// OK if `declaration` could be stored as it is: canonical lower-case UUIDs,
// a valid channel id and configuration, last_devid (if set) in 1..kMaxDevid,
// a domain name of printable ASCII within kMaxDeclaredDomainNameBytes,
// a create_time after the Unix epoch that fits in int64 nanoseconds.
// `generation` is not checked (the store assigns it). INVALID_ARGUMENT naming
// the first field that is wrong.
absl::Status ValidateDeclaration(const ChannelDeclaration& declaration);

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_STORE_DECLARATION_H_
