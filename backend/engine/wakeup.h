// Wakeup: how callers' threads tell the engine thread that a channel needs
// service (bytes queued for the guest, buffer space freed under BLOCK, a
// command posted). An eventfd the engine polls plus the channel serials
// kicked since the engine last looked, each once. Shared (shared_ptr) by the
// engine and every channel and session, so it outlives whichever goes last.
// Allocation-free in the steady state: the serials are handed over by
// swapping vectors, so the engine's and this one's capacity are reused.
#ifndef XENCHAN_BACKEND_ENGINE_WAKEUP_H_
#define XENCHAN_BACKEND_ENGINE_WAKEUP_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "backend/util/mutex.h"

namespace xenchan {

// Thread-safe; Kick never blocks.
class Wakeup {
 public:
  // INTERNAL if no eventfd can be made.
  static absl::StatusOr<std::shared_ptr<Wakeup>> Create();
  ~Wakeup();
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;

  // Marks channel `serial` for service and wakes the engine.
  void Kick(uint64_t serial) ABSL_LOCKS_EXCLUDED(mu_);
  // Wakes the engine without naming a channel.
  void Poke();
  // Readable while a kick or poke is pending.
  int fd() const { return fd_; }
  // Clears the fd and replaces `*kicked` with the channels kicked since the
  // last call, each once, in the order of their first kick. `*kicked`'s
  // capacity is kept (it becomes this object's buffer for the next kicks).
  void Take(std::vector<uint64_t>* kicked) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  explicit Wakeup(int fd) : fd_(fd) {}
  const int fd_;
  Mutex mu_;
  // The serials kicked since the last Take, and the same as a set (so that
  // a channel kicked again before the engine looks is listed once).
  std::vector<uint64_t> kicked_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<uint64_t> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_WAKEUP_H_
