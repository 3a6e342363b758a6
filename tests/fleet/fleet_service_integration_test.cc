// FleetService's logic (server/fleet_queries.h, server/fleet_watch_logic.h)
// over a FleetReader following a real etcd, with records the test writes:
// ListHosts with paging; LocateDomain by UUID and by name, with every
// refusal the proto names (not found, ambiguous name, host without a
// record, permission denied, unauthenticated, not part of a fleet) and the
// audit record; WatchFleet's snapshot, live changes, resume by revision,
// policy filter, and refusals of revisions etcd compacted or never issued.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/audit/audit_log.h"
#include "server/fleet/reader.h"
#include "server/fleet/records.h"
#include "server/fleet_queries.h"
#include "server/fleet_watch_logic.h"
#include "server/policy/policy.h"
#include "server/status.h"
#include "tests/common/files.h"
#include "tests/etcd/etcd_cluster.h"
#include "tests/sim/xensim_process.h"

namespace xenchan {
namespace server {
namespace {

constexpr char kPrefix[] = "/xenchan/v1/";
constexpr char kWeb1[] = "11111111-1111-4111-8111-111111111111";
constexpr char kWeb2[] = "22222222-2222-4222-8222-222222222222";
constexpr char kDb[] = "33333333-3333-4333-8333-333333333333";
constexpr char kOrphan[] = "44444444-4444-4444-8444-444444444444";
constexpr absl::Duration kWait = absl::Seconds(20);

// uid 0 may do everything; uid 1000 anything on domains named web*.
constexpr char kPolicy[] = R"(
[identity unix:uid=0]
allow verbs=* domain=* channel=*
[identity unix:uid=1000]
allow verbs=read domain=name:web* channel=*
)";

std::string HostValue(const std::string& id) {
  fleet::v1::HostRecord r;
  r.set_version(1);
  r.set_host_id(id);
  r.set_api_address(id + ".example:7000");
  r.set_identity(id + ".example");
  r.set_xenchan_version("0.1.0");
  r.set_started_at_unix_ms(1700000000123);
  return fleet::Encode(r);
}

std::string DomainValue(const std::string& uuid, const std::string& host, const std::string& name) {
  fleet::v1::DomainRecord r;
  r.set_version(1);
  r.set_uuid(uuid);
  r.set_host_id(host);
  r.set_domid(5);
  r.set_name(name);
  r.set_state(v1::DOMAIN_STATE_RUNNING);
  return fleet::Encode(r);
}

Identity Uid(uint32_t uid) {
  Identity id;
  id.principals = policy::Identity::FromUnixPeer(uid, {});
  id.transport = TransportKind::kUnix;
  return id;
}

// Records what the logic writes; the test acknowledges each write.
class RecordingPort : public OutStreamPort<v1::WatchFleetResponse> {
 public:
  void WriteNext(const v1::WatchFleetResponse* message) override {
    MutexLock lock(&mu_);
    pending_ = *message;
    cv_.SignalAll();
  }
  void FinishWith(const absl::Status& status) override {
    MutexLock lock(&mu_);
    finished_ = status;
    cv_.SignalAll();
  }
  // The next message (acknowledged), or nullopt once finished or after
  // `timeout`.
  std::optional<v1::WatchFleetResponse> Next(FleetWatchLogic& logic,
                                             absl::Duration timeout = kWait) {
    std::optional<v1::WatchFleetResponse> got;
    {
      const absl::Time deadline = absl::Now() + timeout;
      MutexLock lock(&mu_);
      while (!pending_.has_value() && !finished_.has_value()) {
        if (cv_.WaitWithDeadline(&mu_, deadline)) break;
      }
      got.swap(pending_);
    }
    if (got.has_value()) logic.OnWriteDone(true);
    return got;
  }
  std::optional<absl::Status> finished() {
    MutexLock lock(&mu_);
    return finished_;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  std::optional<v1::WatchFleetResponse> pending_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> finished_ ABSL_GUARDED_BY(mu_);
};

class FleetServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = etcdtest::EtcdCluster::Start(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    etcd::ClientOptions options;
    options.endpoints = cluster_->endpoints();
    auto client = etcd::Client::Create(options);
    ASSERT_TRUE(client.ok()) << client.status();
    etcd_ = *std::move(client);
    for (const char* h : {"h1", "h2", "h3"}) Put(fleet::HostKey(kPrefix, h), HostValue(h));
    Put(fleet::DomainKey(kPrefix, kWeb1), DomainValue(kWeb1, "h1", "web1"));
    Put(fleet::DomainKey(kPrefix, kWeb2), DomainValue(kWeb2, "h2", "web2"));
    Put(fleet::DomainKey(kPrefix, kDb), DomainValue(kDb, "h2", "db"));
    last_ = Put(fleet::DomainKey(kPrefix, kOrphan), DomainValue(kOrphan, "gone", "orphan"));

    dir_ = testcommon::MakeTempDir("fleet-service");
    audit::AuditOptions audit_options;
    audit_options.path = dir_ + "/audit.log";
    audit_options.fsync_interval = absl::ZeroDuration();
    auto audit = audit::AuditLog::Open(audit_options);
    ASSERT_TRUE(audit.ok()) << audit.status();
    audit_ = *std::move(audit);
    auto parsed = policy::Policy::Parse(kPolicy);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    auto p = std::make_shared<const policy::Policy>(*std::move(parsed));
    AccessControl access;
    access.policy = [p] { return p; };
    access.audit = audit_.get();
    access_ = std::make_unique<FleetAccess>(access);
    reader_ = StartReader();
    ASSERT_NE(reader_, nullptr);
    ASSERT_TRUE(reader_->WaitForRevision(last_, kWait));
  }

