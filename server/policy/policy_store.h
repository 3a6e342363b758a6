// PolicyStore: the policy in force, read from a file and replaced atomically
// on reload; PolicyWatcher: reloads it when the file changes or on request
// (SIGHUP).
//
// Use in xenchand:
//   PolicyStore::Options options;
//   options.path = "/etc/xenchan/policy.conf";
//   options.on_reload = ...;  // log and audit each attempt
//   auto store = PolicyStore::Create(options);  // at start-up; fail if bad
//   auto watcher = PolicyWatcher::Start(store->get());  // reload on change
//   ...in a handler: store->Current()->Check(identity, domain, channel, verb)
//   ...in the sigwait loop, on SIGHUP: store->Reload() (or
//      watcher->RequestReload(), which is async-signal-safe)
//
// A reload reads and parses the file outside any lock, then swaps the
// shared_ptr: readers never wait for a reload, and a handler that took
// Current() keeps a consistent policy for as long as it holds it. A file that
// cannot be read or parsed is refused: the policy in force stays, the error
// (file:line:column and what is wrong) is returned, counted in status() and
// passed to `on_reload`.
#ifndef XENCHAN_SERVER_POLICY_POLICY_STORE_H_
#define XENCHAN_SERVER_POLICY_POLICY_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backend/util/mutex.h"
#include "server/policy/policy.h"

namespace xenchan {
namespace server {
namespace policy {

// Counters and outcome of the reloads so far (the initial load counts).
struct ReloadStatus {
  uint64_t attempts = 0;     // loads tried
  uint64_t loaded = 0;       // policies put in force
  uint64_t unchanged = 0;    // reloads of a file identical to the policy in force
  uint64_t failures = 0;     // refused files
  absl::Status last_status;  // the latest attempt's outcome
  absl::Time last_attempt = absl::InfinitePast();
  absl::Time last_loaded = absl::InfinitePast();  // when the policy in force was loaded
};

class PolicyStore {
 public:
  struct Options {
    // The policy file.
    std::string path;
    // Called after every load attempt, from the thread that made it (never
    // with a lock of the store held): `status` is that attempt's outcome.
    std::function<void(const absl::Status& status, const ReloadStatus& totals)> on_reload;
  };

  // Loads `options.path`. Fails (INVALID_ARGUMENT for a bad policy, NOT_FOUND
  // or PERMISSION_DENIED for an unreadable file, FAILED_PRECONDITION for a
  // file that is not a regular file) so that xenchand refuses to start.
  static absl::StatusOr<std::unique_ptr<PolicyStore>> Create(Options options);

  PolicyStore(const PolicyStore&) = delete;
  PolicyStore& operator=(const PolicyStore&) = delete;

  // The policy in force. Never null; never waits for a reload. Thread-safe.
  std::shared_ptr<const Policy> Current() const ABSL_LOCKS_EXCLUDED(mu_);

  // Re-reads the file. OK if the new policy is in force or the file is
  // unchanged; otherwise the error as in Create() and the old policy stays.
  // Blocks for the file read and parse; concurrent calls are serialised.
  // Thread-safe.
  absl::Status Reload() ABSL_LOCKS_EXCLUDED(reload_mu_, mu_);

  ReloadStatus status() const ABSL_LOCKS_EXCLUDED(mu_);

  // Blocks until at least `attempts` load attempts have finished or `timeout`
  // passes; returns whether they have. For tests and start-up checks.
  bool AwaitAttempts(uint64_t attempts, absl::Duration timeout) const ABSL_LOCKS_EXCLUDED(mu_);

  const std::string& path() const { return options_.path; }

 private:
  explicit PolicyStore(Options options) : options_(std::move(options)) {}
  // Reads and parses the file; the new policy, or nullptr if identical to
  // the one in force.
  absl::StatusOr<std::shared_ptr<const Policy>> Load() ABSL_EXCLUSIVE_LOCKS_REQUIRED(reload_mu_);

  const Options options_;
  Mutex reload_mu_;  // serialises Reload(); never held by readers
  // The text of the policy in force, once there is one.
  bool have_loaded_ ABSL_GUARDED_BY(reload_mu_) = false;
  std::string loaded_text_ ABSL_GUARDED_BY(reload_mu_);
  mutable Mutex mu_;  // held only to copy or swap the pointer and counters
  mutable CondVar attempts_cv_;
  std::shared_ptr<const Policy> current_ ABSL_GUARDED_BY(mu_);
  ReloadStatus status_ ABSL_GUARDED_BY(mu_);
};

// Reloads a PolicyStore when its file changes, and on request.
//
// Watches the file's directory with inotify, so both editing in place
// (IN_CLOSE_WRITE of the file) and writing a new file and renaming it into
// place (IN_MOVED_TO) are seen, also when the renamed entry is a symlink
// swapped next to it (as configuration-map mounts do). A burst of events
// gives one reload. Owns one thread; the store must outlive the watcher.
// If the directory itself is removed or replaced, watching stops (SIGHUP
// still works) and the reload callback is not told; restart xenchand.
class PolicyWatcher {
 public:
  // Starts watching `store->path()`'s directory; when this returns OK, every
  // later change is seen. INTERNAL/NOT_FOUND if inotify cannot watch it.
  static absl::StatusOr<std::unique_ptr<PolicyWatcher>> Start(PolicyStore* store);

  // Stops the thread (waits for a reload in progress).
  ~PolicyWatcher();
  PolicyWatcher(const PolicyWatcher&) = delete;
  PolicyWatcher& operator=(const PolicyWatcher&) = delete;

  // Asks the watcher thread to reload soon. Never blocks; async-signal-safe
  // (one write(2) to an eventfd), so a SIGHUP handler may call it.
  void RequestReload();

  // Reloads started by file events (not by RequestReload). Thread-safe.
  uint64_t change_reloads() const { return change_reloads_.load(); }

 private:
  PolicyWatcher(PolicyStore* store, int inotify_fd, int wake_fd, std::string basename)
      : store_(store), inotify_fd_(inotify_fd), wake_fd_(wake_fd), basename_(std::move(basename)) {}
  void Run();
  // Reads the pending inotify events; true if one concerns the policy file.
  bool DrainEvents();

  PolicyStore* const store_;
  const int inotify_fd_;
  const int wake_fd_;
  const std::string basename_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> change_reloads_{0};
  std::thread thread_;
};

}  // namespace policy
}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_POLICY_POLICY_STORE_H_
