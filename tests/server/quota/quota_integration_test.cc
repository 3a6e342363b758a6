// Quotas through the real xenchand (simulated host): a caller over its
// stream quota gets RESOURCE_EXHAUSTED with reason QUOTA_EXCEEDED (and a
// LimitExceeded naming streams_per_identity) while another caller is not
// affected; the refusal is counted in /metrics; a stream that ends gives its
// quota back. The two callers are the Unix-socket administrator (our uid)
// and an mTLS client (dns:ctl.example.org, tests/server/make_test_certs.sh).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "clients/lib/client.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"
#include "tests/common/xenchan_integration_test.h"
#include "tests/server/test_pki.h"
#include "tests/server/xenchand_process.h"
#include "tests/sim/xensim_process.h"

namespace xenchan {
namespace {

using client::AttachStream;
using client::Client;
using client::MetadataOf;
using client::ReasonOf;
using servertest::XenchandProcess;
using simtest::XensimProcess;

constexpr char kChannel[] = "domains/guest1/channels/org.example.open";

std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[65536];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return out;
}

// The value of the sample line starting with `prefix` (-1 if absent).
double Sample(const std::string& text, const std::string& prefix) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, prefix)) continue;
    double v;
    if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &v)) return v;
  }
  return -1;
}

// client_ is the admin: the test's own uid on the Unix socket, granted
// everything by the policy.
class QuotaIntegrationTest : public testcommon::XenchanIntegrationTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StartXensim({"guest1"}));
    auto pki = servertest::MakeTestPki(sim_->scratch_dir() + "/pki");
    ASSERT_TRUE(pki.ok()) << pki.status();
    const std::string policy = sim_->scratch_dir() + "/policy.conf";
    ASSERT_TRUE(testcommon::WriteFileAtomically(
        policy, absl::StrCat("[identity unix:uid=", getuid(), "]\n",
                             "allow verbs=* domain=* channel=*\n"
                             "[identity dns:ctl.example.org]\n"
                             "allow verbs=read domain=* channel=org.example.open\n")));
    std::vector<std::string> flags = pki->ServerFlags();
    flags.push_back("--policy=" + policy);
    flags.push_back("--quota-streams-per-identity=2");
    flags.push_back("--quota-queued-bytes=4096");
    flags.push_back("--metrics-listen=127.0.0.1:0");
    ASSERT_NO_FATAL_FAILURE(StartServer(flags, "127.0.0.1:0", WithTimeouts({})));
    reader_ = Connect(server_->tcp_target(), pki->ClientOptions("dns"));
    ASSERT_TRUE(reader_);
    CreateConnectedChannel("guest1", "org.example.open");
    ASSERT_FALSE(HasFailure());
  }

  void TearDown() override {
    streams_.clear();
    reader_.reset();
    XenchanIntegrationTest::TearDown();
  }

  static client::ConnectOptions WithTimeouts(client::ConnectOptions options) {
    options.unary_timeout = absl::Seconds(20);
    options.stream_timeout = absl::Seconds(30);
    return options;
  }

  std::unique_ptr<Client> Connect(const std::string& target, client::ConnectOptions options) {
    return XenchanIntegrationTest::Connect(target, WithTimeouts(options));
  }

  // Opens an observer Attach stream; OK once the server answered `opened`,
  // else the stream's final status.
  absl::Status Observe(Client& c) {
    std::unique_ptr<AttachStream> s = c.Attach(absl::Seconds(60));
    v1::AttachRequest open;
    open.mutable_open()->set_channel(kChannel);
    open.mutable_open()->set_role(v1::SESSION_ROLE_OBSERVER);
    v1::AttachResponse first;
    if (!s->Send(open) || !s->Receive(&first)) return s->Finish();
    streams_.push_back(std::move(s));
    return absl::OkStatus();
  }

  int MetricsPort() {
    for (absl::string_view line : absl::StrSplit(server_->log(), '\n')) {
      if (!absl::StrContains(line, "msg=metrics")) continue;
      const size_t path = line.find(" path=");
      const size_t colon = line.rfind(':', path);
      int port = 0;
      if (colon != absl::string_view::npos &&
          absl::SimpleAtoi(line.substr(colon + 1, path - colon - 1), &port)) {
        return port;
      }
    }
    return 0;
  }

  std::unique_ptr<Client> reader_;
  std::vector<std::unique_ptr<AttachStream>> streams_;
};

