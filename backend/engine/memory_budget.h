// MemoryBudget: the one account of every growable buffer the engine keeps
// (DESIGN §6 "per-channel and global memory caps"), so that the server never
// holds more buffered bytes than it was configured to, whatever guests and
// clients do.
//
// What is charged (each before it grows):
//  - per channel (one MemoryAccount, charged to the channel's domain): the
//    guest-to-host OutputBuffer's retained bytes, the host-to-guest
//    WriteQueue's queued bytes, and a fixed cost per open session that bounds
//    its notice queue;
//  - host-wide (charged to kHostWide, which no per-domain cap applies to):
//    the lifecycle event log's retained events.
// Two caps: `limit` bytes in total, and `domain_limit` bytes per domain (one
// guest cannot take the whole budget). A charge that would break either is
// refused; it is never granted in part behind the caller's back. What a
// refusal means is up to the consumer (ring_channel.h, channel.h): a BLOCK
// channel stops draining its ring (the guest stalls), a DROP_OLDEST channel
// drops its oldest bytes (counted, reported as a gap), a writer gets
// RESOURCE_EXHAUSTED, the event log retains fewer events.
//
// Tiers: buffered data (kData: buffers, write queues, floors) may use only
// 7/8 of each cap; the last 1/8 is kept for control state (kControl:
// sessions, the event log), so that a reader can still open a session on a
// channel whose guest filled the budget, and drain it.
//
// Floors: an account may reserve a floor at creation (MemoryAccount::Reserve).
// The floor is charged at once, so it counts in used() whether or not it is
// filled, and the account can always use it: a quiet channel keeps working
// while flooding guests hold the rest of the budget.
//
// Waiters: a consumer refused memory names a waiter id (a channel serial);
// once memory is released after the refusal, `notify(waiter)` runs once per
// waiter (then it must ask again). A refusal also raises a reclaim request
// that the engine answers by trimming replay-only data (bytes every reader
// has already been handed) across channels.
//
// Thread safety: MemoryBudget is thread-safe; its lock is a leaf apart from
// `notify`, which runs under it and must only take leaf locks (the engine
// passes Wakeup::Kick). MemoryAccount is not: its owner's lock guards it.
#ifndef XENCHAN_BACKEND_ENGINE_MEMORY_BUDGET_H_
#define XENCHAN_BACKEND_ENGINE_MEMORY_BUDGET_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"
#include "backend/util/mutex.h"

namespace xenchan {

// Refusals because the memory budget is full are RESOURCE_EXHAUSTED statuses
// carrying this payload, so that callers can tell them from other limits
// (reader slots, device ids, queue room).
inline constexpr char kMemoryBudgetPayload[] = "type.xenchan.dev/engine.MemoryBudgetRefusal";
inline absl::Status MemoryBudgetError(absl::string_view message) {
  absl::Status s = absl::ResourceExhaustedError(message);
  s.SetPayload(kMemoryBudgetPayload, absl::Cord("1"));
  return s;
}
inline bool IsMemoryBudgetError(const absl::Status& s) {
  return s.code() == absl::StatusCode::kResourceExhausted &&
         s.GetPayload(kMemoryBudgetPayload).has_value();
}

// Figures for metrics and the load tool.
struct MemoryUsage {
  size_t limit = 0;              // the global cap
  size_t domain_limit = 0;       // the per-domain cap
  size_t used = 0;               // charged now (floors included)
  size_t peak = 0;               // highest `used` ever
  uint64_t refused = 0;          // charges refused (either cap)
  uint64_t domain_refused = 0;   // of which the per-domain cap refused
  uint64_t reclaimed_bytes = 0;  // replay-only bytes trimmed under pressure
};

enum class MemoryTier { kData, kControl };

class MemoryBudget {
 public:
  // Charges that belong to no domain (the event log).
  static constexpr uint32_t kHostWide = std::numeric_limits<uint32_t>::max();
  static constexpr size_t kUnlimited = std::numeric_limits<size_t>::max();

  // `limit` and `domain_limit` in bytes (kUnlimited for none).
  MemoryBudget(size_t limit, size_t domain_limit);
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // Called with a waiter id once memory was released after that waiter was
  // refused. Runs under the budget's lock: must not block or take non-leaf
  // locks. Set before use.
  void SetNotify(std::function<void(uint64_t waiter)> notify) ABSL_LOCKS_EXCLUDED(mu_);

