// xenchand end to end: the real server binary on a temp Unix socket (the
// built-in policy grants the test's uid everything) and plaintext loopback
// TCP (unauthenticated), a real xensim with simulated guests, driven through the
// generated stub (clients/lib) and the guests' channel ttys.
//
// Which integration test exercises which error of DESIGN §5 (reason in
// parentheses; tests in this file unless a file is named):
//   INVALID_ARGUMENT    ErrorsCarryStableReasonsAndDetails (INVALID_NAME,
//                       INVALID_OPTION, INVALID_PAGE_TOKEN, INVALID_CHANNEL_ID);
//                       AttachWriterIsAcknowledgedAtEveryLevel...
//                       (STREAM_PROTOCOL_VIOLATION); PayloadsAreBounded
//                       (PAYLOAD_TOO_LARGE)
//   NOT_FOUND           ErrorsCarryStableReasonsAndDetails (DOMAIN_NOT_FOUND,
//                       CHANNEL_NOT_FOUND); CreateListGetDeleteWithPaging;
//                       xenchand_fault_integration_test
//                       DeleteEndsStreamsWithChannelRemoved (CHANNEL_REMOVED)
//   ALREADY_EXISTS      CreateListGetDeleteWithPaging (CHANNEL_EXISTS)
//   FAILED_PRECONDITION WriteLeaseConflictAndTakeover (LEASE_HELD);
//                       UnconnectedChannelRefusesWritesAndCreateTimesOut
//                       (NOT_CONNECTED); ToolstackChannelRefusesConsumedAcks...
//                       (ACK_LEVEL_NOT_SUPPORTED, TOOLSTACK_MANAGED)
//   RESOURCE_EXHAUSTED  EighthChannelHasNoFreeDevid (NO_FREE_DEVID);
//                       ObserversAreLimited (TOO_MANY_OBSERVERS);
//                       FailFastWriteToAGuestThatNeverReads (QUEUE_FULL);
//                       WatcherThatNeverReadsIsEndedAsSlowConsumer
//                       (SLOW_CONSUMER); PayloadsAreBounded (RESPONSE_TOO_LARGE)
//   DEADLINE_EXCEEDED   WriteStreamReachesConsumedAndCallAnswers
//                       (GUEST_TIMEOUT); CallQueuesBehindAWriterUntilItsDeadline
//                       (LEASE_WAIT_TIMEOUT); UnconnectedChannel... (create's
//                       GUEST_TIMEOUT); qemu_guest_agent_integration_test
//   ABORTED             WriteLeaseConflictAndTakeover (LEASE_TAKEN_OVER);
//                       UnconnectedChannel... (EPOCH_CHANGED)
//   OUT_OF_RANGE        GuestOutputIsReadWithOffsetsAndResumed...
//                       (OFFSET_NOT_RETAINED); WatchSendsSnapshotThenChanges...
//                       (REVISION_NOT_RETAINED)
//   UNAVAILABLE         xenchand_fault_integration_test: GuestKilledMidStream...
//                       (DOMAIN_GONE), ServerRestartMidStream... (SHUTTING_DOWN)
//   UNAUTHENTICATED     ListsAndGetsDomainsOverUnixAndTcp (plaintext TCP);
//                       authz_integration_test, tls_integration_test
//   PERMISSION_DENIED   authz_integration_test (every RPC)
// Not exercised end to end: QUOTA_EXCEEDED (no quota is enforced yet) and
// TRANSPORT_UNAVAILABLE (needs xenstore itself to fail).
// Health checking and server reflection: HealthAndReflectionAnswer.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "clients/lib/client.h"
#include "gmock/gmock.h"
#include "google/protobuf/unknown_field_set.h"
#include "google/rpc/error_details.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "tests/common/bytes.h"
#include "tests/common/io.h"
#include "tests/common/xenchan_integration_test.h"
#include "tests/server/xenchand_process.h"

namespace xenchan {
namespace {

using client::Client;
using client::ReasonOf;
using servertest::XenchandProcess;
using testcommon::AnswerOneLine;
using testcommon::Pattern;
using testcommon::ReadExactly;
using testcommon::ReadUntil;
using testcommon::WriteAll;
using ::testing::HasSubstr;

constexpr char kGuest[] = "guest1";

class XenchandTest : public testcommon::XenchanIntegrationTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartXensim({kGuest}));
    ASSERT_NO_FATAL_FAILURE(StartServer());
  }

  void StartServer(const std::vector<std::string>& extra = {}) {
    client::ConnectOptions options;
    options.stream_timeout = absl::Seconds(60);
    XenchanIntegrationTest::StartServer(extra, kInsecureTcp, options);
  }

  // Reads guest output with Read (follow=false) from `start`.
  std::string ReadAll(const std::string& name, std::vector<v1::ReadResponse>* all = nullptr) {
    v1::ReadRequest req;
    req.set_channel(name);
    std::string data;
    absl::Status s = client_->Read(req, [&](const v1::ReadResponse& r) {
      if (r.has_data()) data += r.data().data();
      if (all != nullptr) all->push_back(r);
      return true;
    });
    EXPECT_TRUE(s.ok()) << s;
    return data;
  }
};

TEST_F(XenchandTest, ListsAndGetsDomainsOverUnixAndTcp) {
  auto domains = client_->ListDomains();
  ASSERT_TRUE(domains.ok()) << domains.status();
  ASSERT_EQ(domains->size(), 1u);
  const v1::Domain& d = (*domains)[0];
  EXPECT_EQ(d.display_name(), kGuest);
  EXPECT_EQ(d.name(), "domains/" + d.uuid());
  EXPECT_EQ(d.state(), v1::DOMAIN_STATE_RUNNING);
  auto by_name = client_->GetDomain("domains/guest1");
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_EQ(by_name->uuid(), d.uuid());

  auto by_uuid = client_->GetDomain("domains/" + d.uuid());
  ASSERT_TRUE(by_uuid.ok()) << by_uuid.status();
  EXPECT_EQ(by_uuid->display_name(), kGuest);
  // Plaintext loopback TCP callers are unauthenticated: granted nothing.
  auto tcp = Client::Connect(server_->tcp_target());
  ASSERT_TRUE(tcp.ok());
  auto anonymous = (*tcp)->GetDomain("domains/" + d.uuid());
  EXPECT_EQ(anonymous.status().code(), absl::StatusCode::kUnauthenticated) << anonymous.status();
  EXPECT_EQ(ReasonOf(anonymous.status()), "UNAUTHENTICATED");
}

