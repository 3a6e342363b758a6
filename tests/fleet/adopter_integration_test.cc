// The Adopter (server/fleet/adopter.h) against a real etcd and a real engine
// on the in-memory Xen platform: a domain that arrives before its
// declaration is in etcd (the source had not published it yet, or etcd was
// away) adopts it when it appears within the retry window, and not after;
// the adopter stops looking when the domain goes or on Stop, and ignores
// declarations this host wrote itself.
#include <memory>
#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "backend/engine/engine.h"
#include "backend/store/declaration_store.h"
#include "gtest/gtest.h"
#include "server/etcd/client.h"
#include "server/fleet/adopter.h"
#include "server/fleet/records.h"
#include "tests/common/files.h"
#include "tests/engine/fake_engine_fixture.h"
#include "tests/etcd/etcd_cluster.h"

namespace xenchan {
namespace {

constexpr char kPrefix[] = "/xenchan/v1/";
constexpr char kUuid[] = "6c4d5d4e-5d7a-4b8e-9a51-2f1e0c9d7b11";
constexpr char kOtherUuid[] = "6c4d5d4e-5d7a-4b8e-9a51-2f1e0c9d7b22";
constexpr char kAgent[] = "org.example.agent.1";
constexpr char kUid[] = "0b1e2c4d-1111-4222-8333-444455556666";

class AdopterIntegrationTest : public testing_fake::FakeEngineTest {
 protected:
  void SetUp() override {
    FakeEngineTest::SetUp();
    dir_ = testcommon::MakeTempDir("adopter");
    auto cluster = etcdtest::EtcdCluster::Start(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    etcd::ClientOptions options;
    options.endpoints = cluster_->endpoints();
    options.rpc_timeout = absl::Seconds(1);
    auto client = etcd::Client::Create(options);
    ASSERT_TRUE(client.ok()) << client.status();
    etcd_ = std::shared_ptr<etcd::Client>(*std::move(client));
  }

  void TearDown() override {
    if (adopter_ != nullptr) adopter_->Stop();  // before the engine goes
    FakeEngineTest::TearDown();
    adopter_.reset();
    testcommon::RemoveTree(dir_);
  }

  // The engine, holding arrivals, answered by an Adopter with `tweak`'s
  // options (this host is "host-b").
  void StartAdopting(const std::function<void(fleet::AdopterOptions&)>& tweak = nullptr) {
    fleet::AdopterOptions o;
    o.prefix = kPrefix;
    o.defaults.buffer_limit_bytes = 64 * 1024;
    o.defaults.write_queue_limit_bytes = 64 * 1024;
    o.host_id = "host-b";
    if (tweak) tweak(o);
    adopter_ = std::make_unique<fleet::Adopter>(etcd_, std::move(o));
    fleet::Adopter* adopter = adopter_.get();
    StartEngine([&](EngineOptions& e) {
      auto store = DeclarationStore::Open(dir_ + "/declarations.db");
      ASSERT_TRUE(store.ok()) << store.status();
      e.declarations = *std::move(store);
      e.domain_control = host_->OpenDomainControl();
      e.on_domain_arrival = [adopter](uint32_t domid, const std::string& uuid) {
        return adopter->Offer(domid, uuid);
      };
    });
    ASSERT_NE(engine_, nullptr);
    adopter_->Start(engine_.get());
  }

  // A domain arriving (introduced paused, as a migration's destination
  // does); returns its domid once the adopter's first answer ended the hold.
  uint32_t Arrive(const std::string& uuid, const std::string& name = "vm1") {
    const uint64_t before = adopter_->answered();
    auto d = host_->CreateDomain(name, uuid, /*paused=*/true);
    EXPECT_TRUE(d.ok()) << d.status();
    if (!d.ok()) return 0;
    EXPECT_TRUE(Until([&] {
      return adopter_->answered() == before + 1 &&
             host_->hypervisor().Info(d->domid).pause_count == 1;  // the toolstack's only
    }));
    return d->domid;
  }

  // The source host publishes the channel's declaration.
  void Publish(const std::string& uuid, const std::string& channel, const std::string& uid,
               const std::string& host) {
    fleet::v1::DeclarationRecord r;
    r.set_version(1);
    r.set_domain_uuid(uuid);
    r.set_channel_id(channel);
    r.set_uid(uid);
    r.mutable_config()->set_lifetime(v1::CHANNEL_LIFETIME_DURABLE);
    r.set_last_devid(3);
    r.set_domain_name("vm1");
    r.set_host_id(host);
    auto put = etcd_->Put(fleet::DeclarationKey(kPrefix, uuid, channel), fleet::Encode(r));
    ASSERT_TRUE(put.ok()) << put.status();
  }

  bool HasChannel(const std::string& uuid, const std::string& channel) {
    return engine_->GetChannel(ChannelRef{uuid, channel}).ok();
  }

  std::string dir_;
  std::unique_ptr<etcdtest::EtcdCluster> cluster_;
  std::shared_ptr<etcd::Client> etcd_;
  std::unique_ptr<fleet::Adopter> adopter_;
};

TEST_F(AdopterIntegrationTest, ADeclarationPublishedAfterTheArrivalIsAdopted) {
  ASSERT_NO_FATAL_FAILURE(StartAdopting());
  const uint32_t domid = Arrive(kUuid);
  // Nothing in etcd: the hold ended, the domain runs, the adopter looks on.
  EXPECT_FALSE(HasChannel(kUuid, kAgent));
  EXPECT_EQ(adopter_->retrying(), 1u);
  // The source publishes a second later (the scenario, not a wait).
  absl::SleepFor(absl::Seconds(1));
  EXPECT_FALSE(HasChannel(kUuid, kAgent));
  ASSERT_NO_FATAL_FAILURE(Publish(kUuid, kAgent, kUid, "host-a"));
  ASSERT_TRUE(Until(
      [&] {
        auto c = engine_->GetChannel(ChannelRef{kUuid, kAgent});
        return c.ok() && c->domid == domid && c->state == ChannelState::kWaitingForGuest;
      },
      absl::Seconds(20)));
  ChannelInfo info = Info(kUuid, kAgent);
  EXPECT_EQ(info.uid, kUid);
  EXPECT_EQ(info.devid, 3u);
  EXPECT_EQ(info.config.lifetime, ChannelLifetime::kDurable);
  EXPECT_EQ(adopter_->late_adoptions(), 1u);
  EXPECT_EQ(adopter_->retrying(), 0u);
  // The running domain was not paused again.
  EXPECT_EQ(host_->hypervisor().Info(domid).pause_count, 1u);
}

TEST_F(AdopterIntegrationTest, ADeclarationPublishedWhenEtcdIsBackIsAdopted) {
  ASSERT_NO_FATAL_FAILURE(StartAdopting());
  cluster_->Kill(0);
  const uint32_t domid = Arrive(kUuid);  // the lookup fails: an empty answer
  EXPECT_EQ(adopter_->retrying(), 1u);
  ASSERT_TRUE(cluster_->Restart(0).ok()) << cluster_->Logs();
  ASSERT_TRUE(
      Until([&] { return etcd_->Get(fleet::HostKey(kPrefix, "probe")).ok(); }, absl::Seconds(30)));
  ASSERT_NO_FATAL_FAILURE(Publish(kUuid, kAgent, kUid, "host-a"));
  ASSERT_TRUE(Until(
      [&] {
        auto c = engine_->GetChannel(ChannelRef{kUuid, kAgent});
        return c.ok() && c->domid == domid && c->uid == kUid;
      },
      absl::Seconds(20)));
  EXPECT_EQ(adopter_->late_adoptions(), 1u);
}

TEST_F(AdopterIntegrationTest, NothingIsAdoptedAfterTheWindow) {
  ASSERT_NO_FATAL_FAILURE(StartAdopting([](fleet::AdopterOptions& o) {
    o.retry_window = absl::Seconds(1);
    o.first_retry = absl::Milliseconds(100);
  }));
  Arrive(kUuid);
  ASSERT_TRUE(Until([&] { return adopter_->retrying() == 0; }, absl::Seconds(10)));
  ASSERT_NO_FATAL_FAILURE(Publish(kUuid, kAgent, kUid, "host-a"));
  // Another arrival answered proves the adopter went on past the first.
  Arrive(kOtherUuid, "vm2");
  EXPECT_FALSE(HasChannel(kUuid, kAgent));
  EXPECT_EQ(adopter_->late_adoptions(), 0u);
}

TEST_F(AdopterIntegrationTest, StopDuringTheWaitReturnsPromptlyAndAdoptsNothing) {
  ASSERT_NO_FATAL_FAILURE(StartAdopting([](fleet::AdopterOptions& o) {
    o.first_retry = absl::Seconds(30);  // the thread waits for the next lookup
  }));
  Arrive(kUuid);
  ASSERT_EQ(adopter_->retrying(), 1u);
  const absl::Time start = absl::Now();
  adopter_->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(adopter_->retrying(), 0u);
  ASSERT_NO_FATAL_FAILURE(Publish(kUuid, kAgent, kUid, "host-a"));
  EXPECT_FALSE(adopter_->Offer(99, kOtherUuid));
  EXPECT_FALSE(HasChannel(kUuid, kAgent));
  EXPECT_EQ(adopter_->late_adoptions(), 0u);
}

TEST_F(AdopterIntegrationTest, ADomainThatGoesIsNoLongerLookedFor) {
  ASSERT_NO_FATAL_FAILURE(
      StartAdopting([](fleet::AdopterOptions& o) { o.first_retry = absl::Milliseconds(50); }));
  const uint32_t domid = Arrive(kUuid);
  ASSERT_EQ(adopter_->retrying(), 1u);
  ASSERT_TRUE(host_->DestroyDomain(domid).ok());
  ASSERT_TRUE(Until([&] { return adopter_->retrying() == 0; }));
  EXPECT_EQ(adopter_->late_adoptions(), 0u);
}

// A channel created here for the arrived domain is published by this host:
// not a late declaration (it may be deleted here while its key still is in
// etcd). Another host's, published later, is.
TEST_F(AdopterIntegrationTest, DeclarationsThisHostWroteAreNotLateOnes) {
  ASSERT_NO_FATAL_FAILURE(StartAdopting([](fleet::AdopterOptions& o) {
    o.first_retry = absl::Milliseconds(50);
    o.max_retry = absl::Milliseconds(100);
  }));
  const uint32_t domid = Arrive(kUuid);
  ASSERT_NO_FATAL_FAILURE(Publish(kUuid, kAgent, kUid, "host-b"));
  ASSERT_NO_FATAL_FAILURE(
      Publish(kUuid, "org.example.agent.2", "0b1e2c4d-1111-4222-8333-444455557777", "host-a"));
  ASSERT_TRUE(Until([&] {
    auto c = engine_->GetChannel(ChannelRef{kUuid, "org.example.agent.2"});
    return c.ok() && c->domid == domid;
  }));
  EXPECT_FALSE(HasChannel(kUuid, kAgent));
  EXPECT_EQ(adopter_->retrying(), 0u);
}

}  // namespace
}  // namespace xenchan
