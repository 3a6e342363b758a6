// A durable channel follows its domain to another host of the fleet (issue
// 13 item 5), end to end: two xensim hosts, each with its real xenchand in
// the fleet on one real etcd. `xensim domain migrate` moves the guest from A
// to B: B's xenchand finds the channel's declaration in etcd, holds the
// arriving domain until the channel is re-created (same uid), and the guest
// writes through it on B; the domain's record names B; A keeps the channel
// DOMAIN_DOWN with what the guest wrote there still readable.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/etcd/client.h"
#include "server/fleet/records.h"
#include "tests/common/io.h"
#include "tests/common/xenchan_integration_test.h"
#include "tests/etcd/etcd_cluster.h"
#include "tests/server/xenchand_process.h"
#include "tests/sim/xensim_process.h"

namespace xenchan {
namespace {

constexpr char kPrefix[] = "/xenchan/v1/";
constexpr char kGuest[] = "guest1";
constexpr char kChannel[] = "org.xenchan.agent.0";

class MigrationIntegrationTest : public testcommon::XenchanIntegrationTest {
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
    ASSERT_NO_FATAL_FAILURE(StartServer(FleetArgs("host-a")));
    auto sim_b = simtest::XensimProcess::Start();
    ASSERT_TRUE(sim_b.ok()) << sim_b.status();
    sim_b_ = *std::move(sim_b);
    auto server_b = servertest::XenchandProcess::Start(
        sim_b_->state_dir(), sim_b_->scratch_dir() + "/b.sock", FleetArgs("host-b"));
    ASSERT_TRUE(server_b.ok()) << server_b.status();
    server_b_ = *std::move(server_b);
    client_b_ = Connect(server_b_->unix_target());
    ASSERT_NE(client_b_, nullptr);
  }

  void TearDown() override {
    client_b_.reset();
    if (server_b_ != nullptr) {
      const int code = server_b_->Stop();
      EXPECT_EQ(code, 0);
      if (HasFailure()) std::fprintf(stderr, "---- xenchand B\n%s\n", server_b_->log().c_str());
    }
    XenchanIntegrationTest::TearDown();
  }

  std::vector<std::string> FleetArgs(const std::string& host) {
    return {"--fleet-etcd", cluster_->endpoint(0), "--fleet-host-id",
            host,           "--fleet-lease-ttl",   "5s"};
  }

  bool Until(const std::function<bool()>& cond, absl::Duration timeout = absl::Seconds(60)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!cond()) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return true;
  }

  // Everything the channel has retained from its earliest byte, read once.
  std::string ReadAll(client::Client* via) {
    v1::ReadRequest req;
    req.set_channel(ChannelName(kGuest, kChannel));
    req.mutable_start()->set_anchor(v1::START_ANCHOR_EARLIEST);
    std::string out;
    absl::Status s = via->Read(req, [&](const v1::ReadResponse& r) {
      if (r.has_data()) out += r.data().data();
      return true;
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  void GuestWrites(simtest::XensimProcess* sim, const std::string& text) {
    const int fd =
        testcommon::OpenGuestTty(sim->guest_root(kGuest) + "/dev/xen-channel/" + kChannel);
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(testcommon::WriteAll(fd, text));
    close(fd);
  }

  std::unique_ptr<etcdtest::EtcdCluster> cluster_;
  std::unique_ptr<etcd::Client> etcd_;
  std::unique_ptr<simtest::XensimProcess> sim_b_;
  std::unique_ptr<servertest::XenchandProcess> server_b_;
  std::unique_ptr<client::Client> client_b_;
};

TEST_F(MigrationIntegrationTest, TheDurableChannelFollowsItsDomainToAnotherHost) {
  v1::ChannelConfig config;
  config.set_lifetime(v1::CHANNEL_LIFETIME_DURABLE);
  const v1::Channel created = CreateConnectedChannel(kGuest, kChannel, config);
  ASSERT_FALSE(created.uid().empty());
  ASSERT_NO_FATAL_FAILURE(GuestWrites(sim_.get(), "before\n"));
  ASSERT_TRUE(Until([&] { return ReadAll(client_.get()) == "before\n"; }));
  const std::string uuid = created.domain_uuid();
  const std::string decl = fleet::DeclarationKey(kPrefix, uuid, kChannel);
  ASSERT_TRUE(Until([&] {
    auto kv = etcd_->Get(decl);
    return kv.ok() && kv->has_value();
  }));

  auto r = sim_->Cli({"domain", "migrate", kGuest, "--to", sim_b_->state_dir()});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // On B: the same channel (uid), connected in the arrived domain.
  absl::StatusOr<v1::Channel> on_b;
  ASSERT_TRUE(Until([&] {
    on_b = client_b_->GetChannel(ChannelName(kGuest, kChannel));
    return on_b.ok() && on_b->state() == v1::CHANNEL_STATE_CONNECTED;
  })) << (on_b.ok() ? v1::ChannelState_Name(on_b->state()) : on_b.status().ToString())
      << "\n"
      << server_b_->log();
  EXPECT_EQ(on_b->uid(), created.uid());
  EXPECT_EQ(on_b->config().lifetime(), v1::CHANNEL_LIFETIME_DURABLE);
  ASSERT_NO_FATAL_FAILURE(GuestWrites(sim_b_.get(), "after\n"));
  EXPECT_TRUE(Until([&] { return ReadAll(client_b_.get()) == "after\n"; }));

  // The fleet: the domain is B's now.
  ASSERT_TRUE(Until([&] {
    auto kv = etcd_->Get(fleet::DomainKey(kPrefix, uuid));
    if (!kv.ok() || !kv->has_value()) return false;
    auto d = fleet::DecodeDomain(kPrefix, (*kv)->key, (*kv)->value);
    return d.ok() && d->host_id() == "host-b";
  }));
  // On A: DOMAIN_DOWN, what the guest wrote there still readable.
  auto on_a = client_->GetChannel(absl::StrCat("domains/", uuid, "/channels/", kChannel));
  ASSERT_TRUE(on_a.ok()) << on_a.status();
  EXPECT_EQ(on_a->state(), v1::CHANNEL_STATE_DOMAIN_DOWN);
  EXPECT_EQ(ReadAll(client_.get()), "before\n");
  // B held the arriving domain for the adoption and said so.
  EXPECT_TRUE(server_b_->WaitForLog("fleet: adopting durable channels")) << server_b_->log();
}

}  // namespace
}  // namespace xenchan