TEST_F(XenchandTest, ErrorsCarryStableReasonsAndDetails) {
  auto bad = client_->GetDomain("nonsense");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReasonOf(bad.status()), "INVALID_NAME");
  auto field = client::DetailOf<google::rpc::BadRequest>(bad.status());
  ASSERT_TRUE(field.has_value());
  EXPECT_EQ(field->field_violations(0).field(), "name");

  auto nodom = client_->GetDomain("domains/nope");
  EXPECT_EQ(nodom.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReasonOf(nodom.status()), "DOMAIN_NOT_FOUND");

  auto noch = client_->GetChannel(ChannelName(kGuest, "org.example.none"));
  EXPECT_EQ(noch.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReasonOf(noch.status()), "CHANNEL_NOT_FOUND");

  v1::ListChannelsRequest list;
  list.set_parent("domains/-");
  list.set_page_size(-1);
  EXPECT_EQ(ReasonOf(client_->ListChannels(list).status()), "INVALID_OPTION");
  list.set_page_size(1);
  list.set_page_token("garbage!");
  EXPECT_EQ(ReasonOf(client_->ListChannels(list).status()), "INVALID_PAGE_TOKEN");

  v1::CreateChannelRequest create;
  create.set_parent("domains/guest1");
  create.set_channel_id("-bad id");
  auto created = client_->CreateChannel(create);
  EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReasonOf(created.status()), "INVALID_CHANNEL_ID");
  create.set_channel_id("org.example.ok");
  create.mutable_config()->set_buffer_limit_bytes(10);
  EXPECT_EQ(ReasonOf(client_->CreateChannel(create).status()), "INVALID_OPTION");
  create.clear_config();
  create.set_parent("domains/-");
  EXPECT_EQ(ReasonOf(client_->CreateChannel(create).status()), "INVALID_NAME");
}

TEST_F(XenchandTest, CreateListGetDeleteWithPaging) {
  v1::CreateChannelRequest validate;
  validate.set_parent("domains/guest1");
  validate.set_channel_id("org.example.a");
  validate.set_validate_only(true);
  auto preview = client_->CreateChannel(validate);
  ASSERT_TRUE(preview.ok()) << preview.status();
  EXPECT_EQ(preview->state(), v1::CHANNEL_STATE_CREATING);
  EXPECT_TRUE(preview->uid().empty());
  EXPECT_FALSE(client_->GetChannel(ChannelName(kGuest, "org.example.a")).ok());

  CreateConnectedChannel(kGuest, "org.example.a");
  CreateConnectedChannel(kGuest, "org.example.b");
  CreateConnectedChannel(kGuest, "org.example.c");

  v1::CreateChannelRequest dup;
  dup.set_parent("domains/guest1");
  dup.set_channel_id("org.example.b");
  auto again = client_->CreateChannel(dup);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ReasonOf(again.status()), "CHANNEL_EXISTS");
  EXPECT_TRUE(client::DetailOf<v1::Channel>(again.status()).has_value());

  // Paging one at a time neither repeats nor skips.
  v1::ListChannelsRequest req;
  req.set_parent("domains/-");
  req.set_page_size(1);
  std::vector<std::string> ids;
  for (int pages = 0; pages < 10; ++pages) {
    grpc::ClientContext ctx;
    v1::ListChannelsResponse resp;
    ASSERT_TRUE(client_->stub().ListChannels(&ctx, req, &resp).ok());
    for (const auto& c : resp.channels()) ids.push_back(c.channel_id());
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  EXPECT_THAT(ids, ::testing::ElementsAre("org.example.a", "org.example.b", "org.example.c"));

  v1::ListChannelsRequest filtered;
  filtered.set_parent("domains/guest1");
  filtered.mutable_filter()->set_channel_id_prefix("org.example.c");
  filtered.add_states(v1::CHANNEL_STATE_CONNECTED);
  auto only_c = client_->ListChannels(filtered);
  ASSERT_TRUE(only_c.ok());
  ASSERT_EQ(only_c->size(), 1u);
  EXPECT_EQ((*only_c)[0].channel_id(), "org.example.c");
  EXPECT_EQ((*only_c)[0].transport(), v1::TRANSPORT_RING);
  EXPECT_EQ((*only_c)[0].max_ack_level(), v1::ACK_LEVEL_CONSUMED);

  v1::DeleteChannelRequest del;
  del.set_name(ChannelName(kGuest, "org.example.b"));
  auto deleted = client_->DeleteChannel(del);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->channel().state(), v1::CHANNEL_STATE_CLOSED);
  auto gone = client_->GetChannel(ChannelName(kGuest, "org.example.b"));
  EXPECT_EQ(ReasonOf(gone.status()), "CHANNEL_NOT_FOUND");
  auto domain = client_->GetDomain("domains/guest1");
  ASSERT_TRUE(domain.ok());
  EXPECT_EQ(domain->channel_count(), 2u);
}

