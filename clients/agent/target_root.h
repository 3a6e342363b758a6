// TargetRoot: the directory tree xenchan-agent provisions into (a guest's
// `/`, or a mounted image of it for first-boot provisioning), with every file
// operation confined to it.
//
// Paths are given as the guest sees them ("/etc/hostname"); a leading "/" is
// the target root, so absolute paths never reach outside it. A path is
// refused if it is empty, longer than 4096 bytes, contains NUL, has a
// component longer than 255 bytes, or contains a ".." component
// (PERMISSION_DENIED). Every directory on the way is opened with
// O_NOFOLLOW relative to the one before (openat from the root's descriptor),
// so a symbolic link anywhere in the directory part is refused
// (PERMISSION_DENIED) instead of followed; the final name is replaced with
// rename(2), which replaces a symlink itself rather than writing through it.
// This also refuses symlinks that stay inside the root (such as a merged-/usr
// `/bin -> usr/bin`): provisioning paths must name real directories.
//
// Files are written atomically: a temporary file in the same directory is
// written, given its mode (and owner), fsync'ed, renamed over the final name,
// and the directory is fsync'ed; on any failure the temporary is removed and
// the old file, if any, is untouched.
//
// Ownership: when an owner is given and the agent runs as root, the file (or
// the directory of EnsureDirectory, and the file's own parent directory if it
// had to be created) gets that owner; other directories created on the way
// get mode 0755 and the agent's user. Without root, everything belongs to the
// agent's user.
//
// Thread safety: thread-compatible; operations on one TargetRoot from several
// threads are safe as long as they do not write the same path.
#ifndef XENCHAN_CLIENTS_AGENT_TARGET_ROOT_H_
#define XENCHAN_CLIENTS_AGENT_TARGET_ROOT_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace xenchan {
namespace agent {

struct FileOwner {
  uid_t uid = 0;
  gid_t gid = 0;
};

class TargetRoot {
 public:
  // Opens `dir`, which must be an existing directory. NOT_FOUND or
  // FAILED_PRECONDITION (not a directory) otherwise.
  static absl::StatusOr<std::unique_ptr<TargetRoot>> Open(const std::string& dir);
  ~TargetRoot();
  TargetRoot(const TargetRoot&) = delete;
  TargetRoot& operator=(const TargetRoot&) = delete;

  // The components of `path` after the checks above ("/etc//x" -> {"etc",
  // "x"}; "." components are dropped). INVALID_ARGUMENT for a malformed path,
  // PERMISSION_DENIED for "..".
  static absl::StatusOr<std::vector<std::string>> SplitPath(absl::string_view path);
  // "/" + the components joined by "/": the canonical form of a path.
  static std::string Canonical(const std::vector<std::string>& components);

  // Atomically writes `content` to `path` with permission bits `mode`
  // (& 07777). Missing parent directories are created with `dir_mode`.
  // Blocks on disk I/O (fsync). INVALID_ARGUMENT / PERMISSION_DENIED as
  // SplitPath, PERMISSION_DENIED for a symlink in the directory part,
  // FAILED_PRECONDITION if a component or the target is not of the right
  // type (a file in the directory part, a directory at the final name),
  // INTERNAL for other I/O errors.
  absl::Status WriteFile(absl::string_view path, absl::string_view content, mode_t mode,
                         const std::optional<FileOwner>& owner = std::nullopt,
                         mode_t dir_mode = 0755);

  // Makes sure directory `path` exists (creating parents with 0755 and the
  // last one with `mode`), then sets its mode to `mode` and, when root, its
  // owner. Same errors as WriteFile.
  absl::Status EnsureDirectory(absl::string_view path, mode_t mode,
                               const std::optional<FileOwner>& owner = std::nullopt);

  // Removes the file at `path` (a symlink at the final name is removed, not
  // followed), then fsyncs its directory. NOT_FOUND if it or a directory on
  // the way does not exist; FAILED_PRECONDITION for a directory; otherwise
  // the errors of WriteFile.
  absl::Status RemoveFile(absl::string_view path);

  // Reads at most `max_bytes` of the regular file at `path`, with the same
  // confinement (the final name must not be a symlink either). NOT_FOUND if
  // it does not exist, RESOURCE_EXHAUSTED if it is larger.
  absl::StatusOr<std::string> ReadFile(absl::string_view path, size_t max_bytes) const;

  const std::string& dir() const { return dir_; }

 private:
  TargetRoot(std::string dir, int fd) : dir_(std::move(dir)), fd_(fd) {}

  // Opens (and with `create`, makes) the directory given by `components`
  // below the root; returns an O_DIRECTORY descriptor the caller closes.
  absl::StatusOr<int> OpenDirectory(const std::vector<std::string>& components, bool create,
                                    mode_t create_mode,
                                    const std::optional<FileOwner>& owner) const;

  std::string dir_;
  int fd_;
};

}  // namespace agent
}  // namespace xenchan

#endif  // XENCHAN_CLIENTS_AGENT_TARGET_ROOT_H_
