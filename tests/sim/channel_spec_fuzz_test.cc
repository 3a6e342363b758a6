// Fuzz target for the xl.cfg channel spec parser: any input must either be
// rejected with INVALID_ARGUMENT or yield a spec that satisfies the
// documented invariants.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "backend/sim/channel_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto parsed = xenchan::sim::ParseChannelSpec(text);
  if (!parsed.ok()) {
    if (parsed.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  const xenchan::sim::ChannelSpec& spec = parsed->spec;
  if (!xenchan::sim::IsValidChannelName(spec.name)) std::abort();
  if (spec.connection == xenchan::sim::ChannelConnection::kSocket) {
    if (spec.path.empty() || spec.path.size() > xenchan::sim::kMaxSocketPathLength) std::abort();
  } else if (!spec.path.empty()) {
    std::abort();
  }
  if (spec.backend_domid != 0) std::abort();
  return 0;
}
