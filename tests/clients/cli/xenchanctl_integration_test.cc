// xenchanctl end to end: the real CLI binary against the real xenchand and
// xensim, checking output (human and JSON), data both ways, and the exit
// codes scripts rely on.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"
#include "tests/common/io.h"
#include "tests/common/xenchan_integration_test.h"

namespace xenchan {
namespace {

using testcommon::AnswerOneLine;
using testcommon::OpenGuestTty;
using testcommon::ReadExactly;
using testcommon::WriteAll;
using ::testing::HasSubstr;

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

std::string CliPath() { return testcommon::RunfilePath("clients/cli/xenchanctl"); }

// Runs xenchanctl with `args`, feeding `input` on stdin (a pipe), with a
// 60 s bound.
Result RunCli(const std::vector<std::string>& args, const std::string& input = "",
              const std::string& server = "") {
  int in[2], out[2], err[2];
  if (pipe(in) != 0 || pipe(out) != 0 || pipe(err) != 0) return {};
  std::vector<std::string> argv = {CliPath()};
  if (!server.empty()) argv.push_back("--server=" + server);
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
    std::vector<char*> a;
    for (auto& s : argv) a.push_back(s.data());
    a.push_back(nullptr);
    execv(a[0], a.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  std::thread feeder([fd = in[1], input] {
    WriteAll(fd, input);
    close(fd);
  });
  Result r;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0 && absl::Now() < deadline) {
    if (poll(fds, 2, 1000) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
    }
  }
  if (open_fds > 0) kill(pid, SIGKILL);
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  feeder.join();
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

class XenchanctlTest : public testcommon::XenchanIntegrationTest {
 protected:
  void SetUp() override {
    expect_clean_stop_ = false;
    ASSERT_NO_FATAL_FAILURE(StartXensim({"guest1"}));
    ASSERT_NO_FATAL_FAILURE(StartServer());
  }

  Result Ctl(const std::vector<std::string>& args, const std::string& input = "") {
    return RunCli(args, input, server_->unix_target());
  }
};

TEST_F(XenchanctlTest, ManagesChannelsAndMovesData) {
  Result r = Ctl({"list", "--domains"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("guest1"));

  r = Ctl({"create", "guest1", "org.example.cli", "--wait"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("created domains/"));

  r = Ctl({"--output", "json", "get", "guest1/org.example.cli"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"state\":\"CHANNEL_STATE_CONNECTED\""));

  r = Ctl({"list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("org.example.cli"));
  EXPECT_THAT(r.out, HasSubstr("connected"));

  const int tty = OpenGuestTty(TtyPath("guest1", "org.example.cli"));
  ASSERT_GE(tty, 0);
  r = Ctl({"write", "guest1/org.example.cli", "--data", "hello\n", "--ack", "consumed"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("consumed 6 bytes"));
  EXPECT_EQ(ReadExactly(tty, 6), "hello\n");

  // stdin on a pipe is sent as raw bytes.
  r = Ctl({"write", "guest1/org.example.cli"}, std::string("from stdin\n"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ReadExactly(tty, 11), "from stdin\n");

  ASSERT_TRUE(WriteAll(tty, "guest says hi\n"));
  r = Ctl({"read", "guest1/org.example.cli", "--follow", "--max-bytes", "14"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "guest says hi\n");

  std::thread agent([tty] { AnswerOneLine(tty, "ok:"); });
  r = Ctl({"call", "guest1/org.example.cli", "uptime"});
  agent.join();
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "ok:uptime\n");

  // attach on pipes: stdin goes to the guest, the session ends at EOF.
  r = Ctl({"attach", "guest1/org.example.cli"}, "typed\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ReadExactly(tty, 6), "typed\n");

  r = Ctl({"delete", "guest1/org.example.cli", "--force-after", "5s"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("deleted"));
  close(tty);
}

TEST_F(XenchanctlTest, ExitCodesFollowTheStatusClass) {
  EXPECT_EQ(Ctl({}).code, 2);
  EXPECT_EQ(Ctl({"frobnicate"}).code, 2);
  EXPECT_EQ(Ctl({"--output", "yaml", "list"}).code, 2);
  Result r = Ctl({"get", "guest1/org.example.missing"});
  EXPECT_EQ(r.code, 4);
  EXPECT_THAT(r.err, HasSubstr("CHANNEL_NOT_FOUND"));
  r = Ctl({"get", "nosuchdomain"});
  EXPECT_EQ(r.code, 4);
  EXPECT_THAT(r.err, HasSubstr("DOMAIN_NOT_FOUND"));
  r = Ctl({"create", "guest1", "-bad"});
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("INVALID_CHANNEL_ID"));
  ASSERT_EQ(Ctl({"create", "guest1", "org.example.twice"}).code, 0);
  EXPECT_EQ(Ctl({"create", "guest1", "org.example.twice"}).code, 5);
  r = Ctl({"--output", "json", "get", "guest1/org.example.missing"});
  EXPECT_EQ(r.code, 4);
  EXPECT_THAT(r.err, HasSubstr("\"reason\":\"CHANNEL_NOT_FOUND\""));
  // Nothing listens there: UNAVAILABLE.
  r = RunCli({"--timeout", "2s", "list"}, "", "unix://" + sim_->scratch_dir() + "/nobody.sock");
  EXPECT_EQ(r.code, 10) << r.err;
}

}  // namespace
}  // namespace xenchan
