// errno -> absl::Status: the one table every layer uses, so a failed system
// call reads the same way wherever it happened.
//
// The code says what the caller should do next (docs/STYLE.md "Errors"):
//   NOT_FOUND            ENOENT                      it is not there
//   PERMISSION_DENIED    EACCES, EPERM               ask with other rights
//   INVALID_ARGUMENT     EINVAL, E2BIG, ENAMETOOLONG the request itself is bad
//                                                    (E2BIG: a value over a
//                                                    fixed protocol limit, as
//                                                    XenStore documents it)
//   ALREADY_EXISTS       EEXIST                      it is there already
//   RESOURCE_EXHAUSTED   ENOSPC, ENOMEM, EDQUOT      over a limit
//   UNAVAILABLE          EAGAIN, EINTR, EBUSY        retry later
//   FAILED_PRECONDITION  EISDIR, ENOTDIR, ENOTEMPTY  fix the state first
// Any other errno gets absl::ErrnoToStatusCode's code, unless the facility
// says otherwise (ErrnoMapping::unlisted). Zero, which is no error, gets
// UNKNOWN: an error path never turns into an OK status.
//
// A facility whose errnos mean something more precise passes an
// ErrnoMapping: libxenstore's EAGAIN is a transaction conflict (ABORTED),
// and a missing /dev/xen device means Xen is not running (UNAVAILABLE).
//
// The message is always "<what>: <strerror(err)>".
//
// Thread safety: pure functions (strerror_r, not strerror).
#ifndef XENCHAN_BACKEND_UTIL_ERRNO_STATUS_H_
#define XENCHAN_BACKEND_UTIL_ERRNO_STATUS_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace xenchan {

// One errno whose code a facility sets itself.
struct ErrnoCode {
  int err;
  absl::StatusCode code;
};

// How one facility departs from the shared table: `overrides` are looked at
// first; `unlisted`, when set, is the code for errnos that neither
// `overrides` nor the shared table name (absl::ErrnoToStatusCode's code when
// unset).
struct ErrnoMapping {
  absl::Span<const ErrnoCode> overrides;
  std::optional<absl::StatusCode> unlisted;
};

// "<what>: <strerror(err)>".
std::string ErrnoMessage(int err, absl::string_view what);

// The code for `err` under `mapping` (the shared table alone by default).
// Never kOk.
absl::StatusCode ErrnoStatusCode(int err, const ErrnoMapping& mapping = {});

// A status with ErrnoStatusCode(err, mapping) and ErrnoMessage(err, what).
// Pass the errno saved right after the failing call.
absl::Status ErrnoToStatus(int err, absl::string_view what, const ErrnoMapping& mapping = {});

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_UTIL_ERRNO_STATUS_H_
