// errno to absl::Status for the Xen platform libraries.
#ifndef XENCHAN_BACKEND_PLATFORM_XEN_ERRORS_H_
#define XENCHAN_BACKEND_PLATFORM_XEN_ERRORS_H_

#include <errno.h>
#include <string.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace xenchan {
namespace xen_internal {

// Maps an errno from libxenevtchn/libxengnttab to the platform interfaces'
// codes: EINVAL -> INVALID_ARGUMENT, ESRCH -> NOT_FOUND, EPERM/EACCES ->
// PERMISSION_DENIED, ENOMEM/ENOSPC -> RESOURCE_EXHAUSTED, a missing device
// (ENOENT/ENODEV/ENXIO) -> UNAVAILABLE, others by absl's table.
inline absl::Status XenErrnoToStatus(int err, absl::string_view what) {
  absl::StatusCode code;
  switch (err) {
    case EINVAL:
      code = absl::StatusCode::kInvalidArgument;
      break;
    case ESRCH:
      code = absl::StatusCode::kNotFound;
      break;
    case EPERM:
    case EACCES:
      code = absl::StatusCode::kPermissionDenied;
      break;
    case ENOMEM:
    case ENOSPC:
      code = absl::StatusCode::kResourceExhausted;
      break;
    case ENOENT:
    case ENODEV:
    case ENXIO:
      code = absl::StatusCode::kUnavailable;
      break;
    default:
      code = absl::ErrnoToStatusCode(err);
      break;
  }
  return absl::Status(code, absl::StrCat(what, ": ", strerror(err)));
}

}  // namespace xen_internal
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_XEN_ERRORS_H_
