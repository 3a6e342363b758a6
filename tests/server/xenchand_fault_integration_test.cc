// xenchand under faults: a guest killed mid-stream, the server restarted
// mid-stream (nothing that was in the ring is lost), a channel deleted under
// its streams, and a slow reader next to a fast one. Real binaries on temp
// sockets, driven through the generated stub.
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "clients/lib/client.h"
#include "gtest/gtest.h"
#include "tests/common/bytes.h"
#include "tests/common/io.h"
#include "tests/common/xenchan_integration_test.h"

namespace xenchan {
namespace {

using client::ReasonOf;
using testcommon::OpenGuestTty;
using testcommon::Pattern;
using testcommon::ReadExactly;
using testcommon::ReadUntil;
using testcommon::WriteAll;

constexpr char kGuest[] = "guest1";
constexpr char kChannel[] = "org.example.fault";

class XenchandFaultTest : public testcommon::XenchanIntegrationTest {
 protected:
  void SetUp() override {
    expect_clean_stop_ = false;
    ASSERT_NO_FATAL_FAILURE(StartXensim({kGuest}));
    ASSERT_NO_FATAL_FAILURE(StartServer());
    CreateConnectedChannel(kGuest, kChannel);
    ASSERT_FALSE(HasFailure());
    tty_ = OpenTty(kGuest, kChannel);
    ASSERT_GE(tty_, 0);
  }

  void StartServer() {
    client::ConnectOptions options;
    options.stream_timeout = absl::Seconds(60);
    XenchanIntegrationTest::StartServer({}, kInsecureTcp, options);
  }

  std::unique_ptr<client::AttachStream> Observe() {
    return OpenAttach(
        AttachOpenRequest(Name(), v1::SESSION_ROLE_OBSERVER, v1::START_ANCHOR_EARLIEST));
  }

  // Receives until `n` data bytes arrived; returns them.
  static std::string ReceiveData(client::AttachStream& s, size_t n) {
    std::string got;
    v1::AttachResponse m;
    while (got.size() < n && s.Receive(&m)) {
      if (m.has_data()) got += m.data().data();
    }
    return got;
  }

  static std::string Name() { return ChannelName(kGuest, kChannel); }

  int tty_ = -1;
};

TEST_F(XenchandFaultTest, GuestKilledMidStreamEndsStreamsWithDomainGone) {
  auto observer = Observe();
  ASSERT_NE(observer, nullptr);
  ASSERT_TRUE(WriteAll(tty_, "last words\n"));
  EXPECT_EQ(ReceiveData(*observer, 11), "last words\n");
  auto result = sim_->Cli({"domain", "destroy", kGuest});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  v1::AttachResponse m;
  while (observer->Receive(&m)) {
  }
  absl::Status s = observer->Finish();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(ReasonOf(s), "DOMAIN_GONE");
  auto gone = client_->GetDomain("domains/guest1");
  EXPECT_EQ(ReasonOf(gone.status()), "DOMAIN_NOT_FOUND");
}

TEST_F(XenchandFaultTest, ServerRestartMidStreamLosesNothingThatWasInTheRing) {
  // A second channel whose default framing (a delimiter with a byte that is
  // not printable, stored hex-encoded) must
  // survive the restart: the engine keeps it in the backend directory.
  v1::CreateChannelRequest framed;
  framed.set_parent("domains/guest1");
  framed.set_channel_id("org.example.framed");
  framed.mutable_config()->mutable_default_framing()->mutable_delimiter()->set_delimiter("<\x01>");
  framed.set_wait_until_connected(true);
  auto created = client_->CreateChannel(framed, absl::Seconds(25));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->config().default_framing().delimiter().delimiter(), "<\x01>");
  const int framed_tty = OpenGuestTty(TtyPath(kGuest, "org.example.framed"));
  ASSERT_GE(framed_tty, 0);

