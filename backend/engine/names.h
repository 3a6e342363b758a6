// Strict parsing and validation of the names and values the engine takes
// from callers and from guest-controlled xenstore nodes (XEN-CHANNELS §3.5.4).
// The xenstore paths of channels are in xenstore_layout.h (included here for
// the callers that found them in this header); channel and domain UUIDs are
// backend/util/uuid.h's. Pure functions; thread-safe.
#ifndef XENCHAN_BACKEND_ENGINE_NAMES_H_
#define XENCHAN_BACKEND_ENGINE_NAMES_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "backend/engine/types.h"
#include "backend/engine/xenstore_layout.h"
#include "backend/util/channel_id.h"  // ValidateChannelId, for the engine's callers

namespace xenchan {

// Parses a non-negative decimal integer no larger than `max`: digits only
// (no sign, spaces, or leading zeros except "0" itself), at most 10 digits.
// nullopt for anything else. Guest-written values go through this.
std::optional<uint32_t> ParseDecimal(absl::string_view text, uint32_t max);

// Parses a xenbus state node: "0".."8"; nullopt for anything else.
std::optional<XenbusState> ParseXenbusState(absl::string_view text);

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_NAMES_H_
