// Scheduler (see the header).
#include "server/scheduler.h"

#include <atomic>
#include <memory>
#include <utility>

namespace xenchan {
namespace server {

Scheduler::Scheduler(int threads) {
  if (threads < 1) threads = 1;
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    cv_.SignalAll();
  }
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void Scheduler::Run(std::function<void()> task) {
  MutexLock lock(&mu_);
  ready_.push_back(std::move(task));
  cv_.Signal();
}

std::function<void()> Scheduler::Coalescing(std::function<void()> task) {
  struct Shared {
    std::atomic<bool> queued{false};
    std::function<void()> task;
  };
  auto shared = std::make_shared<Shared>();
  shared->task = std::move(task);
  return [this, shared] {
    if (shared->queued.exchange(true)) return;
    Run([shared] {
      shared->queued.store(false);
      shared->task();
    });
  };
}

uint64_t Scheduler::RunAt(absl::Time when, std::function<void()> task) {
  MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  timers_.emplace(std::make_pair(when, id), std::move(task));
  timer_ids_[id] = when;
  cv_.SignalAll();
  return id;
}

void Scheduler::Cancel(uint64_t id) {
  MutexLock lock(&mu_);
  auto it = timer_ids_.find(id);
  if (it == timer_ids_.end()) return;
  timers_.erase(std::make_pair(it->second, id));
  timer_ids_.erase(it);
}

void Scheduler::Work() {
  MutexLock lock(&mu_);
  while (!stop_) {
    const absl::Time now = absl::Now();
    if (!timers_.empty() && timers_.begin()->first.first <= now) {
      auto it = timers_.begin();
      ready_.push_back(std::move(it->second));
      timer_ids_.erase(it->first.second);
      timers_.erase(it);
    }
    if (!ready_.empty()) {
      std::function<void()> task = std::move(ready_.front());
      ready_.pop_front();
      mu_.Unlock();
      task();
      mu_.Lock();
      continue;
    }
    if (timers_.empty()) {
      cv_.Wait(&mu_);
    } else {
      cv_.WaitWithDeadline(&mu_, timers_.begin()->first.first);
    }
  }
}

}  // namespace server
}  // namespace xenchan
