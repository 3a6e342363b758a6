// errno to absl::Status for the Xen platform libraries: the shared table
// (backend/util/errno_status.h) with the departures libxenevtchn and
// libxengnttab need.
#ifndef XENCHAN_BACKEND_PLATFORM_XEN_ERRORS_H_
#define XENCHAN_BACKEND_PLATFORM_XEN_ERRORS_H_

#include <errno.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "backend/util/errno_status.h"

namespace xenchan {
namespace xen_internal {

// Maps an errno from libxenevtchn/libxengnttab to the platform interfaces'
// codes: EINVAL -> INVALID_ARGUMENT, ESRCH -> NOT_FOUND, EPERM/EACCES ->
// PERMISSION_DENIED, ENOMEM/ENOSPC -> RESOURCE_EXHAUSTED, a missing device
// (ENOENT/ENODEV/ENXIO) -> UNAVAILABLE, a busy grant or port (EBUSY) ->
// FAILED_PRECONDITION, others by the shared table.
inline absl::Status XenErrnoToStatus(int err, absl::string_view what) {
  static constexpr ErrnoCode kOverrides[] = {
      {ENOENT, absl::StatusCode::kUnavailable},
      {ENODEV, absl::StatusCode::kUnavailable},
      {ENXIO, absl::StatusCode::kUnavailable},
      {EBUSY, absl::StatusCode::kFailedPrecondition},
  };
  return ErrnoToStatus(err, what, ErrnoMapping{kOverrides, std::nullopt});
}

}  // namespace xen_internal
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_XEN_ERRORS_H_