TEST_F(XenchandTest, GuestOutputIsReadWithOffsetsAndResumedAfterReconnect) {
  CreateConnectedChannel(kGuest, "org.example.data");
  const int tty = OpenTty(kGuest, "org.example.data");
  const std::string text = Pattern(20000, 1);
  // The second half is written only after the first reader has gone, so the
  // resumed stream always has something left to read.
  ASSERT_TRUE(WriteAll(tty, text.substr(0, 8000)));
  // Follow until everything arrived, stopping (like a dying client) halfway.
  v1::ReadRequest req;
  req.set_channel(ChannelName(kGuest, "org.example.data"));
  req.set_follow(true);
  std::string first;
  v1::Position resume;
  ASSERT_TRUE(client_
                  ->Read(req,
                         [&](const v1::ReadResponse& r) {
                           if (!r.has_data()) return true;
                           EXPECT_EQ(r.data().offset(), first.size());
                           first += r.data().data();
                           resume.set_epoch(r.data().epoch());
                           resume.set_offset(r.data().offset() + r.data().data().size());
                           return first.size() < 5000;
                         })
                  .ok());
  ASSERT_GE(first.size(), 5000u);
  ASSERT_LE(first.size(), 8000u);
  ASSERT_TRUE(WriteAll(tty, text.substr(8000)));
  // A new connection resumes exactly there.
  client::ConnectOptions options;
  options.stream_timeout = absl::Seconds(30);
  auto again = Client::Connect(server_->unix_target(), options);
  ASSERT_TRUE(again.ok());
  v1::ReadRequest resume_req;
  resume_req.set_channel(ChannelName(kGuest, "org.example.data"));
  *resume_req.mutable_start()->mutable_position() = resume;
  resume_req.set_follow(true);
  resume_req.set_max_bytes(text.size() - first.size());
  std::string rest;
  EXPECT_TRUE((*again)
                  ->Read(resume_req,
                         [&](const v1::ReadResponse& r) {
                           if (r.has_data()) rest += r.data().data();
                           return true;
                         })
                  .ok());
  EXPECT_EQ(first + rest, text)
      << "first " << first.size() << " rest " << rest.size() << "\n"
      << client_->GetChannel(ChannelName(kGuest, "org.example.data"))->DebugString();

  // An offset beyond what exists is OUT_OF_RANGE with the retained range.
  v1::ReadRequest beyond = resume_req;
  beyond.mutable_start()->mutable_position()->set_offset(text.size() + 100);
  absl::Status s = client_->Read(beyond, [](const v1::ReadResponse&) { return true; });
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ReasonOf(s), "OFFSET_NOT_RETAINED");
  auto range = client::DetailOf<v1::RetainedRange>(s);
  ASSERT_TRUE(range.has_value());
  EXPECT_EQ(range->next_position().offset(), text.size());
}

TEST_F(XenchandTest, AttachWriterIsAcknowledgedAtEveryLevelAndObserversSeeOutput) {
  CreateConnectedChannel(kGuest, "org.example.rw");
  const int tty = OpenTty(kGuest, "org.example.rw");
  auto observer = client_->Attach();
  v1::AttachRequest open_obs;
  open_obs.mutable_open()->set_channel(ChannelName(kGuest, "org.example.rw"));
  open_obs.mutable_open()->set_role(v1::SESSION_ROLE_OBSERVER);
  ASSERT_TRUE(observer->Send(open_obs));
  v1::AttachResponse m;
  ASSERT_TRUE(observer->Receive(&m));
  ASSERT_TRUE(m.has_opened()) << m.DebugString();

  auto writer = client_->Attach();
  v1::AttachRequest open;
  open.mutable_open()->set_channel(ChannelName(kGuest, "org.example.rw"));
  open.mutable_open()->set_role(v1::SESSION_ROLE_WRITER);
  open.mutable_open()->set_ack_level(v1::ACK_LEVEL_CONSUMED);
  ASSERT_TRUE(writer->Send(open));
  ASSERT_TRUE(writer->Receive(&m));
  ASSERT_TRUE(m.has_opened()) << m.DebugString();
  EXPECT_EQ(m.opened().role(), v1::SESSION_ROLE_WRITER);

  v1::AttachRequest w;
  w.mutable_write()->set_sequence_id(1);
  w.mutable_write()->set_data("ping\n");
  ASSERT_TRUE(writer->Send(w));
  EXPECT_EQ(ReadExactly(tty, 5), "ping\n");
  // The guest answers; both sessions see it.
  ASSERT_TRUE(WriteAll(tty, "pong\n"));
  std::vector<v1::AckLevel> levels;
  std::string seen;
  while ((levels.size() < 3 || seen.size() < 5) && writer->Receive(&m)) {
    if (m.has_write_ack()) {
      EXPECT_EQ(m.write_ack().sequence_id(), 1u);
      EXPECT_EQ(m.write_ack().end_offset(), 5u);
      levels.push_back(m.write_ack().level());
    }
    if (m.has_data()) seen += m.data().data();
  }
  EXPECT_THAT(levels, ::testing::ElementsAre(v1::ACK_LEVEL_ACCEPTED, v1::ACK_LEVEL_DELIVERED,
                                             v1::ACK_LEVEL_CONSUMED));
  EXPECT_EQ(seen, "pong\n");
  std::string observed;
  while (observed.size() < 5 && observer->Receive(&m)) {
    if (m.has_data()) observed += m.data().data();
  }
  EXPECT_EQ(observed, "pong\n");

  // Sequence ids must increase.
  w.mutable_write()->set_sequence_id(1);
  ASSERT_TRUE(writer->Send(w));
  while (writer->Receive(&m)) {
  }
  absl::Status s = writer->Finish();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReasonOf(s), "STREAM_PROTOCOL_VIOLATION");
  observer->Cancel();
  while (observer->Receive(&m)) {
  }
  observer->Finish().IgnoreError();
}

TEST_F(XenchandTest, WriteLeaseConflictAndTakeover) {
  CreateConnectedChannel(kGuest, "org.example.lease");
  auto holder = client_->Attach();
  v1::AttachRequest open;
  open.mutable_open()->set_channel(ChannelName(kGuest, "org.example.lease"));
  open.mutable_open()->set_role(v1::SESSION_ROLE_WRITER);
  ASSERT_TRUE(holder->Send(open));
  v1::AttachResponse m;
  ASSERT_TRUE(holder->Receive(&m));
  ASSERT_TRUE(m.has_opened());
  const std::string holder_id = m.opened().session_id();

  // A Write stream fails fast with the holder named.
  v1::WriteRequest first;
  first.set_channel(ChannelName(kGuest, "org.example.lease"));
  first.set_data("x");
  auto written = client_->Write(first, [](std::string*) { return false; });
  EXPECT_EQ(written.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReasonOf(written.status()), "LEASE_HELD");
  auto lease = client::DetailOf<v1::LeaseHolder>(written.status());
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(lease->session_id(), holder_id);
  EXPECT_EQ(lease->kind(), v1::SESSION_KIND_ATTACH);

  // A takeover ends the holder with lease_lost, then ABORTED.
  auto admin = client_->Attach();
  open.mutable_open()->set_takeover(true);
  ASSERT_TRUE(admin->Send(open));
  ASSERT_TRUE(admin->Receive(&m));
  ASSERT_TRUE(m.has_opened()) << m.DebugString();
  bool lost = false;
  while (holder->Receive(&m)) lost = lost || m.has_lease_lost();
  EXPECT_TRUE(lost);
  absl::Status s = holder->Finish();
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ReasonOf(s), "LEASE_TAKEN_OVER");
  admin->HalfClose();
  while (admin->Receive(&m)) {
  }
  EXPECT_TRUE(admin->Finish().ok());
}

