// PolicyStore and PolicyWatcher; see policy_store.h.
#include "server/policy/policy_store.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "backend/util/errno_status.h"

namespace xenchan {
namespace server {
namespace policy {
namespace {

// As the audit log has it: the shared errno table, except that a path
// through a non-directory is a policy file that is not there (NOT_FOUND), and
// errnos the table does not name are INTERNAL.
absl::Status ErrnoStatus(int err, absl::string_view what) {
  static constexpr ErrnoCode kOverrides[] = {{ENOTDIR, absl::StatusCode::kNotFound}};
  return ErrnoToStatus(err, what, ErrnoMapping{kOverrides, absl::StatusCode::kInternal});
}

// The whole file, at most Policy::kMaxBytes + 1 bytes (Parse refuses more).
absl::StatusOr<std::string> ReadPolicyFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("cannot open policy ", path));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return ErrnoStatus(err, absl::StrCat("cannot stat policy ", path));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat("policy ", path, " is not a regular file"));
  }
  std::string text;
  char buf[16384];
  while (text.size() <= Policy::kMaxBytes) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return ErrnoStatus(err, absl::StrCat("cannot read policy ", path));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return text;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PolicyStore>> PolicyStore::Create(Options options) {
  std::unique_ptr<PolicyStore> store(new PolicyStore(std::move(options)));
  absl::Status status = store->Reload();
  if (!status.ok()) return status;
  return store;
}

std::shared_ptr<const Policy> PolicyStore::Current() const {
  MutexLock lock(&mu_);
  return current_;
}

ReloadStatus PolicyStore::status() const {
  MutexLock lock(&mu_);
  return status_;
}

bool PolicyStore::AwaitAttempts(uint64_t attempts, absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  MutexLock lock(&mu_);
  while (status_.attempts < attempts) {
    if (attempts_cv_.WaitWithDeadline(&mu_, deadline)) return status_.attempts >= attempts;
  }
  return true;
}

absl::StatusOr<std::shared_ptr<const Policy>> PolicyStore::Load() {
  absl::StatusOr<std::string> text = ReadPolicyFile(options_.path);
  if (!text.ok()) return text.status();
  if (have_loaded_ && *text == loaded_text_) return std::shared_ptr<const Policy>();
  absl::StatusOr<Policy> policy = Policy::Parse(*text, options_.path);
  if (!policy.ok()) return policy.status();
  loaded_text_ = *std::move(text);
  have_loaded_ = true;
  return std::make_shared<const Policy>(*std::move(policy));
}

absl::Status PolicyStore::Reload() {
  MutexLock reload_lock(&reload_mu_);
  absl::StatusOr<std::shared_ptr<const Policy>> loaded = Load();
  absl::Status status = loaded.status();
  ReloadStatus totals;
  {
    MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    ++status_.attempts;
    status_.last_attempt = now;
    if (!loaded.ok()) {
      ++status_.failures;
      if (current_ != nullptr) {
        status = absl::Status(
            status.code(), absl::StrCat(status.message(), " (refused; the policy loaded at ",
                                        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", status_.last_loaded,
                                                         absl::UTCTimeZone()),
                                        " stays in force)"));
      }
    } else if (*loaded == nullptr) {
      ++status_.unchanged;
    } else {
      ++status_.loaded;
      status_.last_loaded = now;
      current_ = *std::move(loaded);
    }
    status_.last_status = status;
    totals = status_;
    attempts_cv_.SignalAll();
  }
  if (options_.on_reload) options_.on_reload(status, totals);
  return status;
}

// ---------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<PolicyWatcher>> PolicyWatcher::Start(PolicyStore* store) {
  const std::string& path = store->path();
  const size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  if (dir.empty()) dir = "/";
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("policy path ", path, " names no file"));
  }
  const int inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd < 0) return ErrnoStatus(errno, "inotify_init1");
  if (inotify_add_watch(inotify_fd, dir.c_str(),
                        IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR) <
      0) {
    const int err = errno;
    close(inotify_fd);
    return ErrnoStatus(err, absl::StrCat("cannot watch directory ", dir));
  }
  const int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) {
    const int err = errno;
    close(inotify_fd);
    return ErrnoStatus(err, "eventfd");
  }
  std::unique_ptr<PolicyWatcher> watcher(new PolicyWatcher(store, inotify_fd, wake_fd, base));
  watcher->thread_ = std::thread([w = watcher.get()] { w->Run(); });
  return watcher;
}

PolicyWatcher::~PolicyWatcher() {
  stop_.store(true);
  RequestReload();  // wakes the thread
  if (thread_.joinable()) thread_.join();
  close(inotify_fd_);
  close(wake_fd_);
}

void PolicyWatcher::RequestReload() {
  const uint64_t one = 1;
  // Only fails if the counter would overflow, and then a wake-up is pending.
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

bool PolicyWatcher::DrainEvents() {
  bool relevant = false;
  alignas(struct inotify_event) char buf[8192];
  while (true) {
    const ssize_t n = read(inotify_fd_, buf, sizeof(buf));
    if (n <= 0) break;  // EAGAIN: drained
    for (ssize_t off = 0; off < n;) {
      const auto* event = reinterpret_cast<const struct inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(struct inotify_event) + event->len);
      if (event->mask & IN_Q_OVERFLOW) {
        relevant = true;  // events were lost: reload to be sure
        continue;
      }
      if (event->len == 0) continue;
      const char* name = event->name;
      // Our file written or renamed into place; or any entry renamed into the
      // directory (a symlink swap that our file may resolve through).
      if ((event->mask & IN_MOVED_TO) || basename_ == name) relevant = true;
    }
  }
  return relevant;
}

void PolicyWatcher::Run() {
  while (!stop_.load()) {
    struct pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const int n = poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    bool reload = false;
    if (fds[1].revents & POLLIN) {
      uint64_t count;
      ssize_t ignored = read(wake_fd_, &count, sizeof(count));
      (void)ignored;
      if (stop_.load()) return;
      reload = true;
    }
    if (fds[0].revents & POLLIN) {
      if (DrainEvents()) {
        change_reloads_.fetch_add(1);
        reload = true;
      }
    }
    if (reload) store_->Reload().IgnoreError();
  }
}

}  // namespace policy
}  // namespace server
}  // namespace xenchan
