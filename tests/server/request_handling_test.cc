// The request handling that needs neither gRPC nor an engine: the query
// handlers (server/queries.h), the Authorizer and EngineErrors, over a fixed
// EngineView and a parsed policy.
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backend/engine/memory_budget.h"
#include "backend/util/api_limits.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"
#include "server/authorizer.h"
#include "server/engine_errors.h"
#include "server/engine_view.h"
#include "server/queries.h"
#include "server/status.h"

namespace xenchan {
namespace server {
namespace {

using ::testing::HasSubstr;

constexpr char kUuid1[] = "11111111-1111-1111-1111-111111111111";
constexpr char kUuid2[] = "22222222-2222-2222-2222-222222222222";

// A fixed engine state.
class FakeEngineView : public EngineView {
 public:
  absl::StatusOr<DomainInfo> GetDomain(const std::string& domain) const override {
    for (const DomainInfo& d : snapshot.domains) {
      if (d.name == domain || d.uuid == domain) return d;
    }
    return absl::NotFoundError("no such domain");
  }
  absl::StatusOr<ChannelInfo> GetChannel(const ChannelRef& ref) const override {
    auto d = GetDomain(ref.domain);
    if (!d.ok()) return d.status();
    for (const ChannelInfo& c : snapshot.channels) {
      if (c.domain_uuid == d->uuid && c.channel_id == ref.channel_id) return c;
    }
    return absl::NotFoundError("no such channel");
  }
  EngineSnapshot Snapshot() const override { return snapshot; }
  MemoryUsage Memory() const override { return memory; }

  EngineSnapshot snapshot;
  MemoryUsage memory;
};

DomainInfo Domain(const std::string& uuid, const std::string& name) {
  DomainInfo d;
  d.uuid = uuid;
  d.name = name;
  return d;
}

ChannelInfo Channel(const DomainInfo& d, const std::string& id,
                    ChannelState state = ChannelState::kConnected) {
  ChannelInfo c;
  c.domain_uuid = d.uuid;
  c.domain_name = d.name;
  c.channel_id = id;
  c.state = state;
  c.transport = Transport::kRing;
  return c;
}

Identity Caller(uint32_t uid) {
  Identity id;
  id.principals = policy::Identity::FromUnixPeer(uid, {uid});
  id.peer = "fd:7";
  id.transport = TransportKind::kUnix;
  return id;
}

template <class T>
std::optional<T> DetailOf(const absl::Status& s) {
  const google::rpc::Status rpc = ToRpcStatus(s);
  for (const auto& any : rpc.details()) {
    T detail;
    if (any.UnpackTo(&detail)) return detail;
  }
  return std::nullopt;
}

class RequestHandlingTest : public ::testing::Test {
 protected:
  RequestHandlingTest() {
    const DomainInfo web = Domain(kUuid1, "web");
    const DomainInfo db = Domain(kUuid2, "db");
    view_.snapshot.domains = {web, db};
    view_.snapshot.channels = {Channel(web, "org.example.a"), Channel(web, "org.example.b"),
                               Channel(db, "org.example.a", ChannelState::kWaitingForGuest)};
    // uid 0 may do everything; uid 1000 may read and call on `web` only.
    auto p = policy::Policy::Parse(
        "[identity unix:uid=0]\nallow verbs=* domain=* channel=*\n"
        "[identity unix:uid=1000]\nallow verbs=read,call domain=name:web channel=*\n",
        "test policy");
    EXPECT_TRUE(p.ok()) << p.status();
    policy_ = std::make_shared<const policy::Policy>(*std::move(p));
    AccessControl access;
    auto policy = policy_;
    access.policy = [policy] { return policy; };
    authz_.emplace(&view_, std::move(access));
  }

  QueryContext Queries() const { return QueryContext{&view_, &*authz_, &errors_}; }

