// FleetView (server/fleet/fleet_view.h): what etcd says becomes the fleet's
// hosts and domains and a history of changes by revision; hostile values
// (bad JSON, oversized, unknown version, ids that disagree with the key) are
// refused, reported with their key and treated as absent; memory stays
// within the limits.
#include "server/fleet/fleet_view.h"

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "server/fleet/records.h"

namespace xenchan {
namespace fleet {
namespace {

constexpr char kPrefix[] = "/xenchan/v1/";
constexpr char kUuid1[] = "6c4d5d4e-5d7a-4b8e-9a51-2f1e0c9d7b11";
constexpr char kUuid2[] = "7d5e6e5f-6e8b-4c9f-8b62-3a2f1d0e8c22";

etcd::KeyValue HostKv(const std::string& id, int64_t revision, const std::string& address = "") {
  v1::HostRecord r;
  r.set_version(1);
  r.set_host_id(id);
  r.set_api_address(address.empty() ? id + ".example:7000" : address);
  r.set_identity(id + ".example");
  r.set_xenchan_version("0.1.0");
  r.set_started_at_unix_ms(1700000000000);
  return etcd::KeyValue{HostKey(kPrefix, id), Encode(r), revision, revision, 1, 7};
}

etcd::KeyValue DomainKv(const std::string& uuid, const std::string& host, int64_t revision,
                        const std::string& name = "vm") {
  v1::DomainRecord r;
  r.set_version(1);
  r.set_uuid(uuid);
  r.set_host_id(host);
  r.set_domid(3);
  r.set_name(name);
  r.set_state(xenchan::v1::DOMAIN_STATE_RUNNING);
  return etcd::KeyValue{DomainKey(kPrefix, uuid), Encode(r), revision, revision, 1, 7};
}

etcd::Event Put(etcd::KeyValue kv) { return etcd::Event{etcd::Event::Type::kPut, std::move(kv)}; }
etcd::Event Delete(const std::string& key, int64_t revision) {
  etcd::Event e;
  e.type = etcd::Event::Type::kDelete;
  e.kv.key = key;
  e.kv.mod_revision = revision;
  return e;
}

class FleetViewTest : public ::testing::Test {
 protected:
  FleetView MakeView(FleetView::Limits limits = {}) {
    return FleetView(kPrefix, limits, [this](const std::string& key, const absl::Status& why) {
      refused_.emplace_back(key, std::string(why.message()));
    });
  }
  std::vector<FleetEvent> After(const FleetView& view, int64_t revision) {
    std::vector<FleetEvent> out;
    EXPECT_TRUE(view.EventsAfter(revision, 1000, &out).ok());
    return out;
  }

