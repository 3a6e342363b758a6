// The tokens the engine registers its xenstore watches with, and which part
// of the engine a firing watch is for. Every token is the engine's own
// (xenstored hands it back unchanged), one kind per watched thing:
//   "intro"          @introduceDomain         -> domain discovery
//   "release"        @releaseDomain           -> domain discovery
//   "name/<domid>"   a domain's name node     -> domain discovery
//   "ts"             QEMU's console backends  -> toolstack discovery
//   "ts/<serial>"    one toolstack channel    -> that channel
//   "fe/<serial>"    one ring channel's FE    -> that channel
// Pure functions; thread-safe.
#ifndef XENCHAN_BACKEND_ENGINE_WATCH_TOKENS_H_
#define XENCHAN_BACKEND_ENGINE_WATCH_TOKENS_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace xenchan {

inline constexpr char kIntroduceDomainToken[] = "intro";
inline constexpr char kReleaseDomainToken[] = "release";
inline constexpr char kToolstackBackendsToken[] = "ts";

// "name/<domid>"
std::string DomainNameWatchToken(uint32_t domid);
std::string DomainShutdownWatchToken(uint32_t domid);
// "ts/<serial>"
std::string ToolstackChannelWatchToken(uint64_t serial);
// "fe/<serial>"
std::string RingFrontendWatchToken(uint64_t serial);

// What a firing watch's token says it is for.
struct WatchTarget {
  enum class Kind {
    kUnknown,            // not one of ours (ignored)
    kIntroduceDomain,    // a domain may have appeared
    kReleaseDomain,      // a domain may have died
    kDomainName,         // `id` is the domid
    kDomainShutdown,     // `id` is the domid
    kToolstackBackends,  // a toolstack channel may have appeared
    kToolstackChannel,   // `id` is the channel's serial
    kRingFrontend,       // `id` is the channel's serial
  };
  Kind kind = Kind::kUnknown;
  uint64_t id = 0;
};
WatchTarget ParseWatchToken(absl::string_view token);

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_WATCH_TOKENS_H_
