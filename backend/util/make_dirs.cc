// mkdir -p; see make_dirs.h.
#include "backend/util/make_dirs.h"

#include <errno.h>
#include <sys/stat.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backend/util/errno_status.h"

namespace xenchan {
namespace {

// OK if `dir` exists and is a directory (following symbolic links).
absl::Status RequireDirectory(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return ErrnoToStatus(errno, absl::StrCat("stat ", dir));
  if (!S_ISDIR(st.st_mode)) return ErrnoToStatus(ENOTDIR, absl::StrCat("mkdir ", dir));
  return absl::OkStatus();
}

}  // namespace

absl::Status MakeDirs(absl::string_view path, mode_t mode) {
  if (path.empty()) return absl::InvalidArgumentError("mkdir -p of an empty path");
  std::string dir = path[0] == '/' ? "/" : "";
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (!dir.empty() && dir.back() != '/') dir.push_back('/');
    dir.append(part.data(), part.size());
    if (mkdir(dir.c_str(), mode) == 0) continue;
    const int err = errno;
    if (err != EEXIST) return ErrnoToStatus(err, absl::StrCat("mkdir ", dir));
    if (absl::Status s = RequireDirectory(dir); !s.ok()) return s;
  }
  // Only slashes: the root, which exists.
  return dir == "/" ? RequireDirectory(dir) : absl::OkStatus();
}

}  // namespace xenchan
