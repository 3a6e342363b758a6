// CallLogic (server/call_logic.h) driven from plain threads: the client
// thread starts the call, the engine-event thread pumps it on the engine's
// wake-ups, and a guest thread answers, on the in-memory platform.
#include "server/call_logic.h"

#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/logic_test_fixture.h"

namespace xenchan {
namespace logictest {
namespace {

using ::testing::StartsWith;
using CallPort = RecordingPort<int, int>;

class CallLogicTest : public LogicTest {
 protected:
  static v1::CallRequest Ping() {
    v1::CallRequest request;
    request.set_channel(ChannelName());
    request.set_request("ping");
    request.mutable_framing()->mutable_newline();
    return request;
  }
};

TEST_F(CallLogicTest, TheGuestsAnswerIsTheResponse) {
  CallPort port;
  v1::CallResponse response;
  auto call = NewCall("Call");
  server::CallLogic logic(call.get(), &port, Ping(), &response);
  WakeupsStopper stop(&wakeups_);
  std::string asked;
  std::thread guest([&] {
    asked = fe_->ReadExactly(5, absl::Seconds(10));
    EXPECT_TRUE(fe_->WriteAll("pong\n").ok());
  });
  logic.Start();
  const auto status = port.WaitFinish();
  guest.join();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->ok()) << *status;
  EXPECT_EQ(asked, "ping\n");
  EXPECT_THAT(response.response(), StartsWith("pong"));
  logic.OnDone();
  EXPECT_EQ(wakeups_.timers(), 0u);
}

TEST_F(CallLogicTest, ASilentGuestEndsTheCallAtItsDeadline) {
  CallPort port;
  v1::CallResponse response;
  auto call = NewCall("Call", absl::Now() + absl::Milliseconds(300));
  server::CallLogic logic(call.get(), &port, Ping(), &response);
  WakeupsStopper stop(&wakeups_);
  std::thread client([&] { logic.Start(); });
  const std::string asked = fe_->ReadExactly(5, absl::Seconds(10));
  client.join();
  const auto status = port.WaitFinish(absl::Seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kDeadlineExceeded) << *status;
  EXPECT_EQ(asked, "ping\n");
  logic.OnDone();
}

TEST_F(CallLogicTest, ShutdownWhileWaitingEndsUnavailable) {
  CallPort port;
  v1::CallResponse response;
  auto call = NewCall("Call");
  server::CallLogic logic(call.get(), &port, Ping(), &response);
  WakeupsStopper stop(&wakeups_);
  logic.Start();
  std::thread shutdown([&] { logic.OnShutdown(); });
  fe_->ReadExactly(5, absl::Seconds(10));
  shutdown.join();
  const auto status = port.WaitFinish();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kUnavailable) << *status;
  logic.OnDone();
}

}  // namespace
}  // namespace logictest
}  // namespace xenchan
