// The Python SDK end to end: a real xensim, the real xenchand on it
// (--platform=sim), a simulated guest running the real xenchan-agent on a
// channel xenchand hot-added, and the SDK's example
// (clients/python/examples/list_and_call.py) run by Debian's /usr/bin/python3
// (python3-grpcio, python3-protobuf) with the Bazel-assembled SDK package on
// PYTHONPATH. It must list the channel and get the agent's pong.
//
// The agent is started once the channel is connected and the test waits for
// its "opened ... (raw)" log line before the example runs, so the ping cannot
// reach the cooked tty (clients/agent/README.md, "A known window").
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/lib/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"
#include "tests/server/xenchand_process.h"
#include "tests/sim/xensim_process.h"

namespace xenchan {
namespace {

using servertest::XenchandProcess;
using simtest::ProcessResult;
using simtest::RunProcess;
using simtest::XensimProcess;
using ::testing::HasSubstr;

constexpr char kGuest[] = "vm1";
constexpr char kChannel[] = "org.xenchan.agent.0";

// xenchan-agent as a child, its stderr on a pipe.
class Agent {
 public:
  explicit Agent(const std::vector<std::string>& args) {
    int err[2];
    if (pipe2(err, O_CLOEXEC) != 0) return;
    std::vector<std::string> argv = {testcommon::RunfilePath("clients/agent/xenchan-agent")};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ == 0) {
      dup2(err[1], 2);
      std::vector<char*> a;
      for (auto& s : argv) a.push_back(s.data());
      a.push_back(nullptr);
      execv(a[0], a.data());
      _exit(127);
    }
    close(err[1]);
    err_ = err[0];
  }
  ~Agent() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    if (err_ >= 0) close(err_);
  }
  // Reads its log until it contains `want` (bounded by `timeout`).
  bool WaitForLog(const std::string& want, absl::Duration timeout = absl::Seconds(30)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!absl::StrContains(log_, want)) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration() || err_ < 0) return false;
      pollfd p{err_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(err_, buf, sizeof(buf));
      if (n <= 0) return false;
      log_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }
  const std::string& log() const { return log_; }

 private:
  pid_t pid_ = -1;
  int err_ = -1;
  std::string log_;
};

TEST(PythonSdkEndToEnd, ExampleListsTheChannelAndTheAgentAnswersPing) {
  ASSERT_EQ(access("/usr/bin/python3", X_OK), 0) << "Debian's python3 is required";
  auto sim = XensimProcess::Start();
  ASSERT_TRUE(sim.ok()) << sim.status();
  ASSERT_TRUE((*sim)->CreateDomain(kGuest).ok());
  // A second guest with a channel of another name: listed, not pinged.
  ASSERT_TRUE((*sim)->CreateDomain("vm2").ok());
  auto server = XenchandProcess::Start((*sim)->state_dir(), (*sim)->scratch_dir() + "/x.sock");
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = client::Client::Connect((*server)->unix_target());
  ASSERT_TRUE(client.ok());
  for (const auto& [guest, id] : std::vector<std::pair<std::string, std::string>>{
           {kGuest, kChannel}, {"vm2", "org.example.other"}}) {
    v1::CreateChannelRequest req;
    req.set_parent("domains/" + guest);
    req.set_channel_id(id);
    req.set_wait_until_connected(true);
    auto ch = (*client)->CreateChannel(req, absl::Seconds(25));
    ASSERT_TRUE(ch.ok()) << ch.status();
  }
  const std::string target_root = testcommon::MakeTempDir("target");
  ASSERT_FALSE(target_root.empty());
  Agent agent(
      {"--root", (*sim)->guest_root(kGuest), "--target-root", target_root, "--no-wait-connected"});
  ASSERT_TRUE(agent.WaitForLog("(raw)")) << agent.log();

  const std::string sdk_dir = testcommon::RunfilePath("clients/python/sdk");
  ProcessResult r = RunProcess(
      {"/usr/bin/python3", testcommon::RunfilePath("clients/python/examples/list_and_call.py"),
       "--target", (*server)->unix_target(), "--timeout", "20"},
      {{"PYTHONPATH", sdk_dir}, {"PYTHONDONTWRITEBYTECODE", "1"}}, absl::Seconds(90));
  EXPECT_EQ(r.exit_code, 0) << "stdout:\n"
                            << r.out << "stderr:\n"
                            << r.err << "agent:\n"
                            << agent.log();
  auto domain = (*client)->GetDomain(std::string("domains/") + kGuest);
  ASSERT_TRUE(domain.ok());
  const std::string name = absl::StrCat("domains/", domain->uuid(), "/channels/", kChannel);
  // The listing: both channels, ring transport, connected.
  EXPECT_THAT(r.out, ::testing::ContainsRegex(name + " +TRANSPORT_RING +CHANNEL_STATE_CONNECTED"));
  EXPECT_THAT(r.out, HasSubstr("/channels/org.example.other "));
  // The agent's reply, as the example prints it (json.dumps of the reply).
  EXPECT_THAT(r.out, HasSubstr(name + ": {\"ok\": true, \"op\": \"pong\""));
  EXPECT_THAT(r.out, HasSubstr("\"agent\": \"xenchan-agent\""));

  // The example fails usefully when nothing serves the target.
  ProcessResult down = RunProcess(
      {"/usr/bin/python3", testcommon::RunfilePath("clients/python/examples/list_and_call.py"),
       "--target", "unix://" + (*sim)->scratch_dir() + "/nothing.sock", "--timeout", "2"},
      {{"PYTHONPATH", sdk_dir}, {"PYTHONDONTWRITEBYTECODE", "1"}}, absl::Seconds(60));
  EXPECT_EQ(down.exit_code, 2) << down.out << down.err;
  EXPECT_THAT(down.err, HasSubstr("cannot reach xenchand"));
  EXPECT_EQ((*server)->Stop(), 0) << (*server)->log();
}

}  // namespace
}  // namespace xenchan
