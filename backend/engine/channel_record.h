// The settings of a ring channel that the engine keeps in the channel's own
// backend directory (xenchan-* nodes, xenstore_layout.h) so that a restarted
// engine recovers the channel with the settings it was created or last
// updated with: how they are written at hot-add and UpdateChannel and read
// back at recovery, in one place; and their form in a durable channel's
// declaration.
// Pure functions; thread-safe.
#ifndef XENCHAN_BACKEND_ENGINE_CHANNEL_RECORD_H_
#define XENCHAN_BACKEND_ENGINE_CHANNEL_RECORD_H_

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "backend/engine/types.h"
#include "backend/store/declaration.h"

namespace xenchan {

// A backend node and its value.
using XsNode = std::pair<std::string, std::string>;

// The nodes that record `config` (every field set, as after the engine's
// defaults were applied), in the order the hot-add writes them.
std::vector<XsNode> ChannelConfigNodes(const ChannelConfig& config);

// The inverse of ChannelConfigNodes. `read(node)` returns the node's value,
// or "" if it cannot be read. Our own nodes (the guest can read but not
// write them), still parsed strictly and within the limits a create would
// accept; anything missing or invalid is left unset, to take the defaults.
ChannelConfig ParseChannelConfigNodes(const std::function<std::string(absl::string_view)>& read);

// The settings of `config` (every field set) as a durable channel's
// declaration records them (backend/store/declaration.h).
DeclaredChannelConfig DeclaredConfig(const ChannelConfig& config);
// The inverse, for a durable channel (lifetime set): the store validated
// every field when it read the row (DATA_LOSS otherwise), framing included.
ChannelConfig ConfigFromDeclared(const DeclaredChannelConfig& declared);

// OK if the effective `config` is within the API's limits (api_limits.h)
// and its framing is valid; INVALID_ARGUMENT naming what is not. What a
// create and an update both check.
absl::Status ValidateConfigLimits(const ChannelConfig& config);

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_CHANNEL_RECORD_H_