  FakeEngineView view_;
  std::shared_ptr<const policy::Policy> policy_;
  std::optional<Authorizer> authz_;
  std::atomic<bool> shutting_down_{false};
  EngineErrors errors_{&view_, EngineErrors::Options{16, absl::Seconds(3)}, &shutting_down_};
};

// --- Authorizer ---

TEST_F(RequestHandlingTest, CallersWithoutPrincipalsAreUnauthenticated) {
  Identity anonymous;
  anonymous.peer = "ipv4:127.0.0.1:5000";
  anonymous.transport = TransportKind::kInsecureTcp;
  const absl::Status s =
      authz_->Authorize(anonymous, "GetChannel", "web", "x", policy::Verb::kRead);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ReasonOf(s), v1::ERROR_REASON_UNAUTHENTICATED);
  EXPECT_THAT(std::string(s.message()), HasSubstr("insecure-tcp"));
}

TEST_F(RequestHandlingTest, DenialNamesTheResourceAndDoesNotRevealExistence) {
  const Identity reader = Caller(1000);
  EXPECT_TRUE(authz_->Authorize(reader, "Read", "web", "org.example.a", policy::Verb::kRead).ok());
  const absl::Status write =
      authz_->Authorize(reader, "Write", "web", "org.example.a", policy::Verb::kWrite);
  EXPECT_EQ(write.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ReasonOf(write), v1::ERROR_REASON_PERMISSION_DENIED);
  auto info = DetailOf<google::rpc::ErrorInfo>(write);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->metadata().at("verb"), "write");
  EXPECT_EQ(info->metadata().at("channel"),
            std::string("domains/") + kUuid1 + "/channels/org.example.a");
  // An unknown domain is denied the same way, not reported missing.
  const absl::Status unknown =
      authz_->Authorize(reader, "Read", "nosuch", "org.example.a", policy::Verb::kRead);
  EXPECT_EQ(unknown.code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(RequestHandlingTest, DomainsResolveToWhatThePolicySees) {
  const policy::DomainRef known = authz_->ResolveDomain("web");
  EXPECT_EQ(known.uuid, kUuid1);
  EXPECT_EQ(known.name, "web");
  const policy::DomainRef by_uuid = authz_->ResolveDomain("AAAAAAAA-AAAA-AAAA-AAAA-AAAAAAAAAAAA");
  EXPECT_EQ(by_uuid.uuid, "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa");
  EXPECT_EQ(by_uuid.name, "");
  const policy::DomainRef by_name = authz_->ResolveDomain("elsewhere");
  EXPECT_EQ(by_name.uuid, "");
  EXPECT_EQ(by_name.name, "elsewhere");
}

TEST_F(RequestHandlingTest, DomainChecksAskForSomeChannel) {
  const Identity reader = Caller(1000);
  EXPECT_TRUE(authz_->AuthorizeDomain(reader, "GetDomain", "web", std::nullopt).ok());
  EXPECT_TRUE(authz_->AuthorizeDomain(reader, "ListChannels", "web", policy::Verb::kRead).ok());
  EXPECT_EQ(authz_->AuthorizeDomain(reader, "GetDomain", "db", std::nullopt).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(authz_->AuthorizeDomain(reader, "CreateChannel", "web", policy::Verb::kManage).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(IdentityTest, LeaseHoldersAreNamedByOnePrincipal) {
  EXPECT_EQ(Caller(1000).holder(), "unix:uid=1000");
  Identity tls;
  tls.principals = policy::Identity::FromCertificate({"spiffe://example.org/ctl"},
                                                     {"ctl.example.org"}, "ignored");
  EXPECT_EQ(tls.holder(), "spiffe://example.org/ctl");
  tls.principals = policy::Identity::FromCertificate({}, {"Ctl.Example.org", "b.example.org"}, "x");
  EXPECT_EQ(tls.holder(), "dns:ctl.example.org");
  tls.principals = policy::Identity::FromCertificate({}, {}, "provisioner");
  EXPECT_EQ(tls.holder(), "cn:provisioner");
  Identity anonymous;
  anonymous.peer = "ipv4:127.0.0.1:1";
  EXPECT_EQ(anonymous.holder(), "peer:ipv4:127.0.0.1:1");
}

// --- Queries ---

TEST_F(RequestHandlingTest, ListDomainsShowsWhatTheCallerMaySeeInPages) {
  v1::ListDomainsResponse mine;
  ASSERT_TRUE(ListDomains(Queries(), Caller(1000), v1::ListDomainsRequest(), &mine).ok());
  ASSERT_EQ(mine.domains_size(), 1);
  EXPECT_EQ(mine.domains(0).display_name(), "web");

  v1::ListDomainsRequest paged;
  paged.set_page_size(1);
  v1::ListDomainsResponse first;
  ASSERT_TRUE(ListDomains(Queries(), Caller(0), paged, &first).ok());
  ASSERT_EQ(first.domains_size(), 1);
  EXPECT_EQ(first.domains(0).uuid(), kUuid1);
  ASSERT_FALSE(first.next_page_token().empty());
  paged.set_page_token(first.next_page_token());
  v1::ListDomainsResponse second;
  ASSERT_TRUE(ListDomains(Queries(), Caller(0), paged, &second).ok());
  ASSERT_EQ(second.domains_size(), 1);
  EXPECT_EQ(second.domains(0).uuid(), kUuid2);
  EXPECT_TRUE(second.next_page_token().empty());

  paged.set_page_token("garbage");
  v1::ListDomainsResponse bad;
  EXPECT_EQ(ListDomains(Queries(), Caller(0), paged, &bad).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RequestHandlingTest, GetDomainChecksAccessBeforeExistence) {
  v1::GetDomainRequest request;
  v1::GetDomainResponse response;
  request.set_name("domains/nosuch");
  const absl::Status missing = GetDomain(Queries(), Caller(0), request, &response);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReasonOf(missing), v1::ERROR_REASON_DOMAIN_NOT_FOUND);
  EXPECT_EQ(GetDomain(Queries(), Caller(1000), request, &response).code(),
            absl::StatusCode::kPermissionDenied);
  request.set_name("domains/web");
  ASSERT_TRUE(GetDomain(Queries(), Caller(1000), request, &response).ok());
  EXPECT_EQ(response.domain().uuid(), kUuid1);
}

TEST_F(RequestHandlingTest, ListChannelsFiltersByPolicyStateAndPrefix) {
  v1::ListChannelsRequest all;
  all.set_parent("domains/-");
  v1::ListChannelsResponse everything;
  ASSERT_TRUE(ListChannels(Queries(), Caller(0), all, &everything).ok());
  EXPECT_EQ(everything.channels_size(), 3);
  v1::ListChannelsResponse readable;
  ASSERT_TRUE(ListChannels(Queries(), Caller(1000), all, &readable).ok());
  ASSERT_EQ(readable.channels_size(), 2);
  EXPECT_EQ(readable.channels(0).domain_uuid(), kUuid1);

  v1::ListChannelsRequest connected = all;
  connected.add_states(v1::CHANNEL_STATE_CONNECTED);
  connected.mutable_filter()->set_channel_id_prefix("org.example.a");
  v1::ListChannelsResponse one;
  ASSERT_TRUE(ListChannels(Queries(), Caller(0), connected, &one).ok());
  ASSERT_EQ(one.channels_size(), 1);
  EXPECT_EQ(one.channels(0).domain_uuid(), kUuid1);
  EXPECT_EQ(one.channels(0).channel_id(), "org.example.a");

  v1::ListChannelsRequest missing;
  missing.set_parent("domains/nosuch");
  v1::ListChannelsResponse none;
  EXPECT_EQ(ReasonOf(ListChannels(Queries(), Caller(0), missing, &none)),
            v1::ERROR_REASON_DOMAIN_NOT_FOUND);
}

TEST_F(RequestHandlingTest, GetChannelSaysWhichPartIsMissing) {
  v1::GetChannelRequest request;
  v1::GetChannelResponse response;
  request.set_name("domains/web/channels/org.example.a");
  ASSERT_TRUE(GetChannel(Queries(), Caller(1000), request, &response).ok());
  EXPECT_EQ(response.channel().channel_id(), "org.example.a");
  request.set_name("domains/web/channels/org.example.zzz");
  EXPECT_EQ(ReasonOf(GetChannel(Queries(), Caller(0), request, &response)),
            v1::ERROR_REASON_CHANNEL_NOT_FOUND);
  request.set_name("domains/nosuch/channels/org.example.a");
  EXPECT_EQ(ReasonOf(GetChannel(Queries(), Caller(0), request, &response)),
            v1::ERROR_REASON_DOMAIN_NOT_FOUND);
  request.set_name("not a name");
  EXPECT_EQ(GetChannel(Queries(), Caller(0), request, &response).code(),
            absl::StatusCode::kInvalidArgument);
}

// --- EngineErrors ---

TEST_F(RequestHandlingTest, AChannelThatWentAwayIsRemovedOrDomainGone) {
  const absl::Status removed =
      errors_.ChannelGone(absl::NotFoundError("deleted"), "domains/web/channels/x");
  EXPECT_EQ(removed.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReasonOf(removed), v1::ERROR_REASON_CHANNEL_REMOVED);
  const absl::Status gone =
      errors_.ChannelGone(absl::UnavailableError("domain"), "domains/web/channels/x");
  EXPECT_EQ(gone.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReasonOf(gone), v1::ERROR_REASON_DOMAIN_GONE);
  EXPECT_TRUE(DetailOf<google::rpc::RetryInfo>(gone).has_value());
  const absl::Status other = errors_.ChannelGone(absl::InternalError("bug"), "x");
  EXPECT_EQ(other.code(), absl::StatusCode::kInternal);
  shutting_down_ = true;
  const absl::Status stopping = errors_.ChannelGone(absl::NotFoundError("deleted"), "x");
  EXPECT_EQ(ReasonOf(stopping), v1::ERROR_REASON_SHUTTING_DOWN);
  auto retry = DetailOf<google::rpc::RetryInfo>(stopping);
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(retry->retry_delay().seconds(), 3);
}

TEST_F(RequestHandlingTest, SessionOpenRefusalsAreClassified) {
  const ChannelName a{"web", "org.example.a"};
  EXPECT_EQ(ReasonOf(errors_.SessionOpen(absl::NotFoundError("x"), {"web", "nope"}, {})),
            v1::ERROR_REASON_CHANNEL_NOT_FOUND);
  EXPECT_EQ(ReasonOf(errors_.SessionOpen(absl::NotFoundError("x"), a, {})),
            v1::ERROR_REASON_CHANNEL_REMOVED);

  view_.snapshot.channels[0].observer_count = 16;
  const absl::Status full = errors_.SessionOpen(absl::ResourceExhaustedError("full"), a, {});
  EXPECT_EQ(ReasonOf(full), v1::ERROR_REASON_TOO_MANY_OBSERVERS);
  auto limit = DetailOf<v1::LimitExceeded>(full);
  ASSERT_TRUE(limit.has_value());
  EXPECT_EQ(limit->limit_value(), 16u);
  EXPECT_EQ(limit->requested_value(), 17u);

  view_.memory.limit = 1000;
  view_.memory.used = 990;
  const absl::Status memory = errors_.SessionOpen(MemoryBudgetError("budget"), a, {});
  EXPECT_EQ(ReasonOf(memory), v1::ERROR_REASON_MEMORY_BUDGET_EXHAUSTED);
  limit = DetailOf<v1::LimitExceeded>(memory);
  ASSERT_TRUE(limit.has_value());
  EXPECT_EQ(limit->limit_value(), 1000u);

  LeaseHolder holder;
  holder.session_id = "s1-7";
  holder.identity = "unix:uid=0";
  view_.snapshot.channels[0].write_lease = holder;
  const absl::Status held = errors_.SessionOpen(absl::FailedPreconditionError("held"), a, {});
  EXPECT_EQ(ReasonOf(held), v1::ERROR_REASON_LEASE_HELD);
  auto lease = DetailOf<v1::LeaseHolder>(held);
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(lease->session_id(), "s1-7");

  view_.snapshot.channels[0].state = ChannelState::kClosing;
  EXPECT_EQ(ReasonOf(errors_.SessionOpen(absl::FailedPreconditionError("closing"), a, {})),
            v1::ERROR_REASON_NOT_CONNECTED);

  view_.snapshot.channels[0].epoch = 2;
  view_.snapshot.channels[0].from_guest.next = Position{2, 500};
  const absl::Status old = errors_.SessionOpen(absl::OutOfRangeError("old"), a, Position{1, 5});
  EXPECT_EQ(ReasonOf(old), v1::ERROR_REASON_OFFSET_NOT_RETAINED);
  auto range = DetailOf<v1::RetainedRange>(old);
  ASSERT_TRUE(range.has_value());
  EXPECT_EQ(range->requested_position().epoch(), 1u);
  EXPECT_EQ(range->next_position().offset(), 500u);
}

TEST_F(RequestHandlingTest, CreateChannelRefusalsAreClassified) {
  const DomainInfo web = view_.snapshot.domains[0];
  const absl::Status exists =
      errors_.CreateChannel(absl::AlreadyExistsError("x"), web, "org.example.a");
  EXPECT_EQ(ReasonOf(exists), v1::ERROR_REASON_CHANNEL_EXISTS);
  EXPECT_TRUE(DetailOf<v1::Channel>(exists).has_value());
  const absl::Status no_devid = errors_.CreateChannel(absl::ResourceExhaustedError("x"), web, "n");
  EXPECT_EQ(ReasonOf(no_devid), v1::ERROR_REASON_NO_FREE_DEVID);
  auto devids = DetailOf<v1::LimitExceeded>(no_devid);
  ASSERT_TRUE(devids.has_value());
  EXPECT_EQ(devids->limit(), "devids_per_domain");
  EXPECT_EQ(devids->limit_value(), kMaxChannelsPerDomain);  // what the engine enforces

  // The detail states the limit the engine was configured with, not a copy.
  EngineErrors three_per_domain(&view_, EngineErrors::Options{16, absl::Seconds(3), 3});
  auto three = DetailOf<v1::LimitExceeded>(
      three_per_domain.CreateChannel(absl::ResourceExhaustedError("x"), web, "n"));
  ASSERT_TRUE(three.has_value());
  EXPECT_EQ(three->limit_value(), 3u);
  EXPECT_EQ(ReasonOf(errors_.CreateChannel(absl::UnavailableError("x"), web, "n")),
            v1::ERROR_REASON_DOMAIN_GONE);
  EXPECT_EQ(ReasonOf(errors_.CreateChannel(absl::DeadlineExceededError("x"), web, "n")),
            v1::ERROR_REASON_GUEST_TIMEOUT);
  const absl::Status xenstore = errors_.CreateChannel(absl::InternalError("EIO"), web, "n");
  EXPECT_EQ(xenstore.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReasonOf(xenstore), v1::ERROR_REASON_TRANSPORT_UNAVAILABLE);
}

TEST_F(RequestHandlingTest, UpdateChannelRefusalsAreClassified) {
  const ChannelName a{"web", "org.example.a"};
  const absl::Status bad = errors_.UpdateChannel(absl::InvalidArgumentError("x"), a, "c");
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReasonOf(bad), v1::ERROR_REASON_INVALID_OPTION);
  EXPECT_EQ(ReasonOf(errors_.UpdateChannel(absl::NotFoundError("x"), {"web", "zz"}, "c")),
            v1::ERROR_REASON_CHANNEL_NOT_FOUND);
  const absl::Status refused = errors_.UpdateChannel(absl::FailedPreconditionError("x"), a, "c");
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReasonOf(refused), v1::ERROR_REASON_UPDATE_NOT_POSSIBLE);
  const absl::Status store = errors_.UpdateChannel(absl::DataLossError("x"), a, "c");
  EXPECT_EQ(store.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReasonOf(store), v1::ERROR_REASON_TRANSPORT_UNAVAILABLE);
}

TEST_F(RequestHandlingTest, DeleteChannelRefusalsAreClassified) {
  const ChannelName a{"web", "org.example.a"};
  EXPECT_EQ(ReasonOf(errors_.DeleteChannel(absl::NotFoundError("x"), {"web", "zz"}, "c")),
            v1::ERROR_REASON_CHANNEL_NOT_FOUND);
  EXPECT_EQ(ReasonOf(errors_.DeleteChannel(absl::FailedPreconditionError("x"), a, "c")),
            v1::ERROR_REASON_TOOLSTACK_MANAGED);
  EXPECT_EQ(ReasonOf(errors_.DeleteChannel(absl::UnavailableError("x"), a, "c")),
            v1::ERROR_REASON_DOMAIN_GONE);
}

TEST_F(RequestHandlingTest, StreamErrorsCarryTheirDetails) {
  const absl::Status epoch = EngineErrors::EpochChanged(3, 4, "moved");
  EXPECT_EQ(epoch.code(), absl::StatusCode::kAborted);
  auto mismatch = DetailOf<v1::EpochMismatch>(epoch);
  ASSERT_TRUE(mismatch.has_value());
  EXPECT_EQ(mismatch->expected_epoch(), 3u);
  EXPECT_EQ(mismatch->current_epoch(), 4u);
  LeaseHolder holder;
  holder.session_id = "s2";
  const absl::Status taken = EngineErrors::LeaseTakenOver(holder);
  EXPECT_EQ(ReasonOf(taken), v1::ERROR_REASON_LEASE_TAKEN_OVER);
  EXPECT_EQ(DetailOf<v1::LeaseHolder>(taken)->session_id(), "s2");
  EXPECT_FALSE(DetailOf<v1::LeaseHolder>(EngineErrors::LeaseTakenOver(std::nullopt)).has_value());
}

}  // namespace
}  // namespace server
}  // namespace xenchan
