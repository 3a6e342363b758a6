// xenchand's authentication end to end: mutual TLS on TCP (client
// certificates from a CA generated at test time with openssl), identities
// from URI SANs, DNS SANs or the CN, refused handshakes (no certificate, an
// unknown CA, an expired certificate), the Unix socket's SO_PEERCRED
// identity, and the start-up refusals (TCP without TLS settings, plaintext
// off loopback, a bad policy file).
//
// The identity a call was given is observed through PERMISSION_DENIED: the
// policy grants nobody `manage`, and the error names the caller's principals.
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clients/lib/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"
#include "tests/common/xenchan_integration_test.h"
#include "tests/server/test_pki.h"
#include "tests/server/xenchand_process.h"

namespace xenchan {
namespace {

using client::Client;
using client::ReasonOf;
using servertest::TestPki;
using servertest::XenchandProcess;
using ::testing::HasSubstr;

constexpr char kPolicy[] = R"(
# Everyone authenticated may read; nobody may manage.
[identity *]
allow verbs=read domain=* channel=*
)";

class TlsTest : public testcommon::XenchanIntegrationTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartXensim({"guest1"}));
    auto pki = servertest::MakeTestPki(sim_->scratch_dir() + "/pki");
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
    policy_path_ = sim_->scratch_dir() + "/policy.conf";
    ASSERT_TRUE(testcommon::WriteFileAtomically(policy_path_, kPolicy));
  }

  void StartTlsServer() {
    std::vector<std::string> flags = pki_.ServerFlags();
    flags.push_back("--policy=" + policy_path_);
    ASSERT_NO_FATAL_FAILURE(StartServer(flags, "127.0.0.1:0"));
    ASSERT_THAT(server_->log(), HasSubstr("security=mtls"));
  }

  std::unique_ptr<Client> Connect(const std::string& target, client::ConnectOptions options) {
    options.unary_timeout = absl::Seconds(20);
    return XenchanIntegrationTest::Connect(target, options);
  }

  // The principals the server saw for `c`: a create is denied (nobody has
  // `manage`) and the message names the caller.
  std::string WhoAmI(Client& c) {
    v1::CreateChannelRequest req;
    req.set_parent("domains/guest1");
    req.set_channel_id("org.example.whoami");
    auto r = c.CreateChannel(req);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
    EXPECT_EQ(ReasonOf(r.status()), "PERMISSION_DENIED");
    const std::string m(r.status().message());
    return m.substr(0, m.find(" may not "));
  }

  TestPki pki_;
  std::string policy_path_;
};

TEST_F(TlsTest, IdentityFromUriSanDnsSanOrCommonName) {
  StartTlsServer();
  const std::string target = server_->tcp_target();
  struct Case {
    std::string client;
    std::string principals;
  };
  for (const Case& c : std::vector<Case>{
           {"uri", "spiffe://xenchan.test/ctl"},
           {"dns", "dns:ctl.example.org"},  // lower-cased
           {"both", "uri:urn:xenchan:ops,dns:ops.example.org"},
           {"cn", "cn:provisioner"},  // no SAN: the CN
       }) {
    auto client = Connect(target, pki_.ClientOptions(c.client));
    ASSERT_NE(client, nullptr);
    EXPECT_EQ(WhoAmI(*client), c.principals) << c.client;
    // And the read the policy grants every authenticated caller works.
    auto domains = client->ListDomains();
    ASSERT_TRUE(domains.ok()) << c.client << ": " << domains.status();
    EXPECT_EQ(domains->size(), 1u);
  }
}