TEST_F(XenchandTest, WriteStreamReachesConsumedAndCallAnswers) {
  CreateConnectedChannel(kGuest, "org.example.call");
  const int tty = OpenTty(kGuest, "org.example.call");
  v1::WriteRequest first;
  first.set_channel(ChannelName(kGuest, "org.example.call"));
  first.set_ack_level(v1::ACK_LEVEL_CONSUMED);
  first.set_data("hello ");
  int more = 1;
  auto written = client_->Write(
      first,
      [&](std::string* chunk) {
        if (more-- <= 0) return false;
        *chunk = "world\n";
        return true;
      },
      absl::Seconds(20));
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->progress().accepted_bytes(), 12u);
  EXPECT_EQ(written->progress().consumed_bytes(), 12u);
  EXPECT_EQ(ReadExactly(tty, 12), "hello world\n");

  // A guest agent that answers one line per line.
  std::thread agent([tty] { AnswerOneLine(tty, "re:"); });
  v1::CallRequest call;
  call.set_channel(ChannelName(kGuest, "org.example.call"));
  call.set_request("status");
  auto answer = client_->Call(call, absl::Seconds(20));
  agent.join();
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->response(), "re:status");
  EXPECT_EQ(answer->request_offset(), 12u);

  // Nobody answers: DEADLINE_EXCEEDED with what was sent.
  auto late = client_->Call(call, absl::Seconds(2));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(ReasonOf(late.status()), "GUEST_TIMEOUT");
  auto partial = client::DetailOf<v1::PartialResponse>(late.status());
  ASSERT_TRUE(partial.has_value());
  EXPECT_EQ(partial->request_offset(), 19u);
}

TEST_F(XenchandTest, WatchSendsSnapshotThenChangesAndResumes) {
  CreateConnectedChannel(kGuest, "org.example.w1");
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  std::vector<v1::WatchChannelsResponse> events;
  std::mutex mu;
  std::condition_variable cv;
  bool synced = false;
  uint64_t synced_rev = 0;
  std::thread watcher([&] {
    v1::WatchChannelsRequest req;
    req.set_parent("domains/guest1");
    client_
        ->Watch(
            req,
            [&](const v1::WatchChannelsResponse& e) {
              events.push_back(e);
              if (e.type() == v1::CHANNEL_EVENT_TYPE_SYNCED) {
                std::lock_guard<std::mutex> lock(mu);
                synced_rev = e.revision();
                synced = true;
                cv.notify_all();
              }
              return !(e.type() == v1::CHANNEL_EVENT_TYPE_CONNECTED &&
                       e.channel().channel_id() == "org.example.w2");
            },
            &ctx)
        .IgnoreError();
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return synced; }));
  }
  CreateConnectedChannel(kGuest, "org.example.w2");
  watcher.join();
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events[0].type(), v1::CHANNEL_EVENT_TYPE_EXISTING);
  EXPECT_EQ(events[0].channel().channel_id(), "org.example.w1");
  EXPECT_EQ(events[1].type(), v1::CHANNEL_EVENT_TYPE_SYNCED);
  EXPECT_EQ(events[2].type(), v1::CHANNEL_EVENT_TYPE_APPEARED);
  EXPECT_EQ(events.back().type(), v1::CHANNEL_EVENT_TYPE_CONNECTED);
  EXPECT_TRUE(events.back().has_epoch_change());

  // Resuming after SYNCED replays the same changes, then SYNCED.
  v1::WatchChannelsRequest resume;
  resume.set_parent("domains/-");
  resume.set_start_revision(synced_rev);
  std::vector<v1::ChannelEventType> replay;
  ASSERT_TRUE(client_
                  ->Watch(resume,
                          [&](const v1::WatchChannelsResponse& e) {
                            replay.push_back(e.type());
                            return e.type() != v1::CHANNEL_EVENT_TYPE_SYNCED;
                          })
                  .ok());
  ASSERT_GE(replay.size(), 2u);
  EXPECT_EQ(replay.front(), v1::CHANNEL_EVENT_TYPE_APPEARED);
  EXPECT_EQ(replay.back(), v1::CHANNEL_EVENT_TYPE_SYNCED);

  resume.set_start_revision(1);
  absl::Status s = client_->Watch(resume, [](const v1::WatchChannelsResponse&) { return true; });
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ReasonOf(s), "REVISION_NOT_RETAINED");
}

// Fetches `path` over HTTP/1.0 from 127.0.0.1:`port`.
std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  WriteAll(fd, "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n");
  std::string out = ReadUntil(fd, "xenchan_sessions_opened_total", absl::Seconds(10));
  out += ReadExactly(fd, 1 << 20, absl::Milliseconds(200));
  close(fd);
  return out;
}

