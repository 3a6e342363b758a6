// The fleet's key layout and record codec (server/fleet/records.h): what a
// host writes reads back equal, and every kind of hostile or wrong value in
// etcd is refused (bad JSON, unknown fields, oversized, unknown version, ids
// that disagree with the key, values out of range).
#include "server/fleet/records.h"

#include <string>

#include "gtest/gtest.h"

namespace xenchan {
namespace fleet {
namespace {

constexpr char kPrefix[] = "/xenchan/v1/";
constexpr char kUuid[] = "6c4d5d4e-5d7a-4b8e-9a51-2f1e0c9d7b11";

v1::DomainRecord Domain() {
  v1::DomainRecord r;
  r.set_version(1);
  r.set_uuid(kUuid);
  r.set_host_id("host-a");
  r.set_domid(7);
  r.set_name("vm1");
  r.set_state(xenchan::v1::DOMAIN_STATE_RUNNING);
  return r;
}

v1::DeclarationRecord Declaration() {
  v1::DeclarationRecord r;
  r.set_version(1);
  r.set_domain_uuid(kUuid);
  r.set_channel_id("org.xenchan.agent.0");
  r.set_uid("0b1e2c4d-1111-4222-8333-444455556666");
  r.mutable_config()->set_lifetime(xenchan::v1::CHANNEL_LIFETIME_DURABLE);
  r.mutable_config()->set_buffer_limit_bytes(1 << 20);
  r.set_last_devid(3);
  r.set_host_id("host-a");
  return r;
}

TEST(FleetRecords, KeysFollowTheLayout) {
  EXPECT_EQ(HostKey(kPrefix, "host-a"), "/xenchan/v1/hosts/host-a");
  EXPECT_EQ(DomainKey(kPrefix, kUuid), std::string("/xenchan/v1/domains/") + kUuid);
  EXPECT_EQ(DeclarationKey(kPrefix, kUuid, "org.x.0"),
            std::string("/xenchan/v1/declarations/") + kUuid + "/org.x.0");
  EXPECT_TRUE(ValidatePrefix("/xenchan/v1/").ok());
  for (const char* bad : {"", "/", "xenchan/", "/xenchan", "/a b/", "/a\n/"}) {
    EXPECT_FALSE(ValidatePrefix(bad).ok()) << bad;
  }
  EXPECT_TRUE(ValidateHostId("host-a1").ok());
  for (const char* bad : {"", "-a", "Host", "a/b", "a.b", "a_b"}) {
    EXPECT_FALSE(ValidateHostId(bad).ok()) << bad;
  }
  EXPECT_FALSE(ValidateHostId(std::string(64, 'a')).ok());
}

TEST(FleetRecords, WhatIsWrittenReadsBackEqual) {
  v1::HostRecord host;
  host.set_version(1);
  host.set_host_id("host-a");
  host.set_api_address("10.0.0.1:8443");
  host.set_identity("host-a.xen.example");
  host.set_xenchan_version("0.2.0");
  host.set_started_at_unix_ms(1700000000000);
  auto h = DecodeHost(kPrefix, HostKey(kPrefix, "host-a"), Encode(host));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->SerializeAsString(), host.SerializeAsString());
  auto d = DecodeDomain(kPrefix, DomainKey(kPrefix, kUuid), Encode(Domain()));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->SerializeAsString(), Domain().SerializeAsString());
  const std::string json = Encode(Declaration());
  EXPECT_NE(json.find("CHANNEL_LIFETIME_DURABLE"), std::string::npos) << json;
  auto c = DecodeDeclaration(kPrefix, DeclarationKey(kPrefix, kUuid, "org.xenchan.agent.0"), json);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->SerializeAsString(), Declaration().SerializeAsString());
}

TEST(FleetRecords, HostileValuesAreRefused) {
  const std::string key = DomainKey(kPrefix, kUuid);
  auto refused = [&](const std::string& value) {
    auto r = DecodeDomain(kPrefix, key, value);
    return !r.ok() && r.status().code() == absl::StatusCode::kInvalidArgument &&
           r.status().message().find(key) != std::string::npos;
  };
  EXPECT_TRUE(refused(""));
  EXPECT_TRUE(refused("{"));
  EXPECT_TRUE(refused("[1,2]"));
  EXPECT_TRUE(refused(std::string(kMaxValueBytes + 1, ' ')));
  std::string unknown = Encode(Domain());
  unknown.insert(1, "\"extra\":1,");
  EXPECT_TRUE(refused(unknown));
  auto with = [](auto change) {
    v1::DomainRecord r = Domain();
    change(r);
    return Encode(r);
  };
  EXPECT_TRUE(refused(with([](v1::DomainRecord& r) { r.set_version(2); })));
  EXPECT_TRUE(refused(with([](v1::DomainRecord& r) { r.set_version(0); })));
  EXPECT_TRUE(refused(
      with([](v1::DomainRecord& r) { r.set_uuid("00000000-0000-4000-8000-000000000001"); })));
  EXPECT_TRUE(refused(with([](v1::DomainRecord& r) { r.set_host_id("Host A"); })));
  EXPECT_TRUE(refused(with([](v1::DomainRecord& r) { r.set_domid(0); })));
  EXPECT_TRUE(refused(with([](v1::DomainRecord& r) { r.set_domid(0x7ff0); })));
  EXPECT_TRUE(refused(with([](v1::DomainRecord& r) { r.set_name("a\tb"); })));
  EXPECT_TRUE(refused(with([](v1::DomainRecord& r) { r.set_name(std::string(300, 'n')); })));
  EXPECT_TRUE(refused(
      with([](v1::DomainRecord& r) { r.set_state(xenchan::v1::DOMAIN_STATE_UNSPECIFIED); })));
  // A domain record under another key, or the key of another kind.
  EXPECT_FALSE(DecodeDomain(kPrefix, key + "/x", Encode(Domain())).ok());
  EXPECT_FALSE(DecodeDomain(kPrefix, HostKey(kPrefix, "host-a"), Encode(Domain())).ok());

  const std::string dkey = DeclarationKey(kPrefix, kUuid, "org.xenchan.agent.0");
  auto decl = [](auto change) {
    v1::DeclarationRecord r = Declaration();
    change(r);
    return Encode(r);
  };
  EXPECT_TRUE(DecodeDeclaration(kPrefix, dkey, decl([](auto&) {})).ok());
  for (const std::string& value :
       {decl([](v1::DeclarationRecord& r) { r.set_channel_id("other.0"); }),
        decl([](v1::DeclarationRecord& r) { r.set_uid("not-a-uuid"); }),
        decl([](v1::DeclarationRecord& r) {
          r.mutable_config()->set_lifetime(xenchan::v1::CHANNEL_LIFETIME_INCARNATION);
        }),
        decl([](v1::DeclarationRecord& r) { r.set_last_devid(1u << 20); }),
        decl([](v1::DeclarationRecord& r) { r.set_host_id("-x"); })}) {
    EXPECT_FALSE(DecodeDeclaration(kPrefix, dkey, value).ok()) << value;
  }
  EXPECT_FALSE(
      DecodeDeclaration(kPrefix, DeclarationKey(kPrefix, kUuid, "bad id!"),
                        decl([](v1::DeclarationRecord& r) { r.set_channel_id("bad id!"); }))
          .ok());
}

}  // namespace
}  // namespace fleet
}  // namespace xenchan
