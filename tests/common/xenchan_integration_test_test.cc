// Tests of the integration base itself: xensim and xenchand start, a channel
// is created connected, the guest's tty and an Attach stream carry bytes both
// ways, xenchand restarts with other flags, and the helpers report failures
// (as test failures) instead of crashing on a bad domain or channel.
#include "tests/common/xenchan_integration_test.h"

#include <string>

#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "tests/common/io.h"

namespace xenchan {
namespace testcommon {
namespace {

constexpr char kGuest[] = "guest1";
constexpr char kChannel[] = "org.example.base";

class BaseFixtureTest : public XenchanIntegrationTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartXensim({kGuest}));
    ASSERT_NO_FATAL_FAILURE(StartServer());
  }

  // Runs `body` and returns how many test failures it reported, without
  // failing the test for them.
  template <class Body>
  static int FailuresOf(Body body) {
    ::testing::TestPartResultArray failures;
    {
      ::testing::ScopedFakeTestPartResultReporter reporter(
          ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
      body();
    }
    return failures.size();
  }
};

TEST_F(BaseFixtureTest, ChannelTtyAndAttachCarryBytesBothWays) {
  const v1::Channel ch = CreateConnectedChannel(kGuest, kChannel);
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(ch.state(), v1::CHANNEL_STATE_CONNECTED);
  EXPECT_EQ(ch.channel_id(), kChannel);
  const int tty = OpenTty(kGuest, kChannel);
  ASSERT_GE(tty, 0);

  v1::AttachResponse opened;
  auto writer = OpenAttach(AttachOpenRequest(ChannelName(kGuest, kChannel), v1::SESSION_ROLE_WRITER,
                                             v1::START_ANCHOR_EARLIEST),
                           &opened);
  ASSERT_NE(writer, nullptr);
  EXPECT_EQ(opened.opened().role(), v1::SESSION_ROLE_WRITER);

  ASSERT_TRUE(WriteAll(tty, "from the guest\n"));
  std::string got;
  v1::AttachResponse m;
  while (got.size() < 15 && writer->Receive(&m)) {
    if (m.has_data()) got += m.data().data();
  }
  EXPECT_EQ(got, "from the guest\n");

  v1::AttachRequest w;
  w.mutable_write()->set_sequence_id(1);
  w.mutable_write()->set_data("from the host\n");
  ASSERT_TRUE(writer->Send(w));
  EXPECT_EQ(ReadExactly(tty, 14), "from the host\n");
  writer->Cancel();
}

TEST_F(BaseFixtureTest, ServerRestartsWithOtherFlags) {
  StopServer();
  EXPECT_EQ(server_, nullptr);
  EXPECT_EQ(client_, nullptr);
  ASSERT_NO_FATAL_FAILURE(StartServer({"--max-readers-per-channel=2"}, ""));
  EXPECT_TRUE(server_->tcp_target().empty());
  EXPECT_TRUE(server_->WaitForLog("msg=ready"));
  auto domains = client_->ListDomains();
  ASSERT_TRUE(domains.ok()) << domains.status();
  ASSERT_EQ(domains->size(), 1u);
  EXPECT_EQ((*domains)[0].display_name(), kGuest);
}

TEST_F(BaseFixtureTest, HelpersReportFailuresAsTestFailures) {
  v1::Channel ch;
  EXPECT_EQ(FailuresOf([&] { ch = CreateConnectedChannel("no-such-guest", kChannel); }), 1);
  EXPECT_EQ(ch.channel_id(), "");
  std::unique_ptr<client::AttachStream> stream;
  EXPECT_EQ(FailuresOf([&] {
              stream = OpenAttach(AttachOpenRequest(ChannelName(kGuest, "org.example.none"),
                                                    v1::SESSION_ROLE_OBSERVER));
            }),
            1);
  EXPECT_EQ(stream, nullptr);
  EXPECT_EQ(FailuresOf([&] {
              EXPECT_EQ(OpenGuestTty(TtyPath(kGuest, "org.example.none"), absl::Milliseconds(50)),
                        -1);
            }),
            0);
  EXPECT_EQ(ChannelName("g", "c"), "domains/g/channels/c");
}

}  // namespace
}  // namespace testcommon
}  // namespace xenchan
