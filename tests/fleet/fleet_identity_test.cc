// The certificate identity a host advertises in its fleet record
// (server/fleet/fleet.h, AdvertisedIdentity): the --fleet-identity given,
// else the first DNS SAN of the server certificate, else none; a name that
// is no DNS name and an unreadable certificate are errors at start.
#include <string>

#include "gtest/gtest.h"
#include "server/config.h"
#include "server/fleet/fleet.h"
#include "tests/common/files.h"
#include "tests/server/test_pki.h"

namespace xenchan {
namespace fleet {
namespace {

class FleetIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = servertest::MakeTestPki(testcommon::MakeTempDir("pki"));
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
  }
  servertest::TestPki pki_;
};

TEST_F(FleetIdentityTest, TheFirstDnsSanOfTheServerCertificate) {
  server::ServerConfig config;
  config.tls_cert = pki_.File("server.pem");  // SAN DNS:localhost, IP:127.0.0.1
  auto identity = AdvertisedIdentity(config);
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ(*identity, "localhost");
  config.tls_cert = pki_.File("dns.pem");  // SAN DNS:Ctl.Example.Org
  EXPECT_EQ(*AdvertisedIdentity(config), "ctl.example.org");
}

TEST_F(FleetIdentityTest, NoneWithoutTlsOrWithoutADnsSan) {
  server::ServerConfig config;
  EXPECT_EQ(*AdvertisedIdentity(config), "");
  config.tls_cert = pki_.File("cn.pem");  // no SAN at all
  EXPECT_EQ(*AdvertisedIdentity(config), "");
  config.tls_cert = pki_.File("uri.pem");  // a URI SAN only
  EXPECT_EQ(*AdvertisedIdentity(config), "");
}

TEST_F(FleetIdentityTest, TheFlagWinsAndMustBeADnsName) {
  server::ServerConfig config;
  config.tls_cert = pki_.File("server.pem");
  config.fleet_identity = "host-a.fleet.example.org";
  EXPECT_EQ(*AdvertisedIdentity(config), "host-a.fleet.example.org");
  for (const char* bad : {"Host-A.example.org", "host a", ".example.org", "-x", "x\n"}) {
    config.fleet_identity = bad;
    EXPECT_EQ(AdvertisedIdentity(config).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
  config.fleet_identity = std::string(254, 'a');
  EXPECT_EQ(AdvertisedIdentity(config).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(FleetIdentityTest, AnUnreadableOrBrokenCertificateIsAnError) {
  server::ServerConfig config;
  config.tls_cert = pki_.File("no-such.pem");
  EXPECT_EQ(AdvertisedIdentity(config).status().code(), absl::StatusCode::kNotFound);
  config.tls_cert = pki_.File("server.key");  // not a certificate
  EXPECT_EQ(AdvertisedIdentity(config).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fleet
}  // namespace xenchan
