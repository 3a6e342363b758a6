// AttachLogic (server/attach_logic.h) driven from plain threads: a client
// thread sends, another completes the logic's writes (as gRPC would), the
// engine-event thread pumps on the engine's wake-ups, and the guest reads
// and writes, on the in-memory platform.
#include "server/attach_logic.h"

#include <atomic>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/server/logic_test_fixture.h"

namespace xenchan {
namespace logictest {
namespace {

using AttachPort = RecordingPort<v1::AttachRequest, v1::AttachResponse>;

class AttachLogicTest : public LogicTest {
 protected:
  // Completes every write the logic starts until it finishes.
  std::thread WriteCompleter(AttachPort& port, server::AttachLogic& logic) {
    return std::thread([&port, &logic] {
      while (port.TakeWrite()) logic.OnWriteDone(true);
    });
  }
  static v1::AttachRequest Open(v1::SessionRole role) {
    v1::AttachRequest m;
    m.mutable_open()->set_channel(ChannelName());
    m.mutable_open()->set_role(role);
    return m;
  }
};

TEST_F(AttachLogicTest, WriterWritesAreAcknowledgedInOrderWhileTheGuestReads) {
  constexpr int kWrites = 30;
  AttachPort port;
  auto call = NewCall("Attach");
  server::AttachLogic logic(call.get(), &port);
  WakeupsStopper stop(&wakeups_);
  logic.Start();
  std::thread completer = WriteCompleter(port, logic);
  std::string expected;
  for (int i = 1; i <= kWrites; ++i) expected += testing_sim::Pattern(100, i);
  std::thread client([&] {
    if (!port.Deliver(Open(v1::SESSION_ROLE_WRITER))) return;
    logic.OnReadDone(true);
    for (int i = 1; i <= kWrites; ++i) {
      v1::AttachRequest m;
      m.mutable_write()->set_sequence_id(i);
      m.mutable_write()->set_data(testing_sim::Pattern(100, i));
      if (!port.Deliver(std::move(m))) return;
      logic.OnReadDone(true);
    }
    if (port.ReadPending()) logic.OnReadDone(false);
  });
  const std::string got = fe_->ReadExactly(expected.size(), absl::Seconds(20));
  client.join();
  const auto status = port.WaitFinish();
  completer.join();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->ok()) << *status;
  EXPECT_EQ(got, expected);
  const auto written = port.written();
  ASSERT_FALSE(written.empty());
  EXPECT_TRUE(written.front().has_opened());
  uint64_t last_acked = 0;
  for (const v1::AttachResponse& m : written) {
    EXPECT_FALSE(m.has_write_rejection()) << m.DebugString();
    if (!m.has_write_ack()) continue;
    EXPECT_GT(m.write_ack().sequence_id(), last_acked);
    last_acked = m.write_ack().sequence_id();
  }
  EXPECT_EQ(last_acked, static_cast<uint64_t>(kWrites));
  logic.OnDone();
}

TEST_F(AttachLogicTest, ObserverGetsTheGuestsBytesThenEndsOkOnHalfClose) {
  AttachPort port;
  auto call = NewCall("Attach");
  server::AttachLogic logic(call.get(), &port);
  WakeupsStopper stop(&wakeups_);
  logic.Start();
  std::thread completer = WriteCompleter(port, logic);
  ASSERT_TRUE(port.Deliver(Open(v1::SESSION_ROLE_OBSERVER)));
  std::atomic<bool> opened{false};
  std::thread client([&] {
    logic.OnReadDone(true);
    opened = true;
  });
  const std::string text = "hello from the guest";
  ASSERT_TRUE(Until([&] { return opened.load(); }));
  ASSERT_TRUE(fe_->WriteAll(text).ok());
  auto seen = [&] {
    std::string data;
    for (const v1::AttachResponse& m : port.written()) {
      if (m.has_data()) data += m.data().data();
    }
    return data;
  };
  EXPECT_TRUE(Until([&] { return seen() == text; })) << seen();
  client.join();
  if (port.ReadPending()) logic.OnReadDone(false);
  const auto status = port.WaitFinish();
  completer.join();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->ok()) << *status;
  logic.OnDone();
}

TEST_F(AttachLogicTest, AFirstMessageOtherThanOpenIsAProtocolViolation) {
  AttachPort port;
  auto call = NewCall("Attach");
  server::AttachLogic logic(call.get(), &port);
  WakeupsStopper stop(&wakeups_);
  logic.Start();
  v1::AttachRequest m;
  m.mutable_write()->set_sequence_id(1);
  ASSERT_TRUE(port.Deliver(std::move(m)));
  logic.OnReadDone(true);
  const auto status = port.WaitFinish();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kInvalidArgument);
  logic.OnDone();
}

