// The xenstore facility the channel engine needs, as a pure interface.
//
// One implementation exists, LibXenStore (backend/platform/xen), over Debian's
// libxenstore. It serves the simulated host too: xensim speaks xenstored's
// wire protocol and XENSTORED_PATH points the library at it.
#ifndef XENCHAN_BACKEND_PLATFORM_XENSTORE_H_
#define XENCHAN_BACKEND_PLATFORM_XENSTORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace xenchan {

// A transaction id; kNoTransaction applies an operation on its own.
using XsTransaction = uint32_t;
inline constexpr XsTransaction kNoTransaction = 0;

// One xenstore permission entry. The first entry of a node's list names its
// owner, whose `perms` is also the default for domains not listed.
struct XsPermission {
  enum Access : uint32_t { kNone = 0, kRead = 1, kWrite = 2, kBoth = 3 };
  uint32_t domid = 0;
  Access access = kNone;
  friend bool operator==(const XsPermission& a, const XsPermission& b) {
    return a.domid == b.domid && a.access == b.access;
  }
};

// A watch firing: the path that changed (or the watched special path such as
// "@releaseDomain") and the token given at registration.
struct XsWatchEvent {
  std::string path;
  std::string token;
};

// A connection to xenstore.
//
// Status codes: NOT_FOUND (ENOENT), PERMISSION_DENIED (EACCES),
// INVALID_ARGUMENT (EINVAL, E2BIG), RESOURCE_EXHAUSTED (ENOSPC, EQUOTA),
// ABORTED (EAGAIN: the transaction conflicted; retry it), ALREADY_EXISTS
// (EEXIST), UNAVAILABLE (the connection to xenstored is gone).
//
// Blocking: every call except ReadWatch is a round trip to xenstored and
// blocks for it. Thread safety: calls may be made from any thread; watch
// events are consumed by one thread at a time.
class XenStore {
 public:
  virtual ~XenStore() = default;

  // Returns a node's value (arbitrary bytes; the guest may write anything).
  virtual absl::StatusOr<std::string> Read(XsTransaction t, const std::string& path) = 0;
  // Creates or overwrites a node, creating missing parents.
  virtual absl::Status Write(XsTransaction t, const std::string& path,
                             const std::string& value) = 0;
  // Creates an empty node (no error if it exists).
  virtual absl::Status Mkdir(XsTransaction t, const std::string& path) = 0;
  // Removes a node and everything below it.
  virtual absl::Status Remove(XsTransaction t, const std::string& path) = 0;
  // Lists the names of a node's children.
  virtual absl::StatusOr<std::vector<std::string>> Directory(XsTransaction t,
                                                             const std::string& path) = 0;
  virtual absl::Status SetPermissions(XsTransaction t, const std::string& path,
                                      const std::vector<XsPermission>& perms) = 0;
  virtual absl::StatusOr<std::vector<XsPermission>> GetPermissions(XsTransaction t,
                                                                   const std::string& path) = 0;

  // Starts a transaction. End it with EndTransaction exactly once.
  virtual absl::StatusOr<XsTransaction> StartTransaction() = 0;
  // Commits (or with commit=false aborts) `t`. ABORTED means a conflict:
  // nothing was applied and the caller should run the transaction again.
  virtual absl::Status EndTransaction(XsTransaction t, bool commit) = 0;

  // Registers a watch. It fires once at once, then on every change at or
  // below `path`, possibly spuriously.
  virtual absl::Status Watch(const std::string& path, const std::string& token) = 0;
  virtual absl::Status Unwatch(const std::string& path, const std::string& token) = 0;
  // A file descriptor that polls readable when ReadWatch may return an event.
  virtual int WatchFd() const = 0;
  // Returns the next queued watch event, or nullopt when none is queued. Never
  // blocks.
  virtual std::optional<XsWatchEvent> ReadWatch() = 0;

  // False once xenstored has released the domain (it is dying or gone).
  virtual absl::StatusOr<bool> IsDomainIntroduced(uint32_t domid) = 0;
};

// Runs `body` in a transaction and commits it; when the commit conflicts
// (ABORTED), runs the whole transaction again, as libxl and Linux's xenbus
// drivers do, up to `max_attempts` times in all (at least once).
//
// `body` must be safe to run again: it reads what it depends on through the
// transaction it is given and has no effects outside xenstore that a rerun
// would repeat. If `body` fails, the transaction is aborted and body's
// status is returned unchanged; so is a failure to start or to commit.
// If `body` returns DiscardTransaction(), the transaction is aborted on
// purpose (nothing it wrote is applied, it is not run again) and the result
// is OK. ABORTED ("xenstore transaction kept conflicting") when every
// attempt conflicted. Blocking: the round trips of `body` and of each start
// and end.
absl::Status RunInTransaction(XenStore& xs, absl::FunctionRef<absl::Status(XsTransaction)> body,
                              int max_attempts);

// What a RunInTransaction body returns when it has finished and wants
// nothing it did applied, a dry run for instance: a CANCELLED status marked
// so that RunInTransaction, and only it, tells it from a failure.
absl::Status DiscardTransaction();

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_XENSTORE_H_
