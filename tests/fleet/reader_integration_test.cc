// FleetReader (server/fleet/reader.h) against real etcd: it follows the
// hosts/ and domains/ records the test writes with the codec's Encode,
// refuses hostile values (bad JSON, oversized, unknown version) with a log
// line naming the key and keeps working, survives etcd going away and
// coming back without missing a change, and learns how far etcd compacted
// its history.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/fleet/reader.h"
#include "server/fleet/records.h"
#include "tests/etcd/etcd_cluster.h"
#include "tests/sim/xensim_process.h"

namespace xenchan {
namespace fleet {
namespace {

constexpr char kUuid1[] = "6c4d5d4e-5d7a-4b8e-9a51-2f1e0c9d7b11";
constexpr char kUuid2[] = "7d5e6e5f-6e8b-4c9f-8b62-3a2f1d0e8c22";
constexpr absl::Duration kWait = absl::Seconds(20);

std::string HostValue(const std::string& id, const std::string& address) {
  v1::HostRecord r;
  r.set_version(1);
  r.set_host_id(id);
  r.set_api_address(address);
  r.set_xenchan_version("0.1.0");
  return Encode(r);
}

std::string DomainValue(const std::string& uuid, const std::string& host, uint32_t domid) {
  v1::DomainRecord r;
  r.set_version(1);
  r.set_uuid(uuid);
  r.set_host_id(host);
  r.set_domid(domid);
  r.set_name("vm");
  r.set_state(xenchan::v1::DOMAIN_STATE_RUNNING);
  return Encode(r);
}

class FleetReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = etcdtest::EtcdCluster::Start(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    etcd::ClientOptions options;
    options.endpoints = cluster_->endpoints();
    options.rpc_timeout = absl::Seconds(2);
    auto client = etcd::Client::Create(options);
    ASSERT_TRUE(client.ok()) << client.status();
    etcd_ = *std::move(client);
  }

  std::unique_ptr<FleetReader> StartReader() {
    FleetReaderOptions options;
    options.poll = absl::Milliseconds(100);
    options.retry_max = absl::Milliseconds(500);
    auto reader = FleetReader::Start(etcd_, kDefaultPrefix, options);
    EXPECT_TRUE(reader.ok()) << reader.status();
    return reader.ok() ? *std::move(reader) : nullptr;
  }

  int64_t Put(const std::string& key, const std::string& value) {
    auto revision = etcd_->Put(key, value);
    EXPECT_TRUE(revision.ok()) << revision.status();
    return revision.ok() ? *revision : 0;
  }

  // What the reader's view holds: "h1=ADDRESS" and "UUID@HOST" strings.
  std::vector<std::string> Contents(const FleetReader& reader) {
    std::vector<std::string> out;
    EXPECT_TRUE(reader
                    .Read([&](const FleetView& view) {
                      for (const auto& [id, h] : view.hosts()) {
                        out.push_back(id + "=" + h.record.api_address());
                      }
                      for (const auto& [uuid, d] : view.domains()) {
                        out.push_back(uuid + "@" + d.record.host_id());
                      }
                    })
                    .ok());
    return out;
  }