  void TearDown() override {
    reader_.reset();
    audit_.reset();
    testcommon::RemoveTree(dir_);
  }

  std::unique_ptr<fleet::FleetReader> StartReader() {
    fleet::FleetReaderOptions options;
    options.poll = absl::Milliseconds(100);
    auto reader = fleet::FleetReader::Start(etcd_, kPrefix, options);
    EXPECT_TRUE(reader.ok()) << reader.status();
    return reader.ok() ? *std::move(reader) : nullptr;
  }

  int64_t Put(const std::string& key, const std::string& value) {
    auto revision = etcd_->Put(key, value);
    EXPECT_TRUE(revision.ok()) << revision.status();
    return revision.ok() ? *revision : 0;
  }

  FleetContext Context() const { return FleetContext{reader_.get(), access_.get()}; }

  absl::StatusOr<v1::LocateDomainResponse> Locate(const std::string& name, uint32_t uid = 0) {
    v1::LocateDomainRequest request;
    request.set_name(name);
    v1::LocateDomainResponse response;
    absl::Status s = LocateDomain(Context(), Uid(uid), request, &response);
    if (!s.ok()) return s;
    return response;
  }

  template <class T>
  static std::optional<T> Detail(const absl::Status& s) {
    const google::rpc::Status rpc = ToRpcStatus(s);
    for (const auto& any : rpc.details()) {
      T t;
      if (any.UnpackTo(&t)) return t;
    }
    return std::nullopt;
  }

