#include "backend/platform/xen/event_channels.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
// The Xen library headers have no C++ linkage guard.
extern "C" {
#include <xenevtchn.h>
}

#include "absl/strings/str_cat.h"
#include "backend/platform/xen/errors.h"
#include "backend/util/errno_status.h"

namespace xenchan {

using xen_internal::XenErrnoToStatus;

absl::StatusOr<std::unique_ptr<XenEventChannels>> XenEventChannels::Create() {
  xenevtchn_handle* xce = xenevtchn_open(nullptr, 0);
  if (xce == nullptr) {
    int err = errno;
    // Whatever the reason, the caller can only try again later (or elsewhere).
    return absl::UnavailableError(ErrnoMessage(err, "xenevtchn_open"));
  }
  return std::unique_ptr<XenEventChannels>(new XenEventChannels(xce));
}

XenEventChannels::~XenEventChannels() { xenevtchn_close(xce_); }

int XenEventChannels::fd() const { return xenevtchn_fd(xce_); }

absl::StatusOr<EvtchnPort> XenEventChannels::BindInterdomain(uint32_t domid,
                                                             EvtchnPort remote_port) {
  xenevtchn_port_or_error_t port = xenevtchn_bind_interdomain(xce_, domid, remote_port);
  if (port < 0) {
    return XenErrnoToStatus(errno, absl::StrCat("bind to port ", remote_port, " of ", domid));
  }
  return static_cast<EvtchnPort>(port);
}

absl::Status XenEventChannels::Unbind(EvtchnPort port) {
  if (xenevtchn_unbind(xce_, port) != 0) {
    return XenErrnoToStatus(errno, absl::StrCat("unbind port ", port));
  }
  return absl::OkStatus();
}

absl::Status XenEventChannels::Notify(EvtchnPort port) {
  if (xenevtchn_notify(xce_, port) != 0) {
    return XenErrnoToStatus(errno, absl::StrCat("notify port ", port));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<EvtchnPort>> XenEventChannels::Pending() {
  // xenevtchn_pending reads the device and would block if nothing fired.
  struct pollfd pfd = {xenevtchn_fd(xce_), POLLIN, 0};
  int ready = poll(&pfd, 1, 0);
  if (ready < 0) {
    if (errno == EINTR) return std::optional<EvtchnPort>();
    return XenErrnoToStatus(errno, "poll event channels");
  }
  if (ready == 0) return std::optional<EvtchnPort>();
  xenevtchn_port_or_error_t port = xenevtchn_pending(xce_);
  if (port < 0) {
    if (errno == EAGAIN || errno == EINTR) return std::optional<EvtchnPort>();
    return XenErrnoToStatus(errno, "xenevtchn_pending");
  }
  return std::optional<EvtchnPort>(static_cast<EvtchnPort>(port));
}

absl::Status XenEventChannels::Unmask(EvtchnPort port) {
  if (xenevtchn_unmask(xce_, port) != 0) {
    return XenErrnoToStatus(errno, absl::StrCat("unmask port ", port));
  }
  return absl::OkStatus();
}

}  // namespace xenchan
