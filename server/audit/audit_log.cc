// AuditLog: queueing, the writer thread, syncs, reopen; see audit_log.h.
#include "server/audit/audit_log.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "backend/util/errno_status.h"
#include "backend/util/json_string.h"
#include "server/audit/json.h"

namespace xenchan {
namespace server {
namespace audit {
namespace {

// The shared errno table, except that a path through a non-directory is a
// log file that is not there (NOT_FOUND), and errnos the table does not name
// are INTERNAL.
absl::Status ErrnoStatus(int err, absl::string_view what) {
  static constexpr ErrnoCode kOverrides[] = {{ENOTDIR, absl::StatusCode::kNotFound}};
  return ErrnoToStatus(err, what, ErrnoMapping{kOverrides, absl::StatusCode::kInternal});
}

absl::StatusOr<int> OpenLogFile(const std::string& path) {
  const int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("cannot open audit log ", path));
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(AuditOptions options) {
  if (options.path.empty()) return absl::InvalidArgumentError("audit log path is empty");
  if (options.fsync_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("audit fsync interval is negative");
  }
  if (options.max_queued_records == 0 || options.max_queued_bytes == 0) {
    return absl::InvalidArgumentError("audit queue bounds must be positive");
  }
  absl::StatusOr<int> fd = OpenLogFile(options.path);
  if (!fd.ok()) return fd.status();
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(options), *fd));
  log->writer_ = std::thread([l = log.get()] { l->Run(); });
  return log;
}

AuditLog::AuditLog(AuditOptions options, int fd) : options_(std::move(options)), fd_(fd) {
  MutexLock lock(&mu_);
  last_sync_ = Now();
}

AuditLog::~AuditLog() { Close(); }

absl::Time AuditLog::Now() const { return options_.clock ? options_.clock() : absl::Now(); }

std::string AuditLog::Begin(absl::string_view event) const {
  std::string line = "{\"ts\":";
  AppendJsonString(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", Now(), absl::UTCTimeZone()), &line);
  line.append(",\"event\":");
  AppendJsonString(event, &line);
  return line;
}

namespace {

void AddString(std::string* line, absl::string_view key, absl::string_view value) {
  line->push_back(',');
  AppendJsonString(key, line);
  line->push_back(':');
  AppendJsonString(value, line);
}

void AddUint(std::string* line, absl::string_view key, uint64_t value) {
  line->push_back(',');
  AppendJsonString(key, line);
  absl::StrAppend(line, ":", value);
}

void AddCaller(std::string* line, const Caller& caller) {
  AddString(line, "identity", caller.identity);
  AddString(line, "peer", caller.peer);
}

}  // namespace

void AuditLog::Authorization(const Caller& caller, absl::string_view method,
                             absl::string_view resource, absl::string_view verb, bool allowed,
                             absl::string_view reason) {
  std::string line = Begin("authz");
  AddCaller(&line, caller);
  AddString(&line, "method", method);
  AddString(&line, "resource", resource);
  AddString(&line, "verb", verb);
  AddString(&line, "decision", allowed ? "allowed" : "denied");
  AddString(&line, "reason", reason);
  Enqueue(std::move(line));
}

void AuditLog::SessionOpened(const Caller& caller, absl::string_view method,
                             absl::string_view resource, absl::string_view session,
                             absl::string_view role) {
  std::string line = Begin("session_open");
  AddCaller(&line, caller);
  AddString(&line, "method", method);
  AddString(&line, "resource", resource);
  AddString(&line, "session", session);
  AddString(&line, "role", role);
  Enqueue(std::move(line));
}

void AuditLog::SessionClosed(const Caller& caller, absl::string_view method,
                             absl::string_view resource, absl::string_view session,
                             uint64_t bytes_in, uint64_t bytes_out, absl::Duration duration,
                             absl::string_view status) {
  std::string line = Begin("session_close");
  AddCaller(&line, caller);
  AddString(&line, "method", method);
  AddString(&line, "resource", resource);
  AddString(&line, "session", session);
  AddUint(&line, "bytes_in", bytes_in);
  AddUint(&line, "bytes_out", bytes_out);
  const int64_t ms = absl::ToInt64Milliseconds(duration);
  AddUint(&line, "duration_ms", ms < 0 ? 0 : static_cast<uint64_t>(ms));
  AddString(&line, "status", status);
  Enqueue(std::move(line));
}

void AuditLog::Lifecycle(absl::string_view resource, absl::string_view change,
                         absl::string_view detail) {
  std::string line = Begin("lifecycle");
  AddString(&line, "resource", resource);
  AddString(&line, "change", change);
  AddString(&line, "detail", detail);
  Enqueue(std::move(line));
}

void AuditLog::Event(absl::string_view event,
                     const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string line = Begin(event);
  for (const auto& [key, value] : fields) AddString(&line, key, value);
  Enqueue(std::move(line));
}

void AuditLog::Enqueue(std::string line) {
  line.append("}\n");
  MutexLock lock(&mu_);
  if (stop_ || queue_.size() >= options_.max_queued_records ||
      queued_bytes_ + line.size() > options_.max_queued_bytes) {
    ++dropped_pending_;
    ++stats_.records_dropped;
    if (!stop_) work_cv_.Signal();
    done_cv_.SignalAll();  // for AwaitStats
    return;
  }
  queued_bytes_ += line.size();
  queue_.push_back(std::move(line));
  ++stats_.records_queued;
  work_cv_.Signal();
}

bool AuditLog::SyncDue() const { return dirty_ && Now() - last_sync_ >= options_.fsync_interval; }

std::pair<size_t, absl::Status> AuditLog::WriteLines(const std::vector<std::string>& lines) {
  std::string buffer;
  std::vector<size_t> ends;  // offset after each line
  ends.reserve(lines.size());
  for (const std::string& line : lines) {
    buffer.append(line);
    ends.push_back(buffer.size());
  }
  size_t done = 0;
  while (done < buffer.size()) {
    const ssize_t n = write(fd_, buffer.data() + done, buffer.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      size_t complete = 0;
      while (complete < ends.size() && ends[complete] <= done) ++complete;
      // A line cut short would run into the next one: end it, so that only
      // the torn line is malformed. Best effort; the error is reported.
      if (complete < ends.size() && done > (complete == 0 ? 0 : ends[complete - 1])) {
        ssize_t ignored = write(fd_, "\n", 1);
        (void)ignored;
      }
      return {complete, ErrnoStatus(err, absl::StrCat("audit log write to ", options_.path))};
    }
    done += static_cast<size_t>(n);
  }
  return {lines.size(), absl::OkStatus()};
}

void AuditLog::Run() {
  mu_.Lock();
  while (true) {
    while (queue_.empty() && dropped_pending_ == 0 && !stop_ && reopen_requested_ == reopen_done_ &&
           flush_requested_ == flush_done_ && !SyncDue()) {
      if (dirty_) {
        // Re-check at least once per interval for a sync that falls due.
        work_cv_.WaitWithDeadline(
            &mu_, absl::Now() + std::max(options_.fsync_interval, absl::Milliseconds(1)));
      } else {
        work_cv_.Wait(&mu_);
      }
    }
    std::vector<std::string> batch(std::make_move_iterator(queue_.begin()),
                                   std::make_move_iterator(queue_.end()));
    queue_.clear();
    queued_bytes_ = 0;
    const uint64_t dropped = dropped_pending_ + dropped_unreported_;
    dropped_pending_ = 0;
    dropped_unreported_ = 0;
    const uint64_t flush_target = flush_requested_;
    const uint64_t reopen_target = reopen_requested_;
    const bool stopping = stop_;
    const size_t records = batch.size();
    mu_.Unlock();

    // Lines first, then the notice for what was refused while they queued.
    if (dropped > 0) {
      std::string notice = Begin("audit_records_dropped");
      AddUint(&notice, "count", dropped);
      notice.append("}\n");
      batch.push_back(std::move(notice));
    }
    absl::Status error;
    size_t written = 0;
    if (!batch.empty()) std::tie(written, error) = WriteLines(batch);

    mu_.Lock();
    const size_t records_written = std::min(written, records);
    stats_.records_written += records_written;
    stats_.records_lost += records - records_written;
    if (dropped > 0) {
      if (written > records) {
        ++stats_.drop_notices;
      } else {
        dropped_unreported_ += dropped;  // carried to the next notice
      }
    }
    if (!error.ok()) {
      ++stats_.write_errors;
      if (pending_error_.ok()) pending_error_ = error;
    }
    if (written > 0) dirty_ = true;
    const bool must_sync = dirty_ && (flush_target > flush_done_ || reopen_target > reopen_done_ ||
                                      stopping || SyncDue());
    mu_.Unlock();

    absl::Status sync_error;
    bool synced = false;
    if (must_sync) {
      if (fdatasync(fd_) == 0) {
        synced = true;
      } else if (errno != EINVAL && errno != EROFS) {  // EINVAL: pipes and the like
        sync_error = ErrnoStatus(errno, absl::StrCat("audit log fdatasync of ", options_.path));
      }
    }
    absl::Status reopen_status;
    bool reopened = false;
    bool do_reopen;
    {
      MutexLock lock(&mu_);
      do_reopen = reopen_target > reopen_done_;
    }
    if (do_reopen) {
      absl::StatusOr<int> fd = OpenLogFile(options_.path);
      if (fd.ok()) {
        close(fd_);
        fd_ = *fd;
        reopened = true;
      } else {
        reopen_status = fd.status();
      }
    }

    mu_.Lock();
    if (must_sync) {
      // The data is as durable as this file allows; count only real syncs.
      dirty_ = false;
      last_sync_ = Now();
      if (synced) ++stats_.syncs;
      if (!sync_error.ok()) {
        ++stats_.write_errors;
        if (pending_error_.ok()) pending_error_ = sync_error;
      }
    }
    if (do_reopen) {
      if (reopened) ++stats_.reopens;
      reopen_status_ = reopen_status;
      reopen_done_ = reopen_target;
    }
    flush_done_ = flush_target;
    done_cv_.SignalAll();
    if (stopping && queue_.empty()) break;
  }
  closed_ = true;
  done_cv_.SignalAll();
  mu_.Unlock();
}

absl::Status AuditLog::Flush() {
  MutexLock lock(&mu_);
  if (stop_) return absl::FailedPreconditionError("audit log is closed");
  const uint64_t target = ++flush_requested_;
  work_cv_.Signal();
  while (flush_done_ < target) done_cv_.Wait(&mu_);
  absl::Status status = pending_error_;
  pending_error_ = absl::OkStatus();
  return status;
}

absl::Status AuditLog::Reopen() {
  MutexLock lock(&mu_);
  if (stop_) return absl::FailedPreconditionError("audit log is closed");
  const uint64_t target = ++reopen_requested_;
  work_cv_.Signal();
  while (reopen_done_ < target) done_cv_.Wait(&mu_);
  return reopen_status_;
}

void AuditLog::Close() {
  MutexLock close_lock(&close_mu_);
  {
    MutexLock lock(&mu_);
    if (closed_ || stop_) {
      // Already closed (or closing under close_mu_, which we now hold).
      if (!writer_.joinable()) return;
    }
    stop_ = true;
    work_cv_.Signal();
  }
  if (writer_.joinable()) {
    writer_.join();
    close(fd_);
    fd_ = -1;
  }
}

AuditStats AuditLog::stats() const {
  MutexLock lock(&mu_);
  return stats_;
}

bool AuditLog::AwaitStats(const std::function<bool(const AuditStats&)>& pred,
                          absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  MutexLock lock(&mu_);
  while (!pred(stats_)) {
    if (done_cv_.WaitWithDeadline(&mu_, deadline)) return pred(stats_);
  }
  return true;
}

}  // namespace audit
}  // namespace server
}  // namespace xenchan