TEST_F(XenchandTest, ExportsPrometheusMetrics) {
  ASSERT_EQ(server_->Stop(), 0);
  client_.reset();
  server_.reset();
  StartServer({"--metrics-listen=127.0.0.1:0"});
  int port = 0;
  for (absl::string_view line : absl::StrSplit(server_->log(), '\n')) {
    if (!absl::StrContains(line, "msg=metrics")) continue;
    const size_t colon = line.rfind(':', line.find(" path="));
    ASSERT_NE(colon, absl::string_view::npos);
    ASSERT_TRUE(absl::SimpleAtoi(line.substr(colon + 1, line.find(" path=") - colon - 1), &port));
  }
  ASSERT_GT(port, 0) << server_->log();
  CreateConnectedChannel(kGuest, "org.example.metrics");
  ASSERT_TRUE(client_->GetDomain("domains/nope").status().code() == absl::StatusCode::kNotFound);
  // An RPC is counted when gRPC reports it done, which may be just after the
  // client has its answer: scrape until it shows (bounded).
  const std::string created = "xenchan_rpcs_finished_total{code=\"OK\",method=\"CreateChannel\"} 1";
  std::string text = HttpGet(port, "/metrics");
  for (const absl::Time deadline = absl::Now() + absl::Seconds(10);
       !absl::StrContains(text, created) && absl::Now() < deadline;) {
    text = HttpGet(port, "/metrics");
  }
  EXPECT_THAT(text, HasSubstr(created));
  EXPECT_THAT(text, HasSubstr("code=\"NOT_FOUND\",method=\"GetDomain\""));
  EXPECT_THAT(text, HasSubstr("xenchan_channel_events_total{type=\"connected\"}"));
  EXPECT_THAT(text, HasSubstr("xenchan_channels 1"));
  EXPECT_THAT(text, HasSubstr("xenchan_rpc_duration_seconds_bucket"));
}

TEST_F(XenchandTest, RefusesPlaintextTcpOffLoopback) {
  auto server = XenchandProcess::Start(sim_->state_dir(), sim_->scratch_dir() + "/y.sock",
                                       {"--listen=0.0.0.0:0"});
  EXPECT_FALSE(server.ok());
}

// --- Error paths (see the table at the top). ---

TEST_F(XenchandTest, EighthChannelHasNoFreeDevid) {
  for (int i = 1; i <= 7; ++i) CreateConnectedChannel(kGuest, absl::StrCat("org.example.c", i));
  v1::CreateChannelRequest req;
  req.set_parent("domains/guest1");
  req.set_channel_id("org.example.c8");
  auto eighth = client_->CreateChannel(req);
  EXPECT_EQ(eighth.status().code(), absl::StatusCode::kResourceExhausted) << eighth.status();
  EXPECT_EQ(ReasonOf(eighth.status()), "NO_FREE_DEVID");
  auto limit = client::DetailOf<v1::LimitExceeded>(eighth.status());
  ASSERT_TRUE(limit.has_value());
  EXPECT_EQ(limit->limit(), "devids_per_domain");
  EXPECT_EQ(limit->limit_value(), 7u);
  // Deleting one frees a place.
  v1::DeleteChannelRequest del;
  del.set_name(ChannelName(kGuest, "org.example.c3"));
  ASSERT_TRUE(client_->DeleteChannel(del).ok());
  EXPECT_TRUE(client_->CreateChannel(req).ok());
}

TEST_F(XenchandTest, ObserversAreLimited) {
  ASSERT_EQ(server_->Stop(), 0);
  client_.reset();
  server_.reset();
  StartServer({"--max-readers-per-channel=2"});
  CreateConnectedChannel(kGuest, "org.example.obs");
  v1::AttachRequest open;
  open.mutable_open()->set_channel(ChannelName(kGuest, "org.example.obs"));
  open.mutable_open()->set_role(v1::SESSION_ROLE_OBSERVER);
  std::vector<std::unique_ptr<client::AttachStream>> streams;
  v1::AttachResponse m;
  for (int i = 0; i < 2; ++i) {
    streams.push_back(client_->Attach());
    ASSERT_TRUE(streams.back()->Send(open));
    ASSERT_TRUE(streams.back()->Receive(&m));
    ASSERT_TRUE(m.has_opened()) << m.DebugString();
  }
  auto third = client_->Attach();
  ASSERT_TRUE(third->Send(open));
  EXPECT_FALSE(third->Receive(&m)) << m.DebugString();
  absl::Status s = third->Finish();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(ReasonOf(s), "TOO_MANY_OBSERVERS");
  auto limit = client::DetailOf<v1::LimitExceeded>(s);
  ASSERT_TRUE(limit.has_value());
  EXPECT_EQ(limit->limit(), "observers_per_channel");
  EXPECT_EQ(limit->limit_value(), 2u);
  EXPECT_EQ(limit->requested_value(), 3u);
  // A Read stream counts too; closing an observer makes room.
  v1::ReadRequest read;
  read.set_channel(ChannelName(kGuest, "org.example.obs"));
  EXPECT_EQ(ReasonOf(client_->Read(read, [](const v1::ReadResponse&) { return true; })),
            "TOO_MANY_OBSERVERS");
  streams[0]->HalfClose();
  while (streams[0]->Receive(&m)) {
  }
  EXPECT_TRUE(streams[0]->Finish().ok());
  // The slot is free by the time the stream's end reaches the client.
  absl::Status again = client_->Read(read, [](const v1::ReadResponse&) { return true; });
  EXPECT_TRUE(again.ok()) << again;
  for (size_t i = 1; i < streams.size(); ++i) streams[i]->Cancel();
}

