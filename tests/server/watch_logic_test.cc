// WatchLogic (server/watch_logic.h) driven from plain threads: the engine
// logs lifecycle events while a client thread completes the logic's writes
// and the engine-event thread pumps it, on the in-memory platform.
#include "server/watch_logic.h"

#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/server/logic_test_fixture.h"

namespace xenchan {
namespace logictest {
namespace {

using WatchPort = RecordingPort<int, v1::WatchChannelsResponse>;

class WatchLogicTest : public LogicTest {
 protected:
  static bool Has(const WatchPort& port, v1::ChannelEventType type, const std::string& id) {
    for (const v1::WatchChannelsResponse& m : port.written()) {
      if (m.type() == type && (id.empty() || m.channel().name().find(id) != std::string::npos)) {
        return true;
      }
    }
    return false;
  }
};

TEST_F(WatchLogicTest, SnapshotSyncedThenLiveEventsUntilCancelled) {
  WatchPort port;
  v1::WatchChannelsRequest request;
  request.set_parent("domains/-");
  auto call = NewCall("WatchChannels");
  server::WatchLogic logic(call.get(), &port, request);
  WakeupsStopper stop(&wakeups_);
  logic.Start();
  EXPECT_EQ(wakeups_.timers(), 1u);  // the heartbeat
  std::thread client([&] {
    while (port.TakeWrite()) logic.OnWriteDone(true);
  });
  EXPECT_TRUE(Until([&] { return Has(port, v1::CHANNEL_EVENT_TYPE_SYNCED, ""); }));
  EXPECT_TRUE(Has(port, v1::CHANNEL_EVENT_TYPE_EXISTING, "org.example.a"));
  // Events logged on the engine's thread reach the watcher through the
  // engine-event thread while the client thread completes writes.
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(Create("web", "org.example.b" + std::to_string(i)).ok());
  }
  EXPECT_TRUE(Until([&] { return Has(port, v1::CHANNEL_EVENT_TYPE_APPEARED, "org.example.b4"); }));
  logic.OnCancel();
  const auto status = port.WaitFinish();
  client.join();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kCancelled);
  logic.OnDone();
  EXPECT_EQ(wakeups_.timers(), 0u);
}

TEST_F(WatchLogicTest, AHeartbeatWithNothingNewSendsProgress) {
  WatchPort port;
  v1::WatchChannelsRequest request;
  request.set_parent("domains/web");
  auto call = NewCall("WatchChannels");
  server::WatchLogic logic(call.get(), &port, request);
  WakeupsStopper stop(&wakeups_);
  logic.Start();
  std::thread client([&] {
    while (port.TakeWrite()) logic.OnWriteDone(true);
  });
  EXPECT_TRUE(Until([&] { return Has(port, v1::CHANNEL_EVENT_TYPE_SYNCED, ""); }));
  // Two heartbeats: the first clears "sent since", the second sends.
  std::thread timer([&] {
    logic.Heartbeat();
    logic.Heartbeat();
  });
  timer.join();
  EXPECT_TRUE(Until([&] { return Has(port, v1::CHANNEL_EVENT_TYPE_PROGRESS, ""); }));
  logic.OnShutdown();
  const auto status = port.WaitFinish();
  client.join();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kUnavailable);
  logic.OnDone();
}

}  // namespace
}  // namespace logictest
}  // namespace xenchan