  std::unique_ptr<etcdtest::EtcdCluster> cluster_;
  std::shared_ptr<etcd::Client> etcd_;
};

TEST_F(FleetReaderTest, FollowsHostsAndDomains) {
  Put(HostKey(kDefaultPrefix, "h1"), HostValue("h1", "10.0.0.1:7000"));
  Put(DomainKey(kDefaultPrefix, kUuid1), DomainValue(kUuid1, "h1", 3));
  Put(DeclarationKey(kDefaultPrefix, kUuid1, "org.x.0"), "{}");  // not the reader's
  std::unique_ptr<FleetReader> reader = StartReader();
  ASSERT_NE(reader, nullptr);
  ASSERT_TRUE(reader->WaitForRevision(0, kWait));
  EXPECT_EQ(Contents(*reader),
            (std::vector<std::string>{"h1=10.0.0.1:7000", std::string(kUuid1) + "@h1"}));

  Put(HostKey(kDefaultPrefix, "h2"), HostValue("h2", "10.0.0.2:7000"));
  const int64_t moved = Put(DomainKey(kDefaultPrefix, kUuid1), DomainValue(kUuid1, "h2", 9));
  ASSERT_TRUE(reader->WaitForRevision(moved, kWait));
  EXPECT_EQ(Contents(*reader), (std::vector<std::string>{"h1=10.0.0.1:7000", "h2=10.0.0.2:7000",
                                                         std::string(kUuid1) + "@h2"}));
  auto deleted = etcd_->Delete(HostKey(kDefaultPrefix, "h1"));
  ASSERT_TRUE(deleted.ok());
  const int64_t after = Put("/elsewhere", "x");  // a revision past the delete
  ASSERT_TRUE(reader->WaitForRevision(after - 1, kWait));
  EXPECT_EQ(Contents(*reader),
            (std::vector<std::string>{"h2=10.0.0.2:7000", std::string(kUuid1) + "@h2"}));
}

TEST_F(FleetReaderTest, RefusesHostileValuesWithALogLineAndKeepsWorking) {
  std::unique_ptr<FleetReader> reader = StartReader();
  ASSERT_NE(reader, nullptr);
  ASSERT_TRUE(reader->WaitForRevision(0, kWait));
  ::testing::internal::CaptureStderr();
  Put(HostKey(kDefaultPrefix, "bad"), "{\"version\":1,\"hostId\":");
  Put(DomainKey(kDefaultPrefix, kUuid2), std::string(kMaxValueBytes + 10, '{'));
  std::string future = HostValue("h9", "10.0.0.9:7000");
  future.replace(future.find("\"version\":1"), 11, "\"version\":7");
  Put(HostKey(kDefaultPrefix, "h9"), future);
  const int64_t good = Put(HostKey(kDefaultPrefix, "h1"), HostValue("h1", "10.0.0.1:7000"));
  ASSERT_TRUE(reader->WaitForRevision(good, kWait));
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(Contents(*reader), (std::vector<std::string>{"h1=10.0.0.1:7000"}));
  for (const std::string& key : {HostKey(kDefaultPrefix, "bad"), DomainKey(kDefaultPrefix, kUuid2),
                                 HostKey(kDefaultPrefix, "h9")}) {
    EXPECT_NE(log.find("msg=\"fleet: refused etcd value\" key=" + key), std::string::npos)
        << key << " in:\n"
        << log;
  }
  // A known host overwritten with garbage disappears.
  const int64_t garbage = Put(HostKey(kDefaultPrefix, "h1"), "null");
  ASSERT_TRUE(reader->WaitForRevision(garbage, kWait));
  EXPECT_TRUE(Contents(*reader).empty());
}

TEST_F(FleetReaderTest, MissesNothingWhileEtcdIsAway) {
  std::unique_ptr<FleetReader> reader = StartReader();
  ASSERT_NE(reader, nullptr);
  const int64_t first = Put(HostKey(kDefaultPrefix, "h1"), HostValue("h1", "10.0.0.1:7000"));
  ASSERT_TRUE(reader->WaitForRevision(first, kWait));
  cluster_->Kill(0);
  // The view keeps the last state seen.
  EXPECT_EQ(Contents(*reader), (std::vector<std::string>{"h1=10.0.0.1:7000"}));
  ASSERT_TRUE(cluster_->Restart(0).ok()) << cluster_->Logs();
  // The first write goes through once the member answers again.
  const absl::Time deadline = absl::Now() + kWait;
  absl::StatusOr<int64_t> put;
  do {
    put = etcd_->Put(HostKey(kDefaultPrefix, "h2"), HostValue("h2", "10.0.0.2:7000"));
  } while (!put.ok() && absl::Now() < deadline);
  ASSERT_TRUE(put.ok()) << put.status() << cluster_->Logs();
  const int64_t last = Put(DomainKey(kDefaultPrefix, kUuid1), DomainValue(kUuid1, "h2", 4));
  ASSERT_TRUE(reader->WaitForRevision(last, kWait));
  EXPECT_EQ(Contents(*reader), (std::vector<std::string>{"h1=10.0.0.1:7000", "h2=10.0.0.2:7000",
                                                         std::string(kUuid1) + "@h2"}));
}

TEST_F(FleetReaderTest, LearnsHowFarEtcdCompacted) {
  Put(HostKey(kDefaultPrefix, "h1"), HostValue("h1", "a:1"));
  const int64_t compact = Put(HostKey(kDefaultPrefix, "h1"), HostValue("h1", "a:2"));
  const simtest::ProcessResult r =
      simtest::RunProcess({"/usr/bin/etcdctl", "--endpoints=" + cluster_->endpoint(0), "compact",
                           std::to_string(compact)},
                          {{"ETCDCTL_API", "3"}});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::unique_ptr<FleetReader> reader = StartReader();
  ASSERT_NE(reader, nullptr);
  ASSERT_TRUE(reader->WaitForRevision(compact, kWait));
  // Learnt with the first read, by a probe watch from revision 1.
  EXPECT_EQ(reader->compacted_revision(), compact);
  EXPECT_EQ(Contents(*reader), (std::vector<std::string>{"h1=a:2"}));
}

}  // namespace
}  // namespace fleet
}  // namespace xenchan