TEST_F(XenchandTest, FailFastWriteToAGuestThatNeverReads) {
  // Nobody opens the guest's tty, so the guest never takes input off the
  // ring: 1 KiB fits in the ring, the queue takes 64 KiB, then it is full.
  v1::ChannelConfig config;
  config.set_write_queue_limit_bytes(64 << 10);
  CreateConnectedChannel(kGuest, "org.example.full", config);
  const std::string chunk = Pattern(48 << 10, 3);
  v1::WriteRequest first;
  first.set_channel(ChannelName(kGuest, "org.example.full"));
  first.set_fail_fast(true);
  first.set_data(chunk);
  int sent = 1;
  auto written = client_->Write(
      first,
      [&](std::string* more) {
        if (sent++ >= 4) return false;
        *more = chunk;
        return true;
      },
      absl::Seconds(20));
  EXPECT_EQ(written.status().code(), absl::StatusCode::kResourceExhausted) << written.status();
  EXPECT_EQ(ReasonOf(written.status()), "QUEUE_FULL");
  auto limit = client::DetailOf<v1::LimitExceeded>(written.status());
  ASSERT_TRUE(limit.has_value());
  EXPECT_EQ(limit->limit(), "write_queue_bytes");
  EXPECT_EQ(limit->limit_value(), 64u << 10);
  auto progress = client::DetailOf<v1::WriteProgress>(written.status());
  ASSERT_TRUE(progress.has_value());
  EXPECT_EQ(progress->accepted_bytes(), chunk.size());  // the first chunk only
  EXPECT_EQ(progress->consumed_bytes(), 0u);

  // Attach writers get the same answer per write, and the stream goes on.
  auto writer = client_->Attach();
  v1::AttachRequest open;
  open.mutable_open()->set_channel(ChannelName(kGuest, "org.example.full"));
  open.mutable_open()->set_role(v1::SESSION_ROLE_WRITER);
  open.mutable_open()->set_fail_fast(true);
  ASSERT_TRUE(writer->Send(open));
  v1::AttachResponse m;
  ASSERT_TRUE(writer->Receive(&m));
  ASSERT_TRUE(m.has_opened()) << m.DebugString();
  v1::AttachRequest w;
  w.mutable_write()->set_sequence_id(1);
  w.mutable_write()->set_data(chunk);
  ASSERT_TRUE(writer->Send(w));
  bool rejected = false;
  while (!rejected && writer->Receive(&m)) {
    if (m.has_write_rejection()) {
      rejected = true;
      EXPECT_EQ(m.write_rejection().code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
          << m.DebugString();
      EXPECT_EQ(m.write_rejection().reason(), v1::ERROR_REASON_QUEUE_FULL);
      EXPECT_EQ(m.write_rejection().first_sequence_id(), 1u);
    }
  }
  EXPECT_TRUE(rejected);
  writer->Cancel();
  while (writer->Receive(&m)) {
  }
  writer->Finish().IgnoreError();
}

TEST_F(XenchandTest, CallQueuesBehindAWriterUntilItsDeadline) {
  CreateConnectedChannel(kGuest, "org.example.queue");
  const int tty = OpenTty(kGuest, "org.example.queue");
  auto holder = client_->Attach();
  v1::AttachRequest open;
  open.mutable_open()->set_channel(ChannelName(kGuest, "org.example.queue"));
  open.mutable_open()->set_role(v1::SESSION_ROLE_WRITER);
  ASSERT_TRUE(holder->Send(open));
  v1::AttachResponse m;
  ASSERT_TRUE(holder->Receive(&m));
  ASSERT_TRUE(m.has_opened());
  const std::string holder_id = m.opened().session_id();

  v1::CallRequest call;
  call.set_channel(ChannelName(kGuest, "org.example.queue"));
  call.set_request("status");
  auto waited = client_->Call(call, absl::Seconds(2));
  EXPECT_EQ(waited.status().code(), absl::StatusCode::kDeadlineExceeded) << waited.status();
  EXPECT_EQ(ReasonOf(waited.status()), "LEASE_WAIT_TIMEOUT");
  auto lease = client::DetailOf<v1::LeaseHolder>(waited.status());
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(lease->session_id(), holder_id);
  // Nothing of the waiting call reached the guest.
  EXPECT_EQ(ReadExactly(tty, 1, absl::Milliseconds(300)), "");

  // A Call that waits long enough runs once the writer leaves.
  std::atomic<bool> done{false};
  absl::StatusOr<v1::CallResponse> answer;
  std::thread caller([&] {
    answer = client_->Call(call, absl::Seconds(30));
    done = true;
  });
  std::thread agent([tty] { AnswerOneLine(tty, "re:"); });
  // The call is queued: the channel's lease is still the holder's.
  ASSERT_FALSE(done);
  holder->HalfClose();
  while (holder->Receive(&m)) {
  }
  EXPECT_TRUE(holder->Finish().ok());
  caller.join();
  agent.join();
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->response(), "re:status");
}

