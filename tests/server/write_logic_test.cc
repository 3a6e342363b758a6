// WriteLogic (server/write_logic.h) driven from plain threads: a client
// thread streams messages while the engine-event thread pumps the logic on
// the engine's wake-ups and the guest reads, on the in-memory platform.
#include "server/write_logic.h"

#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/server/logic_test_fixture.h"

namespace xenchan {
namespace logictest {
namespace {

using WritePort = RecordingPort<v1::WriteRequest, int>;

class WriteLogicTest : public LogicTest {};

TEST_F(WriteLogicTest, StreamsEveryByteToTheGuestAndEndsOkAfterHalfClose) {
  constexpr int kMessages = 40;
  constexpr size_t kSize = 1000;
  WritePort port;
  v1::WriteResponse response;
  auto call = NewCall("Write");
  server::WriteLogic logic(call.get(), port.in_stream(), &response);
  WakeupsStopper stop(&wakeups_);
  logic.Start();

  std::string expected;
  for (int i = 0; i < kMessages; ++i) expected += testing_sim::Pattern(kSize, i);
  std::thread client([&] {
    for (int i = 0; i < kMessages; ++i) {
      v1::WriteRequest m;
      if (i == 0) m.set_channel(ChannelName());
      m.set_data(testing_sim::Pattern(kSize, i));
      if (!port.Deliver(std::move(m))) return;
      logic.OnReadDone(true);
    }
    if (port.ReadPending()) logic.OnReadDone(false);
  });
  const std::string got = fe_->ReadExactly(expected.size(), absl::Seconds(20));
  client.join();
  const auto status = port.WaitFinish();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->ok()) << *status;
  EXPECT_EQ(got, expected);
  EXPECT_EQ(response.progress().accepted_bytes(), expected.size());
  logic.OnDone();
  EXPECT_EQ(call->final_code(), absl::StatusCode::kOk);
}

TEST_F(WriteLogicTest, CancelWhileTheEngineWakesItEndsCancelled) {
  WritePort port;
  v1::WriteResponse response;
  auto call = NewCall("Write", absl::Now() + absl::Seconds(30));
  server::WriteLogic logic(call.get(), port.in_stream(), &response);
  WakeupsStopper stop(&wakeups_);
  logic.Start();
  EXPECT_EQ(wakeups_.timers(), 1u);  // the deadline
  std::thread client([&] {
    v1::WriteRequest m;
    m.set_channel(ChannelName());
    m.set_data("first");
    if (port.Deliver(std::move(m))) logic.OnReadDone(true);
    logic.OnCancel();
  });
  // Meanwhile the guest consumes, so the engine keeps waking the logic.
  fe_->ReadExactly(5, absl::Seconds(10));
  client.join();
  const auto status = port.WaitFinish();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kCancelled);
  logic.OnDone();
  EXPECT_EQ(wakeups_.timers(), 0u);  // OnDone cancelled the deadline
}

TEST_F(WriteLogicTest, TheDeadlineTimerEndsAWriteTheGuestNeverConsumes) {
  WritePort port;
  v1::WriteResponse response;
  auto call = NewCall("Write", absl::Now() + absl::Milliseconds(300));
  server::WriteLogic logic(call.get(), port.in_stream(), &response);
  WakeupsStopper stop(&wakeups_);
  logic.Start();
  std::thread client([&] {
    v1::WriteRequest m;
    m.set_channel(ChannelName());
    m.set_ack_level(v1::ACK_LEVEL_CONSUMED);
    m.set_data("never read");
    if (port.Deliver(std::move(m))) logic.OnReadDone(true);
    if (port.ReadPending()) logic.OnReadDone(false);
  });
  client.join();
  const auto status = port.WaitFinish(absl::Seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kDeadlineExceeded) << *status;
  logic.OnDone();
}

// A Write session is woken by the progress it waits for, no other: at
// ACCEPTED, the delivery that gives its queued-bytes quota back, not the
// guest's consumption; at CONSUMED, half-closed, its bytes' consumption.
TEST_F(WriteLogicTest, AWriteIsWokenOnlyByTheProgressItWaitsFor) {
  Settle();
  for (const v1::AckLevel level : {v1::ACK_LEVEL_ACCEPTED, v1::ACK_LEVEL_CONSUMED}) {
    SCOPED_TRACE(v1::AckLevel_Name(level));
    LogicWakeups wakeups;
    WritePort port;
    v1::WriteResponse response;
    auto call = NewCall("Write", absl::InfiniteFuture(), &wakeups);
    server::WriteLogic logic(call.get(), port.in_stream(), &response);
    WakeupsStopper stop(&wakeups);
    logic.Start();
    v1::WriteRequest m;
    m.set_channel(ChannelName());
    m.set_ack_level(level);
    m.set_data("ping");
    ASSERT_TRUE(port.Deliver(std::move(m)));
    logic.OnReadDone(true);
    if (level == v1::ACK_LEVEL_CONSUMED) {
      ASSERT_TRUE(port.ReadPending());
      logic.OnReadDone(false);  // half-closed: ends once the guest consumed
    }
    EXPECT_EQ(fe_->ReadExactly(4), "ping");
    ASSERT_TRUE(Until([&] {
      const auto info = core_->engine->GetChannel(ChannelRef{"web", "org.example.a"});
      return info.ok() && info->to_guest.consumed_offset >= 4;
    }));
    if (level == v1::ACK_LEVEL_ACCEPTED) {
      ASSERT_TRUE(port.ReadPending());
      logic.OnReadDone(false);
    }
    const auto status = port.WaitFinish();
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(status->ok()) << *status;
    EXPECT_EQ(response.progress().consumed_bytes(), 4u);
    wakeups.Stop();
    // The delivery (quota); at CONSUMED the consumption too. Not both
    // movements plus whatever else moved, as a session woken by all.
    EXPECT_LE(wakeups.notified(), level == v1::ACK_LEVEL_ACCEPTED ? 1 : 2);
    logic.OnDone();
  }
}

}  // namespace
}  // namespace logictest
}  // namespace xenchan
