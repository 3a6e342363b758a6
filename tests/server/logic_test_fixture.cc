// LogicTest, LogicWakeups: the call logics on plain threads (see the header).
#include "tests/server/logic_test_fixture.h"

#include <utility>

#include "prometheus/registry.h"
#include "server/policy/policy.h"

namespace xenchan {
namespace logictest {

LogicWakeups::LogicWakeups() : state_(std::make_shared<State>()) {
  thread_ = std::thread([this] { Run(); });
}

LogicWakeups::~LogicWakeups() { Stop(); }

void LogicWakeups::Stop() {
  {
    MutexLock lock(&state_->mu);
    state_->stop = true;
    state_->cv.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

std::function<void()> LogicWakeups::Notifier(std::function<void()> task) {
  std::weak_ptr<State> weak = state_;
  return [weak, task = std::move(task)] {
    std::shared_ptr<State> state = weak.lock();
    if (state == nullptr) return;
    state->notified.fetch_add(1);
    MutexLock lock(&state->mu);
    if (state->stop) return;
    state->ready.push_back(task);
    state->cv.SignalAll();
  };
}

uint64_t LogicWakeups::RunAt(absl::Time when, std::function<void()> task) {
  MutexLock lock(&state_->mu);
  const uint64_t id = state_->next_id++;
  state_->timers.emplace(id, std::make_pair(when, std::move(task)));
  state_->cv.SignalAll();
  return id;
}

void LogicWakeups::Cancel(uint64_t id) {
  MutexLock lock(&state_->mu);
  state_->timers.erase(id);
}

size_t LogicWakeups::timers() const {
  MutexLock lock(&state_->mu);
  return state_->timers.size();
}

void LogicWakeups::Run() {
  State& s = *state_;
  MutexLock lock(&s.mu);
  while (!s.stop) {
    const absl::Time now = absl::Now();
    absl::Time next = absl::InfiniteFuture();
    for (auto it = s.timers.begin(); it != s.timers.end();) {
      if (it->second.first <= now) {
        s.ready.push_back(std::move(it->second.second));
        it = s.timers.erase(it);
      } else {
        next = std::min(next, it->second.first);
        ++it;
      }
    }
    if (!s.ready.empty()) {
      std::function<void()> task = std::move(s.ready.front());
      s.ready.pop_front();
      s.mu.Unlock();
      task();
      s.mu.Lock();
      continue;
    }
    s.cv.WaitWithDeadline(&s.mu, std::min(next, now + absl::Milliseconds(100)));
  }
}

void LogicTest::SetUp() {
  FakeEngineTest::SetUp();
  StartEngine();
  NewDomain("web");
  fe_ = &Connect("web", "org.example.a");
  metrics_ = std::make_unique<server::ServerMetrics>(std::make_shared<prometheus::Registry>());
  auto policy = server::policy::Policy::Parse(
      "[identity unix:uid=0]\nallow verbs=* domain=* channel=*\n", "logic test policy");
  ASSERT_TRUE(policy.ok()) << policy.status();
  auto shared = std::make_shared<const server::policy::Policy>(*std::move(policy));
  server::AccessControl access;
  access.policy = [shared] { return shared; };
  server::ChannelServiceOptions options;
  options.worker_threads = 1;
  core_ = std::make_shared<server::ServiceCore>(engine_.get(), metrics_.get(), options,
                                                std::move(access));
}

void LogicTest::TearDown() {
  wakeups_.Stop();
  if (core_ != nullptr) core_->scheduler->Stop();
  core_.reset();
  FakeEngineTest::TearDown();
}

void LogicTest::Settle() {
  ASSERT_TRUE(Until([&] {
    auto c = engine_->GetChannel({"web", "org.example.a"});
    return c.ok() && c->frontend_state == XenbusState::kConnected &&
           c->backend_state == XenbusState::kConnected;
  }));
}

std::unique_ptr<server::CallState> LogicTest::NewCall(const std::string& method,
                                                      absl::Time deadline,
                                                      server::CallWakeups* wakeups) {
  server::Identity id;
  id.principals = server::policy::Identity::FromUnixPeer(0, {0});
  id.peer = "fd:7";
  id.transport = server::TransportKind::kUnix;
  return std::make_unique<server::CallState>(core_, method, std::move(id), deadline,
                                             wakeups != nullptr ? wakeups : &wakeups_);
}

}  // namespace logictest
}  // namespace xenchan
