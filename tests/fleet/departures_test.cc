// DomainsElsewhere (server/fleet/departures.h): which domains of the fleet's
// view run on other hosts, first all of them, then only what changed since
// the last look; a history the view no longer holds means all of them again.
#include "server/fleet/departures.h"

#include <map>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "server/fleet/records.h"

namespace xenchan {
namespace fleet {
namespace {

constexpr char kPrefix[] = "/xenchan/v1/";
constexpr char kUuid1[] = "6c4d5d4e-5d7a-4b8e-9a51-2f1e0c9d7b11";
constexpr char kUuid2[] = "7d5e6e5f-6e8b-4c9f-8b62-3a2f1d0e8c22";
constexpr char kUuid3[] = "8e6f7f60-7f9c-4da0-9c73-4b3a2e1f9d33";

etcd::KeyValue DomainKv(const std::string& uuid, const std::string& host, int64_t revision) {
  v1::DomainRecord r;
  r.set_version(1);
  r.set_uuid(uuid);
  r.set_host_id(host);
  r.set_domid(3);
  r.set_name("vm");
  r.set_state(xenchan::v1::DOMAIN_STATE_RUNNING);
  return etcd::KeyValue{DomainKey(kPrefix, uuid), Encode(r), revision, revision, 1, 7};
}

etcd::Event Put(etcd::KeyValue kv) { return etcd::Event{etcd::Event::Type::kPut, std::move(kv)}; }

using Elsewhere = std::map<std::string, std::string>;

TEST(DomainsElsewhereTest, AllAtFirstThenOnlyChangesNamingAnotherHost) {
  FleetView view(kPrefix, {}, nullptr);
  int64_t cursor = 0;
  EXPECT_TRUE(DomainsElsewhere(view, "a", &cursor).empty());  // not loaded yet
  view.Reset({DomainKv(kUuid1, "a", 5), DomainKv(kUuid2, "b", 6)}, 6);
  EXPECT_EQ(DomainsElsewhere(view, "a", &cursor), (Elsewhere{{kUuid2, "b"}}));
  EXPECT_EQ(cursor, 6);
  EXPECT_TRUE(DomainsElsewhere(view, "a", &cursor).empty());  // nothing new

  // kUuid1 migrates to c; kUuid3 appears on a (ours: not reported).
  view.Apply({Put(DomainKv(kUuid1, "c", 7)), Put(DomainKv(kUuid3, "a", 8))});
  EXPECT_EQ(DomainsElsewhere(view, "a", &cursor), (Elsewhere{{kUuid1, "c"}}));
  EXPECT_EQ(cursor, 8);
  // Claimed elsewhere, then back here within one look: not reported.
  view.Apply({Put(DomainKv(kUuid3, "b", 9)), Put(DomainKv(kUuid3, "a", 10))});
  EXPECT_TRUE(DomainsElsewhere(view, "a", &cursor).empty());
}

TEST(DomainsElsewhereTest, AHistoryNoLongerHeldMeansEveryDomainAgain) {
  FleetView::Limits limits;
  limits.max_history = 2;
  FleetView view(kPrefix, limits, nullptr);
  view.Reset({DomainKv(kUuid1, "b", 5)}, 5);
  int64_t cursor = 0;
  EXPECT_EQ(DomainsElsewhere(view, "a", &cursor), (Elsewhere{{kUuid1, "b"}}));
  view.Apply({Put(DomainKv(kUuid2, "a", 6)), Put(DomainKv(kUuid3, "a", 7)),
              Put(DomainKv(kUuid2, "c", 8))});
  // Revision 5's successors are partly gone from the history: all of them.
  EXPECT_EQ(DomainsElsewhere(view, "a", &cursor), (Elsewhere{{kUuid1, "b"}, {kUuid2, "c"}}));
  EXPECT_EQ(cursor, 8);
}

}  // namespace
}  // namespace fleet
}  // namespace xenchan
