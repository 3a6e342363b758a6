// Parser for the xl.cfg `channel=` syntax, as xensim's `domain create
// --channel SPEC` accepts it.
//
// A spec is a comma-separated list of KEY=VALUE pairs (xl.cfg(5), XEN-CHANNELS
// §1.7):
//   backend=DOMAIN      optional; only the toolstack domain is supported here
//                       ("0", "dom0" or "Domain-0")
//   name=NAME           mandatory; [A-Za-z0-9._-]{1,64} (xenchan's rule; xl
//                       itself accepts any string)
//   connection=pty|socket   mandatory (libxl rejects a channel without one);
//                       compared case-sensitively like xl, so "SOCKET" is an
//                       "unknown channel connection"
//   path=PATH           required for connection=socket (a Unix socket path,
//                       shorter than sun_path)
// Whitespace around keys and values is trimmed and empty items are skipped.
// Unknown keys produce a warning (returned, not printed) and are ignored, as
// xl does. A later duplicate key overrides an earlier one, as in xl.
//
// Pure functions: no I/O, thread-safe.
#ifndef XENCHAN_BACKEND_SIM_CHANNEL_SPEC_H_
#define XENCHAN_BACKEND_SIM_CHANNEL_SPEC_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace xenchan {
namespace sim {

// How QEMU exposes a toolstack channel in dom0.
enum class ChannelConnection { kPty, kSocket };

// "pty" or "socket": the xenstore spelling (backend `connection` key).
const char* ChannelConnectionName(ChannelConnection c);

// One parsed xl.cfg channel.
struct ChannelSpec {
  std::string name;
  ChannelConnection connection = ChannelConnection::kPty;
  // The Unix socket path QEMU listens on; empty for pty channels.
  std::string path;
  // The backend domain id; always 0 (only dom0 backends are supported).
  uint32_t backend_domid = 0;
};

struct ParsedChannelSpec {
  ChannelSpec spec;
  // One human-readable line per ignored key (xl prints these to stderr).
  std::vector<std::string> warnings;
};

// Maximum length of a channel name (the registry advice of DESIGN.md §3).
inline constexpr size_t kMaxChannelNameLength = 64;
// Unix socket paths must fit sockaddr_un.sun_path with its NUL.
inline constexpr size_t kMaxSocketPathLength = 107;

// True if `name` is a valid channel name: [A-Za-z0-9._-]{1,64}.
bool IsValidChannelName(absl::string_view name);

// Parses one spec. INVALID_ARGUMENT, with a message naming the problem, for:
// an item without '=', a missing or invalid name, a missing or unknown
// connection ("unknown channel connection 'X'"), a socket without a path or
// with a path that is too long or contains a NUL, an unsupported backend.
absl::StatusOr<ParsedChannelSpec> ParseChannelSpec(absl::string_view text);

}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_CHANNEL_SPEC_H_