  std::unique_ptr<etcdtest::EtcdCluster> cluster_;
  std::shared_ptr<etcd::Client> etcd_;
  std::string dir_;
  std::unique_ptr<audit::AuditLog> audit_;
  std::unique_ptr<FleetAccess> access_;
  std::unique_ptr<fleet::FleetReader> reader_;
  int64_t last_ = 0;
};

TEST_F(FleetServiceTest, ListHostsPagesInHostIdOrder) {
  v1::ListHostsRequest request;
  request.set_page_size(2);
  v1::ListHostsResponse first;
  ASSERT_TRUE(ListHosts(Context(), Uid(1000), request, &first).ok());
  ASSERT_EQ(first.hosts_size(), 2);
  EXPECT_EQ(first.hosts(0).name(), "hosts/h1");
  EXPECT_EQ(first.hosts(0).api_address(), "h1.example:7000");
  EXPECT_EQ(first.hosts(0).identity(), "h1.example");
  EXPECT_EQ(first.hosts(0).start_time().seconds(), 1700000000);
  EXPECT_EQ(first.hosts(1).host_id(), "h2");
  EXPECT_EQ(first.revision(), last_);
  ASSERT_FALSE(first.next_page_token().empty());
  request.set_page_token(first.next_page_token());
  v1::ListHostsResponse second;
  ASSERT_TRUE(ListHosts(Context(), Uid(1000), request, &second).ok());
  ASSERT_EQ(second.hosts_size(), 1);
  EXPECT_EQ(second.hosts(0).host_id(), "h3");
  EXPECT_TRUE(second.next_page_token().empty());

  request.set_page_token("garbage");
  absl::Status bad = ListHosts(Context(), Uid(0), request, &second);
  EXPECT_EQ(ReasonOf(bad), v1::ERROR_REASON_INVALID_PAGE_TOKEN);
  request.set_page_token("");
  request.set_page_size(-1);
  EXPECT_EQ(ListHosts(Context(), Uid(0), request, &second).code(),
            absl::StatusCode::kInvalidArgument);
  request.set_page_size(0);
  absl::Status anonymous = ListHosts(Context(), Identity{}, request, &second);
  EXPECT_EQ(ReasonOf(anonymous), v1::ERROR_REASON_UNAUTHENTICATED);
}

TEST_F(FleetServiceTest, LocateDomainByUuidAndByName) {
  auto by_uuid = Locate(absl::StrCat("domains/", absl::AsciiStrToUpper(kDb)));
  ASSERT_TRUE(by_uuid.ok()) << by_uuid.status();
  EXPECT_EQ(by_uuid->domain().name(), absl::StrCat("domains/", kDb));
  EXPECT_EQ(by_uuid->domain().display_name(), "db");
  EXPECT_EQ(by_uuid->domain().host(), "hosts/h2");
  EXPECT_EQ(by_uuid->domain().domid(), 5u);
  EXPECT_EQ(by_uuid->domain().state(), v1::DOMAIN_STATE_RUNNING);
  EXPECT_EQ(by_uuid->host().api_address(), "h2.example:7000");
  EXPECT_EQ(by_uuid->host().identity(), "h2.example");

  auto by_name = Locate("domains/web1", 1000);
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_EQ(by_name->domain().uuid(), kWeb1);
  EXPECT_EQ(by_name->host().host_id(), "h1");

  // A migration: the record names another host now.
  const int64_t moved = Put(fleet::DomainKey(kPrefix, kWeb1), DomainValue(kWeb1, "h3", "web1"));
  ASSERT_TRUE(reader_->WaitForRevision(moved, kWait));
  by_name = Locate("domains/web1", 1000);
  ASSERT_TRUE(by_name.ok());
  EXPECT_EQ(by_name->host().host_id(), "h3");
  EXPECT_EQ(by_name->domain().revision(), moved);

  // Audited like ChannelService's decisions.
  audit_->Close();
  const std::string audit = testcommon::ReadFileOrEmpty(dir_ + "/audit.log");
  EXPECT_NE(audit.find("/xenchan.v1.FleetService/LocateDomain"), std::string::npos) << audit;
}

TEST_F(FleetServiceTest, LocateDomainRefusals) {
  auto missing = Locate("domains/nobody");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReasonOf(missing.status()), v1::ERROR_REASON_DOMAIN_NOT_FOUND);
  EXPECT_EQ(ReasonOf(Locate("domains/55555555-5555-4555-8555-555555555555").status()),
            v1::ERROR_REASON_DOMAIN_NOT_FOUND);

  auto orphan = Locate("domains/orphan");
  EXPECT_EQ(orphan.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReasonOf(orphan.status()), v1::ERROR_REASON_HOST_NOT_REGISTERED);
  auto orphan_detail = Detail<v1::FleetDomain>(orphan.status());
  ASSERT_TRUE(orphan_detail.has_value());
  EXPECT_EQ(orphan_detail->host(), "hosts/gone");

  const int64_t twin = Put(fleet::DomainKey(kPrefix, kOrphan), DomainValue(kOrphan, "h3", "db"));
  ASSERT_TRUE(reader_->WaitForRevision(twin, kWait));
  auto ambiguous = Locate("domains/db");
  EXPECT_EQ(ambiguous.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReasonOf(ambiguous.status()), v1::ERROR_REASON_DOMAIN_NAME_AMBIGUOUS);
  auto candidates = Detail<v1::AmbiguousDomain>(ambiguous.status());
  ASSERT_TRUE(candidates.has_value());
  ASSERT_EQ(candidates->candidates_size(), 2);
  EXPECT_EQ(candidates->candidates(0).uuid(), kDb);
  EXPECT_EQ(candidates->candidates(1).uuid(), kOrphan);

