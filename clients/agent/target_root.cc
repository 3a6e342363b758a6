// Confined, atomic file writes below the agent's target root (see
// target_root.h).
#include "clients/agent/target_root.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace xenchan {
namespace agent {
namespace {

constexpr size_t kMaxPath = 4096;
constexpr size_t kMaxComponent = 255;

absl::Status ErrnoStatus(int err, absl::string_view what) {
  const std::string msg = absl::StrCat(what, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(msg);
    case ELOOP:
      return absl::PermissionDeniedError(absl::StrCat(what, ": symbolic link refused"));
    case ENOTDIR:
    case EISDIR:
      return absl::FailedPreconditionError(msg);
    default:
      return absl::InternalError(msg);
  }
}

// Closes a descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::atomic<uint64_t> temp_counter{0};

}  // namespace

absl::StatusOr<std::unique_ptr<TargetRoot>> TargetRoot::Open(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("target root ", dir));
  return std::unique_ptr<TargetRoot>(new TargetRoot(dir, fd));
}

TargetRoot::~TargetRoot() { close(fd_); }

absl::StatusOr<std::vector<std::string>> TargetRoot::SplitPath(absl::string_view path) {
  if (path.empty()) return absl::InvalidArgumentError("empty path");
  if (path.size() > kMaxPath) return absl::InvalidArgumentError("path longer than 4096 bytes");
  if (path.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("path contains a NUL byte");
  }
  std::vector<std::string> out;
  for (absl::string_view c : absl::StrSplit(path, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      return absl::PermissionDeniedError(
          absl::StrCat("path ", path, " has a '..' component: it may not leave the target root"));
    }
    if (c.size() > kMaxComponent) {
      return absl::InvalidArgumentError("path component longer than 255 bytes");
    }
    out.emplace_back(c);
  }
  if (out.empty()) return absl::InvalidArgumentError(absl::StrCat("path ", path, " names no file"));
  return out;
}

std::string TargetRoot::Canonical(const std::vector<std::string>& components) {
  return absl::StrCat("/", absl::StrJoin(components, "/"));
}

absl::StatusOr<int> TargetRoot::OpenDirectory(const std::vector<std::string>& components,
                                              bool create, mode_t create_mode,
                                              const std::optional<FileOwner>& owner) const {
  int fd = fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus(errno, "dup");
  std::string walked;
  for (size_t i = 0; i < components.size(); ++i) {
    const std::string& c = components[i];
    absl::StrAppend(&walked, "/", c);
    int next = openat(fd, c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && create) {
      const mode_t mode = i + 1 == components.size() ? create_mode : 0755;
      if (mkdirat(fd, c.c_str(), mode) != 0 && errno != EEXIST) {
        const int err = errno;
        close(fd);
        return ErrnoStatus(err, absl::StrCat("mkdir ", walked));
      }
      next = openat(fd, c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next >= 0) {
        // mkdir applies the umask: set the intended mode exactly.
        fchmod(next, mode);
        // Only the directory asked for gets the owner; parents stay root's.
        if (i + 1 == components.size() && owner.has_value() && geteuid() == 0 &&
            fchown(next, owner->uid, owner->gid) != 0) {
          const int err = errno;
          close(next);
          close(fd);
          return ErrnoStatus(err, absl::StrCat("chown ", walked));
        }
      }
    }
    if (next < 0) {
      int err = errno;
      // O_DIRECTORY|O_NOFOLLOW on a symlink gives ELOOP or ENOTDIR
      // depending on the kernel: tell them apart.
      struct stat st;
      if (err == ENOTDIR && fstatat(fd, c.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(st.st_mode)) {
        err = ELOOP;
      }
      close(fd);
      if (err == ELOOP) {
        return absl::PermissionDeniedError(
            absl::StrCat(walked,
                         " is a symbolic link: refused (paths may not leave the target "
                         "root through links)"));
      }
      return ErrnoStatus(err, walked);
    }
    close(fd);
    fd = next;
  }
  return fd;
}

absl::Status TargetRoot::WriteFile(absl::string_view path, absl::string_view content, mode_t mode,
                                   const std::optional<FileOwner>& owner, mode_t dir_mode) {
  absl::StatusOr<std::vector<std::string>> parts = SplitPath(path);
  if (!parts.ok()) return parts.status();
  const std::string name = parts->back();
  parts->pop_back();
  absl::StatusOr<int> dir_fd = OpenDirectory(*parts, /*create=*/true, dir_mode, owner);
  if (!dir_fd.ok()) return dir_fd.status();
  Fd dir(*dir_fd);
  const std::string shown = Canonical(*parts) == "/" ? absl::StrCat("/", name)
                                                     : absl::StrCat(Canonical(*parts), "/", name);

  struct stat st;
  if (fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(shown, " is a directory"));
  }

  std::string temp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    temp = absl::StrCat(".xenchan-agent-", getpid(), "-", temp_counter.fetch_add(1), ".tmp");
    fd =
        openat(dir.get(), temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) return ErrnoStatus(errno, absl::StrCat("create in ", shown));
  }
  if (fd < 0) return absl::InternalError(absl::StrCat("no free temporary name for ", shown));
  const auto fail = [&](int err, absl::string_view what) {
    close(fd);
    unlinkat(dir.get(), temp.c_str(), 0);
    return ErrnoStatus(err, absl::StrCat(what, " ", shown));
  };
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(errno, "write");
    done += static_cast<size_t>(n);
  }
  if (fchmod(fd, mode & 07777) != 0) return fail(errno, "chmod");
  if (owner.has_value() && geteuid() == 0 && fchown(fd, owner->uid, owner->gid) != 0) {
    return fail(errno, "chown");
  }
  if (fsync(fd) != 0) return fail(errno, "fsync");
  if (close(fd) != 0) {
    const int err = errno;
    unlinkat(dir.get(), temp.c_str(), 0);
    return ErrnoStatus(err, absl::StrCat("close ", shown));
  }
  if (renameat(dir.get(), temp.c_str(), dir.get(), name.c_str()) != 0) {
    const int err = errno;
    unlinkat(dir.get(), temp.c_str(), 0);
    return ErrnoStatus(err, absl::StrCat("rename to ", shown));
  }
  if (fsync(dir.get()) != 0) return ErrnoStatus(errno, absl::StrCat("fsync directory of ", shown));
  return absl::OkStatus();
}