  std::vector<std::pair<std::string, std::string>> refused_;
};

TEST_F(FleetViewTest, ASnapshotLoadsHostsAndDomainsAndIgnoresOtherKeys) {
  FleetView view = MakeView();
  etcd::KeyValue declaration{DeclarationKey(kPrefix, kUuid1, "org.x.0"), "{}", 4, 4, 1, 0};
  view.Reset({HostKv("h1", 2), DomainKv(kUuid1, "h1", 3), declaration}, 10);
  ASSERT_TRUE(view.loaded());
  EXPECT_EQ(view.revision(), 10);
  EXPECT_EQ(view.floor(), 10);
  ASSERT_EQ(view.hosts().size(), 1u);
  EXPECT_EQ(view.hosts().at("h1").record.api_address(), "h1.example:7000");
  EXPECT_EQ(view.hosts().at("h1").mod_revision, 2);
  ASSERT_EQ(view.domains().size(), 1u);
  EXPECT_EQ(view.domains().at(kUuid1).record.host_id(), "h1");
  EXPECT_TRUE(refused_.empty());
  EXPECT_TRUE(After(view, 10).empty());
}

TEST_F(FleetViewTest, HostileValuesAreRefusedWithTheirKeyAndTreatedAsAbsent) {
  FleetView view = MakeView();
  etcd::KeyValue bad_json{HostKey(kPrefix, "h2"), "{not json", 3, 3, 1, 0};
  etcd::KeyValue oversized{
      HostKey(kPrefix, "h3"), std::string(kMaxValueBytes + 1, ' '), 4, 4, 1, 0};
  etcd::KeyValue future = DomainKv(kUuid2, "h1", 5);
  future.value.replace(future.value.find("\"version\":1"), 11, "\"version\":2");
  etcd::KeyValue wrong_key = HostKv("h4", 6);
  wrong_key.key = HostKey(kPrefix, "h5");
  view.Reset({HostKv("h1", 2), bad_json, oversized, future, wrong_key}, 10);
  EXPECT_EQ(view.hosts().size(), 1u);
  EXPECT_TRUE(view.domains().empty());
  ASSERT_EQ(refused_.size(), 4u);
  EXPECT_EQ(refused_[0].first, HostKey(kPrefix, "h2"));
  EXPECT_EQ(refused_[1].first, HostKey(kPrefix, "h3"));
  EXPECT_EQ(refused_[2].first, DomainKey(kPrefix, kUuid2));
  EXPECT_EQ(refused_[3].first, HostKey(kPrefix, "h5"));

  // A known record overwritten by a bad value disappears.
  view.Apply({Put(etcd::KeyValue{HostKey(kPrefix, "h1"), "[]", 11, 11, 2, 7})});
  EXPECT_TRUE(view.hosts().empty());
  std::vector<FleetEvent> events = After(view, 10);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, FleetEvent::Type::kDisappeared);
  EXPECT_EQ(events[0].host.record.host_id(), "h1");
  EXPECT_EQ(refused_.size(), 5u);
}

TEST_F(FleetViewTest, ChangesBecomeEventsByRevision) {
  FleetView view = MakeView();
  view.Reset({}, 5);
  view.Apply({Put(HostKv("h1", 6))});
  view.Apply({Put(DomainKv(kUuid1, "h1", 7))});
  view.Apply({Put(HostKv("h1", 8))});  // the same record again: no event
  view.Apply({Put(DomainKv(kUuid1, "h2", 9))});
  // One transaction: two changes at one revision, both applied.
  view.Apply({Put(HostKv("h2", 10)), Delete(HostKey(kPrefix, "h1"), 10)});
  // A watch restarted from an older revision repeats events: ignored.
  view.Apply({Put(HostKv("h1", 6))});
  EXPECT_EQ(view.revision(), 10);
  std::vector<FleetEvent> events = After(view, 5);
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].type, FleetEvent::Type::kAppeared);
  EXPECT_EQ(events[0].kind, FleetEvent::Kind::kHost);
  EXPECT_EQ(events[1].type, FleetEvent::Type::kAppeared);
  EXPECT_EQ(events[1].kind, FleetEvent::Kind::kDomain);
  EXPECT_EQ(events[2].type, FleetEvent::Type::kChanged);
  EXPECT_EQ(events[2].domain.record.host_id(), "h2");
  EXPECT_EQ(events[2].revision, 9);
  EXPECT_EQ(events[3].revision, 10);
  EXPECT_EQ(events[4].type, FleetEvent::Type::kDisappeared);
  EXPECT_EQ(view.hosts().count("h1"), 0u);
  EXPECT_EQ(view.hosts().count("h2"), 1u);
  EXPECT_EQ(After(view, 9).size(), 2u);
  EXPECT_TRUE(After(view, 10).empty());
  std::vector<FleetEvent> out;
  EXPECT_EQ(view.EventsAfter(4, 10, &out).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(view.EventsAfter(11, 10, &out).code(), absl::StatusCode::kOutOfRange);
}

TEST_F(FleetViewTest, MemoryStaysWithinTheLimits) {
  FleetView::Limits limits;
  limits.max_hosts = 1;
  limits.max_domains = 1;
  limits.max_history = 4;
  FleetView view = MakeView(limits);
  view.Reset({HostKv("h1", 2), HostKv("h2", 3)}, 3);
  EXPECT_EQ(view.hosts().size(), 1u);
  EXPECT_EQ(refused_.size(), 1u);
  view.Apply({Put(DomainKv(kUuid1, "h1", 4)), Put(DomainKv(kUuid2, "h1", 5))});
  EXPECT_EQ(view.domains().size(), 1u);
  EXPECT_EQ(refused_.size(), 2u);
  for (int r = 6; r < 16; ++r) view.Apply({Put(HostKv("h1", r, "addr" + std::to_string(r)))});
  // The history keeps the newest 4 changes; older revisions are refused.
  EXPECT_EQ(view.floor(), 11);
  EXPECT_EQ(After(view, 11).size(), 4u);
  std::vector<FleetEvent> out;
  EXPECT_EQ(view.EventsAfter(10, 100, &out).code(), absl::StatusCode::kOutOfRange);
}

TEST_F(FleetViewTest, ARereadRecordsTheDifferenceThenResynced) {
  FleetView view = MakeView();
  view.Reset({HostKv("h1", 2), DomainKv(kUuid1, "h1", 3)}, 3);
  // What etcd holds after changes this view never saw (compacted away).
  view.Reset({HostKv("h2", 7), DomainKv(kUuid1, "h2", 8)}, 9);
  std::vector<FleetEvent> events = After(view, 3);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].type, FleetEvent::Type::kDisappeared);
  EXPECT_EQ(events[0].host.record.host_id(), "h1");
  EXPECT_EQ(events[1].type, FleetEvent::Type::kAppeared);
  EXPECT_EQ(events[1].host.record.host_id(), "h2");
  EXPECT_EQ(events[2].type, FleetEvent::Type::kChanged);
  EXPECT_EQ(events[2].domain.record.host_id(), "h2");
  EXPECT_EQ(events[3].type, FleetEvent::Type::kResynced);
  for (const FleetEvent& e : events) EXPECT_EQ(e.revision, 9);
  EXPECT_EQ(view.revision(), 9);
}

}  // namespace
}  // namespace fleet
}  // namespace xenchan
