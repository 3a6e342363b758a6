// The base fixture of the integration tests that run the real xenchand
// binary against a real xensim: it owns the environment (xensim's scratch
// and state directories, the simulated domains, xenchand on a Unix socket
// and by default plaintext loopback TCP, a client-library connection, the
// guest ttys the test opened) and tears it down in order, printing
// xenchand's log when the test failed.
//
// A test derives from it, starts what it needs in SetUp:
//
//   class MyTest : public testcommon::XenchanIntegrationTest {
//    protected:
//     void SetUp() override {
//       ASSERT_NO_FATAL_FAILURE(StartXensim({"guest1"}));
//       ASSERT_NO_FATAL_FAILURE(StartServer());
//     }
//   };
//
// and drives it with CreateConnectedChannel, OpenTty and OpenAttach. Tests
// that need xenchand inside the test process use
// tests/server/in_process_server.h instead.
#ifndef XENCHAN_TESTS_COMMON_XENCHAN_INTEGRATION_TEST_H_
#define XENCHAN_TESTS_COMMON_XENCHAN_INTEGRATION_TEST_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "clients/lib/client.h"
#include "gtest/gtest.h"
#include "tests/server/xenchand_process.h"
#include "tests/sim/xensim_process.h"
#include "xenchan/v1/channel_service.pb.h"

namespace xenchan {
namespace testcommon {

// Base gtest fixture; see the file comment. The fixture's members are used
// from the test's thread; threads a test starts must stop before TearDown.
class XenchanIntegrationTest : public ::testing::Test {
 protected:
  // Plaintext loopback TCP, whose callers are unauthenticated.
  static constexpr char kInsecureTcp[] = "insecure-tcp://127.0.0.1:0";

  // Closes the opened ttys, drops the client, stops xenchand (checking a
  // clean exit unless expect_clean_stop_ is false) and prints its log if the
  // test failed; the xensim process goes with the fixture.
  void TearDown() override;

  // Starts `xensim serve` and creates `domains` (running, without
  // channels). Fatal failure if either fails.
  void StartXensim(const std::vector<std::string>& domains = {});

  // Starts xenchand on xensim (StartXensim first) listening on
  // <scratch>/<socket_name> and on `tcp_listen` (empty: no extra TCP
  // listener) with `extra_args`, and connects client_ over the Unix socket
  // with `options`. Fatal failure if it does not start.
  void StartServer(const std::vector<std::string>& extra_args = {},
                   const std::string& tcp_listen = kInsecureTcp,
                   const client::ConnectOptions& options = {},
                   const std::string& socket_name = "x.sock");

  // Stops xenchand (expecting a clean exit) and drops client_, e.g. to
  // restart it with other flags.
  void StopServer();

  // A new client-library connection to `target`; nullptr (and a failure) if
  // it cannot be made.
  std::unique_ptr<client::Client> Connect(const std::string& target,
                                          const client::ConnectOptions& options = {});

  // `domains/{domain}/channels/{id}`.
  static std::string ChannelName(const std::string& domain, const std::string& id);
  // Where the guest's end of the channel appears.
  std::string TtyPath(const std::string& domain, const std::string& id) const;
  // The guest's end of the channel, opened raw (waiting for it to appear);
  // closed at TearDown. -1 (and a failure) if it never appears.
  int OpenTty(const std::string& domain, const std::string& id);

  // Creates RING channel `id` in `domain` with `config` (through `via`,
  // default client_), waiting up to 20 s for the guest to connect. Returns
  // it; on an error or a channel that is not CONNECTED records a failure
  // and returns what it got (an empty Channel on an error).
  v1::Channel CreateConnectedChannel(const std::string& domain, const std::string& id,
                                     const v1::ChannelConfig& config = {},
                                     client::Client* via = nullptr);

  // An Attach open request for `channel` in `role`, reading from `anchor`.
  static v1::AttachRequest AttachOpenRequest(const std::string& channel, v1::SessionRole role,
                                             v1::StartAnchor anchor = v1::START_ANCHOR_UNSPECIFIED);
  // Opens an Attach stream (through `via`, default client_) with `open` and
  // waits for the server's `opened`, stored in `*opened` if given. nullptr
  // (and a failure) if the stream ended instead.
  std::unique_ptr<client::AttachStream> OpenAttach(const v1::AttachRequest& open,
                                                   v1::AttachResponse* opened = nullptr,
                                                   client::Client* via = nullptr);

  // TearDown's settings: whether xenchand must exit 0 when stopped, and how
  // much of the end of its log to print on failure (0: all of it).
  bool expect_clean_stop_ = true;
  size_t log_tail_bytes_ = 0;

  std::unique_ptr<simtest::XensimProcess> sim_;
  std::unique_ptr<servertest::XenchandProcess> server_;
  std::unique_ptr<client::Client> client_;

 private:
  std::vector<int> ttys_;
};

}  // namespace testcommon
}  // namespace xenchan

#endif  // XENCHAN_TESTS_COMMON_XENCHAN_INTEGRATION_TEST_H_
