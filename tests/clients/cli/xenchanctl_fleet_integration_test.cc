// xenchanctl --fleet end to end: two real xenchands on their own xensims
// (hosts "alpha" and "beta", each with a guest answering on the same
// channel id with its own prefix) that are not part of the fleet
// themselves, their host and domain records written into a real etcd by the
// test (so that this test does not depend on the publisher), and a third
// xenchand started with --fleet-etcd as the entry point. xenchanctl
// --fleet ENTRY lists hosts and domains and routes each command to the host
// that runs the domain, by name or UUID; a xenchand without a fleet answers
// FAILED_PRECONDITION.
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/etcd/client.h"
#include "server/fleet/records.h"
#include "tests/common/files.h"
#include "tests/common/io.h"
#include "tests/common/xenchan_integration_test.h"
#include "tests/etcd/etcd_cluster.h"

namespace xenchan {
namespace {

using ::testing::HasSubstr;

constexpr char kChannel[] = "org.test.fleet.0";

// One host: a xensim with one guest, its xenchand (no fleet), a client.
struct Host {
  std::unique_ptr<simtest::XensimProcess> sim;
  std::unique_ptr<servertest::XenchandProcess> server;
  std::unique_ptr<client::Client> client;
  std::string guest;
  std::string uuid;
  uint32_t domid = 0;
};

class XenchanctlFleetTest : public testcommon::XenchanIntegrationTest {
 protected:
  void SetUp() override {
    auto cluster = etcdtest::EtcdCluster::Start(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    etcd_cluster_ = *std::move(cluster);
    etcd::ClientOptions options;
    options.endpoints = etcd_cluster_->endpoints();
    auto etcd = etcd::Client::Create(options);
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = *std::move(etcd);

    ASSERT_NO_FATAL_FAILURE(StartHost("alpha", &alpha_));
    ASSERT_NO_FATAL_FAILURE(StartHost("beta", &beta_));
    // The entry point: a xenchand of the fleet with no guest of its own.
    ASSERT_NO_FATAL_FAILURE(StartXensim());
    // Advertised on its Unix socket, where the built-in policy knows us.
    ASSERT_NO_FATAL_FAILURE(
        StartServer({"--fleet-etcd=" + etcd_cluster_->endpoint(0), "--fleet-host-id=entry",
                     "--fleet-advertise=unix://" + sim_->scratch_dir() + "/x.sock"}));
    int64_t last = 0;
    for (Host* h : {&alpha_, &beta_}) {
      fleet::v1::HostRecord host;
      host.set_version(1);
      host.set_host_id(h->guest + "-host");
      host.set_api_address(h->server->unix_target());
      host.set_xenchan_version("0.1.0");
      ASSERT_TRUE(
          etcd_->Put(fleet::HostKey(fleet::kDefaultPrefix, host.host_id()), fleet::Encode(host))
              .ok());
      fleet::v1::DomainRecord domain;
      domain.set_version(1);
      domain.set_uuid(h->uuid);
      domain.set_host_id(host.host_id());
      domain.set_domid(h->domid);
      domain.set_name(h->guest);
      domain.set_state(v1::DOMAIN_STATE_RUNNING);
      auto put =
          etcd_->Put(fleet::DomainKey(fleet::kDefaultPrefix, h->uuid), fleet::Encode(domain));
      ASSERT_TRUE(put.ok()) << put.status();
      last = *put;
    }
    // The entry has read them once it locates the last one written.
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    simtest::ProcessResult r;
    do {
      r = Fleet({"get", beta_.uuid});
    } while (r.exit_code != 0 && absl::Now() < deadline);
    ASSERT_EQ(r.exit_code, 0) << r.err << " (revision " << last << ")\n" << server_->log();
  }

  void TearDown() override {
    for (int fd : ttys_) close(fd);
    for (Host* h : {&alpha_, &beta_}) {
      h->client.reset();
      if (h->server != nullptr) {
        EXPECT_EQ(h->server->Stop(), 0) << h->server->log();
      }
    }
    XenchanIntegrationTest::TearDown();
  }

  void StartHost(const std::string& guest, Host* h) {
    auto sim = simtest::XensimProcess::Start();
    ASSERT_TRUE(sim.ok()) << sim.status();
    h->sim = *std::move(sim);
    auto domid = h->sim->CreateDomain(guest);
    ASSERT_TRUE(domid.ok()) << domid.status();
    h->domid = *domid;
    auto server = servertest::XenchandProcess::Start(h->sim->state_dir(),
                                                     h->sim->scratch_dir() + "/x.sock", {}, "");
    ASSERT_TRUE(server.ok()) << server.status();
    h->server = *std::move(server);
    h->client = Connect(h->server->unix_target());
    ASSERT_NE(h->client, nullptr);
    h->guest = guest;
    auto d = h->client->GetDomain("domains/" + guest);
    ASSERT_TRUE(d.ok()) << d.status();
    h->uuid = d->uuid();
    v1::CreateChannelRequest create;
    create.set_parent("domains/" + guest);
    create.set_channel_id(kChannel);
    create.set_wait_until_connected(true);
    auto c = h->client->CreateChannel(create, absl::Seconds(20));
    ASSERT_TRUE(c.ok()) << c.status();
    const int fd =
        testcommon::OpenGuestTty(h->sim->guest_root(guest) + "/dev/xen-channel/" + kChannel);
    ASSERT_GE(fd, 0);
    ttys_.push_back(fd);
  }

  simtest::ProcessResult Ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {testcommon::RunfilePath("clients/cli/xenchanctl")};
    argv.insert(argv.end(), args.begin(), args.end());
    return simtest::RunProcess(argv, {}, absl::Seconds(60));
  }
  simtest::ProcessResult Fleet(const std::vector<std::string>& args) {
    std::vector<std::string> all = {"--fleet", server_->unix_target(), "--timeout", "20s"};
    all.insert(all.end(), args.begin(), args.end());
    return Ctl(all);
  }

