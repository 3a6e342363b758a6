// Test helper: a throw-away PKI for the mTLS tests, generated at test time by
// make_test_certs.sh with the openssl CLI (see that script for the files and
// the identities each client certificate carries).
#ifndef XENCHAN_TESTS_SERVER_TEST_PKI_H_
#define XENCHAN_TESTS_SERVER_TEST_PKI_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clients/lib/client.h"

namespace xenchan {
namespace servertest {

struct TestPki {
  std::string dir;
  std::string File(const std::string& name) const { return dir + "/" + name; }
  // xenchand flags for a TLS listener with this PKI's server cert and CA.
  std::vector<std::string> ServerFlags() const {
    return {"--tls-cert=" + File("server.pem"), "--tls-key=" + File("server.key"),
            "--tls-client-ca=" + File("ca.pem")};
  }
  // Client options presenting `<client>.pem` (empty: no client certificate).
  client::ConnectOptions ClientOptions(const std::string& client) const {
    client::ConnectOptions o;
    o.tls_ca_file = File("ca.pem");
    if (!client.empty()) {
      o.tls_cert_file = File(client + ".pem");
      o.tls_key_file = File(client + ".key");
    }
    return o;
  }
};

// Generates the PKI into `dir` (created). INTERNAL with the script's output
// if openssl fails.
absl::StatusOr<TestPki> MakeTestPki(const std::string& dir);

}  // namespace servertest
}  // namespace xenchan

#endif  // XENCHAN_TESTS_SERVER_TEST_PKI_H_