TEST_F(TlsTest, HandshakesWithoutAValidClientCertificateAreRefused) {
  StartTlsServer();
  const std::string target = server_->tcp_target();
  for (const std::string& bad : {std::string(""), std::string("rogue"), std::string("expired")}) {
    auto client = Connect(target, pki_.ClientOptions(bad));
    ASSERT_NE(client, nullptr);
    auto r = client->ListDomains();
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable)
        << (bad.empty() ? "no client certificate" : bad) << ": " << r.status();
    EXPECT_EQ(ReasonOf(r.status()), "");  // no call reached xenchand
  }
  // Plaintext to the TLS port does not get through either.
  auto plain = Connect(target, {});
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(plain->ListDomains().status().code(), absl::StatusCode::kUnavailable);
  // The server still serves good clients.
  auto good = Connect(target, pki_.ClientOptions("uri"));
  ASSERT_NE(good, nullptr);
  EXPECT_TRUE(good->ListDomains().ok());
  // A client that does not trust the server's CA refuses it.
  client::ConnectOptions wrong_ca = pki_.ClientOptions("uri");
  wrong_ca.tls_ca_file = pki_.File("rogue-ca.pem");
  auto distrustful = Connect(target, wrong_ca);
  ASSERT_NE(distrustful, nullptr);
  EXPECT_EQ(distrustful->ListDomains().status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(TlsTest, UnixSocketCallersAreKnownByTheirUidAndGid) {
  StartTlsServer();
  auto client = Connect(server_->unix_target(), {});
  ASSERT_NE(client, nullptr);
  const std::string who = WhoAmI(*client);
  EXPECT_THAT(who, HasSubstr(absl::StrCat("unix:uid=", getuid())));
  EXPECT_THAT(who, HasSubstr(absl::StrCat("unix:gid=", getgid())));
  // Many connections (fd numbers get reused as they close) keep their
  // identities apart from the TLS ones.
  for (int i = 0; i < 20; ++i) {
    auto unix_client = Connect(server_->unix_target(), {});
    ASSERT_NE(unix_client, nullptr);
    EXPECT_THAT(WhoAmI(*unix_client), HasSubstr(absl::StrCat("unix:uid=", getuid())));
    auto tls_client = Connect(server_->tcp_target(), pki_.ClientOptions("dns"));
    ASSERT_NE(tls_client, nullptr);
    EXPECT_EQ(WhoAmI(*tls_client), "dns:ctl.example.org");
  }
}

TEST_F(TlsTest, RenewedTlsFilesApplyWithoutARestart) {
  // The client CA file is the server's own copy, so it can be replaced.
  const std::string ca = sim_->scratch_dir() + "/clients-ca.pem";
  ASSERT_EQ(system(("cp '" + pki_.File("ca.pem") + "' '" + ca + "'").c_str()), 0);
  std::vector<std::string> flags = {"--tls-cert=" + pki_.File("server.pem"),
                                    "--tls-key=" + pki_.File("server.key"), "--tls-client-ca=" + ca,
                                    "--tls-refresh-interval=1s", "--policy=" + policy_path_};
  ASSERT_NO_FATAL_FAILURE(StartServer(flags, "127.0.0.1:0"));
  const std::string target = server_->tcp_target();
  // Identities work the same with the reloading provider.
  auto uri = Connect(target, pki_.ClientOptions("uri"));
  ASSERT_NE(uri, nullptr);
  EXPECT_EQ(WhoAmI(*uri), "spiffe://xenchan.test/ctl");
  auto rogue = Connect(target, pki_.ClientOptions("rogue"));
  ASSERT_NE(rogue, nullptr);
  EXPECT_EQ(rogue->ListDomains().status().code(), absl::StatusCode::kUnavailable);
  // Trust the second CA too (written aside, renamed into place).
  ASSERT_EQ(system(("cat '" + pki_.File("ca.pem") + "' '" + pki_.File("rogue-ca.pem") + "' > '" +
                    ca + ".new' && mv '" + ca + ".new' '" + ca + "'")
                       .c_str()),
            0);
  absl::Status last;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(30); absl::Now() < deadline;) {
    auto again = Connect(target, pki_.ClientOptions("rogue"));  // a new connection each time
    ASSERT_NE(again, nullptr);
    last = again->ListDomains().status();
    if (last.ok()) break;
    absl::SleepFor(absl::Milliseconds(100));  // the provider re-reads every second
  }
  EXPECT_TRUE(last.ok()) << last;
}

TEST_F(TlsTest, StartIsRefusedForUnsafeOrBadSettings) {
  const std::string sock = sim_->scratch_dir() + "/y.sock";
  // TCP without the TLS settings.
  auto no_tls = XenchandProcess::Start(sim_->state_dir(), sock, {}, "127.0.0.1:0");
  ASSERT_FALSE(no_tls.ok());
  EXPECT_THAT(std::string(no_tls.status().message()), HasSubstr("tls-cert"));
  // Plaintext off loopback.
  auto open = XenchandProcess::Start(sim_->state_dir(), sock, {}, "insecure-tcp://0.0.0.0:0");
  ASSERT_FALSE(open.ok());
  EXPECT_THAT(std::string(open.status().message()), HasSubstr("loopback"));
  // A TLS key that is not PEM.
  std::vector<std::string> bad_key = {"--tls-cert=" + pki_.File("server.pem"),
                                      "--tls-key=" + policy_path_,
                                      "--tls-client-ca=" + pki_.File("ca.pem")};
  auto key = XenchandProcess::Start(sim_->state_dir(), sock, bad_key, "127.0.0.1:0");
  ASSERT_FALSE(key.ok());
  EXPECT_THAT(std::string(key.status().message()), HasSubstr("bad TLS configuration"));
  // A malformed policy file.
  const std::string bad_policy = sim_->scratch_dir() + "/bad.conf";
  ASSERT_TRUE(testcommon::WriteFileAtomically(
      bad_policy, "[identity *]\nallow verbs=read,fly domain=* channel=*\n"));
  auto policy = XenchandProcess::Start(sim_->state_dir(), sock, {"--policy=" + bad_policy}, "");
  ASSERT_FALSE(policy.ok());
  EXPECT_THAT(std::string(policy.status().message()), HasSubstr("bad policy file"));
  EXPECT_THAT(std::string(policy.status().message()), HasSubstr("fly"));
}

}  // namespace
}  // namespace xenchan
