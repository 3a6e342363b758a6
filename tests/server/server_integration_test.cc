// xenchand's Server started in the test process (tests/server/
// in_process_server.h) over a simulated host, driven through the generated
// stub on its Unix socket: queries, channel lifecycle, Call, Read, Server
// wiring (options, addresses, shutdown), and the contract defects fixed with
// the server's restructuring (Call's DOMAIN_GONE, WriteRejection's reached
// level, LeaseHolder.identity).
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/common/io.h"
#include "tests/server/in_process_server.h"

namespace xenchan {
namespace servertest {
namespace {

using testcommon::AnswerOneLine;
using testcommon::ReadUntil;
using testcommon::WriteAll;
using ::testing::HasSubstr;

constexpr char kGuest[] = "guest1";

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = InProcessServer::Start({kGuest});
    ASSERT_TRUE(s.ok()) << s.status();
    s_ = *std::move(s);
  }
  void TearDown() override {
    for (int fd : fds_) close(fd);
    s_.reset();
  }

  v1::ChannelService::Stub& stub() { return s_->stub(); }
  int Tty(const std::string& id) {
    const int fd = s_->OpenTty(kGuest, id);
    if (fd >= 0) fds_.push_back(fd);
    return fd;
  }

  std::unique_ptr<InProcessServer> s_;
  std::vector<int> fds_;
};

TEST_F(ServerTest, ListsAndGetsDomains) {
  grpc::ClientContext list_context;
  v1::ListDomainsResponse list;
  ASSERT_TRUE(stub().ListDomains(&list_context, v1::ListDomainsRequest(), &list).ok());
  ASSERT_EQ(list.domains_size(), 1);
  EXPECT_EQ(list.domains(0).display_name(), kGuest);

  grpc::ClientContext get_context;
  v1::GetDomainRequest get;
  get.set_name(absl::StrCat("domains/", kGuest));
  v1::GetDomainResponse domain;
  ASSERT_TRUE(stub().GetDomain(&get_context, get, &domain).ok());
  EXPECT_EQ(domain.domain().uuid(), list.domains(0).uuid());

  grpc::ClientContext missing_context;
  get.set_name("domains/nobody");
  const grpc::Status missing = stub().GetDomain(&missing_context, get, &domain);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ReasonOf(missing), "DOMAIN_NOT_FOUND");
}

TEST_F(ServerTest, CreatesListsGetsAndDeletesAChannel) {
  auto created = s_->CreateConnected(kGuest, "org.example.a");
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->state(), v1::CHANNEL_STATE_CONNECTED);

  grpc::ClientContext list_context;
  v1::ListChannelsRequest list_request;
  list_request.set_parent("domains/-");
  v1::ListChannelsResponse list;
  ASSERT_TRUE(stub().ListChannels(&list_context, list_request, &list).ok());
  ASSERT_EQ(list.channels_size(), 1);
  EXPECT_EQ(list.channels(0).channel_id(), "org.example.a");

  grpc::ClientContext again_context;
  v1::CreateChannelRequest again;
  again.set_parent(absl::StrCat("domains/", kGuest));
  again.set_channel_id("org.example.a");
  v1::CreateChannelResponse unused;
  const grpc::Status exists = stub().CreateChannel(&again_context, again, &unused);
  EXPECT_EQ(exists.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(ReasonOf(exists), "CHANNEL_EXISTS");

  grpc::ClientContext delete_context;
  SetTimeout(&delete_context, absl::Seconds(30));
  v1::DeleteChannelRequest del;
  del.set_name(ChannelName(kGuest, "org.example.a"));
  v1::DeleteChannelResponse deleted;
  const grpc::Status d = stub().DeleteChannel(&delete_context, del, &deleted);
  ASSERT_TRUE(d.ok()) << d.error_message();
  EXPECT_EQ(deleted.channel().channel_id(), "org.example.a");

  grpc::ClientContext get_context;
  v1::GetChannelRequest get;
  get.set_name(ChannelName(kGuest, "org.example.a"));
  v1::GetChannelResponse channel;
  const grpc::Status gone = stub().GetChannel(&get_context, get, &channel);
  EXPECT_EQ(gone.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ReasonOf(gone), "CHANNEL_NOT_FOUND");
}

