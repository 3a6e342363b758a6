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

}  // namespace
}  // namespace logictest
}  // namespace xenchan