// A burst of writes while a send is in flight gets one ACCEPTED ack per
// completed send, each covering the newest write (acks are cumulative).
TEST_F(AttachLogicTest, AcceptedAcksOfABurstAreCoalescedIntoTheNewest) {
  Settle();
  constexpr int kWrites = 10;
  AttachPort port;
  auto call = NewCall("Attach");
  server::AttachLogic logic(call.get(), &port);
  WakeupsStopper stop(&wakeups_);
  logic.Start();
  ASSERT_TRUE(port.Deliver(Open(v1::SESSION_ROLE_WRITER)));
  logic.OnReadDone(true);
  ASSERT_TRUE(port.TakeWrite());  // `opened` is being sent: not completed yet
  for (int i = 1; i <= kWrites; ++i) {
    v1::AttachRequest m;
    m.mutable_write()->set_sequence_id(i);
    m.mutable_write()->set_data(testing_sim::Pattern(10, i));
    ASSERT_TRUE(port.Deliver(std::move(m)));
    logic.OnReadDone(true);
  }
  logic.OnWriteDone(true);
  ASSERT_TRUE(port.TakeWrite());
  const auto written = port.written();
  ASSERT_EQ(written.size(), 2u);
  EXPECT_TRUE(written[0].has_opened());
  ASSERT_TRUE(written[1].has_write_ack()) << written[1].DebugString();
  EXPECT_EQ(written[1].write_ack().sequence_id(), static_cast<uint64_t>(kWrites));
  EXPECT_EQ(written[1].write_ack().level(), v1::ACK_LEVEL_ACCEPTED);
  EXPECT_EQ(written[1].write_ack().end_offset(), 10u * kWrites);
  // A write after the flush gets its own ack.
  v1::AttachRequest m;
  m.mutable_write()->set_sequence_id(kWrites + 1);
  m.mutable_write()->set_data("x");
  ASSERT_TRUE(port.Deliver(std::move(m)));
  logic.OnReadDone(true);
  logic.OnWriteDone(true);
  ASSERT_TRUE(port.TakeWrite());
  const auto after = port.written();
  ASSERT_EQ(after.size(), 3u);
  ASSERT_TRUE(after[2].has_write_ack());
  EXPECT_EQ(after[2].write_ack().sequence_id(), static_cast<uint64_t>(kWrites + 1));
  std::thread completer = WriteCompleter(port, logic);
  logic.OnWriteDone(true);
  if (port.ReadPending()) logic.OnReadDone(false);
  const auto status = port.WaitFinish();
  completer.join();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->ok()) << *status;
  logic.OnDone();
}