  std::unique_ptr<etcdtest::EtcdCluster> etcd_cluster_;
  std::shared_ptr<etcd::Client> etcd_;
  Host alpha_;
  Host beta_;
  std::vector<int> ttys_;  // alpha's, then beta's
};

TEST_F(XenchanctlFleetTest, ListsHostsAndDomainsOfTheFleet) {
  simtest::ProcessResult r = Fleet({"hosts"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("alpha-host"));
  EXPECT_THAT(r.out, HasSubstr(alpha_.server->unix_target()));
  EXPECT_THAT(r.out, HasSubstr("beta-host"));
  EXPECT_THAT(r.out, HasSubstr(beta_.server->unix_target()));

  r = Fleet({"domains"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(alpha_.uuid + " alpha"));
  EXPECT_THAT(r.out, HasSubstr("alpha-host"));
  EXPECT_THAT(r.out, HasSubstr(beta_.uuid + " beta"));

  r = Fleet({"--output", "json", "domains"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"host\":\"hosts/beta-host\""));

  // list without a DOMAIN: every host's channels.
  r = Fleet({"list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("# host alpha-host"));
  EXPECT_THAT(r.out, HasSubstr("# host beta-host"));
  EXPECT_THAT(r.out, HasSubstr(alpha_.uuid));
  EXPECT_THAT(r.out, HasSubstr(beta_.uuid));
}

TEST_F(XenchanctlFleetTest, RoutesEachCommandToTheHostThatRunsTheDomain) {
  // By name: beta's guest answers, on beta.
  std::thread beta_agent([fd = ttys_[1]] { testcommon::AnswerOneLine(fd, "beta:"); });
  simtest::ProcessResult r = Fleet({"call", std::string("beta/") + kChannel, "hello"});
  beta_agent.join();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "beta:hello\n");

  // By UUID, as a full resource name: alpha's.
  std::thread alpha_agent([fd = ttys_[0]] { testcommon::AnswerOneLine(fd, "alpha:"); });
  r = Fleet({"call", absl::StrCat("domains/", alpha_.uuid, "/channels/", kChannel), "there"});
  alpha_agent.join();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "alpha:there\n");

  // A lifecycle command lands on the owning host only.
  r = Fleet({"create", "beta", "org.test.fleet.1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(beta_.client->GetChannel("domains/beta/channels/org.test.fleet.1").ok());
  EXPECT_FALSE(
      alpha_.client->GetChannel(absl::StrCat("domains/", beta_.uuid, "/channels/org.test.fleet.1"))
          .ok());
  r = Fleet({"get", std::string("beta/") + "org.test.fleet.1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(beta_.uuid));

  // A domain no host runs: NOT_FOUND (exit 4) with its reason.
  r = Fleet({"call", std::string("nobody/") + kChannel, "x"});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("DOMAIN_NOT_FOUND"));
  // A command that needs a domain and names none.
  r = Fleet({"watch"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

TEST_F(XenchanctlFleetTest, AXenchandWithoutAFleetSaysSo) {
  simtest::ProcessResult r =
      Ctl({"--fleet", alpha_.server->unix_target(), "call", std::string("beta/") + kChannel, "x"});
  EXPECT_EQ(r.exit_code, 6) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("FLEET_NOT_CONFIGURED"));
  r = Ctl({"--server", alpha_.server->unix_target(), "hosts"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--fleet"));
}

// `xenchanctl --fleet A read --follow` across a real migration: two xensim
// hosts whose xenchands are in the fleet on one etcd. The reader starts on
// A, `xensim domain migrate` moves the guest to B, and the same xenchanctl
// prints A's bytes, the move's epoch line and B's bytes, nothing twice.
class XenchanctlFleetFollowTest : public testcommon::XenchanIntegrationTest {
 protected:
  static constexpr char kGuest[] = "guest1";
  static constexpr char kDurable[] = "org.test.follow.0";

  void SetUp() override {
    auto cluster = etcdtest::EtcdCluster::Start(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    etcd_cluster_ = *std::move(cluster);
    ASSERT_NO_FATAL_FAILURE(StartXensim({kGuest}));
    ASSERT_NO_FATAL_FAILURE(StartServer(FleetArgs("host-a", sim_->scratch_dir() + "/x.sock")));
    auto sim_b = simtest::XensimProcess::Start();
    ASSERT_TRUE(sim_b.ok()) << sim_b.status();
    sim_b_ = *std::move(sim_b);
    auto server_b =
        servertest::XenchandProcess::Start(sim_b_->state_dir(), sim_b_->scratch_dir() + "/b.sock",
                                           FleetArgs("host-b", sim_b_->scratch_dir() + "/b.sock"));
    ASSERT_TRUE(server_b.ok()) << server_b.status();
    server_b_ = *std::move(server_b);
    client_b_ = Connect(server_b_->unix_target());
    ASSERT_NE(client_b_, nullptr);
  }

  void TearDown() override {
    client_b_.reset();
    if (server_b_ != nullptr) {
      EXPECT_EQ(server_b_->Stop(), 0) << server_b_->log();
    }
    XenchanIntegrationTest::TearDown();
  }

  // Advertised on its Unix socket, where the built-in policy knows us.
  std::vector<std::string> FleetArgs(const std::string& host, const std::string& socket) {
    return {"--fleet-etcd=" + etcd_cluster_->endpoint(0), "--fleet-host-id=" + host,
            "--fleet-lease-ttl=5s", "--fleet-advertise=unix://" + socket};
  }

  bool Until(const std::function<bool()>& cond) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (!cond()) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return true;
  }

  void GuestWrites(simtest::XensimProcess* sim, const std::string& text) {
    const int fd =
        testcommon::OpenGuestTty(sim->guest_root(kGuest) + "/dev/xen-channel/" + kDurable);
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(testcommon::WriteAll(fd, text));
    close(fd);
  }

  std::unique_ptr<etcdtest::EtcdCluster> etcd_cluster_;
  std::unique_ptr<simtest::XensimProcess> sim_b_;
  std::unique_ptr<servertest::XenchandProcess> server_b_;
  std::unique_ptr<client::Client> client_b_;
};

TEST_F(XenchanctlFleetFollowTest, ReadFollowContinuesOnTheHostTheDomainMovedTo) {
  v1::ChannelConfig config;
  config.set_lifetime(v1::CHANNEL_LIFETIME_DURABLE);
  const v1::Channel created = CreateConnectedChannel(kGuest, kDurable, config);
  const std::string name = absl::StrCat("domains/", created.domain_uuid(), "/channels/", kDurable);
  ASSERT_NO_FATAL_FAILURE(GuestWrites(sim_.get(), "before\n"));
  // A published the declaration, which B adopts when the domain arrives.
  etcd::ClientOptions etcd_options;
  etcd_options.endpoints = etcd_cluster_->endpoints();
  auto etcd = etcd::Client::Create(etcd_options);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  ASSERT_TRUE(Until([&] {
    auto kv =
        (*etcd)->Get(fleet::DeclarationKey(fleet::kDefaultPrefix, created.domain_uuid(), kDurable));
    return kv.ok() && kv->has_value();
  }));
  // The fleet knows the domain on A (the entry is A itself).
  ASSERT_TRUE(Until([&] {
    std::vector<std::string> argv = {testcommon::RunfilePath("clients/cli/xenchanctl"), "--fleet",
                                     server_->unix_target(), "get", name};
    return simtest::RunProcess(argv, {}, absl::Seconds(20)).exit_code == 0;
  }));

  // 13 bytes: A's 7, then B's 6; xenchanctl ends after them.
  simtest::ProcessResult follow;
  std::thread reader([&] {
    follow = simtest::RunProcess(
        {testcommon::RunfilePath("clients/cli/xenchanctl"), "--fleet", server_->unix_target(),
         "read", "--follow", "--max-bytes", "13", std::string(kGuest) + "/" + kDurable},
        {}, absl::Seconds(120));
  });
  struct Joiner {
    std::thread* thread;
    ~Joiner() {
      if (thread->joinable()) thread->join();  // xenchanctl ends by --max-bytes or its timeout
    }
  } joiner{&reader};
  // It reads on A before the domain moves.
  ASSERT_TRUE(Until([&] {
    auto c = client_->GetChannel(name);
    return c.ok() && c->observer_count() > 0;
  }));
  auto r = sim_->Cli({"domain", "migrate", kGuest, "--to", sim_b_->state_dir()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(Until([&] {
    auto c = client_b_->GetChannel(name);
    return c.ok() && c->state() == v1::CHANNEL_STATE_CONNECTED;
  })) << server_b_->log();
  ASSERT_NO_FATAL_FAILURE(GuestWrites(sim_b_.get(), "after\n"));
  reader.join();
  ASSERT_EQ(follow.exit_code, 0) << follow.err << "\n" << server_->log();
  EXPECT_EQ(follow.out, "before\nafter\n");
  EXPECT_THAT(follow.err, HasSubstr("[following on host host-b"));
  EXPECT_THAT(follow.err, HasSubstr("(domain_migrated)]"));
  // One epoch line: the move.
  EXPECT_EQ(follow.err.find("[epoch"), follow.err.rfind("[epoch")) << follow.err;
}

}  // namespace
}  // namespace xenchan
