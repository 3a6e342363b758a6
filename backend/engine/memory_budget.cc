// MemoryBudget and MemoryAccount: the engine's global and per-domain
// memory caps (see the header).
#include "backend/engine/memory_budget.h"

#include <algorithm>
#include <utility>

namespace xenchan {

MemoryBudget::MemoryBudget(size_t limit, size_t domain_limit)
    : limit_(limit), domain_limit_(domain_limit) {}

void MemoryBudget::SetNotify(std::function<void(uint64_t)> notify) {
  MutexLock lock(&mu_);
  notify_ = std::move(notify);
}

namespace {

// What `tier` may use of a cap.
size_t TierCap(size_t cap, MemoryTier tier) {
  if (cap == MemoryBudget::kUnlimited || tier == MemoryTier::kControl) return cap;
  return cap - cap / 8;
}

}  // namespace

size_t MemoryBudget::HeadroomLocked(uint32_t domain, MemoryTier tier) const {
  const size_t cap = TierCap(limit_, tier);
  size_t room = used_ >= cap ? 0 : cap - used_;
  if (domain != kHostWide && domain_limit_ != kUnlimited) {
    auto it = by_domain_.find(domain);
    const size_t mine = it == by_domain_.end() ? 0 : it->second;
    const size_t dcap = TierCap(domain_limit_, tier);
    room = std::min(room, mine >= dcap ? 0 : dcap - mine);
  }
  return room;
}

bool MemoryBudget::TryCharge(uint32_t domain, size_t n, uint64_t waiter, MemoryTier tier) {
  if (n == 0) return true;
  MutexLock lock(&mu_);
  if (n > HeadroomLocked(domain, tier)) {
    RefuseLocked(domain, n, waiter, tier);
    return false;
  }
  used_ += n;
  peak_ = std::max(peak_, used_);
  if (domain != kHostWide) by_domain_[domain] += n;
  return true;
}

void MemoryBudget::Release(uint32_t domain, size_t n) {
  if (n == 0) return;
  MutexLock lock(&mu_);
  if (domain != kHostWide) {
    auto it = by_domain_.find(domain);
    if (it == by_domain_.end()) return;  // never charged: a caller bug, ignored
    n = std::min(n, it->second);
    it->second -= n;
    if (it->second == 0) by_domain_.erase(it);
  }
  used_ -= std::min(n, used_);
  if (waiters_.empty() || !notify_) return;
  std::set<uint64_t> waiters;
  waiters.swap(waiters_);
  for (uint64_t w : waiters) notify_(w);
}

void MemoryBudget::MoveCharge(uint32_t from, uint32_t to, size_t n) {
  if (n == 0 || from == to) return;
  MutexLock lock(&mu_);
  if (from != kHostWide) {
    auto it = by_domain_.find(from);
    if (it == by_domain_.end()) return;
    n = std::min(n, it->second);
    it->second -= n;
    if (it->second == 0) by_domain_.erase(it);
  }
  if (to != kHostWide) by_domain_[to] += n;
}

size_t MemoryBudget::Headroom(uint32_t domain, MemoryTier tier) const {
  MutexLock lock(&mu_);
  return HeadroomLocked(domain, tier);
}

void MemoryBudget::RefuseLocked(uint32_t domain, size_t n, uint64_t waiter, MemoryTier tier) {
  ++refused_;
  const size_t cap = TierCap(limit_, tier);
  const size_t global_room = used_ >= cap ? 0 : cap - used_;
  if (domain != kHostWide && n <= global_room) ++domain_refused_;  // the domain's cap did it
  reclaim_requested_ = true;
  if (waiter != 0) waiters_.insert(waiter);
}

void MemoryBudget::Starved(uint32_t domain, size_t wanted, uint64_t waiter) {
  MutexLock lock(&mu_);
  RefuseLocked(domain, wanted, waiter, MemoryTier::kData);
}

bool MemoryBudget::TakeReclaimRequest() {
  MutexLock lock(&mu_);
  const bool requested = reclaim_requested_;
  reclaim_requested_ = false;
  return requested;
}

void MemoryBudget::CountReclaimed(size_t n) {
  MutexLock lock(&mu_);
  reclaimed_ += n;
}

MemoryUsage MemoryBudget::usage() const {
  MutexLock lock(&mu_);
  MemoryUsage u;
  u.limit = limit_;
  u.domain_limit = domain_limit_;
  u.used = used_;
  u.peak = peak_;
  u.refused = refused_;
  u.domain_refused = domain_refused_;
  u.reclaimed_bytes = reclaimed_;
  return u;
}

size_t MemoryBudget::domain_used(uint32_t domain) const {
  MutexLock lock(&mu_);
  auto it = by_domain_.find(domain);
  return it == by_domain_.end() ? 0 : it->second;
}

MemoryAccount::MemoryAccount(std::shared_ptr<MemoryBudget> budget, uint32_t domain, uint64_t waiter)
    : budget_(std::move(budget)), domain_(domain), waiter_(waiter) {}

MemoryAccount::~MemoryAccount() {
  if (budget_) budget_->Release(domain_, Charged());
}

bool MemoryAccount::Reserve(size_t bytes) {
  const size_t before = Charged();
  const size_t after = std::max(used_, bytes);
  if (after > before) {
    if (budget_ && !budget_->TryCharge(domain_, after - before, 0)) return false;
  } else if (budget_) {
    budget_->Release(domain_, before - after);
  }
  floor_ = bytes;
  return true;
}

bool MemoryAccount::Charge(size_t n, MemoryTier tier) {
  if (n == 0) return true;
  const size_t before = Charged();
  const size_t after = std::max(used_ + n, floor_);
  if (after > before && budget_ && !budget_->TryCharge(domain_, after - before, waiter_, tier)) {
    return false;
  }
  used_ += n;
  return true;
}

void MemoryAccount::Release(size_t n) {
  n = std::min(n, used_);
  if (n == 0) return;
  const size_t before = Charged();
  used_ -= n;
  const size_t after = Charged();
  if (budget_ && before > after) budget_->Release(domain_, before - after);
}

bool MemoryAccount::Resize(size_t n) {
  if (n >= used_) return Charge(n - used_);
  Release(used_ - n);
  return true;
}

void MemoryAccount::MoveToDomain(uint32_t domain) {
  if (budget_ != nullptr) budget_->MoveCharge(domain_, domain, Charged());
  domain_ = domain;
}

size_t MemoryAccount::Headroom(MemoryTier tier) const {
  const size_t in_floor = floor_ > used_ ? floor_ - used_ : 0;
  if (!budget_) return MemoryBudget::kUnlimited;
  const size_t room = budget_->Headroom(domain_, tier);
  return room > MemoryBudget::kUnlimited - in_floor ? MemoryBudget::kUnlimited : in_floor + room;
}

}  // namespace xenchan
