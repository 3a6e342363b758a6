// mkdir -p: the one way xenchan creates a directory and its missing
// ancestors (xensim's state directory, a simulated guest's /dev tree).
// Thread-safe; blocking (file system calls).
#ifndef XENCHAN_BACKEND_UTIL_MAKE_DIRS_H_
#define XENCHAN_BACKEND_UTIL_MAKE_DIRS_H_

#include <sys/types.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace xenchan {

// Creates `path` and each missing ancestor with `mode` (less the umask).
// Repeated slashes count as one ("a//b" is "a/b"); a relative path is taken
// from the working directory. OK if `path` already is a directory (or a
// symbolic link to one), as a concurrent creator may have made it.
//
// INVALID_ARGUMENT for an empty path. FAILED_PRECONDITION ("mkdir <dir>: Not
// a directory") when `path` or an ancestor exists but is not a directory.
// Otherwise the first failing mkdir's errno through the shared table
// (backend/util/errno_status.h), naming that directory: PERMISSION_DENIED,
// RESOURCE_EXHAUSTED for a full file system, and so on. Directories made
// before a failure are left in place.
absl::Status MakeDirs(absl::string_view path, mode_t mode);

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_UTIL_MAKE_DIRS_H_
