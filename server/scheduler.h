// Scheduler: the server's own small pool of worker threads, where reactors'
// follow-up work runs (pumping a stream after the engine signalled new data,
// timers for deadlines and heartbeats). Engine callbacks and gRPC reactions
// only post here and return, so neither the engine thread nor gRPC's
// threads ever run stream work or wait for it.
//
// Tasks must not block. Thread-safe.
#ifndef XENCHAN_SERVER_SCHEDULER_H_
#define XENCHAN_SERVER_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "backend/util/mutex.h"

namespace xenchan {
namespace server {

class Scheduler {
 public:
  // Starts `threads` workers (at least 1).
  explicit Scheduler(int threads);
  // Stops the workers; tasks not yet run are dropped.
  ~Scheduler();
  // Stops the workers and waits for the running tasks to return; tasks not
  // yet run (and any Run after this) are dropped. Idempotent. Must not be
  // called from a task.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Runs `task` soon on a worker.
  void Run(std::function<void()> task) ABSL_LOCKS_EXCLUDED(mu_);
  // A callback that runs `task` soon on a worker, with at most one run
  // queued: calls while a run is queued and has not started share it (the
  // flag drops just before `task` runs, so a call during a run queues the
  // next). For wake-ups whose task reads the state it acts on when it runs
  // (a stream's pump), so that a burst of wake-ups is one task, not a queue.
  // The callback may be called from any thread and outlive nothing but this
  // scheduler.
  std::function<void()> Coalescing(std::function<void()> task);
  // Runs `task` at `when` (or soon, if that has passed). Returns an id for
  // Cancel.
  uint64_t RunAt(absl::Time when, std::function<void()> task) ABSL_LOCKS_EXCLUDED(mu_);
  // Drops a timer that has not started yet. Idempotent.
  void Cancel(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Work() ABSL_LOCKS_EXCLUDED(mu_);

  Mutex mu_;
  CondVar cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::function<void()>> ready_ ABSL_GUARDED_BY(mu_);
  // (when, id) -> task
  std::map<std::pair<absl::Time, uint64_t>, std::function<void()>> timers_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, absl::Time> timer_ids_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<std::thread> threads_;
};

}  // namespace server
}  // namespace xenchan

#endif  // XENCHAN_SERVER_SCHEDULER_H_
