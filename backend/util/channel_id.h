// What a channel id may be (the xenstore `name` of a channel, and the last
// part of its resource name): the one rule the API, the engine and the
// declaration store all check. Pure function; thread-safe.
#ifndef XENCHAN_BACKEND_UTIL_CHANNEL_ID_H_
#define XENCHAN_BACKEND_UTIL_CHANNEL_ID_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace xenchan {

// OK if `id` is a valid channel id: 1..kMaxChannelIdBytes (api_limits.h)
// bytes of [A-Za-z0-9._-] starting with a letter or digit; INVALID_ARGUMENT
// saying which rule it breaks otherwise.
absl::Status ValidateChannelId(absl::string_view id);

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_UTIL_CHANNEL_ID_H_
