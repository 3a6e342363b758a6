// The fleet publisher (server/fleet/publisher.h) against real etcd: the host
// registers under a lease and publishes its domains and declarations; a
// steady state writes nothing; a graceful stop removes the host's records at
// once and a crash lets them expire with the lease, not before; the newest
// introduction of a domain wins and the older host never takes it back;
// etcd down and back loses nothing.
#include "server/fleet/publisher.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backend/util/mutex.h"
#include "gtest/gtest.h"
#include "server/fleet/records.h"
#include "tests/etcd/etcd_cluster.h"

namespace xenchan {
namespace fleet {
namespace {

constexpr char kPrefix[] = "/xenchan/v1/";
constexpr char kUuid[] = "6c4d5d4e-5d7a-4b8e-9a51-2f1e0c9d7b11";

// The local state a test sets, as the server's view over the engine would
// report it.
class ScriptedView : public LocalView {
 public:
  std::vector<v1::DomainRecord> Domains() override {
    MutexLock lock(&mu_);
    ++domain_reads_;
    return domains_;
  }
  // Changes with every setter below, as the engine's revision does.
  uint64_t Generation() override {
    MutexLock lock(&mu_);
    ++generation_reads_;
    return generation_;
  }
  uint64_t domain_reads() {
    MutexLock lock(&mu_);
    return domain_reads_;
  }
  uint64_t generation_reads() {
    MutexLock lock(&mu_);
    return generation_reads_;
  }
  std::vector<v1::DeclarationRecord> Declarations() override {
    MutexLock lock(&mu_);
    return declarations_;
  }
  void SetDomain(uint32_t domid, const std::string& name) {
    MutexLock lock(&mu_);
    ++generation_;
    domains_.clear();
    v1::DomainRecord d;
    d.set_uuid(kUuid);
    d.set_domid(domid);
    d.set_name(name);
    d.set_state(xenchan::v1::DOMAIN_STATE_RUNNING);
    domains_.push_back(d);
  }
  void ClearDomains() {
    MutexLock lock(&mu_);
    ++generation_;
    domains_.clear();
  }
  void AddDeclaration(const std::string& channel_id) {
    MutexLock lock(&mu_);
    ++generation_;
    v1::DeclarationRecord r;
    r.set_domain_uuid(kUuid);
    r.set_channel_id(channel_id);
    r.set_uid("0b1e2c4d-1111-4222-8333-444455556666");
    r.mutable_config()->set_lifetime(xenchan::v1::CHANNEL_LIFETIME_DURABLE);
    declarations_.push_back(r);
  }
  void ClearDeclarations() {
    MutexLock lock(&mu_);
    ++generation_;
    declarations_.clear();
  }

 private:
  Mutex mu_;
  std::vector<v1::DomainRecord> domains_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::DeclarationRecord> declarations_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t domain_reads_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t generation_reads_ ABSL_GUARDED_BY(mu_) = 0;
};

class PublisherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = etcdtest::EtcdCluster::Start(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    etcd::ClientOptions options;
    options.endpoints = cluster_->endpoints();
    options.rpc_timeout = absl::Seconds(1);
    auto client = etcd::Client::Create(options);
    ASSERT_TRUE(client.ok());
    etcd_ = std::shared_ptr<etcd::Client>(std::move(*client));
  }

  // A publisher for host `host_id`; `view` stays owned by the publisher.
  std::unique_ptr<Publisher> NewPublisher(const std::string& host_id, ScriptedView** view,
                                          absl::Duration ttl = absl::Seconds(10)) {
    auto v = std::make_unique<ScriptedView>();
    *view = v.get();
    PublisherOptions options;
    options.prefix = kPrefix;
    options.host.set_host_id(host_id);
    options.host.set_api_address(absl::StrCat(host_id, ":8443"));
    options.host.set_xenchan_version("test");
    options.lease_ttl = ttl;
    options.scan_interval = absl::Milliseconds(20);
    options.max_backoff = absl::Milliseconds(200);
    return std::make_unique<Publisher>(etcd_, options, std::move(v));
  }

  absl::StatusOr<v1::DomainRecord> DomainInEtcd() {
    auto kv = etcd_->Get(DomainKey(kPrefix, kUuid));
    if (!kv.ok()) return kv.status();
    if (!kv->has_value()) return absl::NotFoundError("no domain record");
    return DecodeDomain(kPrefix, (*kv)->key, (*kv)->value);
  }
  bool Exists(const std::string& key) {
    auto kv = etcd_->Get(key);
    return kv.ok() && kv->has_value();
  }
  bool Until(const std::function<bool()>& cond, absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!cond()) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return true;
  }