TEST_F(QuotaIntegrationTest, CallerOverItsStreamQuotaIsRefusedOthersAreNot) {
  ASSERT_TRUE(Observe(*client_).ok());
  ASSERT_TRUE(Observe(*client_).ok());
  const absl::Status over = Observe(*client_);
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted) << over;
  EXPECT_EQ(ReasonOf(over), "QUOTA_EXCEEDED") << over;
  EXPECT_EQ(MetadataOf(over)["limit"], "streams_per_identity") << over;
  // Calls other than streams are not affected by the stream quota.
  EXPECT_TRUE(client_->GetChannel(kChannel).ok());
  // Another caller is unaffected.
  const absl::Status other = Observe(*reader_);
  EXPECT_TRUE(other.ok()) << other;

  // The refusal is counted.
  const int port = MetricsPort();
  ASSERT_GT(port, 0) << server_->log();
  const std::string text = HttpGet(port, "/metrics");
  EXPECT_EQ(Sample(text, "xenchan_quota_exceeded_total{limit=\"streams_per_identity\"}"), 1)
      << text;
  EXPECT_GT(Sample(text, "xenchan_memory_budget_limit_bytes"), 0) << text;
  EXPECT_LE(Sample(text, "xenchan_memory_budget_peak_bytes"),
            Sample(text, "xenchan_memory_budget_limit_bytes"));

  // A stream that ends gives its quota back (the release follows the
  // stream's end on the server, so retry until then).
  streams_.front()->Cancel();
  absl::Status again;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  do {
    again = Observe(*client_);
  } while (!again.ok() && ReasonOf(again) == "QUOTA_EXCEEDED" && absl::Now() < deadline);
  EXPECT_TRUE(again.ok()) << again;
}

// A write that would put more of a caller's bytes in the server (accepted,
// not yet delivered) than quota-queued-bytes is refused with QUOTA_EXCEEDED;
// writes within it go through, and delivered bytes leave the quota.
TEST_F(QuotaIntegrationTest, QueuedBytesQuotaRefusesAnOversizeWrite) {
  v1::WriteRequest first;
  first.set_channel(kChannel);
  first.set_data(std::string(8192, 'x'));
  auto over = client_->Write(
      first, [](std::string*) { return false; }, absl::Seconds(30));
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted) << over.status();
  EXPECT_EQ(ReasonOf(over.status()), "QUOTA_EXCEEDED") << over.status();
  EXPECT_EQ(MetadataOf(over.status())["limit"], "queued_bytes_per_identity") << over.status();
  // Within the quota, several times over: a stream's bytes are given back
  // once delivered or when the stream ends (which follows its OK on the
  // server: retry until then).
  first.set_data(std::string(3000, 'y'));
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<v1::WriteResponse> ok;
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    do {
      ok = client_->Write(
          first, [](std::string*) { return false; }, absl::Seconds(30));
    } while (!ok.ok() && ReasonOf(ok.status()) == "QUOTA_EXCEEDED" && absl::Now() < deadline);
    ASSERT_TRUE(ok.ok()) << ok.status();
    EXPECT_EQ(ok->progress().accepted_bytes(), 3000u);
  }
  const int port = MetricsPort();
  ASSERT_GT(port, 0) << server_->log();
  EXPECT_GE(Sample(HttpGet(port, "/metrics"),
                   "xenchan_quota_exceeded_total{limit=\"queued_bytes_per_identity\"}"),
            1);
}

// A refusal because the memory budget is full has its own reason (not
// NO_FREE_DEVID, which a full budget used to be reported as): here the
// budget cannot hold even one channel's reserve.
TEST(MemoryBudgetIntegrationTest, CreateChannelOverTheBudgetIsMemoryBudgetExhausted) {
  auto sim = XensimProcess::Start();
  ASSERT_TRUE(sim.ok()) << sim.status();
  ASSERT_TRUE((*sim)->CreateDomain("guest1").ok());
  auto server = XenchandProcess::Start(
      (*sim)->state_dir(), (*sim)->scratch_dir() + "/x.sock",
      {"--memory-budget-bytes=1048576", "--channel-memory-reserve-bytes=2097152"});
  ASSERT_TRUE(server.ok()) << server.status();
  {
    client::ConnectOptions options;
    options.unary_timeout = absl::Seconds(20);
    auto c = Client::Connect((*server)->unix_target(), options);
    ASSERT_TRUE(c.ok()) << c.status();
    v1::CreateChannelRequest req;
    req.set_parent("domains/guest1");
    req.set_channel_id("org.example.big");
    auto created = (*c)->CreateChannel(req, absl::Seconds(30));
    ASSERT_FALSE(created.ok());
    const absl::Status& s = created.status();
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
    EXPECT_EQ(ReasonOf(s), "MEMORY_BUDGET_EXHAUSTED") << s;
    EXPECT_EQ(MetadataOf(s)["limit"], "memory_budget_bytes") << s;
  }
  EXPECT_EQ((*server)->Stop(), 0);
}

}  // namespace
}  // namespace xenchan
