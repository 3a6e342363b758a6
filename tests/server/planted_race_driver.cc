// The driver of //tests/server:tsan_planted_race_test: WriteLogic built with
// XENCHAN_PLANT_RACE_FOR_TEST (OnReadDone clears `reading_` without the
// lock), driven as write_logic_test drives the real one: a client thread
// completes reads while an engine-event thread pumps. ThreadSanitizer must
// report the race; the test script checks that it did.
//
// Plain threads are the point: were the same logic run by the server, the
// client side would run on gRPC's threads, whose stacks begin in the
// uninstrumented libgrpc.so, and the report would match the library
// suppressions (tools/tsan/suppressions.cc) and never be shown.
#include <atomic>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/write_logic.h"
#include "tests/server/logic_test_fixture.h"

namespace xenchan {
namespace logictest {
namespace {

using WritePort = RecordingPort<v1::WriteRequest, int>;

class PlantedRaceTest : public LogicTest {};

TEST_F(PlantedRaceTest, ClientReadsAndEnginePumpsAtOnce) {
  constexpr int kMessages = 200;
  WritePort port;
  v1::WriteResponse response;
  auto call = NewCall("Write");
  server::WriteLogic logic(call.get(), port.in_stream(), &response);
  WakeupsStopper stop(&wakeups_);
  logic.Start();
  std::atomic<bool> done{false};
  std::thread engine_events([&] {
    while (!done) logic.Pump();
  });
  std::thread client([&] {
    for (int i = 0; i < kMessages; ++i) {
      // A client's pace: between two reads the engine-event thread pumps
      // (taking the lock), so its read of `reading_` is unordered with the
      // unlocked write in the next OnReadDone.
      absl::SleepFor(absl::Microseconds(200));
      v1::WriteRequest m;
      if (i == 0) m.set_channel(ChannelName());
      m.set_data("x");
      if (!port.Deliver(std::move(m))) return;
      logic.OnReadDone(true);
    }
    if (port.ReadPending()) logic.OnReadDone(false);
  });
  const std::string got = fe_->ReadExactly(kMessages, absl::Seconds(20));
  client.join();
  done = true;
  engine_events.join();
  const auto status = port.WaitFinish();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->ok()) << *status;
  EXPECT_EQ(got.size(), static_cast<size_t>(kMessages));
  logic.OnDone();
}

}  // namespace
}  // namespace logictest
}  // namespace xenchan