// The engine wakes a stream only when it has something to send: a writer
// acknowledging at ACCEPTED and an observer are not woken when the
// writer's bytes are delivered and consumed; a writer acknowledging at
// CONSUMED is, and gets its acks.
TEST_F(AttachLogicTest, WriteProgressWakesOnlyTheStreamsWaitingForIt) {
  Settle();
  LogicWakeups observer_wakeups;
  LogicWakeups accepted_wakeups;
  AttachPort observer_port;
  auto observer_call = NewCall("Attach", absl::InfiniteFuture(), &observer_wakeups);
  server::AttachLogic observer(observer_call.get(), &observer_port);
  WakeupsStopper stop_observer(&observer_wakeups);
  observer.Start();
  std::thread observer_completer = WriteCompleter(observer_port, observer);
  ASSERT_TRUE(observer_port.Deliver(Open(v1::SESSION_ROLE_OBSERVER)));
  observer.OnReadDone(true);

  // 1. A writer at ACCEPTED (the default).
  {
    AttachPort port;
    auto call = NewCall("Attach", absl::InfiniteFuture(), &accepted_wakeups);
    server::AttachLogic writer(call.get(), &port);
    WakeupsStopper stop(&accepted_wakeups);
    writer.Start();
    std::thread completer = WriteCompleter(port, writer);
    ASSERT_TRUE(port.Deliver(Open(v1::SESSION_ROLE_WRITER)));
    writer.OnReadDone(true);
    v1::AttachRequest m;
    m.mutable_write()->set_sequence_id(1);
    m.mutable_write()->set_data("ping");
    ASSERT_TRUE(port.Deliver(std::move(m)));
    writer.OnReadDone(true);
    EXPECT_EQ(fe_->ReadExactly(4), "ping");  // delivered and consumed
    const uint64_t expected = 4;
    ASSERT_TRUE(Until([&] {
      const auto info = core_->engine->GetChannel(ChannelRef{"web", "org.example.a"});
      return info.ok() && info->to_guest.consumed_offset >= expected;
    }));
    if (port.ReadPending()) writer.OnReadDone(false);
    const auto status = port.WaitFinish();
    completer.join();
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(status->ok()) << *status;
    writer.OnDone();
    EXPECT_EQ(accepted_wakeups.notified(), 0);
  }

  // 2. A writer at CONSUMED is woken for its acks.
  {
    LogicWakeups consumed_wakeups;
    AttachPort port;
    auto call = NewCall("Attach", absl::InfiniteFuture(), &consumed_wakeups);
    server::AttachLogic writer(call.get(), &port);
    WakeupsStopper stop(&consumed_wakeups);
    writer.Start();
    std::thread completer = WriteCompleter(port, writer);
    v1::AttachRequest open = Open(v1::SESSION_ROLE_WRITER);
    open.mutable_open()->set_ack_level(v1::ACK_LEVEL_CONSUMED);
    ASSERT_TRUE(port.Deliver(std::move(open)));
    writer.OnReadDone(true);
    v1::AttachRequest m;
    m.mutable_write()->set_sequence_id(1);
    m.mutable_write()->set_data("pong");
    ASSERT_TRUE(port.Deliver(std::move(m)));
    writer.OnReadDone(true);
    EXPECT_EQ(fe_->ReadExactly(4), "pong");
    if (port.ReadPending()) writer.OnReadDone(false);  // ends once CONSUMED is acked
    const auto status = port.WaitFinish();
    completer.join();
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(status->ok()) << *status;
    bool consumed_acked = false;
    for (const v1::AttachResponse& r : port.written()) {
      consumed_acked |= r.has_write_ack() && r.write_ack().level() == v1::ACK_LEVEL_CONSUMED &&
                        r.write_ack().sequence_id() == 1;
    }
    EXPECT_TRUE(consumed_acked);
    EXPECT_GE(consumed_wakeups.notified(), 1);
    writer.OnDone();
  }

  // The observer was never woken: nothing came from the guest.
  EXPECT_EQ(observer_wakeups.notified(), 0);
  if (observer_port.ReadPending()) observer.OnReadDone(false);
  const auto status = observer_port.WaitFinish();
  observer_completer.join();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->ok()) << *status;
  observer.OnDone();
}

}  // namespace
}  // namespace logictest
}  // namespace xenchan