// A client whose HTTP/2 receive window is tiny, so that a stream it does not
// read backs up into the server's queue instead of the transport's buffers.
std::unique_ptr<v1::ChannelService::Stub> TinyWindowStub(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
  return v1::ChannelService::NewStub(
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
}

TEST_F(XenchandTest, WatcherThatNeverReadsIsEndedAsSlowConsumer) {
  ASSERT_EQ(server_->Stop(), 0);
  client_.reset();
  server_.reset();
  StartServer({"--watch-backlog-events=20"});
  CreateConnectedChannel(kGuest, "org.example.events");
  auto stub = TinyWindowStub(server_->unix_target());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::WatchChannelsRequest req;
  req.set_parent("domains/guest1");
  auto watch = stub->WatchChannels(&ctx, req);
  v1::WatchChannelsResponse e;
  uint64_t synced = 0;
  while (synced == 0 && watch->Read(&e)) {
    if (e.type() == v1::CHANNEL_EVENT_TYPE_SYNCED) synced = e.revision();
  }
  ASSERT_GT(synced, 0u);
  // The watcher stops reading. Every Write takes and releases the channel's
  // write lease: two events each, far more than the window, the stream's
  // queue and the backlog limit hold.
  v1::WriteRequest w;
  w.set_channel(ChannelName(kGuest, "org.example.events"));
  w.set_data("x");
  for (int i = 0; i < 150; ++i) {
    auto r = client_->Write(
        w, [](std::string*) { return false; }, absl::Seconds(10));
    ASSERT_TRUE(r.ok()) << r.status();
  }
  // Reading again drains what was queued, then the end.
  int received = 0;
  uint64_t last = synced;
  while (watch->Read(&e)) {
    ++received;
    last = e.revision();
  }
  absl::Status s = client::FromGrpc(watch->Finish());
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s << " after " << received;
  EXPECT_EQ(ReasonOf(s), "SLOW_CONSUMER");
  auto limit = client::DetailOf<v1::LimitExceeded>(s);
  ASSERT_TRUE(limit.has_value());
  EXPECT_EQ(limit->limit(), "watch_backlog_events");
  EXPECT_EQ(limit->limit_value(), 20u);
  EXPECT_GT(limit->requested_value(), 20u);
  EXPECT_LT(received, 300);
  // It resumes from where it stopped: the rest is still retained.
  v1::WatchChannelsRequest resume;
  resume.set_parent("domains/guest1");
  resume.set_start_revision(last);
  int replayed = 0;
  ASSERT_TRUE(client_
                  ->Watch(resume,
                          [&](const v1::WatchChannelsResponse& r) {
                            if (r.type() == v1::CHANNEL_EVENT_TYPE_LEASE_CHANGED) ++replayed;
                            return r.type() != v1::CHANNEL_EVENT_TYPE_SYNCED;
                          })
                  .ok());
  EXPECT_EQ(received + replayed, 300);
}

TEST_F(XenchandTest, UnconnectedChannelRefusesWritesAndCreateTimesOut) {
  // A frozen guest never answers the hot-add.
  ASSERT_TRUE(sim_->CreateDomain("guest2").ok());
  auto suspended = sim_->Cli({"domain", "suspend", "guest2"});
  ASSERT_EQ(suspended.exit_code, 0) << suspended.err;
  v1::CreateChannelRequest req;
  req.set_parent("domains/guest2");
  req.set_channel_id("org.example.frozen");
  req.set_wait_until_connected(true);
  req.mutable_connect_timeout()->set_seconds(1);
  auto created = client_->CreateChannel(req, absl::Seconds(20));
  EXPECT_EQ(created.status().code(), absl::StatusCode::kDeadlineExceeded) << created.status();
  EXPECT_EQ(ReasonOf(created.status()), "GUEST_TIMEOUT");
  // The channel exists and waits for its guest.
  auto ch = client_->GetChannel(ChannelName("guest2", "org.example.frozen"));
  ASSERT_TRUE(ch.ok()) << ch.status();
  EXPECT_NE(ch->state(), v1::CHANNEL_STATE_CONNECTED);
  v1::WriteRequest w;
  w.set_channel(ChannelName("guest2", "org.example.frozen"));
  w.set_data("hello");
  auto written = client_->Write(
      w, [](std::string*) { return false; }, absl::Seconds(10));
  EXPECT_EQ(written.status().code(), absl::StatusCode::kFailedPrecondition) << written.status();
  EXPECT_EQ(ReasonOf(written.status()), "NOT_CONNECTED");
  v1::CallRequest call;
  call.set_channel(ChannelName("guest2", "org.example.frozen"));
  call.set_request("x");
  EXPECT_EQ(ReasonOf(client_->Call(call, absl::Seconds(10)).status()), "NOT_CONNECTED");

  // A write that names an epoch the channel is not in.
  const v1::Channel live = CreateConnectedChannel(kGuest, "org.example.epoch");
  v1::WriteRequest stale;
  stale.set_channel(ChannelName(kGuest, "org.example.epoch"));
  stale.set_expected_epoch(live.epoch() + 5);
  stale.set_data("late");
  auto aborted = client_->Write(
      stale, [](std::string*) { return false; }, absl::Seconds(10));
  EXPECT_EQ(aborted.status().code(), absl::StatusCode::kAborted) << aborted.status();
  EXPECT_EQ(ReasonOf(aborted.status()), "EPOCH_CHANGED");
  auto mismatch = client::DetailOf<v1::EpochMismatch>(aborted.status());
  ASSERT_TRUE(mismatch.has_value());
  EXPECT_EQ(mismatch->current_epoch(), live.epoch());
  EXPECT_EQ(mismatch->expected_epoch(), live.epoch() + 5);
}

TEST_F(XenchandTest, ToolstackChannelRefusesConsumedAcksAndDeletion) {
  ASSERT_TRUE(
      sim_->CreateDomain("guest2", {absl::StrCat("name=org.example.ts,connection=socket,path=",
                                                 sim_->scratch_dir(), "/ts.sock")})
          .ok());
  const std::string name = ChannelName("guest2", "org.example.ts");
  // Discovered from xenstore after the domain appears: wait for it.
  v1::WatchChannelsRequest watch;
  watch.set_parent("domains/-");
  ASSERT_TRUE(client_
                  ->Watch(watch,
                          [](const v1::WatchChannelsResponse& e) {
                            return e.channel().channel_id() != "org.example.ts";
                          })
                  .ok());
  auto ch = client_->GetChannel(name);
  ASSERT_TRUE(ch.ok()) << ch.status();
  EXPECT_EQ(ch->transport(), v1::TRANSPORT_TOOLSTACK_SOCKET);
  EXPECT_LT(ch->max_ack_level(), v1::ACK_LEVEL_CONSUMED);

  auto writer = client_->Attach();
  v1::AttachRequest open;
  open.mutable_open()->set_channel(name);
  open.mutable_open()->set_role(v1::SESSION_ROLE_WRITER);
  open.mutable_open()->set_ack_level(v1::ACK_LEVEL_CONSUMED);
  ASSERT_TRUE(writer->Send(open));
  v1::AttachResponse m;
  EXPECT_FALSE(writer->Receive(&m)) << m.DebugString();
  absl::Status s = writer->Finish();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(ReasonOf(s), "ACK_LEVEL_NOT_SUPPORTED");
  auto detail = client::DetailOf<v1::Channel>(s);
  ASSERT_TRUE(detail.has_value());
  EXPECT_EQ(detail->max_ack_level(), ch->max_ack_level());

  v1::WriteRequest w;
  w.set_channel(name);
  w.set_ack_level(v1::ACK_LEVEL_CONSUMED);
  w.set_data("x");
  auto written = client_->Write(
      w, [](std::string*) { return false; }, absl::Seconds(10));
  EXPECT_EQ(ReasonOf(written.status()), "ACK_LEVEL_NOT_SUPPORTED");

  v1::DeleteChannelRequest del;
  del.set_name(name);
  auto deleted = client_->DeleteChannel(del);
  EXPECT_EQ(deleted.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReasonOf(deleted.status()), "TOOLSTACK_MANAGED");
}

TEST_F(XenchandTest, PayloadsAreBounded) {
  CreateConnectedChannel(kGuest, "org.example.big");
  const int tty = OpenTty(kGuest, "org.example.big");
  v1::WriteRequest w;
  w.set_channel(ChannelName(kGuest, "org.example.big"));
  w.set_data(std::string((64 << 10) + 1, 'x'));
  auto written = client_->Write(
      w, [](std::string*) { return false; }, absl::Seconds(10));
  EXPECT_EQ(written.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReasonOf(written.status()), "PAYLOAD_TOO_LARGE");
  v1::CallRequest call;
  call.set_channel(ChannelName(kGuest, "org.example.big"));
  call.set_request(std::string((64 << 10) + 1, 'x'));
  auto big_call = client_->Call(call, absl::Seconds(10));
  EXPECT_EQ(big_call.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReasonOf(big_call.status()), "PAYLOAD_TOO_LARGE");

  // A guest that answers with more than 1 MiB and never ends its line.
  call.set_request("dump");
  std::thread agent([tty] {
    ReadUntil(tty, "\n");
    WriteAll(tty, std::string((1 << 20) + 4096, 'y'));
  });
  auto huge = client_->Call(call, absl::Seconds(30));
  agent.join();
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted) << huge.status();
  EXPECT_EQ(ReasonOf(huge.status()), "RESPONSE_TOO_LARGE");
  auto partial = client::DetailOf<v1::PartialResponse>(huge.status());
  ASSERT_TRUE(partial.has_value());
  // The detail carries the beginning only (it travels in the trailers).
  EXPECT_EQ(partial->response(), std::string(4096, 'y'));
}

