// LibXenStore: XenStore over libxenstore.
#include "backend/platform/xen/lib_xenstore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
// Debian's xenstore.h has no extern "C" guard of its own.
extern "C" {
#include <xenstore.h>
}

#include <mutex>

#include "absl/strings/str_cat.h"
#include "backend/util/errno_status.h"

namespace xenchan {
namespace {

// xs_open reads XENSTORED_PATH from the environment; the environment is
// process-wide, so opens that set it are serialised.
std::mutex& EnvMutex() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}

struct FreeDeleter {
  void operator()(void* p) const { free(p); }
};

}  // namespace

absl::Status XsErrnoToStatus(int err, const std::string& what) {
  // EAGAIN from xenstored is a transaction conflict: run it again. Anything
  // the shared table does not name means the connection is unusable.
  static constexpr ErrnoCode kOverrides[] = {{EAGAIN, absl::StatusCode::kAborted}};
  return ErrnoToStatus(err, what, ErrnoMapping{kOverrides, absl::StatusCode::kUnavailable});
}

absl::StatusOr<std::unique_ptr<LibXenStore>> LibXenStore::Open(const std::string& socket_path) {
  xs_handle* h;
  {
    std::lock_guard<std::mutex> lock(EnvMutex());
    const char* old = getenv("XENSTORED_PATH");
    const std::string saved = old ? old : "";
    if (!socket_path.empty()) setenv("XENSTORED_PATH", socket_path.c_str(), 1);
    h = xs_open(0);
    const int err = errno;
    if (!socket_path.empty()) {
      if (old) {
        setenv("XENSTORED_PATH", saved.c_str(), 1);
      } else {
        unsetenv("XENSTORED_PATH");
      }
    }
    if (h == nullptr) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to xenstored at ",
                       socket_path.empty() ? std::string("its default socket") : socket_path, ": ",
                       strerror(err)));
    }
  }
  return std::unique_ptr<LibXenStore>(new LibXenStore(h));
}

LibXenStore::~LibXenStore() { xs_close(h_); }

absl::StatusOr<std::string> LibXenStore::Read(XsTransaction t, const std::string& path) {
  unsigned int len = 0;
  std::unique_ptr<char, FreeDeleter> value(static_cast<char*>(xs_read(h_, t, path.c_str(), &len)));
  if (!value) return XsErrnoToStatus(errno, absl::StrCat("read ", path));
  return std::string(value.get(), len);
}

absl::Status LibXenStore::Write(XsTransaction t, const std::string& path,
                                const std::string& value) {
  if (!xs_write(h_, t, path.c_str(), value.data(), value.size())) {
    return XsErrnoToStatus(errno, absl::StrCat("write ", path));
  }
  return absl::OkStatus();
}

absl::Status LibXenStore::Mkdir(XsTransaction t, const std::string& path) {
  if (!xs_mkdir(h_, t, path.c_str())) return XsErrnoToStatus(errno, absl::StrCat("mkdir ", path));
  return absl::OkStatus();
}

absl::Status LibXenStore::Remove(XsTransaction t, const std::string& path) {
  if (!xs_rm(h_, t, path.c_str())) return XsErrnoToStatus(errno, absl::StrCat("rm ", path));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> LibXenStore::Directory(XsTransaction t,
                                                                const std::string& path) {
  unsigned int num = 0;
  std::unique_ptr<char*, FreeDeleter> entries(xs_directory(h_, t, path.c_str(), &num));
  if (!entries) return XsErrnoToStatus(errno, absl::StrCat("directory ", path));
  return std::vector<std::string>(entries.get(), entries.get() + num);
}

absl::Status LibXenStore::SetPermissions(XsTransaction t, const std::string& path,
                                         const std::vector<XsPermission>& perms) {
  std::vector<xs_permissions> raw;
  raw.reserve(perms.size());
  for (const XsPermission& p : perms) {
    raw.push_back(xs_permissions{p.domid, static_cast<unsigned int>(p.access)});
  }
  if (!xs_set_permissions(h_, t, path.c_str(), raw.data(), raw.size())) {
    return XsErrnoToStatus(errno, absl::StrCat("set permissions of ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<XsPermission>> LibXenStore::GetPermissions(XsTransaction t,
                                                                      const std::string& path) {
  unsigned int num = 0;
  std::unique_ptr<xs_permissions, FreeDeleter> raw(xs_get_permissions(h_, t, path.c_str(), &num));
  if (!raw) return XsErrnoToStatus(errno, absl::StrCat("get permissions of ", path));
  std::vector<XsPermission> perms;
  for (unsigned int i = 0; i < num; ++i) {
    const xs_permissions& p = raw.get()[i];
    perms.push_back(XsPermission{
        p.id, static_cast<XsPermission::Access>(p.perms & (XS_PERM_READ | XS_PERM_WRITE))});
  }
  return perms;
}

absl::StatusOr<XsTransaction> LibXenStore::StartTransaction() {
  const xs_transaction_t t = xs_transaction_start(h_);
  if (t == XBT_NULL) return XsErrnoToStatus(errno, "start transaction");
  return t;
}

absl::Status LibXenStore::EndTransaction(XsTransaction t, bool commit) {
  if (!xs_transaction_end(h_, t, !commit)) {
    return XsErrnoToStatus(errno, commit ? "commit transaction" : "abort transaction");
  }
  return absl::OkStatus();
}

absl::Status LibXenStore::Watch(const std::string& path, const std::string& token) {
  if (watch_fd_ < 0) watch_fd_ = xs_fileno(h_);
  if (!xs_watch(h_, path.c_str(), token.c_str())) {
    return XsErrnoToStatus(errno, absl::StrCat("watch ", path));
  }
  return absl::OkStatus();
}

absl::Status LibXenStore::Unwatch(const std::string& path, const std::string& token) {
  if (!xs_unwatch(h_, path.c_str(), token.c_str())) {
    return XsErrnoToStatus(errno, absl::StrCat("unwatch ", path));
  }
  return absl::OkStatus();
}

int LibXenStore::WatchFd() const { return watch_fd_ >= 0 ? watch_fd_ : xs_fileno(h_); }

std::optional<XsWatchEvent> LibXenStore::ReadWatch() {
  std::unique_ptr<char*, FreeDeleter> event(xs_check_watch(h_));
  if (!event) return std::nullopt;
  return XsWatchEvent{event.get()[XS_WATCH_PATH], event.get()[XS_WATCH_TOKEN]};
}

absl::StatusOr<bool> LibXenStore::IsDomainIntroduced(uint32_t domid) {
  errno = 0;
  const bool introduced = xs_is_domain_introduced(h_, domid);
  if (!introduced && errno != 0 && errno != ENOENT) {
    return XsErrnoToStatus(errno, absl::StrCat("is domain ", domid, " introduced"));
  }
  return introduced;
}

absl::Status LibXenStore::IntroduceDomain(uint32_t domid, unsigned long mfn, unsigned int port) {
  if (!xs_introduce_domain(h_, domid, mfn, port)) {
    return XsErrnoToStatus(errno, absl::StrCat("introduce domain ", domid));
  }
  return absl::OkStatus();
}

absl::Status LibXenStore::ReleaseDomain(uint32_t domid) {
  if (!xs_release_domain(h_, domid)) {
    return XsErrnoToStatus(errno, absl::StrCat("release domain ", domid));
  }
  return absl::OkStatus();
}

}  // namespace xenchan
