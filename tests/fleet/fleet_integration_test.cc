// xenchand in a fleet (docs/FLEET.md), end to end: the real xenchand on
// xensim with --fleet-etcd against a real etcd registers its host, publishes
// the domains it runs and a durable channel's declaration; a graceful stop
// removes the host's records at once, kill -9 only when the lease expires;
// a restart registers again; etcd being down at start does not stop
// xenchand from serving.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/etcd/client.h"
#include "server/fleet/records.h"
#include "tests/common/xenchan_integration_test.h"
#include "tests/etcd/etcd_cluster.h"

namespace xenchan {
namespace {

constexpr char kPrefix[] = "/xenchan/v1/";
constexpr char kGuest[] = "guest1";

class FleetIntegrationTest : public testcommon::XenchanIntegrationTest {
 protected:
  void SetUp() override {
    auto cluster = etcdtest::EtcdCluster::Start(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    etcd::ClientOptions options;
    options.endpoints = cluster_->endpoints();
    auto client = etcd::Client::Create(options);
    ASSERT_TRUE(client.ok());
    etcd_ = *std::move(client);
    ASSERT_NO_FATAL_FAILURE(StartXensim({kGuest}));
  }

  void StartInFleet() {
    StartServer({"--fleet-etcd", cluster_->endpoint(0), "--fleet-host-id", "host-a",
                 "--fleet-lease-ttl", "2s", "--fleet-timeout", "500ms"});
  }

  bool Exists(const std::string& key) {
    auto kv = etcd_->Get(key);
    return kv.ok() && kv->has_value();
  }
  bool Until(const std::function<bool()>& cond, absl::Duration timeout = absl::Seconds(30)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!cond()) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return true;
  }
  std::string GuestUuid() {
    auto d = client_->GetDomain(absl::StrCat("domains/", kGuest));
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? d->uuid() : "";
  }

  std::unique_ptr<etcdtest::EtcdCluster> cluster_;
  std::unique_ptr<etcd::Client> etcd_;
};

TEST_F(FleetIntegrationTest, XenchandRegistersPublishesAndLeaves) {
  ASSERT_NO_FATAL_FAILURE(StartInFleet());
  const std::string uuid = GuestUuid();
  ASSERT_TRUE(Until([&] { return Exists(fleet::DomainKey(kPrefix, uuid)); }));
  auto host = etcd_->Get(fleet::HostKey(kPrefix, "host-a"));
  ASSERT_TRUE(host.ok() && host->has_value());
  auto record = fleet::DecodeHost(kPrefix, (*host)->key, (*host)->value);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->api_address().rfind("127.0.0.1:", 0), 0u) << record->api_address();
  auto domain = etcd_->Get(fleet::DomainKey(kPrefix, uuid));
  auto decoded = fleet::DecodeDomain(kPrefix, (*domain)->key, (*domain)->value);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->name(), kGuest);
  EXPECT_EQ(decoded->host_id(), "host-a");

  v1::CreateChannelRequest req;
  req.set_parent(absl::StrCat("domains/", kGuest));
  req.set_channel_id("org.xenchan.agent.0");
  req.mutable_config()->set_lifetime(v1::CHANNEL_LIFETIME_DURABLE);
  auto created = client_->CreateChannel(req);
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string decl = fleet::DeclarationKey(kPrefix, uuid, "org.xenchan.agent.0");
  ASSERT_TRUE(Until([&] { return Exists(decl); }));
  auto d = etcd_->Get(decl);
  auto declaration = fleet::DecodeDeclaration(kPrefix, (*d)->key, (*d)->value);
  ASSERT_TRUE(declaration.ok()) << declaration.status();
  EXPECT_EQ(declaration->uid(), created->uid());

  StopServer();  // graceful: the lease is revoked
  EXPECT_FALSE(Exists(fleet::HostKey(kPrefix, "host-a")));
  EXPECT_FALSE(Exists(fleet::DomainKey(kPrefix, uuid)));
  EXPECT_TRUE(Exists(decl));  // declarations outlive the host
}

TEST_F(FleetIntegrationTest, AKilledXenchandsRecordsExpireWithItsLease) {
  expect_clean_stop_ = false;
  ASSERT_NO_FATAL_FAILURE(StartInFleet());
  const std::string uuid = GuestUuid();
  ASSERT_TRUE(Until([&] { return Exists(fleet::DomainKey(kPrefix, uuid)); }));
  server_->Kill();
  client_.reset();
  const absl::Time killed = absl::Now();
  EXPECT_TRUE(Exists(fleet::HostKey(kPrefix, "host-a")));
  ASSERT_TRUE(Until([&] { return !Exists(fleet::HostKey(kPrefix, "host-a")); }));
  EXPECT_GE(absl::Now() - killed, absl::Seconds(1));  // the TTL is 2 s
  EXPECT_FALSE(Exists(fleet::DomainKey(kPrefix, uuid)));
  // Restarted: registered again.
  ASSERT_NO_FATAL_FAILURE(StartInFleet());
  EXPECT_TRUE(Until([&] { return Exists(fleet::DomainKey(kPrefix, uuid)); }));
}

TEST_F(FleetIntegrationTest, EtcdDownAtStartDoesNotStopServing) {
  cluster_->Kill(0);
  ASSERT_NO_FATAL_FAILURE(StartInFleet());
  // Serving without etcd.
  EXPECT_FALSE(GuestUuid().empty());
  CreateConnectedChannel(kGuest, "org.xenchan.echo.0");
  ASSERT_TRUE(cluster_->Restart(0).ok());
  // Registered once etcd is back.
  etcd::ClientOptions options;
  options.endpoints = cluster_->endpoints();
  etcd_ = *etcd::Client::Create(options);
  EXPECT_TRUE(Until([&] { return Exists(fleet::HostKey(kPrefix, "host-a")); }, absl::Seconds(60)));
}

}  // namespace
}  // namespace xenchan