// --- Health checking and reflection, spoken as raw protobuf bytes over the
// generic stub (the protocol's messages are tiny and stable). ---

grpc::ByteBuffer Bytes(const std::string& s) {
  grpc::Slice slice(s);
  return grpc::ByteBuffer(&slice, 1);
}

std::string String(const grpc::ByteBuffer& b) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!b.Dump(&slices).ok()) return out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// grpc.health.v1.Health/Check for `service`: the status enum (1 = SERVING),
// or the call's error.
absl::StatusOr<int> HealthCheck(const std::string& target, const std::string& service) {
  grpc::GenericStub stub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  std::string request;  // HealthCheckRequest { string service = 1; }
  if (!service.empty()) {
    request.push_back(0x0a);
    request.push_back(static_cast<char>(service.size()));
    request += service;
  }
  grpc::ByteBuffer req = Bytes(request), resp;
  grpc::Status status;
  auto call = stub.PrepareUnaryCall(&ctx, "/grpc.health.v1.Health/Check", req, &cq);
  call->StartCall();
  call->Finish(&resp, &status, reinterpret_cast<void*>(1));
  void* tag;
  bool ok;
  if (!cq.Next(&tag, &ok)) return absl::InternalError("completion queue shut down");
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (!status.ok()) return client::FromGrpc(status);
  google::protobuf::UnknownFieldSet fields;  // HealthCheckResponse { enum status = 1; }
  const std::string body = String(resp);
  if (!fields.ParseFromString(body)) return absl::InternalError("unparsable response");
  for (int i = 0; i < fields.field_count(); ++i) {
    if (fields.field(i).number() == 1) return static_cast<int>(fields.field(i).varint());
  }
  return 0;  // proto3 default: UNKNOWN
}

// The services grpc.reflection.v1alpha.ServerReflection lists.
absl::StatusOr<std::vector<std::string>> ReflectedServices(const std::string& target) {
  grpc::GenericStub stub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream =
      stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag;
  bool ok = false;
  auto step = [&](intptr_t want) {
    return cq.Next(&tag, &ok) && reinterpret_cast<intptr_t>(tag) == want && ok;
  };
  stream->StartCall(reinterpret_cast<void*>(1));
  if (!step(1)) return absl::UnavailableError("call did not start");
  // ServerReflectionRequest { oneof: string list_services = 7; }
  stream->Write(Bytes(std::string("\x3a\x00", 2)), reinterpret_cast<void*>(2));
  if (!step(2)) return absl::UnavailableError("write failed");
  grpc::ByteBuffer resp;
  stream->Read(&resp, reinterpret_cast<void*>(3));
  if (!step(3)) return absl::UnavailableError("no response");
  stream->WritesDone(reinterpret_cast<void*>(4));
  step(4);
  grpc::Status status;
  stream->Finish(&status, reinterpret_cast<void*>(5));
  step(5);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  // ServerReflectionResponse { ListServiceResponse list_services_response = 6; }
  // ListServiceResponse { repeated ServiceResponse service = 1; }
  // ServiceResponse { string name = 1; }
  std::vector<std::string> names;
  google::protobuf::UnknownFieldSet top;
  if (!top.ParseFromString(String(resp))) return absl::InternalError("unparsable response");
  for (int i = 0; i < top.field_count(); ++i) {
    if (top.field(i).number() != 6) continue;
    google::protobuf::UnknownFieldSet list;
    if (!list.ParseFromString(top.field(i).length_delimited())) continue;
    for (int j = 0; j < list.field_count(); ++j) {
      google::protobuf::UnknownFieldSet service;
      if (list.field(j).number() != 1 ||
          !service.ParseFromString(list.field(j).length_delimited())) {
        continue;
      }
      for (int k = 0; k < service.field_count(); ++k) {
        if (service.field(k).number() == 1) names.push_back(service.field(k).length_delimited());
      }
    }
  }
  return names;
}

TEST_F(XenchandTest, HealthAndReflectionAnswer) {
  for (const std::string& target : {server_->unix_target(), server_->tcp_target()}) {
    auto serving = HealthCheck(target, "");
    ASSERT_TRUE(serving.ok()) << target << ": " << serving.status();
    EXPECT_EQ(*serving, 1) << target;  // SERVING
    auto unknown = HealthCheck(target, "no.such.Service");
    EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound) << target;
    auto services = ReflectedServices(target);
    ASSERT_TRUE(services.ok()) << target << ": " << services.status();
    EXPECT_THAT(*services,
                ::testing::IsSupersetOf({"xenchan.v1.ChannelService", "grpc.health.v1.Health"}))
        << target;
  }
}

}  // namespace
}  // namespace xenchan