TEST_F(ServerTest, UpdatesAChannelThroughAFieldMask) {
  auto created = s_->CreateConnected(kGuest, "org.example.u");
  ASSERT_TRUE(created.ok()) << created.status();
  auto update = [&](const v1::UpdateChannelRequest& request, v1::UpdateChannelResponse* out) {
    grpc::ClientContext context;
    SetTimeout(&context, absl::Seconds(30));
    return stub().UpdateChannel(&context, request, out);
  };
  v1::UpdateChannelRequest request;
  request.mutable_channel()->set_name(ChannelName(kGuest, "org.example.u"));
  request.mutable_channel()->mutable_config()->set_buffer_limit_bytes(65536);
  request.mutable_channel()->mutable_config()->set_overflow_policy(v1::OVERFLOW_POLICY_DROP_OLDEST);
  // Not in the mask: ignored.
  request.mutable_channel()->mutable_config()->set_write_queue_limit_bytes(65536);
  request.mutable_update_mask()->add_paths("config.buffer_limit_bytes");
  request.mutable_update_mask()->add_paths("config.overflow_policy");
  v1::UpdateChannelResponse response;

  // validate_only answers with the result and changes nothing.
  request.set_validate_only(true);
  grpc::Status s = update(request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.channel().config().buffer_limit_bytes(), 65536u);
  grpc::ClientContext get_context;
  v1::GetChannelRequest get;
  get.set_name(ChannelName(kGuest, "org.example.u"));
  v1::GetChannelResponse got;
  ASSERT_TRUE(stub().GetChannel(&get_context, get, &got).ok());
  EXPECT_EQ(got.channel().config().buffer_limit_bytes(), created->config().buffer_limit_bytes());

  request.set_validate_only(false);
  s = update(request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.channel().config().buffer_limit_bytes(), 65536u);
  EXPECT_EQ(response.channel().config().overflow_policy(), v1::OVERFLOW_POLICY_DROP_OLDEST);
  EXPECT_EQ(response.channel().config().write_queue_limit_bytes(),
            created->config().write_queue_limit_bytes());
  EXPECT_EQ(response.channel().uid(), created->uid());

  // The mask is required, and names only what can change.
  v1::UpdateChannelRequest no_mask = request;
  no_mask.clear_update_mask();
  s = update(no_mask, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ReasonOf(s), "INVALID_OPTION");
  EXPECT_THAT(s.error_message(), HasSubstr("update_mask"));
  v1::UpdateChannelRequest bad_path = request;
  bad_path.mutable_update_mask()->add_paths("uid");
  s = update(bad_path, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("path 'uid'"));
  EXPECT_THAT(s.error_message(), HasSubstr("output only or fixed at creation"));
  // Values are checked as CreateChannel checks them.
  v1::UpdateChannelRequest too_small = request;
  too_small.mutable_channel()->mutable_config()->set_buffer_limit_bytes(10);
  s = update(too_small, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("channel.config.buffer_limit_bytes"));
  v1::UpdateChannelRequest missing = request;
  missing.mutable_channel()->set_name(ChannelName(kGuest, "org.example.none"));
  s = update(missing, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ReasonOf(s), "CHANNEL_NOT_FOUND");
  v1::UpdateChannelRequest no_name = request;
  no_name.mutable_channel()->clear_name();
  s = update(no_name, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ReasonOf(s), "INVALID_NAME");
}

TEST_F(ServerTest, CallRoundTrip) {
  ASSERT_TRUE(s_->CreateConnected(kGuest, "org.example.call").ok());
  const int tty = Tty("org.example.call");
  ASSERT_GE(tty, 0);
  std::thread agent([tty] { AnswerOneLine(tty, "re:"); });
  grpc::ClientContext context;
  SetTimeout(&context, absl::Seconds(20));
  v1::CallRequest call;
  call.set_channel(ChannelName(kGuest, "org.example.call"));
  call.set_request("status");
  v1::CallResponse response;
  const grpc::Status s = stub().Call(&context, call, &response);
  agent.join();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.response(), "re:status");
}