  auto observer = Observe();
  ASSERT_NE(observer, nullptr);
  ASSERT_TRUE(WriteAll(tty_, "before\n"));
  EXPECT_EQ(ReceiveData(*observer, 7), "before\n");
  // SIGTERM: the stream ends with UNAVAILABLE (SHUTTING_DOWN).
  std::thread stopper([&] { EXPECT_EQ(server_->Stop(), 0); });
  v1::AttachResponse m;
  while (observer->Receive(&m)) {
  }
  stopper.join();
  absl::Status s = observer->Finish();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(ReasonOf(s), "SHUTTING_DOWN");
  // The guest keeps writing while nobody serves the ring (it fits in it).
  ASSERT_TRUE(WriteAll(tty_, "during\n"));
  observer.reset();
  client_.reset();
  StartServer();
  // The recovered channel is connected in a new epoch and still holds what
  // the guest wrote into the ring meanwhile.
  v1::ReadRequest req;
  req.set_channel(Name());
  req.set_follow(true);
  std::string data;
  bool restarted = false;
  ASSERT_TRUE(client_
                  ->Read(req,
                         [&](const v1::ReadResponse& r) {
                           if (r.has_epoch_change()) {
                             restarted = restarted || r.epoch_change().reason() ==
                                                          v1::EPOCH_CHANGE_REASON_SERVER_RESTARTED;
                           }
                           if (r.has_data()) data += r.data().data();
                           return data.size() < 7;
                         })
                  .ok());
  EXPECT_EQ(data, "during\n");
  auto ch = client_->GetChannel(Name());
  ASSERT_TRUE(ch.ok());
  EXPECT_EQ(ch->state(), v1::CHANNEL_STATE_CONNECTED);
  // Input works in the new epoch.
  v1::WriteRequest w;
  w.set_channel(Name());
  w.set_ack_level(v1::ACK_LEVEL_CONSUMED);
  w.set_data("after\n");
  auto written = client_->Write(
      w, [](std::string*) { return false; }, absl::Seconds(20));
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(ReadExactly(tty_, 6), "after\n");

  // The default framing came back with the channel, and a Call without a
  // framing of its own uses it.
  auto recovered = client_->GetChannel("domains/guest1/channels/org.example.framed");
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_EQ(recovered->uid(), created->uid());
  EXPECT_EQ(recovered->config().default_framing().delimiter().delimiter(), "<\x01>")
      << recovered->DebugString();
  std::thread agent([framed_tty] {
    const std::string line = ReadUntil(framed_tty, "<\x01>");
    // Newline framing would answer with more than the delimiter allows.
    WriteAll(framed_tty, "answer to " + line.substr(0, line.size() - 3) + "<\x01>rest\n");
  });
  v1::CallRequest call;
  call.set_channel("domains/guest1/channels/org.example.framed");
  call.set_request("status");
  auto answer = client_->Call(call, absl::Seconds(20));
  agent.join();
  close(framed_tty);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->response(), "answer to status");
}

TEST_F(XenchandFaultTest, DeleteEndsStreamsWithChannelRemoved) {
  auto observer = Observe();
  ASSERT_NE(observer, nullptr);
  v1::DeleteChannelRequest del;
  del.set_name(Name());
  del.mutable_force_after()->set_seconds(5);
  auto deleted = client_->DeleteChannel(del);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  v1::AttachResponse m;
  while (observer->Receive(&m)) {
  }
  absl::Status s = observer->Finish();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_EQ(ReasonOf(s), "CHANNEL_REMOVED");
}

TEST_F(XenchandFaultTest, SlowReaderDoesNotSlowAFastReader) {
  constexpr size_t kTotal = 8 << 20;  // eight times the default buffer
  const std::string text = Pattern(kTotal, 7);
  // The slow reader opens a follow stream and never reads it.
  grpc::ClientContext slow_ctx;
  v1::ReadRequest req;
  req.set_channel(Name());
  req.set_follow(true);
  req.mutable_start()->set_anchor(v1::START_ANCHOR_NEXT);
  auto slow = client_->stub().Read(&slow_ctx, req);
  // The fast reader reads everything, in order, without a gap.
  std::string fast;
  bool gap = false;
  std::thread reader([&] {
    v1::ReadRequest r = req;
    r.set_max_bytes(kTotal);
    EXPECT_TRUE(client_
                    ->Read(r,
                           [&](const v1::ReadResponse& m) {
                             if (m.has_gap()) gap = true;
                             if (m.has_data()) fast += m.data().data();
                             return true;
                           })
                    .ok());
  });
  // Both streams are open before the guest writes (the fast one may start
  // late, so it starts at NEXT only after the slow one: wait for both).
  for (int i = 0; i < 2000; ++i) {
    auto ch = client_->GetChannel(Name());
    if (ch.ok() && ch->observer_count() >= 2) break;
  }
  ASSERT_TRUE(WriteAll(tty_, text));
  reader.join();
  EXPECT_FALSE(gap);
  EXPECT_EQ(fast.size(), kTotal);
  EXPECT_TRUE(fast == text);
  // The slow reader gets every byte that was still retained when it caught
  // up, and a gap record for each one evicted before: nothing is lost
  // silently, and the stream stays in order.
  v1::ReadResponse m;
  uint64_t next = 0;
  while (next < kTotal && slow->Read(&m)) {
    if (m.has_data()) {
      ASSERT_EQ(m.data().offset(), next);
      EXPECT_TRUE(m.data().data() == text.substr(next, m.data().data().size()));
      next += m.data().data().size();
    }
    if (m.has_gap()) {
      ASSERT_EQ(m.gap().offset(), next);
      next += m.gap().length();
    }
  }
  EXPECT_EQ(next, kTotal);
  slow_ctx.TryCancel();
  while (slow->Read(&m)) {
  }
  slow->Finish().ok();
}

}  // namespace
}  // namespace xenchan
