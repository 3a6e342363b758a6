// The etcd client (server/etcd/client.h) against real etcd: reads, writes,
// guarded transactions, leases, watches, one member of three killed, and
// every member down (bounded by the call deadline, never a hang).
#include "server/etcd/client.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/etcd/etcd_cluster.h"

namespace xenchan {
namespace etcd {
namespace {

std::unique_ptr<Client> Connect(const std::vector<std::string>& endpoints,
                                absl::Duration timeout = absl::Seconds(5)) {
  ClientOptions options;
  options.endpoints = endpoints;
  options.rpc_timeout = timeout;
  auto client = Client::Create(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

class EtcdClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto cluster = etcdtest::EtcdCluster::Start(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = cluster->release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    client_ = Connect(cluster_->endpoints());
    ASSERT_NE(client_, nullptr);
    // Each test in its own key space.
    prefix_ =
        absl::StrCat("/t/", ::testing::UnitTest::GetInstance()->current_test_info()->name(), "/");
  }

  static etcdtest::EtcdCluster* cluster_;
  std::unique_ptr<Client> client_;
  std::string prefix_;
};

etcdtest::EtcdCluster* EtcdClientTest::cluster_ = nullptr;

TEST_F(EtcdClientTest, PutGetPrefixAndDelete) {
  auto missing = client_->Get(prefix_ + "a");
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_FALSE(missing->has_value());
  auto rev1 = client_->Put(prefix_ + "a", "1");
  ASSERT_TRUE(rev1.ok()) << rev1.status();
  auto rev2 = client_->Put(prefix_ + "b", std::string("\0\xff bytes", 8));
  ASSERT_TRUE(rev2.ok());
  EXPECT_GT(*rev2, *rev1);
  ASSERT_TRUE(client_->Put(prefix_ + "b/nested", "2").ok());
  ASSERT_TRUE(
      client_->Put(absl::StrCat(prefix_.substr(0, prefix_.size() - 1), "x"), "outside").ok());
  auto a = client_->Get(prefix_ + "a");
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->value, "1");
  EXPECT_EQ((*a)->version, 1);
  EXPECT_EQ((*a)->mod_revision, *rev1);
  auto all = client_->GetPrefix(prefix_);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->kvs.size(), 3u);
  EXPECT_EQ(all->kvs[1].value, std::string("\0\xff bytes", 8));
  EXPECT_GE(all->revision, *rev2);
  auto limited = client_->GetPrefix(prefix_, 2);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->kvs.size(), 2u);
  EXPECT_TRUE(limited->more);
  auto deleted = client_->Delete(prefix_ + "b", /*prefix=*/true);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 2);
  EXPECT_EQ(client_->GetPrefix(prefix_)->kvs.size(), 1u);
}

TEST_F(EtcdClientTest, ATransactionGuardedByModRevisionStopsAStaleWriter) {
  const std::string key = prefix_ + "domain";
  // Create only if missing.
  auto created = client_->Txn({Compare::Missing(key)}, {Op::Put(key, "host-a")}, {Op::Get(key)});
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->succeeded);
  auto again = client_->Txn({Compare::Missing(key)}, {Op::Put(key, "host-b")}, {Op::Get(key)});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->succeeded);
  ASSERT_EQ(again->gets.size(), 1u);
  ASSERT_EQ(again->gets[0].size(), 1u);
  EXPECT_EQ(again->gets[0][0].value, "host-a");
  const int64_t seen = again->gets[0][0].mod_revision;
  // Two writers read the same revision; the first wins, the second fails.
  auto first = client_->Txn({Compare::ModRevisionIs(key, seen)}, {Op::Put(key, "host-b")}, {});
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->succeeded);
  auto stale = client_->Txn({Compare::ModRevisionIs(key, seen)}, {Op::Put(key, "host-c")}, {});
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(stale->succeeded);
  EXPECT_EQ((*client_->Get(key))->value, "host-b");
}