TEST_F(ServerTest, ReadReturnsGuestOutputWithOffsets) {
  ASSERT_TRUE(s_->CreateConnected(kGuest, "org.example.out").ok());
  const int tty = Tty("org.example.out");
  ASSERT_GE(tty, 0);
  ASSERT_TRUE(WriteAll(tty, "hello world"));
  grpc::ClientContext context;
  SetTimeout(&context, absl::Seconds(20));
  v1::ReadRequest request;
  request.set_channel(ChannelName(kGuest, "org.example.out"));
  request.set_follow(true);
  request.set_max_bytes(11);
  auto reader = stub().Read(&context, request);
  std::string got;
  v1::ReadResponse m;
  while (reader->Read(&m)) {
    if (!m.has_data()) continue;
    EXPECT_EQ(m.data().offset(), got.size());
    got += m.data().data();
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(got, "hello world");
}

TEST_F(ServerTest, ListenerAddressesAreReportedAndTcpCallersAreUnauthenticated) {
  server::ServerConfig config;
  config.listen = {"insecure-tcp://127.0.0.1:0"};
  auto s = InProcessServer::Start({}, config);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ((*s)->server().addresses().size(), 2u);
  EXPECT_TRUE(absl::StartsWith((*s)->server().unix_target(), "unix:///"));
  const std::string tcp = (*s)->server().tcp_target();
  EXPECT_TRUE(absl::StartsWith(tcp, "127.0.0.1:")) << tcp;
  EXPECT_FALSE(absl::EndsWith(tcp, ":0")) << tcp;
  auto over_tcp = (*s)->NewStub(tcp);
  grpc::ClientContext context;
  v1::ListDomainsResponse list;
  const grpc::Status st = over_tcp->ListDomains(&context, v1::ListDomainsRequest(), &list);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ReasonOf(st), "UNAUTHENTICATED");
}

TEST(ServerOptionsTest, BadOptionsGiveAClearError) {
  {
    server::ServerOptions options;
    options.config.platform = "sim";  // without a state directory
    auto s = server::Server::BuildAndStart(std::move(options));
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.status().message()), HasSubstr("--platform=sim needs"));
  }
  {
    server::ServerOptions options;
    options.config.listen = {"10.1.2.3:443"};  // TCP without TLS files
    auto s = server::Server::BuildAndStart(std::move(options));
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(std::string(s.status().message()), HasSubstr("mutual TLS"));
  }
  {
    server::ServerConfig config;
    config.policy = "/nonexistent/policy";
    auto s = InProcessServer::Start({}, config);
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(std::string(s.status().message()), HasSubstr("bad policy file"));
  }
  {
    server::ServerConfig config;
    config.listen = {"unix:///proc/no-such-dir/x.sock"};
    auto s = InProcessServer::Start({}, config);
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(std::string(s.status().message()), HasSubstr("cannot listen"));
  }
}

TEST_F(ServerTest, ShutdownEndsOpenStreamsAndIsIdempotent) {
  ASSERT_TRUE(s_->CreateConnected(kGuest, "org.example.idle").ok());
  grpc::ClientContext context;
  SetTimeout(&context, absl::Seconds(30));
  v1::ReadRequest request;
  request.set_channel(ChannelName(kGuest, "org.example.idle"));
  request.set_follow(true);
  auto reader = stub().Read(&context, request);
  // The stream is open once it delivered the guest's first bytes.
  const int tty = Tty("org.example.idle");
  ASSERT_GE(tty, 0);
  ASSERT_TRUE(WriteAll(tty, "x"));
  v1::ReadResponse first;
  while (reader->Read(&first) && !first.has_data()) {
  }
  ASSERT_TRUE(first.has_data());
  std::thread stopper([this] { s_->server().Shutdown("test"); });
  v1::ReadResponse m;
  while (reader->Read(&m)) {
  }
  const grpc::Status end = reader->Finish();
  stopper.join();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::UNAVAILABLE) << end.error_message();
  EXPECT_EQ(ReasonOf(end), "SHUTTING_DOWN");
  s_->server().Shutdown("again");  // idempotent
  EXPECT_EQ(s_->server().engine(), nullptr);
}

// Contract: a Call whose domain goes away while it waits for the answer ends
// UNAVAILABLE (DOMAIN_GONE), as Read and Attach do.
TEST_F(ServerTest, CallEndsDomainGoneWhenTheDomainIsDestroyed) {
  ASSERT_TRUE(s_->CreateConnected(kGuest, "org.example.mute").ok());
  const int tty = Tty("org.example.mute");
  ASSERT_GE(tty, 0);
  std::thread destroyer([this, tty] {
    ReadUntil(tty, "\n");  // the request arrived; never answer
    EXPECT_TRUE(s_->sim().host().DestroyDomain(kGuest).ok());
  });
  grpc::ClientContext context;
  SetTimeout(&context, absl::Seconds(30));
  v1::CallRequest call;
  call.set_channel(ChannelName(kGuest, "org.example.mute"));
  call.set_request("status");
  v1::CallResponse response;
  const grpc::Status s = stub().Call(&context, call, &response);
  destroyer.join();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_EQ(ReasonOf(s), "DOMAIN_GONE") << s.error_message();
  auto partial = DetailOf<v1::PartialResponse>(s);
  ASSERT_TRUE(partial.has_value());
  EXPECT_NE(partial->request_level(), v1::ACK_LEVEL_UNSPECIFIED);
}

