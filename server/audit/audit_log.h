// AuditLog: xenchand's append-only audit trail, one JSON object per line.
//
// Records (every one has "ts", RFC 3339 UTC with milliseconds, and "event"):
//   authz                  identity, peer, method, resource, verb,
//                          decision ("allowed" | "denied"), reason
//   session_open           identity, peer, method, resource, session, role
//   session_close          identity, peer, method, resource, session,
//                          bytes_in, bytes_out, duration_ms, status
//   lifecycle              resource, change, detail
//   <other>                string fields given to Event() (e.g.
//                          "policy_reload", "server_start")
//   audit_records_dropped  count: records refused since the last such line
//                          because the queue was full
// Example:
//   {"ts":"2024-05-01T12:00:00.123Z","event":"authz","identity":"cn:ops",
//    "peer":"ipv4:10.0.0.5:40122","method":"/xenchan.v1.ChannelService/Write",
//    "resource":"domains/web-1/channels/org.example.agent","verb":"write",
//    "decision":"denied","reason":"denied: no rule ..."}
// Strings are escaped by json.h, so no value (a hostile channel name, a
// certificate field) can break a line or the JSON.
//
// Writing: callers format the line and queue it; one background thread
// writes queued lines with write(2) and calls fdatasync at most every
// `fsync_interval` (and on Flush, Reopen and Close). Logging never waits for
// the disk. The queue is bounded; when it is full the record is counted as
// dropped and the writer later writes one "audit_records_dropped" line with
// the count, so a loss is never silent.
//
// The file is opened O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC with mode 0600 (a
// new file; an existing file keeps its mode). Rotation: rename the file, then
// call Reopen() (xenchand does on SIGHUP; see deploy/logrotate.d/xenchand);
// lines queued before the reopen go to the renamed file.
//
// Thread safety: every method is thread-safe. The logging methods hold an
// internal mutex only to append to the queue.
#ifndef XENCHAN_SERVER_AUDIT_AUDIT_LOG_H_
#define XENCHAN_SERVER_AUDIT_AUDIT_LOG_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "backend/util/mutex.h"

namespace xenchan {
namespace server {
namespace audit {

// Who made a request: the caller's identity in text form (e.g.
// policy::Identity::ToString()) and its transport peer (gRPC's peer string).
struct Caller {
  std::string identity;
  std::string peer;
};

struct AuditOptions {
  std::string path;
  // Longest time a written line may stay unsynced. Zero: sync after every
  // batch of lines.
  absl::Duration fsync_interval = absl::Seconds(1);
  // Bounds of the queue between callers and the writer thread.
  size_t max_queued_records = 10000;
  size_t max_queued_bytes = 8 << 20;
  // Time source for record timestamps and for deciding when a sync is due
  // (the writer re-checks at least every fsync_interval of real time). Null:
  // absl::Now. Must be thread-safe.
  std::function<absl::Time()> clock;
};

// Counters since Open().
struct AuditStats {
  uint64_t records_queued = 0;   // accepted by a logging method
  uint64_t records_written = 0;  // written to the file (excluding drop notices)
  uint64_t records_dropped = 0;  // refused: queue full, or after Close()
  uint64_t records_lost = 0;     // accepted but a write failed (see write_errors)
  uint64_t drop_notices = 0;     // "audit_records_dropped" lines written
  uint64_t syncs = 0;            // fdatasync calls that succeeded
  uint64_t write_errors = 0;     // failed write or sync calls
  uint64_t reopens = 0;          // successful Reopen()s
};

class AuditLog {
 public:
  // Opens (creating) the file and starts the writer thread. INVALID_ARGUMENT
  // for bad options; NOT_FOUND / PERMISSION_DENIED / INTERNAL if the file
  // cannot be opened.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(AuditOptions options);

  // Close()s.
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // --- Logging. Never block on the disk; see the file comment for fields.
  void Authorization(const Caller& caller, absl::string_view method, absl::string_view resource,
                     absl::string_view verb, bool allowed, absl::string_view reason);
  void SessionOpened(const Caller& caller, absl::string_view method, absl::string_view resource,
                     absl::string_view session, absl::string_view role);
  void SessionClosed(const Caller& caller, absl::string_view method, absl::string_view resource,
                     absl::string_view session, uint64_t bytes_in, uint64_t bytes_out,
                     absl::Duration duration, absl::string_view status);
  // A channel or domain change: `change` such as "appeared", "connected",
  // "disconnected", "epoch_changed", "removed"; `detail` free text (may be
  // empty).
  void Lifecycle(absl::string_view resource, absl::string_view change, absl::string_view detail);
  // Any other event, with string fields in the order given.
  void Event(absl::string_view event,
             const std::vector<std::pair<std::string, std::string>>& fields);

  // Blocks until every record logged before the call is written and synced.
  // The first write or sync error since the previous Flush(), if any;
  // FAILED_PRECONDITION after Close().
  absl::Status Flush() ABSL_LOCKS_EXCLUDED(mu_);

  // Writes what is queued to the current file, then opens `path` anew (after
  // a rename by log rotation). Blocks until done. On failure the old file
  // stays in use and the error is returned. FAILED_PRECONDITION after
  // Close().
  absl::Status Reopen() ABSL_LOCKS_EXCLUDED(mu_);

  // Writes everything queued, syncs, closes the file and stops the thread.
  // Later records are dropped (and counted). Idempotent; blocks.
  void Close() ABSL_LOCKS_EXCLUDED(mu_);

  AuditStats stats() const ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until `pred(stats())` holds or `timeout` passes; returns whether
  // it holds. Re-evaluated whenever the writer updates the counters. For
  // tests and shutdown checks.
  bool AwaitStats(const std::function<bool(const AuditStats&)>& pred, absl::Duration timeout) const
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  AuditLog(AuditOptions options, int fd);
  absl::Time Now() const;
  // Starts a record: {"ts":...,"event":...
  std::string Begin(absl::string_view event) const;
  void Enqueue(std::string line) ABSL_LOCKS_EXCLUDED(mu_);
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // Writes `lines` (each newline-terminated) with as few write(2)s as
  // possible. Returns how many were written before an error, and the error.
  std::pair<size_t, absl::Status> WriteLines(const std::vector<std::string>& lines);
  bool SyncDue() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AuditOptions options_;

  mutable Mutex mu_;
  mutable CondVar work_cv_;  // writer waits for work
  mutable CondVar done_cv_;  // callers wait for flush/reopen/stats
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_pending_ ABSL_GUARDED_BY(mu_) = 0;  // not yet in a drop notice
  // Dropped records whose notice failed to be written: reported with the
  // next notice, without waking the writer (no spinning on a full disk).
  uint64_t dropped_unreported_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t flush_requested_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t flush_done_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t reopen_requested_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t reopen_done_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status reopen_status_ ABSL_GUARDED_BY(mu_);
  absl::Status pending_error_ ABSL_GUARDED_BY(mu_);  // since the last Flush
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;  // writer finished
  AuditStats stats_ ABSL_GUARDED_BY(mu_);
  // Written but not yet synced, and the time of the last sync (clock()).
  // Written by the writer thread only, under mu_ so SyncDue can read them.
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_sync_ ABSL_GUARDED_BY(mu_);

  int fd_;          // writer thread only (and the destructor after the join)
  Mutex close_mu_;  // serialises Close()
  std::thread writer_;
};

}  // namespace audit
}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_AUDIT_AUDIT_LOG_H_