  // uid 1000 may see web* only: db is denied, whether or not it exists.
  EXPECT_EQ(ReasonOf(Locate(absl::StrCat("domains/", kDb), 1000).status()),
            v1::ERROR_REASON_PERMISSION_DENIED);
  EXPECT_EQ(ReasonOf(Locate("domains/db", 1000).status()), v1::ERROR_REASON_PERMISSION_DENIED);
  EXPECT_EQ(ReasonOf(Locate("domains/nothing", 1000).status()), v1::ERROR_REASON_PERMISSION_DENIED);
  EXPECT_EQ(ReasonOf(Locate("domains/-").status()), v1::ERROR_REASON_INVALID_NAME);

  v1::LocateDomainRequest request;
  request.set_name("domains/web1");
  v1::LocateDomainResponse response;
  EXPECT_EQ(ReasonOf(LocateDomain(Context(), Identity{}, request, &response)),
            v1::ERROR_REASON_UNAUTHENTICATED);
  const FleetContext no_fleet{nullptr, access_.get()};
  absl::Status off = LocateDomain(no_fleet, Uid(0), request, &response);
  EXPECT_EQ(off.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReasonOf(off), v1::ERROR_REASON_FLEET_NOT_CONFIGURED);
}

TEST_F(FleetServiceTest, WatchFleetSnapshotThenLiveThenResume) {
  RecordingPort port;
  FleetWatchLogic logic(Context(), Uid(0), v1::WatchFleetRequest(), &port);
  uint64_t subscription = 0;
  logic.Start(
      [&](std::function<void()> on_change) {
        return subscription = reader_->Subscribe(std::move(on_change));
      },
      [&logic] { logic.OnChange(); });
  std::vector<std::string> seen;
  int64_t synced = 0;
  while (synced == 0) {
    auto m = port.Next(logic);
    ASSERT_TRUE(m.has_value()) << port.finished().value_or(absl::OkStatus());
    if (m->type() == v1::FLEET_EVENT_TYPE_SYNCED) {
      synced = m->revision();
      break;
    }
    EXPECT_EQ(m->type(), v1::FLEET_EVENT_TYPE_EXISTING);
    EXPECT_EQ(m->revision(), last_);
    seen.push_back(m->has_host() ? m->host().host_id() : m->domain().display_name());
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"h1", "h2", "h3", "web1", "web2", "db", "orphan"}));
  EXPECT_EQ(synced, last_);

  const int64_t moved = Put(fleet::DomainKey(kPrefix, kWeb2), DomainValue(kWeb2, "h3", "web2"));
  auto changed = port.Next(logic);
  ASSERT_TRUE(changed.has_value());
  EXPECT_EQ(changed->type(), v1::FLEET_EVENT_TYPE_CHANGED);
  EXPECT_EQ(changed->revision(), moved);
  EXPECT_EQ(changed->domain().host(), "hosts/h3");
  ASSERT_TRUE(etcd_->Delete(fleet::HostKey(kPrefix, "h1")).ok());
  auto gone = port.Next(logic);
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->type(), v1::FLEET_EVENT_TYPE_DISAPPEARED);
  EXPECT_EQ(gone->host().host_id(), "h1");
  logic.OnCancel();
  logic.OnDone([&](uint64_t id) { reader_->Unsubscribe(id); });

  // Resumed after the snapshot, by a caller who may see web* only: the
  // changes it may see, then SYNCED.
  Put(fleet::DomainKey(kPrefix, kDb), DomainValue(kDb, "h3", "db"));
  const int64_t end = Put(fleet::HostKey(kPrefix, "h4"), HostValue("h4"));
  ASSERT_TRUE(reader_->WaitForRevision(end, kWait));
  RecordingPort resumed_port;
  v1::WatchFleetRequest resume;
  resume.set_start_revision(synced);
  FleetWatchLogic resumed(Context(), Uid(1000), resume, &resumed_port);
  resumed.Start([&](std::function<void()> f) { return reader_->Subscribe(std::move(f)); },
                [&resumed] { resumed.OnChange(); });
  std::vector<std::string> replay;
  for (;;) {
    auto m = resumed_port.Next(resumed);
    ASSERT_TRUE(m.has_value());
    if (m->type() == v1::FLEET_EVENT_TYPE_SYNCED) {
      EXPECT_EQ(m->revision(), end);
      break;
    }
    replay.push_back(absl::StrCat(v1::FleetEventType_Name(m->type()), " ",
                                  m->has_host() ? m->host().host_id() : m->domain().uuid()));
  }
  EXPECT_EQ(replay, (std::vector<std::string>{std::string("FLEET_EVENT_TYPE_CHANGED ") + kWeb2,
                                              "FLEET_EVENT_TYPE_DISAPPEARED h1",
                                              "FLEET_EVENT_TYPE_APPEARED h4"}));
  resumed.OnCancel();
  resumed.OnDone([&](uint64_t id) { reader_->Unsubscribe(id); });
}

