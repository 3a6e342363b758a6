// CallLogic (server/call_logic.h) driven from plain threads: the client
// thread starts the call, the engine-event thread pumps it on the engine's
// wake-ups, and a guest thread answers, on the in-memory platform.
#include "server/call_logic.h"

#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/status.h"
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

// qemu-ga loses a reply it writes while unparsed input waits in its read
// buffer (a command behind the guest-sync-delimited, or a newline behind the
// command): the command goes only once the sync is answered, and nothing
// follows its closing brace.
TEST_F(CallLogicTest, QemuGuestAgentCommandWaitsForTheSyncReply) {
  CallPort port;
  v1::CallResponse response;
  auto call = NewCall("Call");
  v1::CallRequest request;
  request.set_channel(ChannelName());
  request.set_request("{\"execute\":\"guest-ping\"}\n");
  request.mutable_framing()->mutable_qemu_guest_agent();
  server::CallLogic logic(call.get(), &port, request, &response);
  WakeupsStopper stop(&wakeups_);
  logic.Start();

  // The sync line arrives alone: all of it in one read, nothing behind it.
  std::string sync;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (sync.find('\n') == std::string::npos && absl::Now() < deadline) {
    absl::StatusOr<std::string> chunk = fe_->Read(4096);
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    sync += *chunk;
    if (chunk->empty()) fe_->WaitEvent(absl::Milliseconds(50));
  }
  const size_t id_at = sync.find("\"id\":");
  ASSERT_NE(id_at, std::string::npos) << sync;
  const std::string id = sync.substr(id_at + 5, sync.find('}', id_at) - id_at - 5);
  EXPECT_EQ(
      sync,
      absl::StrCat("\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":", id, "}}\n"));
  // Bounded check for an absence: the command must not follow unanswered.
  EXPECT_EQ(fe_->ReadExactly(1, absl::Milliseconds(200)), "");

  // The agent answers the sync (after the error its 0xFF parser reset causes).
  ASSERT_TRUE(
      fe_->WriteAll(absl::StrCat(
                        "{\"error\": {\"class\": \"GenericError\"}}\n\xff{\"return\": ", id, "}\n"))
          .ok());
  const std::string command = "{\"execute\":\"guest-ping\"}";
  EXPECT_EQ(fe_->ReadExactly(command.size()), command);
  ASSERT_TRUE(fe_->WriteAll("{\"return\": {}}\n").ok());
  const auto status = port.WaitFinish();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->ok()) << *status;
  EXPECT_EQ(response.response(), "{\"return\": {}}");
  // Nothing after the command's closing brace.
  EXPECT_EQ(fe_->ReadExactly(1, absl::Milliseconds(100)), "");
  logic.OnDone();
}

// The frontend's directory vanishing (DISCONNECTED, frontend state unknown)
// is the toolstack's doing; the removal that follows says why. A domain
// destroyed while a Call waits ends it DOMAIN_GONE even when the engine saw
// the directory go first (a CI failure under TSan); with no removal after
// it, the Call ends NOT_CONNECTED once the grace has passed.
TEST_F(CallLogicTest, AVanishedFrontendEndsTheCallWithTheReasonThatFollows) {
  for (const bool destroy : {true, false}) {
    SCOPED_TRACE(destroy ? "domain destroyed" : "frontend removed only");
    if (!destroy) {
      TearDown();
      SetUp();
    }
    const auto info = core_->engine->GetChannel(ChannelRef{"web", "org.example.a"});
    ASSERT_TRUE(info.ok());
    LogicWakeups wakeups;
    CallPort port;
    v1::CallResponse response;
    auto call = NewCall("Call", absl::InfiniteFuture(), &wakeups);
    server::CallLogic logic(call.get(), &port, Ping(), &response);
    WakeupsStopper stop(&wakeups);
    std::thread client([&] { logic.Start(); });
    EXPECT_EQ(fe_->ReadExactly(5, absl::Seconds(10)), "ping\n");
    client.join();
    ASSERT_TRUE(host_->xs()
                    .Remove(kNoTransaction, absl::StrCat("/local/domain/", info->domid,
                                                         "/device/console/", info->devid))
                    .ok());
    ASSERT_TRUE(Until([&] {
      auto c = core_->engine->GetChannel(ChannelRef{"web", "org.example.a"});
      return c.ok() && c->state == ChannelState::kDisconnected;
    }));
    if (destroy) {
      ASSERT_TRUE(host_->DestroyDomain(info->domid).ok());
    }
    const auto status = port.WaitFinish(absl::Seconds(10));
    ASSERT_TRUE(status.has_value());
    if (destroy) {
      EXPECT_EQ(status->code(), absl::StatusCode::kUnavailable) << *status;
      EXPECT_EQ(server::ReasonOf(*status), v1::ERROR_REASON_DOMAIN_GONE) << *status;
    } else {
      EXPECT_EQ(status->code(), absl::StatusCode::kFailedPrecondition) << *status;
      EXPECT_EQ(server::ReasonOf(*status), v1::ERROR_REASON_NOT_CONNECTED) << *status;
    }
    logic.OnDone();
    EXPECT_EQ(wakeups.timers(), 0u);
  }
}

}  // namespace
}  // namespace logictest
}  // namespace xenchan