  // Charges `n` bytes to `domain` if both caps allow it. Otherwise charges
  // nothing, counts the refusal, raises a reclaim request and, if `waiter`
  // is non-zero, remembers it for notification.
  bool TryCharge(uint32_t domain, size_t n, uint64_t waiter = 0,
                 MemoryTier tier = MemoryTier::kData) ABSL_LOCKS_EXCLUDED(mu_);
  // Returns `n` bytes of `domain` (at most what it has charged).
  void Release(uint32_t domain, size_t n) ABSL_LOCKS_EXCLUDED(mu_);
  // Bytes `domain` may still charge now in `tier`.
  size_t Headroom(uint32_t domain, MemoryTier tier = MemoryTier::kData) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Moves `n` bytes charged to `from` over to `to` (a durable channel's
  // domain came back with a new domid). The total does not change; `to` may
  // end above its cap, as its channels already hold the bytes.
  void MoveCharge(uint32_t from, uint32_t to, size_t n) ABSL_LOCKS_EXCLUDED(mu_);
  // A consumer of `domain` was held back (it wanted `wanted` more bytes than
  // it could charge): counted like a refused charge, with a reclaim request,
  // and `waiter` is notified at the next release.
  void Starved(uint32_t domain, size_t wanted, uint64_t waiter) ABSL_LOCKS_EXCLUDED(mu_);

  // True (once) if a charge was refused since the last call.
  bool TakeReclaimRequest() ABSL_LOCKS_EXCLUDED(mu_);
  void CountReclaimed(size_t n) ABSL_LOCKS_EXCLUDED(mu_);

  MemoryUsage usage() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t domain_used(uint32_t domain) const ABSL_LOCKS_EXCLUDED(mu_);
  size_t limit() const { return limit_; }
  size_t domain_limit() const { return domain_limit_; }

 private:
  size_t HeadroomLocked(uint32_t domain, MemoryTier tier) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RefuseLocked(uint32_t domain, size_t n, uint64_t waiter, MemoryTier tier)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t limit_;
  const size_t domain_limit_;
  mutable Mutex mu_;
  std::function<void(uint64_t)> notify_ ABSL_GUARDED_BY(mu_);
  size_t used_ ABSL_GUARDED_BY(mu_) = 0;
  size_t peak_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t domain_refused_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t reclaimed_ ABSL_GUARDED_BY(mu_) = 0;
  bool reclaim_requested_ ABSL_GUARDED_BY(mu_) = false;
  std::map<uint32_t, size_t> by_domain_ ABSL_GUARDED_BY(mu_);
  std::set<uint64_t> waiters_ ABSL_GUARDED_BY(mu_);
};

// One consumer's share of a MemoryBudget: what it uses, and an optional
// floor reserved up front. The budget is charged max(used, floor). Releases
// everything on destruction. Not thread-safe (the owner's lock guards it). A
// null budget means unlimited.
class MemoryAccount {
 public:
  MemoryAccount(std::shared_ptr<MemoryBudget> budget, uint32_t domain, uint64_t waiter);
  ~MemoryAccount();
  MemoryAccount(const MemoryAccount&) = delete;
  MemoryAccount& operator=(const MemoryAccount&) = delete;

  // Reserves a floor of `bytes` (replacing any earlier floor). False, with
  // no floor, if the budget cannot take it now.
  bool Reserve(size_t bytes);
  // Takes `n` more bytes. False (and nothing taken) if the budget refuses;
  // the waiter is then notified once memory frees up.
  bool Charge(size_t n, MemoryTier tier = MemoryTier::kData);
  // Gives `n` bytes back (at most used()).
  void Release(size_t n);
  // Charges or releases the difference so that used() becomes `n`. Shrinking
  // always succeeds; growing may be refused (false, unchanged).
  bool Resize(size_t n);
  // How many more bytes Charge could take now.
  size_t Headroom(MemoryTier tier = MemoryTier::kData) const;
  // Charges this account's bytes to `domain` from now on (MoveCharge).
  void MoveToDomain(uint32_t domain);

  size_t used() const { return used_; }
  size_t floor() const { return floor_; }
  uint32_t domain() const { return domain_; }
  MemoryBudget* budget() const { return budget_.get(); }

 private:
  size_t Charged() const { return used_ > floor_ ? used_ : floor_; }

  const std::shared_ptr<MemoryBudget> budget_;
  uint32_t domain_;
  const uint64_t waiter_;
  size_t used_ = 0;
  size_t floor_ = 0;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_ENGINE_MEMORY_BUDGET_H_