  std::unique_ptr<etcdtest::EtcdCluster> cluster_;
  std::shared_ptr<etcd::Client> etcd_;
};

TEST_F(PublisherTest, PublishesTheHostItsDomainsAndDeclarationsAndIsQuietWhenNothingChanges) {
  ScriptedView* view;
  auto publisher = NewPublisher("host-a", &view);
  view->SetDomain(5, "vm1");
  view->AddDeclaration("org.xenchan.agent.0");
  publisher->Start();
  ASSERT_TRUE(publisher->WaitForSync(absl::Seconds(20)));
  auto host = etcd_->Get(HostKey(kPrefix, "host-a"));
  ASSERT_TRUE(host.ok() && host->has_value());
  auto decoded = DecodeHost(kPrefix, (*host)->key, (*host)->value);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->api_address(), "host-a:8443");
  EXPECT_NE((*host)->lease, 0);
  auto domain = DomainInEtcd();
  ASSERT_TRUE(domain.ok()) << domain.status();
  EXPECT_EQ(domain->host_id(), "host-a");
  EXPECT_EQ(domain->domid(), 5u);
  EXPECT_TRUE(Exists(DeclarationKey(kPrefix, kUuid, "org.xenchan.agent.0")));

  // Steady state: passes go on, writes do not.
  const uint64_t writes = publisher->stats().writes;
  ASSERT_TRUE(publisher->WaitForSync(absl::Seconds(20)));
  ASSERT_TRUE(publisher->WaitForSync(absl::Seconds(20)));
  EXPECT_EQ(publisher->stats().writes, writes);

  // A change is one write.
  view->SetDomain(5, "vm1-renamed");
  ASSERT_TRUE(publisher->WaitForSync(absl::Seconds(20)));
  EXPECT_EQ(DomainInEtcd()->name(), "vm1-renamed");
  EXPECT_EQ(publisher->stats().writes, writes + 1);
  // A deleted declaration goes from the fleet too.
  view->ClearDeclarations();
  ASSERT_TRUE(publisher->WaitForSync(absl::Seconds(20)));
  EXPECT_FALSE(Exists(DeclarationKey(kPrefix, kUuid, "org.xenchan.agent.0")));
}

TEST_F(PublisherTest, AScanComparesTheLocalStateOnlyWhenItsGenerationChanged) {
  ScriptedView* view;
  auto publisher = NewPublisher("host-a", &view);
  view->SetDomain(5, "vm1");
  publisher->Start();
  ASSERT_TRUE(publisher->WaitForSync(absl::Seconds(20)));
  const uint64_t reads = view->domain_reads();
  const uint64_t full = publisher->stats().full_passes;
  EXPECT_GE(full, 1u);
  // Many scans later (each reads the generation), nothing was compared.
  const uint64_t scans = view->generation_reads();
  ASSERT_TRUE(Until([&] { return view->generation_reads() >= scans + 10; }));
  EXPECT_EQ(view->domain_reads(), reads);
  EXPECT_EQ(publisher->stats().full_passes, full);
  // A change is compared and published at the next scan.
  view->SetDomain(5, "vm1-renamed");
  ASSERT_TRUE(Until([&] {
    auto d = DomainInEtcd();
    return d.ok() && d->name() == "vm1-renamed";
  }));
  EXPECT_GT(view->domain_reads(), reads);
  EXPECT_GT(publisher->stats().full_passes, full);
}