// Contract: WriteRejection.reached_level is the highest level the writes
// reached, also when the epoch changed after they were DELIVERED.
TEST_F(ServerTest, RejectionAfterAnEpochChangeKeepsTheDeliveredLevel) {
  const auto created = s_->CreateConnected(kGuest, "org.example.ack");
  ASSERT_TRUE(created.ok()) << created.status();
  grpc::ClientContext context;
  SetTimeout(&context, absl::Seconds(60));
  auto stream = stub().Attach(&context);
  v1::AttachRequest open;
  open.mutable_open()->set_channel(ChannelName(kGuest, "org.example.ack"));
  open.mutable_open()->set_role(v1::SESSION_ROLE_WRITER);
  open.mutable_open()->set_ack_level(v1::ACK_LEVEL_CONSUMED);
  ASSERT_TRUE(stream->Write(open));
  v1::AttachResponse m;
  ASSERT_TRUE(stream->Read(&m));
  ASSERT_TRUE(m.has_opened());
  // A frozen guest does not consume: the bytes stop at DELIVERED (in the ring).
  ASSERT_TRUE(s_->sim().host().SuspendDomain(kGuest).ok());
  v1::AttachRequest write;
  write.mutable_write()->set_sequence_id(1);
  write.mutable_write()->set_data("frozen");
  ASSERT_TRUE(stream->Write(write));
  bool delivered = false;
  while (!delivered && stream->Read(&m)) {
    if (m.has_write_rejection()) break;
    delivered = m.has_write_ack() && m.write_ack().level() == v1::ACK_LEVEL_DELIVERED;
  }
  ASSERT_TRUE(delivered) << m.DebugString();
  // Resuming gives the guest a new ring: a new epoch, and the bytes never
  // reached CONSUMED.
  ASSERT_TRUE(s_->sim().host().ResumeDomain(kGuest).ok());
  std::optional<v1::WriteRejection> rejection;
  while (!rejection.has_value() && stream->Read(&m)) {
    if (m.has_write_rejection()) rejection = m.write_rejection();
  }
  ASSERT_TRUE(rejection.has_value());
  EXPECT_EQ(rejection->first_sequence_id(), 1u);
  EXPECT_EQ(rejection->last_sequence_id(), 1u);
  EXPECT_EQ(rejection->reason(), v1::ERROR_REASON_EPOCH_CHANGED);
  EXPECT_EQ(rejection->reached_level(), v1::ACK_LEVEL_DELIVERED);
  EXPECT_EQ(rejection->epoch(), created->epoch());
  context.TryCancel();
  stream->Finish();
}

// Contract: LeaseHolder.identity is `unix:uid={uid}` for Unix-socket callers.
TEST_F(ServerTest, LeaseHolderIdentityIsTheCallersUid) {
  ASSERT_TRUE(s_->CreateConnected(kGuest, "org.example.lease").ok());
  grpc::ClientContext context;
  SetTimeout(&context, absl::Seconds(30));
  auto stream = stub().Attach(&context);
  v1::AttachRequest open;
  open.mutable_open()->set_channel(ChannelName(kGuest, "org.example.lease"));
  open.mutable_open()->set_role(v1::SESSION_ROLE_WRITER);
  ASSERT_TRUE(stream->Write(open));
  v1::AttachResponse m;
  ASSERT_TRUE(stream->Read(&m));
  ASSERT_TRUE(m.has_opened());
  grpc::ClientContext get_context;
  v1::GetChannelRequest get;
  get.set_name(ChannelName(kGuest, "org.example.lease"));
  v1::GetChannelResponse channel;
  ASSERT_TRUE(stub().GetChannel(&get_context, get, &channel).ok());
  EXPECT_EQ(channel.channel().write_lease().identity(), absl::StrCat("unix:uid=", getuid()));
  EXPECT_EQ(channel.channel().write_lease().session_id(), m.opened().session_id());
  context.TryCancel();
  stream->Finish();
}

}  // namespace
}  // namespace servertest
}  // namespace xenchan