absl::Status TargetRoot::EnsureDirectory(absl::string_view path, mode_t mode,
                                         const std::optional<FileOwner>& owner) {
  absl::StatusOr<std::vector<std::string>> parts = SplitPath(path);
  if (!parts.ok()) return parts.status();
  absl::StatusOr<int> fd = OpenDirectory(*parts, /*create=*/true, mode, owner);
  if (!fd.ok()) return fd.status();
  Fd dir(*fd);
  if (fchmod(dir.get(), mode & 07777) != 0) return ErrnoStatus(errno, absl::StrCat("chmod ", path));
  if (owner.has_value() && geteuid() == 0 && fchown(dir.get(), owner->uid, owner->gid) != 0) {
    return ErrnoStatus(errno, absl::StrCat("chown ", path));
  }
  return absl::OkStatus();
}

absl::Status TargetRoot::RemoveFile(absl::string_view path) {
  absl::StatusOr<std::vector<std::string>> parts = SplitPath(path);
  if (!parts.ok()) return parts.status();
  const std::string name = parts->back();
  parts->pop_back();
  absl::StatusOr<int> dir_fd = OpenDirectory(*parts, /*create=*/false, 0, std::nullopt);
  if (!dir_fd.ok()) return dir_fd.status();
  Fd dir(*dir_fd);
  if (unlinkat(dir.get(), name.c_str(), 0) != 0) {
    return ErrnoStatus(errno, std::string(path));
  }
  if (fsync(dir.get()) != 0) return ErrnoStatus(errno, absl::StrCat("fsync directory of ", path));
  return absl::OkStatus();
}

absl::StatusOr<std::string> TargetRoot::ReadFile(absl::string_view path, size_t max_bytes) const {
  absl::StatusOr<std::vector<std::string>> parts = SplitPath(path);
  if (!parts.ok()) return parts.status();
  const std::string name = parts->back();
  parts->pop_back();
  absl::StatusOr<int> dir_fd = OpenDirectory(*parts, /*create=*/false, 0, std::nullopt);
  if (!dir_fd.ok()) return dir_fd.status();
  Fd dir(*dir_fd);
  const int raw = openat(dir.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (raw < 0) return ErrnoStatus(errno, std::string(path));
  Fd fd(raw);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, std::string(path));
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a regular file"));
  }
  std::string out;
  char buf[8192];
  while (true) {
    const ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, std::string(path));
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(path, " is larger than ", max_bytes));
    }
  }
  return out;
}

}  // namespace agent
}  // namespace xenchan