TEST_F(PublisherTest, AGracefulStopRemovesTheHostAtOnceAndACrashOnlyWhenTheLeaseExpires) {
  ScriptedView* view;
  auto graceful = NewPublisher("host-a", &view);
  view->SetDomain(5, "vm1");
  view->AddDeclaration("org.xenchan.agent.0");
  graceful->Start();
  ASSERT_TRUE(graceful->WaitForSync(absl::Seconds(20)));
  graceful->Stop(/*graceful=*/true);
  EXPECT_FALSE(Exists(HostKey(kPrefix, "host-a")));
  EXPECT_FALSE(Exists(DomainKey(kPrefix, kUuid)));
  // Declarations outlive any host.
  EXPECT_TRUE(Exists(DeclarationKey(kPrefix, kUuid, "org.xenchan.agent.0")));

  auto crashing = NewPublisher("host-b", &view, absl::Seconds(3));
  view->SetDomain(6, "vm1");
  crashing->Start();
  ASSERT_TRUE(crashing->WaitForSync(absl::Seconds(20)));
  const absl::Time crash = absl::Now();
  crashing->Stop(/*graceful=*/false);  // no revoke: as if the process died
  EXPECT_TRUE(Exists(HostKey(kPrefix, "host-b")));
  ASSERT_TRUE(Until([&] { return !Exists(HostKey(kPrefix, "host-b")); }));
  EXPECT_FALSE(Exists(DomainKey(kPrefix, kUuid)));
  // Within the TTL (3 s), give or take etcd's expiry check, never much before.
  EXPECT_GE(absl::Now() - crash, absl::Seconds(2));
}

TEST_F(PublisherTest, TheNewestIntroductionWinsAndTheOldHostNeverTakesTheDomainBack) {
  ScriptedView* view_a;
  ScriptedView* view_b;
  auto a = NewPublisher("host-a", &view_a);
  auto b = NewPublisher("host-b", &view_b);
  view_a->SetDomain(5, "vm1");
  a->Start();
  b->Start();
  ASSERT_TRUE(a->WaitForSync(absl::Seconds(20)));
  ASSERT_TRUE(b->WaitForSync(absl::Seconds(20)));
  EXPECT_EQ(DomainInEtcd()->host_id(), "host-a");
  // The domain arrives on B (a migration: A still runs the outgoing one).
  view_b->SetDomain(9, "vm1--incoming");
  ASSERT_TRUE(b->WaitForSync(absl::Seconds(20)));
  EXPECT_EQ(DomainInEtcd()->host_id(), "host-b");
  // A's later change and its removal are refused by the guard.
  view_a->SetDomain(5, "vm1-changed-on-a");
  ASSERT_TRUE(a->WaitForSync(absl::Seconds(20)));
  EXPECT_EQ(DomainInEtcd()->host_id(), "host-b");
  EXPECT_EQ(a->stats().domains_lost, 1u);
  view_a->ClearDomains();
  ASSERT_TRUE(a->WaitForSync(absl::Seconds(20)));
  auto now = DomainInEtcd();
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->host_id(), "host-b");
  EXPECT_EQ(now->domid(), 9u);
  // A restarted B re-publishes its own record, guarded.
  b->Stop(false);
  auto b2 = NewPublisher("host-b", &view_b);
  view_b->SetDomain(9, "vm1");
  b2->Start();
  ASSERT_TRUE(b2->WaitForSync(absl::Seconds(20)));
  EXPECT_EQ(DomainInEtcd()->name(), "vm1");
}

TEST_F(PublisherTest, EtcdDownAndBackLosesNothing) {
  ScriptedView* view;
  auto publisher = NewPublisher("host-a", &view, absl::Seconds(2));
  view->SetDomain(5, "vm1");
  publisher->Start();
  ASSERT_TRUE(publisher->WaitForSync(absl::Seconds(20)));
  EXPECT_TRUE(publisher->stats().connected);
  cluster_->Kill(0);
  ASSERT_TRUE(Until([&] { return !publisher->stats().connected; }));
  // Local changes while etcd is away, longer than the lease.
  view->AddDeclaration("org.xenchan.agent.0");
  view->SetDomain(5, "vm1-renamed");
  absl::SleepFor(absl::Seconds(3));  // the lease's TTL passes with etcd down (not a sync)
  ASSERT_TRUE(cluster_->Restart(0).ok());
  ASSERT_TRUE(Until([&] { return publisher->stats().connected; }, absl::Seconds(60)));
  ASSERT_TRUE(publisher->WaitForSync(absl::Seconds(30)));
  EXPECT_TRUE(Exists(HostKey(kPrefix, "host-a")));
  EXPECT_TRUE(Exists(DeclarationKey(kPrefix, kUuid, "org.xenchan.agent.0")));
  auto domain = DomainInEtcd();
  ASSERT_TRUE(domain.ok()) << domain.status();
  EXPECT_EQ(domain->name(), "vm1-renamed");
  EXPECT_GE(publisher->stats().registrations, 1u);
}

}  // namespace
}  // namespace fleet
}  // namespace xenchan
