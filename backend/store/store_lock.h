// The exclusive hold one process takes on a store file, so that xenchand is
// the only writer of its declaration store: an flock(2) LOCK_EX on
// "<store>.lock" beside the store, held as long as the StoreLock lives and
// released by the kernel when the process dies however it dies (kill -9
// leaves no stale lock). The holder's pid is written into the lock file for
// the refusal message.
//
// Why a separate file and not the database itself: SQLite locks the database
// with POSIX fcntl locks, which belong to the process and are all dropped
// when *any* descriptor of the file is closed; a second descriptor opened on
// the database for our own lock could silently cancel SQLite's (SQLite's
// "How To Corrupt An SQLite Database File", §2.2). flock locks belong to the
// open file description, so the lock file does not interact with SQLite.
//
// The descriptor is close-on-exec, so programs xenchand runs do not inherit
// the lock; a fork() without exec does share it.
//
// Thread safety: a StoreLock is an owned value; its methods are const.
#ifndef XENCHAN_BACKEND_STORE_STORE_LOCK_H_
#define XENCHAN_BACKEND_STORE_STORE_LOCK_H_

#include <string>

#include "absl/status/statusor.h"

namespace xenchan {

class StoreLock {
 public:
  // Creates "<store_path>.lock" if missing and locks it without waiting.
  // FAILED_PRECONDITION naming the store (and the holder's pid when the lock
  // file says it) if another process, or another StoreLock in this one,
  // holds it; the errno's code through the shared table if the file cannot
  // be opened or locked.
  static absl::StatusOr<StoreLock> Acquire(const std::string& store_path);

  StoreLock(StoreLock&& other) noexcept;
  StoreLock& operator=(StoreLock&& other) noexcept;
  ~StoreLock();

  const std::string& lock_path() const { return lock_path_; }

 private:
  StoreLock(int fd, std::string lock_path) : fd_(fd), lock_path_(std::move(lock_path)) {}

  int fd_ = -1;  // owned; the lock lives as long as this descriptor is open
  std::string lock_path_;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_STORE_STORE_LOCK_H_
