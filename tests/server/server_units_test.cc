// Unit tests of xenchand's pieces that need no engine: the status conversion
// (server/status.h), resource names and page tokens, request validation
// (server/validate.h) and the configuration.
#include <cstdlib>
#include <string>

#include "absl/strings/cord.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/error_info.pb.h"
#include "gtest/gtest.h"
#include "server/config.h"
#include "server/resource_names.h"
#include "server/status.h"
#include "server/validate.h"
#include "tests/common/files.h"
#include "xenchan/v1/errors.pb.h"

namespace xenchan {
namespace server {
namespace {

TEST(StatusTest, ApiErrorCarriesReasonMetadataAndDetailsOnTheWire) {
  v1::LeaseHolder holder;
  holder.set_session_id("s1-2");
  absl::Status s =
      ApiError(absl::StatusCode::kFailedPrecondition, v1::ERROR_REASON_LEASE_HELD, "held")
          .Metadata("channel", "domains/a/channels/b")
          .Detail(holder);
  EXPECT_EQ(ReasonOf(s), v1::ERROR_REASON_LEASE_HELD);
  grpc::Status g = ToGrpcStatus(s);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(g.error_message(), "held");
  google::rpc::Status rpc;
  ASSERT_TRUE(rpc.ParseFromString(g.error_details()));
  EXPECT_EQ(rpc.code(), 9);
  ASSERT_EQ(rpc.details_size(), 2);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(rpc.details(0).UnpackTo(&info));
  EXPECT_EQ(info.domain(), "xenchan.dev");
  EXPECT_EQ(info.reason(), "LEASE_HELD");
  EXPECT_EQ(info.metadata().at("channel"), "domains/a/channels/b");
  v1::LeaseHolder back;
  ASSERT_TRUE(rpc.details(1).UnpackTo(&back));
  EXPECT_EQ(back.session_id(), "s1-2");
}

TEST(StatusTest, InvalidArgumentNamesTheField) {
  grpc::Status g = ToGrpcStatus(InvalidOption("page_size", "must not be negative"));
  google::rpc::Status rpc;
  ASSERT_TRUE(rpc.ParseFromString(g.error_details()));
  bool found = false;
  for (const auto& any : rpc.details()) {
    google::rpc::BadRequest br;
    if (any.UnpackTo(&br)) {
      ASSERT_EQ(br.field_violations_size(), 1);
      EXPECT_EQ(br.field_violations(0).field(), "page_size");
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST(StatusTest, PlainStatusesGetAFallbackReasonOrNone) {
  EXPECT_EQ(ReasonOf(absl::UnavailableError("x")), v1::ERROR_REASON_TRANSPORT_UNAVAILABLE);
  grpc::Status internal = ToGrpcStatus(absl::InternalError("bug"));
  google::rpc::Status rpc;
  ASSERT_TRUE(rpc.ParseFromString(internal.error_details()));
  EXPECT_EQ(rpc.details_size(), 0);
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

TEST(ResourceNamesTest, ParsesAndRejects) {
  auto d = ParseDomainName("domains/guest1", "name", false);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->domain, "guest1");
  EXPECT_TRUE(ParseDomainName("domains/-", "parent", true)->all());
  EXPECT_EQ(ReasonOf(ParseDomainName("domains/-", "name", false).status()),
            v1::ERROR_REASON_INVALID_NAME);
  for (const char* bad : {"", "domains", "domain/x", "domains/a/b", "domains//", "x/y"}) {
    EXPECT_FALSE(ParseDomainName(bad, "name", true).ok()) << bad;
  }
  auto c = ParseChannelName("domains/g/channels/org.example.a-1", "name");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->channel_id, "org.example.a-1");
  for (const char* bad : {"domains/g/channels/", "domains/g/channel/x", "domains/-/channels/x",
                          "domains/g/channels/a b", "domains/g/channels/.x"}) {
    EXPECT_FALSE(ParseChannelName(bad, "name").ok()) << bad;
  }
}

// Client input is echoed into errors only in part: an error's message and
// details travel in trailers, which clients cap (gRPC: 8 KiB by default).
TEST(ResourceNamesTest, ErrorsQuoteClientInputOnlyInPart) {
  EXPECT_EQ(QuoteClientValue("abc"), "'abc'");
  const std::string exact(kMaxQuotedBytes, 'q');
  EXPECT_EQ(QuoteClientValue(exact), "'" + exact + "'");
  EXPECT_EQ(QuoteClientValue(std::string(70000, 'z')),
            "'" + std::string(kMaxQuotedBytes, 'z') + "...'(70000 bytes)");
  // Never cut inside a UTF-8 character (2-byte "\xc3\xa9" straddling the cut).
  const std::string utf8 = std::string(kMaxQuotedBytes - 1, 'a') + "\xc3\xa9" + "tail";
  EXPECT_EQ(QuoteClientValue(utf8), "'" + std::string(kMaxQuotedBytes - 1, 'a') + "...'(" +
                                        std::to_string(utf8.size()) + " bytes)");

  const std::string huge(1 << 20, 'x');
  v1::CreateChannelRequest create;
  create.set_parent("domains/g");
  create.set_channel_id(huge);
  v1::GetChannelRequest get;
  get.set_name("domains/g/channels/" + huge);
  v1::GetDomainRequest get_domain;
  get_domain.set_name("domains/" + huge);
  v1::GetChannelRequest bad_id;
  bad_id.set_name("domains/g/channels/-" + huge);
  for (const absl::Status& s :
       {ValidateRequest(create), ValidateRequest(get), ValidateRequest(get_domain),
        ValidateRequest(bad_id), ParseDomainName("domains/" + huge, "parent", true).status()}) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s.message().substr(0, 200);
    EXPECT_LT(s.message().size(), 512u) << s.message().substr(0, 200);
    std::string wire;
    s.ForEachPayload(
        [&](absl::string_view, const absl::Cord& payload) { wire += std::string(payload); });
    EXPECT_LT(wire.size(), 2048u);
    EXPECT_NE(s.message().find("(1048"), std::string::npos) << s.message();  // the size is named
  }
}

TEST(ResourceNamesTest, PageTokensAreBoundToTheirRequest) {
  const std::string t = EncodePageToken("fp1", "uuid/chan");
  auto key = DecodePageToken(t, "fp1", "page_token");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(*key, "uuid/chan");
  EXPECT_EQ(ReasonOf(DecodePageToken(t, "fp2", "page_token").status()),
            v1::ERROR_REASON_INVALID_PAGE_TOKEN);
  EXPECT_FALSE(DecodePageToken("!!", "fp1", "page_token").ok());
}

TEST(ValidateTest, CreateAcceptsEveryChannelLifetime) {
  v1::CreateChannelRequest create;
  create.set_parent("domains/guest1");
  create.set_channel_id("org.example.agent.0");
  for (v1::ChannelLifetime l : {v1::CHANNEL_LIFETIME_UNSPECIFIED, v1::CHANNEL_LIFETIME_INCARNATION,
                                v1::CHANNEL_LIFETIME_DURABLE}) {
    create.mutable_config()->set_lifetime(l);
    EXPECT_TRUE(ValidateRequest(create).ok()) << v1::ChannelLifetime_Name(l);
  }
}

TEST(ValidateTest, CreateRefusesAnUnknownChannelLifetime) {
  v1::CreateChannelRequest create;
  create.set_parent("domains/guest1");
  create.set_channel_id("org.example.agent.0");
  create.mutable_config()->set_lifetime(static_cast<v1::ChannelLifetime>(99));
  absl::Status s = ValidateRequest(create);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReasonOf(s), v1::ERROR_REASON_INVALID_OPTION);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("config.lifetime"));
}

TEST(ValidateTest, ListFiltersOnDomainDownButNotOnUnknownStates) {
  v1::ListChannelsRequest list;
  list.set_parent("domains/-");
  list.add_states(v1::CHANNEL_STATE_DOMAIN_DOWN);
  EXPECT_TRUE(ValidateRequest(list).ok());
  list.add_states(static_cast<v1::ChannelState>(99));
  EXPECT_EQ(ReasonOf(ValidateRequest(list)), v1::ERROR_REASON_INVALID_OPTION);
}

TEST(ConfigTest, FileThenFlagsAndListenRules) {
  ServerConfig c;
  ASSERT_TRUE(ApplyConfigText(&c,
                              "# x\nplatform = sim\nsim-state-dir = /s\n"
                              "listen = unix:///a.sock\nmax-call-time = 5s\n")
                  .ok());
  EXPECT_EQ(c.platform, "sim");
  EXPECT_EQ(c.max_call_time, absl::Seconds(5));
  EXPECT_TRUE(Validate(c).ok());
  EXPECT_FALSE(ApplyConfigText(&c, "nonsense = 1\n").ok());
  EXPECT_FALSE(ApplyConfigText(&c, "no equals sign\n").ok());
  EXPECT_FALSE(ApplyConfigText(&c, "worker-threads = 0\n").ok());

  EXPECT_TRUE(ParseListenAddress("127.0.0.1:0").ok());
  EXPECT_TRUE(ParseListenAddress("[::1]:0").ok());
  EXPECT_TRUE(ParseListenAddress("localhost:7000").ok());
  auto u = ParseListenAddress("unix:///run/x.sock");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->unix);
  EXPECT_EQ(u->path, "/run/x.sock");
  // Plain HOST:PORT is mutual TLS (any address); plaintext only when asked
  // for explicitly, and on loopback only.
  auto tls = ParseListenAddress("0.0.0.0:7000");
  ASSERT_TRUE(tls.ok());
  EXPECT_FALSE(tls->insecure);
  EXPECT_EQ(tls->target, "0.0.0.0:7000");
  auto tls2 = ParseListenAddress("tls://[::]:7000");
  ASSERT_TRUE(tls2.ok());
  EXPECT_EQ(tls2->target, "[::]:7000");
  auto plain = ParseListenAddress("insecure-tcp://127.0.0.1:0");
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->insecure);
  EXPECT_EQ(plain->target, "127.0.0.1:0");
  auto open = ParseListenAddress("insecure-tcp://0.0.0.0:7000");
  EXPECT_FALSE(open.ok());
  EXPECT_THAT(std::string(open.status().message()), ::testing::HasSubstr("loopback"));
  EXPECT_FALSE(ParseListenAddress("insecure-tcp://10.1.2.3:7000").ok());
  EXPECT_FALSE(ParseListenAddress("unix:relative").ok());
  // A TLS listener needs all three TLS settings.
  ServerConfig t;
  ASSERT_TRUE(ApplyConfigText(&t, "listen = 0.0.0.0:7000\n").ok());
  EXPECT_THAT(std::string(Validate(t).message()), ::testing::HasSubstr("tls-cert"));
  ASSERT_TRUE(ApplyConfigText(&t, "tls-cert = /c\ntls-key = /k\n").ok());
  EXPECT_THAT(std::string(Validate(t).message()), ::testing::HasSubstr("go together"));
  ASSERT_TRUE(ApplyConfigText(&t,
                              "tls-client-ca = /ca\npolicy = /p\naudit-log = /a\n"
                              "audit-fsync-interval = 250ms\n")
                  .ok());
  EXPECT_TRUE(Validate(t).ok()) << Validate(t);
  EXPECT_EQ(t.policy, "/p");
  EXPECT_EQ(t.audit_log, "/a");
  EXPECT_EQ(t.audit_fsync_interval, absl::Milliseconds(250));
  ServerConfig insecure;
  ASSERT_TRUE(ApplyConfigText(&insecure, "listen = insecure-tcp://127.0.0.1:0\n").ok());
  EXPECT_TRUE(Validate(insecure).ok());

  const char* argv[] = {"xenchand", "--platform=sim", "--sim-state-dir", "/d",
                        "--listen=127.0.0.1:0"};
  auto parsed = ParseCommandLine(5, const_cast<char**>(argv));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->listen.size(), 1u);
  EXPECT_EQ(parsed->sim_state_dir, "/d");
  const char* bad[] = {"xenchand", "--platform=kvm"};
  EXPECT_FALSE(ParseCommandLine(2, const_cast<char**>(bad)).ok());
}

TEST(ConfigTest, DeployedExampleIsValid) {
  const std::string text =
      testcommon::ReadFileOrEmpty(testcommon::RunfilePath("deploy/xenchand.conf"));
  ASSERT_FALSE(text.empty()) << "deploy/xenchand.conf not in runfiles";
  ServerConfig c;
  ASSERT_TRUE(ApplyConfigText(&c, text).ok());
  EXPECT_TRUE(Validate(c).ok());
  EXPECT_EQ(c.platform, "xen");
  EXPECT_EQ(c.listen.size(), 1u);
  EXPECT_EQ(c.keepalive_time, absl::Seconds(60));
  EXPECT_EQ(c.watch_backlog_events, 5000u);
}

}  // namespace
}  // namespace server
}  // namespace xenchan
