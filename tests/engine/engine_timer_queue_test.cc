// The engine loop's timer queue (engine.cc: a min-heap of ring deadlines
// with lazy invalidation, re-read after each call into a ring and after
// every pass that ran commands or watches): every channel's timer fires in
// its own time, none early, none lost among another channel's churn of
// rate-limit deadlines, and an engine whose timers are all in the future
// sleeps rather than spinning on stale entries.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backend/engine/engine.h"
#include "gtest/gtest.h"
#include "tests/engine/fake_engine_fixture.h"

namespace xenchan {
namespace {

using testing_fake::Frontend;

class EngineTimerQueueTest : public testing_fake::FakeEngineTest {
 protected:
  bool NotConnecting(const std::string& domain, const std::string& id) {
    return Info(domain, id).last_error.kind == ChannelErrorKind::kGuestNotConnecting;
  }
};

TEST_F(EngineTimerQueueTest, EveryChannelsConnectTimeoutFiresNoneEarlyAndTheEngineSleepsMeanwhile) {
  constexpr absl::Duration kTimeout = absl::Milliseconds(300);
  StartEngine([&](EngineOptions& o) { o.connect_timeout = kTimeout; });
  NewDomain("vm1");
  NewDomain("vm2");
  // Created one after another: their deadlines are queued in creation order
  // and several of them at once.
  std::vector<std::pair<std::string, std::string>> channels;
  std::vector<absl::Time> created;
  for (int i = 0; i < 6; ++i) {
    const std::string domain = i % 2 == 0 ? "vm1" : "vm2";
    const std::string id = absl::StrCat("c", i);
    created.push_back(absl::Now());
    ASSERT_TRUE(Create(domain, id).ok());
    channels.emplace_back(domain, id);
  }
  const uint64_t wakeups_before = engine_->stats().wakeups;
  for (size_t i = 0; i < channels.size(); ++i) {
    const std::string& domain = channels[i].first;  // clang 14 cannot capture a binding
    const std::string& id = channels[i].second;
    ASSERT_TRUE(Until([&] { return NotConnecting(domain, id); })) << id;
    EXPECT_GE(absl::Now() - created[i], kTimeout) << id << " was reported early";
  }
  // Six timers (and the watch events of the creates) in about 300 ms: a
  // loop polling with a zero timeout would wake thousands of times.
  EXPECT_LT(engine_->stats().wakeups - wakeups_before, 200u);
}

TEST_F(EngineTimerQueueTest, AChannelsRateLimitChurnDoesNotHideAnotherChannelsTimer) {
  constexpr absl::Duration kTimeout = absl::Milliseconds(300);
  StartEngine([&](EngineOptions& o) {
    o.connect_timeout = kTimeout;
    o.event_allowance = 1;
    o.event_period = absl::Milliseconds(1);  // a held port is let go after 1 ms
  });
  NewDomain("vm1");
  Frontend& fe = Connect("vm1", "busy");
  const absl::Time created = absl::Now();
  ASSERT_TRUE(Create("vm1", "quiet").ok());
  // The busy channel's guest kicks without reason, each kick taken before
  // the next: its port is held and let go by a timer over and over, each
  // time a new deadline in the queue, until the quiet channel's timer fires.
  const ChannelCounters before = Info("vm1", "busy").counters;
  uint64_t kicks = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!NotConnecting("vm1", "quiet")) {
    ASSERT_LT(absl::Now(), deadline) << "the quiet channel's timer did not fire";
    ASSERT_TRUE(fe.Notify().ok());
    ++kicks;
    while (Info("vm1", "busy").counters.events_from_guest < before.events_from_guest + kicks) {
      ASSERT_LT(absl::Now(), deadline) << "kick " << kicks << " was not taken";
      absl::SleepFor(absl::Microseconds(50));
    }
  }
  EXPECT_GE(absl::Now() - created, kTimeout) << "reported early";
  // The churn was real: the busy port was held many times meanwhile.
  EXPECT_GE(Info("vm1", "busy").counters.rate_limited_periods - before.rate_limited_periods, 10u);
}

}  // namespace
}  // namespace xenchan
