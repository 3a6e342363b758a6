// FakeTrace: the ordered record of what the in-memory Xen platform did, so
// that a test can check the order of operations that cross facilities (for
// instance XEN-CHANNELS §2.3: unmap and unbind before the frontend directory
// is removed), which no single facility can see.
#ifndef XENCHAN_BACKEND_PLATFORM_FAKE_TRACE_H_
#define XENCHAN_BACKEND_PLATFORM_FAKE_TRACE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "backend/util/mutex.h"

namespace xenchan {

// An append-only list of one-line entries, in the order the operations took
// effect. Entries (domids and ports in decimal):
//   "xs <domid> write <path> <value>", "xs <domid> mkdir <path>",
//   "xs <domid> rm <path>"   (only operations outside a transaction)
//   "xs <domid> commit"      (a transaction that applied)
//   "gnttab grant <domid>:<ref>", "gnttab end <domid>:<ref>",
//   "gnttab map <domid>:<ref> by <mapper>", "gnttab unmap <domid>:<ref> by <mapper>"
//   "evtchn bind <domid>:<port> <remote domid>:<remote port>",
//   "evtchn close <domid>:<port>"
//   "domain create <domid>", "domain destroy <domid>", "domain gone <domid>",
//   "domain pause <domid>", "domain unpause <domid>"
//
// Ownership: shared by the fake host's facilities. Thread-safe; Add takes a
// short lock and never blocks otherwise.
class FakeTrace {
 public:
  void Add(std::string entry) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    entries_.push_back(std::move(entry));
  }
  // A copy of every entry so far.
  std::vector<std::string> entries() const ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return entries_;
  }
  // Index of the first entry at or after `from` equal to `entry`; -1 if none.
  int Find(const std::string& entry, int from = 0) const ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    for (size_t i = from < 0 ? 0 : static_cast<size_t>(from); i < entries_.size(); ++i) {
      if (entries_[i] == entry) return static_cast<int>(i);
    }
    return -1;
  }

 private:
  mutable Mutex mu_;
  std::vector<std::string> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_FAKE_TRACE_H_