TEST_F(FleetServiceTest, WatchFleetEndsUnavailableAtShutdown) {
  RecordingPort port;
  FleetWatchLogic logic(Context(), Uid(0), v1::WatchFleetRequest(), &port);
  logic.Start([&](std::function<void()> f) { return reader_->Subscribe(std::move(f)); },
              [&logic] { logic.OnChange(); });
  for (;;) {
    auto m = port.Next(logic);
    ASSERT_TRUE(m.has_value());
    if (m->type() == v1::FLEET_EVENT_TYPE_SYNCED) break;
  }
  logic.OnShutdown();
  EXPECT_FALSE(port.Next(logic, absl::Seconds(5)).has_value());
  const absl::Status end = port.finished().value_or(absl::OkStatus());
  EXPECT_EQ(end.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReasonOf(end), v1::ERROR_REASON_SHUTTING_DOWN);
  logic.OnDone([&](uint64_t id) { reader_->Unsubscribe(id); });
}

TEST_F(FleetServiceTest, WatchFleetRefusesRevisionsItCannotResumeFrom) {
  auto refused = [&](int64_t start) {
    RecordingPort port;
    v1::WatchFleetRequest request;
    request.set_start_revision(start);
    FleetWatchLogic logic(Context(), Uid(0), request, &port);
    logic.Start([&](std::function<void()> f) { return reader_->Subscribe(std::move(f)); },
                [&logic] { logic.OnChange(); });
    EXPECT_FALSE(port.Next(logic, absl::Seconds(5)).has_value());
    logic.OnDone([&](uint64_t id) { reader_->Unsubscribe(id); });
    return port.finished().value_or(absl::OkStatus());
  };
  EXPECT_EQ(refused(-1).code(), absl::StatusCode::kInvalidArgument);
  absl::Status future = refused(last_ + 100);
  EXPECT_EQ(ReasonOf(future), v1::ERROR_REASON_REVISION_NOT_RETAINED);
  // Older than this reader's history (it started after these writes).
  absl::Status old = refused(2);
  EXPECT_EQ(old.code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(old.message().find("older than this xenchand's history"), std::string::npos) << old;
  auto retained = Detail<v1::RetainedRevisions>(old);
  ASSERT_TRUE(retained.has_value());
  EXPECT_EQ(retained->requested_revision(), 2u);
  EXPECT_EQ(retained->earliest_revision(), static_cast<uint64_t>(last_));

  // Once etcd compacted it, the refusal says so (learnt by a new reader).
  const simtest::ProcessResult r =
      simtest::RunProcess({"/usr/bin/etcdctl", "--endpoints=" + cluster_->endpoint(0), "compact",
                           std::to_string(last_)},
                          {{"ETCDCTL_API", "3"}});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  reader_ = StartReader();
  ASSERT_TRUE(reader_->WaitForRevision(last_, kWait));
  absl::Status compacted = refused(2);
  EXPECT_EQ(ReasonOf(compacted), v1::ERROR_REASON_REVISION_NOT_RETAINED);
  EXPECT_NE(compacted.message().find("was compacted in etcd"), std::string::npos) << compacted;

  const FleetContext no_fleet{nullptr, access_.get()};
  RecordingPort port;
  FleetWatchLogic logic(no_fleet, Uid(0), v1::WatchFleetRequest(), &port);
  logic.Start([](std::function<void()>) { return uint64_t{0}; }, [] {});
  EXPECT_EQ(ReasonOf(port.finished().value_or(absl::OkStatus())),
            v1::ERROR_REASON_FLEET_NOT_CONFIGURED);
}

}  // namespace
}  // namespace server
}  // namespace xenchan
