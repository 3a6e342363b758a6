// EventChannels over libxenevtchn, for a real Xen host.
#ifndef XENCHAN_BACKEND_PLATFORM_XEN_EVENT_CHANNELS_H_
#define XENCHAN_BACKEND_PLATFORM_XEN_EVENT_CHANNELS_H_

#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backend/platform/event_channels.h"

struct xenevtchn_handle;

namespace xenchan {

// One xenevtchn handle (/dev/xen/evtchn), closed when destroyed (which
// unbinds every port it holds). Status codes as EventChannels documents:
// INVALID_ARGUMENT (EINVAL: remote port not unbound or not earmarked for us,
// bad port), NOT_FOUND (ESRCH: no such domain), UNAVAILABLE (no event-channel
// device, e.g. not running on Xen). Blocking: short ioctls; Pending() polls
// the fd first, so it never waits. Not thread-safe; must not be used in a
// forked child.
class XenEventChannels : public EventChannels {
 public:
  // UNAVAILABLE with the errno text if the device cannot be opened.
  static absl::StatusOr<std::unique_ptr<XenEventChannels>> Create();
  ~XenEventChannels() override;
  XenEventChannels(const XenEventChannels&) = delete;
  XenEventChannels& operator=(const XenEventChannels&) = delete;

  int fd() const override;
  absl::StatusOr<EvtchnPort> BindInterdomain(uint32_t domid, EvtchnPort remote_port) override;
  absl::Status Unbind(EvtchnPort port) override;
  absl::Status Notify(EvtchnPort port) override;
  absl::StatusOr<std::optional<EvtchnPort>> Pending() override;
  absl::Status Unmask(EvtchnPort port) override;

 private:
  explicit XenEventChannels(xenevtchn_handle* xce) : xce_(xce) {}
  xenevtchn_handle* const xce_;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_XEN_EVENT_CHANNELS_H_
