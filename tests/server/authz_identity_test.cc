// Unit tests of caller identification: principals from client certificates
// (made at test time with openssl) and the Unix peer registry behind the
// `fd:N` peers of xenchand's own Unix listener.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/identity.h"
#include "server/tls_identity.h"
#include "tests/common/files.h"
#include "tests/server/test_pki.h"

namespace xenchan {
namespace server {
namespace {

using testcommon::ReadFileOrEmpty;

class CertificateIdentityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char dir[] = "/tmp/xc-pki-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    auto pki = servertest::MakeTestPki(dir);
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = new servertest::TestPki(*pki);
  }
  static void TearDownTestSuite() {
    if (pki_ != nullptr) {
      const std::string command = "rm -rf '" + pki_->dir + "'";
      (void)!system(command.c_str());
    }
    delete pki_;
    pki_ = nullptr;
  }
  static std::string Principals(const std::string& client) {
    auto id = IdentityFromCertificatePem(ReadFileOrEmpty(pki_->File(client + ".pem")));
    EXPECT_TRUE(id.ok()) << client << ": " << id.status();
    return id.ok() ? id->ToString() : "";
  }
  static servertest::TestPki* pki_;
};
servertest::TestPki* CertificateIdentityTest::pki_ = nullptr;

TEST_F(CertificateIdentityTest, SansWinOverTheCommonName) {
  EXPECT_EQ(Principals("uri"), "spiffe://xenchan.test/ctl");
  EXPECT_EQ(Principals("dns"), "dns:ctl.example.org");
  EXPECT_EQ(Principals("both"), "uri:urn:xenchan:ops,dns:ops.example.org");
  EXPECT_EQ(Principals("cn"), "cn:provisioner");
  // The server certificate's IP SAN is not a principal; its DNS SAN is.
  EXPECT_EQ(Principals("server"), "dns:localhost");
}

TEST_F(CertificateIdentityTest, GarbageIsRefused) {
  EXPECT_FALSE(IdentityFromCertificatePem("").ok());
  EXPECT_FALSE(IdentityFromCertificatePem("not a certificate").ok());
  std::string pem = ReadFileOrEmpty(pki_->File("uri.pem"));
  pem[pem.size() / 2] ^= 0x55;            // a flipped byte in the base64 body
  (void)IdentityFromCertificatePem(pem);  // either outcome; it must not crash
  pem.resize(pem.size() / 2);             // truncated
  EXPECT_FALSE(IdentityFromCertificatePem(pem).ok());
  EXPECT_FALSE(IdentityFromCertificatePem(std::string(kMaxCertificatePemBytes + 1, 'A')).ok());
}

TEST(UnixPeerRegistryTest, IdentifiesRegisteredSocketsOnly) {
  UnixPeerRegistry registry;
  int a[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
  ASSERT_TRUE(registry.Register(a[0]).ok());
  auto id = registry.Lookup(a[0]);
  ASSERT_TRUE(id.has_value());
  EXPECT_THAT(id->ToString(), ::testing::HasSubstr(absl::StrCat("unix:uid=", getuid())));
  EXPECT_THAT(id->ToString(), ::testing::HasSubstr(absl::StrCat("unix:gid=", getgid())));
  EXPECT_FALSE(registry.Lookup(a[1]).has_value());  // never registered
  EXPECT_FALSE(registry.Lookup(-1).has_value());
  // The number is reused by another socket we did not register: nobody.
  const int number = a[0];
  close(a[0]);
  int b[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
  if (b[0] != number) {
    ASSERT_EQ(dup2(b[0], number), number);
    close(b[0]);
    b[0] = number;
  }
  EXPECT_FALSE(registry.Lookup(number).has_value());
  // Registering it replaces the old record.
  ASSERT_TRUE(registry.Register(number).ok());
  EXPECT_TRUE(registry.Lookup(number).has_value());
  EXPECT_EQ(registry.size(), 1u);
  // Not a socket: refused.
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  EXPECT_FALSE(registry.Register(p[0]).ok());
  close(p[0]);
  close(p[1]);
  close(a[1]);
  close(b[0]);
  close(b[1]);
}

}  // namespace
}  // namespace server
}  // namespace xenchan
