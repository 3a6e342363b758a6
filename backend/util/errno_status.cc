// The shared errno -> absl::Status table; see errno_status.h.
#include "backend/util/errno_status.h"

#include <errno.h>
#include <string.h>

#include "absl/strings/str_cat.h"

namespace xenchan {
namespace {

// The shared table; nullopt for errnos it does not name.
std::optional<absl::StatusCode> SharedCode(int err) {
  switch (err) {
    case ENOENT:
      return absl::StatusCode::kNotFound;
    case EACCES:
    case EPERM:
      return absl::StatusCode::kPermissionDenied;
    case EINVAL:
    case E2BIG:
    case ENAMETOOLONG:
      return absl::StatusCode::kInvalidArgument;
    case EEXIST:
      return absl::StatusCode::kAlreadyExists;
    case ENOSPC:
    case ENOMEM:
    case EDQUOT:
      return absl::StatusCode::kResourceExhausted;
    case EAGAIN:
    case EINTR:
    case EBUSY:
      return absl::StatusCode::kUnavailable;
    case EISDIR:
    case ENOTDIR:
    case ENOTEMPTY:
      return absl::StatusCode::kFailedPrecondition;
    default:
      return std::nullopt;
  }
}

}  // namespace

std::string ErrnoMessage(int err, absl::string_view what) {
  char buf[256];
  // GNU strerror_r: returns the text, in `buf` or a static string.
  const char* text = strerror_r(err, buf, sizeof(buf));
  return absl::StrCat(what, ": ", text);
}

absl::StatusCode ErrnoStatusCode(int err, const ErrnoMapping& mapping) {
  for (const ErrnoCode& o : mapping.overrides) {
    if (o.err == err) return o.code;
  }
  if (std::optional<absl::StatusCode> code = SharedCode(err)) return *code;
  if (mapping.unlisted.has_value()) return *mapping.unlisted;
  const absl::StatusCode code = absl::ErrnoToStatusCode(err);
  return code == absl::StatusCode::kOk ? absl::StatusCode::kUnknown : code;
}

absl::Status ErrnoToStatus(int err, absl::string_view what, const ErrnoMapping& mapping) {
  return absl::Status(ErrnoStatusCode(err, mapping), ErrnoMessage(err, what));
}

}  // namespace xenchan
