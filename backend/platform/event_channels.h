// Interdomain event channels, as the channel engine uses them: the backend
// half of xenevtchn.h. Implementations: XenEventChannels (libxenevtchn) and
// SimEventChannels (xensim).
#ifndef XENCHAN_BACKEND_PLATFORM_EVENT_CHANNELS_H_
#define XENCHAN_BACKEND_PLATFORM_EVENT_CHANNELS_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace xenchan {

using EvtchnPort = uint32_t;

// One event-channel handle: a set of local ports bound to remote domains.
//
// Semantics follow xenevtchn.h: a port that fired is returned by Pending()
// and stays masked until Unmask(); a bind marks the new local port pending
// at once (expect one spurious event). When the handle is destroyed (or its
// process dies) every bound port is closed and each remote port reverts to
// unbound for this domain, so a restarted backend can bind it again.
//
// Status codes: INVALID_ARGUMENT (remote port not unbound or not earmarked
// for us, bad port), NOT_FOUND (no such domain), UNAVAILABLE (the facility
// is gone). Blocking: short system calls only; none waits for a peer.
// Thread safety: not thread-safe; one thread owns a handle.
class EventChannels {
 public:
  virtual ~EventChannels() = default;

  // Polls readable when Pending() may return a port.
  virtual int fd() const = 0;
  // Binds to `remote_port` of `domid`; returns the new local port.
  virtual absl::StatusOr<EvtchnPort> BindInterdomain(uint32_t domid, EvtchnPort remote_port) = 0;
  // Closes a local port; the remote end reverts to unbound.
  virtual absl::Status Unbind(EvtchnPort port) = 0;
  // Signals the remote end of a local port.
  virtual absl::Status Notify(EvtchnPort port) = 0;
  // Returns a fired local port (now masked), or nullopt if none fired. Call
  // after fd() polled readable.
  virtual absl::StatusOr<std::optional<EvtchnPort>> Pending() = 0;
  // Unmasks a port returned by Pending(); a firing while masked is delivered
  // now.
  virtual absl::Status Unmask(EvtchnPort port) = 0;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_EVENT_CHANNELS_H_
