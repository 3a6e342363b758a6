// Tests of Identity construction: which certificate fields and peer
// credentials become principals, and their canonical text.
#include "server/policy/identity.h"

#include "gtest/gtest.h"

namespace xenchan {
namespace server {
namespace policy {
namespace {

TEST(IdentityTest, CertificateSansWinOverCommonName) {
  Identity id = Identity::FromCertificate({"spiffe://example.org/controller"}, {"Ctl.Example.ORG"},
                                          "ignored-cn");
  ASSERT_EQ(id.principals.size(), 2u);
  EXPECT_EQ(id.principals[0].kind, Principal::Kind::kUri);
  EXPECT_EQ(id.principals[0].ToString(), "spiffe://example.org/controller");
  EXPECT_EQ(id.principals[1].kind, Principal::Kind::kDns);
  EXPECT_EQ(id.principals[1].ToString(), "dns:ctl.example.org");
  EXPECT_EQ(id.ToString(), "spiffe://example.org/controller,dns:ctl.example.org");
  EXPECT_TRUE(id.authenticated());
}

TEST(IdentityTest, CommonNameOnlyWithoutSans) {
  Identity id = Identity::FromCertificate({}, {""}, "provisioner");
  ASSERT_EQ(id.principals.size(), 1u);
  EXPECT_EQ(id.principals[0].kind, Principal::Kind::kCommonName);
  EXPECT_EQ(id.ToString(), "cn:provisioner");
}

TEST(IdentityTest, NothingUsableIsAnonymous) {
  Identity id = Identity::FromCertificate({}, {}, "");
  EXPECT_FALSE(id.authenticated());
  EXPECT_EQ(id.ToString(), "anonymous");
}

TEST(IdentityTest, UriWithoutAuthorityIsMarked) {
  // A URI SAN cannot pose as a unix or dns principal in text form either.
  Identity id = Identity::FromCertificate({"unix:uid=0", "urn:example:ctl"}, {}, "");
  ASSERT_EQ(id.principals.size(), 2u);
  EXPECT_EQ(id.principals[0].kind, Principal::Kind::kUri);
  EXPECT_EQ(id.principals[0].ToString(), "uri:unix:uid=0");
  EXPECT_EQ(id.principals[1].ToString(), "uri:urn:example:ctl");
}

TEST(IdentityTest, UnixPeer) {
  Identity id = Identity::FromUnixPeer(1000, {1000, 27, 1000});
  ASSERT_EQ(id.principals.size(), 3u);
  EXPECT_EQ(id.ToString(), "unix:uid=1000,unix:gid=1000,unix:gid=27");
  EXPECT_EQ(id.principals[0].kind, Principal::Kind::kUnixUid);
  EXPECT_EQ(id.principals[2].kind, Principal::Kind::kUnixGid);
  EXPECT_EQ(Identity::FromUnixPeer(0, {}).ToString(), "unix:uid=0");
}

}  // namespace
}  // namespace policy
}  // namespace server
}  // namespace xenchan
