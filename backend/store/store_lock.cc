// The store's exclusive lock file; see store_lock.h.
#include "backend/store/store_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "backend/util/errno_status.h"

namespace xenchan {
namespace {

// The pid another holder wrote into the lock file, as text ("" if none).
std::string HolderPid(int fd) {
  char buf[32];
  const ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return "";
  const absl::string_view text = absl::StripAsciiWhitespace(absl::string_view(buf, n));
  int pid = 0;
  if (!absl::SimpleAtoi(text, &pid) || pid <= 0) return "";
  return absl::StrCat(pid);
}

}  // namespace

absl::StatusOr<StoreLock> StoreLock::Acquire(const std::string& store_path) {
  std::string lock_path = absl::StrCat(store_path, ".lock");
  const int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", lock_path));
  StoreLock lock(fd, lock_path);
  int rc;
  do {
    rc = flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    if (err != EWOULDBLOCK) return ErrnoToStatus(err, absl::StrCat("flock ", lock_path));
    const std::string pid = HolderPid(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("declaration store ", store_path, " is in use by another process",
                     pid.empty() ? "" : absl::StrCat(" (pid ", pid, ")"), ": ", lock_path,
                     " is locked, and xenchand must be the store's only user"));
  }
  // Ours now: say who holds it. Best effort, the lock itself is what counts.
  const std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd, 0) == 0) {
    (void)!pwrite(fd, pid.data(), pid.size(), 0);
  }
  return lock;
}

StoreLock::StoreLock(StoreLock&& other) noexcept
    : fd_(other.fd_), lock_path_(std::move(other.lock_path_)) {
  other.fd_ = -1;
}

StoreLock& StoreLock::operator=(StoreLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.fd_;
    lock_path_ = std::move(other.lock_path_);
    other.fd_ = -1;
  }
  return *this;
}

StoreLock::~StoreLock() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace xenchan