TEST_F(EtcdClientTest, KeysOnARevokedOrExpiredLeaseGo) {
  auto lease = client_->GrantLease(absl::Seconds(30));
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_TRUE(client_->Put(prefix_ + "host", "up", *lease).ok());
  EXPECT_EQ((*client_->Get(prefix_ + "host"))->lease, *lease);
  auto ttl = client_->KeepAlive(*lease);
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_GT(*ttl, absl::Seconds(20));
  ASSERT_TRUE(client_->RevokeLease(*lease).ok());
  EXPECT_FALSE(client_->Get(prefix_ + "host")->has_value());
  EXPECT_EQ(client_->KeepAlive(*lease).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->RevokeLease(*lease).code(), absl::StatusCode::kNotFound);

  // Not kept alive: the key goes with the lease once its TTL is over.
  auto short_lease = client_->GrantLease(absl::Seconds(2));
  ASSERT_TRUE(short_lease.ok());
  ASSERT_TRUE(client_->Put(prefix_ + "crashed", "up", *short_lease).ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (client_->Get(prefix_ + "crashed")->has_value() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_FALSE(client_->Get(prefix_ + "crashed")->has_value());
}

TEST_F(EtcdClientTest, AWatchSeesEveryChangeInOrderFromItsStartRevision) {
  auto before = client_->Put(prefix_ + "a", "0");
  ASSERT_TRUE(before.ok());
  auto watch = client_->WatchPrefix(prefix_, *before + 1);
  ASSERT_TRUE(client_->Put(prefix_ + "a", "1").ok());
  ASSERT_TRUE(client_->Put(prefix_ + "b", "2").ok());
  ASSERT_TRUE(client_->Delete(prefix_ + "a").ok());
  ASSERT_TRUE(client_->Put(absl::StrCat(prefix_.substr(0, prefix_.size() - 1), "x"), "no").ok());
  std::vector<Event> seen;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (seen.size() < 3 && absl::Now() < deadline) {
    auto batch = watch->Next(absl::Seconds(1));
    ASSERT_TRUE(batch.ok()) << batch.status();
    seen.insert(seen.end(), batch->begin(), batch->end());
  }
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].kv.value, "1");
  EXPECT_EQ(seen[1].kv.key, prefix_ + "b");
  EXPECT_EQ(seen[2].type, Event::Type::kDelete);
  EXPECT_EQ(seen[2].kv.key, prefix_ + "a");
  EXPECT_LT(seen[0].kv.mod_revision, seen[2].kv.mod_revision);
  auto idle = watch->Next(absl::Milliseconds(50));
  ASSERT_TRUE(idle.ok());
  EXPECT_TRUE(idle->empty());
  watch->Cancel();
  EXPECT_EQ(watch->Next(absl::Seconds(5)).status().code(), absl::StatusCode::kCancelled);
}

TEST(EtcdClientOptions, EndpointsAreCheckedAtCreate) {
  for (const char* bad :
       {"", "ftp://h:1", "h", "h:", ":1", "h:x", "unix://relative", "http://h:1/path"}) {
    ClientOptions options;
    options.endpoints = {bad};
    EXPECT_EQ(Client::Create(options).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  ClientOptions https;
  https.endpoints = {"https://etcd.example:2379"};
  EXPECT_EQ(Client::Create(https).status().code(), absl::StatusCode::kInvalidArgument);
  ClientOptions none;
  EXPECT_EQ(Client::Create(none).status().code(), absl::StatusCode::kInvalidArgument);
  ClientOptions ok;
  ok.endpoints = {"unix:///run/etcd.sock", "http://10.0.0.1:2379", "etcd-1:2379"};
  EXPECT_TRUE(Client::Create(ok).ok());
}

TEST(EtcdClientFaults, OneMemberOfThreeDownCostsNothingAndAllDownFailsWithinTheDeadline) {
  auto cluster = etcdtest::EtcdCluster::Start(3);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  auto client = Connect((*cluster)->endpoints(), absl::Seconds(2));
  ASSERT_TRUE(client->Put("/k", "1").ok());
  (*cluster)->Kill(0);  // the member the client talks to
  // The other two still form a quorum; the client moves to one of them.
  absl::Status put;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  do {
    put = client->Put("/k", "2").status();
  } while (!put.ok() && absl::Now() < deadline);  // an election may be under way
  ASSERT_TRUE(put.ok()) << put << (*cluster)->Logs();
  EXPECT_EQ((*client->Get("/k"))->value, "2");
  for (int i = 1; i < 3; ++i) (*cluster)->Kill(i);
  const absl::Time start = absl::Now();
  auto down = client->Get("/k");
  EXPECT_FALSE(down.ok());
  EXPECT_TRUE(down.status().code() == absl::StatusCode::kUnavailable ||
              down.status().code() == absl::StatusCode::kDeadlineExceeded)
      << down.status();
  // One attempt per member, each within the 2 s deadline.
  EXPECT_LT(absl::Now() - start, absl::Seconds(7));
  // Back: nothing lost.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*cluster)->Restart(i).ok());
  absl::StatusOr<std::optional<KeyValue>> back;
  const absl::Time again = absl::Now() + absl::Seconds(30);
  do {
    back = client->Get("/k");
  } while (!back.ok() && absl::Now() < again);
  ASSERT_TRUE(back.ok()) << back.status() << (*cluster)->Logs();
  EXPECT_EQ((*back)->value, "2");
}

}  // namespace
}  // namespace etcd
}  // namespace xenchan
