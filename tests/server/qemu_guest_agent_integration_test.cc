// The QEMU guest agent as a real peer: Debian's qemu-ga (package
// qemu-guest-agent) runs inside a simulated guest of a real xensim on the
// channel's tty, and the real xenchand answers `Call`s in the QEMU guest
// agent framing (guest-sync-delimited with the 0xFF marker, then one command
// and one reply), through the generated stub and through `xenchanctl call`.
//
// How qemu-ga is run (unprivileged-friendly, nothing outside temp dirs):
//   qemu-ga -m isa-serial -p <guest root>/dev/xen-channel/org.qemu.guest_agent.0
//           -t <tmp>/state -f <tmp>/qemu-ga.pid -l <tmp>/qemu-ga.log -v
//           -b <commands that would act on the machine running the test>
// It does not daemonize without -d. With `-m isa-serial` qemu-ga puts the tty
// in raw mode itself (measured with `stty -a`: -icanon -echo -isig -icrnl
// -ixon -opost, min 1 time 0) and discards input that was pending when it
// opened it, so neither the host nor the guest has to prepare the tty. What a
// host does have to allow for is the moment between the guest's open() and
// that switch: a command arriving then is echoed by the cooked tty or
// flushed. The framing copes (the decoder skips everything before the
// agent's own 0xFF and the matching sync reply), and callers retry a first
// guest-ping with a short deadline until the agent answers, as the tests do.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/lib/client.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"
#include "tests/common/xenchan_integration_test.h"
#include "tests/sim/xensim_process.h"

namespace xenchan {
namespace {

using client::ReasonOf;
using simtest::ProcessResult;
using simtest::RunProcess;
using testcommon::ReadFileOrEmpty;
using ::testing::HasSubstr;

constexpr char kQemuGa[] = "/usr/sbin/qemu-ga";
constexpr char kGuest[] = "guest1";
constexpr char kAgentChannel[] = "org.qemu.guest_agent.0";

// Commands that would change or stop the machine the test runs on (qemu-ga
// acts on its own host, which here is the test machine).
constexpr char kBlockedCommands[] =
    "guest-shutdown,guest-set-time,guest-file-open,guest-file-write,guest-fsfreeze-freeze,"
    "guest-fsfreeze-freeze-list,guest-fsfreeze-thaw,guest-fstrim,guest-suspend-disk,"
    "guest-suspend-ram,guest-suspend-hybrid,guest-set-vcpus,guest-set-user-password,"
    "guest-set-memory-blocks,guest-exec,guest-ssh-add-authorized-keys,"
    "guest-ssh-remove-authorized-keys";

std::string CliPath() { return testcommon::RunfilePath("clients/cli/xenchanctl"); }

// A JSON document as a google.protobuf.Struct (qemu-ga replies are objects).
absl::StatusOr<google::protobuf::Struct> ParseJson(const std::string& text) {
  google::protobuf::Struct out;
  auto s = google::protobuf::util::JsonStringToMessage(text, &out);
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(s.ToString(), ": ", text));
  return out;
}

// qemu-ga as a child process of the test, logging to a file.
class QemuGaProcess {
 public:
  // Starts qemu-ga on `path` (the guest's channel tty). The tty must exist.
  static std::unique_ptr<QemuGaProcess> Start(const std::string& path) {
    auto p = std::unique_ptr<QemuGaProcess>(new QemuGaProcess());
    p->dir_ = testcommon::MakeTempDir("qga");
    if (p->dir_.empty()) return nullptr;
    if (mkdir((p->dir_ + "/state").c_str(), 0700) != 0) return nullptr;
    std::vector<std::string> args = {kQemuGa,
                                     "-m",
                                     "isa-serial",
                                     "-p",
                                     path,
                                     "-t",
                                     p->dir_ + "/state",
                                     "-f",
                                     p->dir_ + "/qemu-ga.pid",
                                     "-l",
                                     p->log_path(),
                                     "-v",
                                     "-b",
                                     kBlockedCommands};
    p->pid_ = fork();
    if (p->pid_ == 0) {
      const int null = open("/dev/null", O_RDWR);
      dup2(null, 0);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    return p->pid_ > 0 ? std::move(p) : nullptr;
  }

  ~QemuGaProcess() { Stop(); }

  // SIGTERM and wait; the exit status (128 + signal if killed).
  int Stop() {
    if (pid_ <= 0) return exit_code_;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_code_;
  }

  // True while it has not exited on its own.
  bool Running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return false;
    }
    return true;
  }

  std::string log_path() const { return dir_ + "/qemu-ga.log"; }
  std::string log() const { return ReadFileOrEmpty(log_path()); }

 private:
  QemuGaProcess() = default;
  std::string dir_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

class QemuGuestAgentTest : public testcommon::XenchanIntegrationTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(access(kQemuGa, X_OK), 0)
        << kQemuGa << " is missing: install qemu-guest-agent (scripts/setup.sh does)";
    ASSERT_NO_FATAL_FAILURE(StartXensim());
  }

  void TearDown() override {
    if (agent_ != nullptr && HasFailure()) std::cerr << "qemu-ga log:\n" << agent_->log();
    agent_.reset();
    XenchanIntegrationTest::TearDown();
  }

  std::string TtyPath() const { return XenchanIntegrationTest::TtyPath(kGuest, kAgentChannel); }

  // Waits for the tty to appear in the guest, then starts qemu-ga on it.
  void StartAgent() {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    struct stat st;
    while (stat(TtyPath().c_str(), &st) != 0) {
      ASSERT_LT(absl::Now(), deadline) << TtyPath() << " never appeared";
      // Bounded wait for the guest's udev stand-in: poll the path on a short
      // interval (there is no event to wait on from outside the guest).
      absl::SleepFor(absl::Milliseconds(20));
    }
    agent_ = QemuGaProcess::Start(TtyPath());
    ASSERT_NE(agent_, nullptr);
  }

  static v1::CallRequest AgentCall(const std::string& command, bool with_framing) {
    v1::CallRequest call;
    call.set_channel(absl::StrCat("domains/", kGuest, "/channels/", kAgentChannel));
    call.set_request(absl::StrCat("{\"execute\":\"", command, "\"}"));
    if (with_framing) call.mutable_framing()->mutable_qemu_guest_agent();
    return call;
  }

  // guest-ping with a short deadline until the agent answers (it may not have
  // opened the tty yet: see the file comment); the first reply.
  absl::StatusOr<v1::CallResponse> PingUntilAnswered(bool with_framing) {
    const absl::Time deadline = absl::Now() + absl::Seconds(40);
    absl::Status last;
    while (absl::Now() < deadline) {
      if (!agent_->Running()) {
        return absl::InternalError("qemu-ga exited:\n" + agent_->log());
      }
      auto r = client_->Call(AgentCall("guest-ping", with_framing), absl::Seconds(2));
      if (r.ok()) return r;
      last = r.status();
      if (r.status().code() != absl::StatusCode::kDeadlineExceeded) return r;
    }
    return last;
  }

  ProcessResult Ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {CliPath(), "--server=" + server_->unix_target(),
                                     "--timeout=20s"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv, {}, absl::Seconds(60));
  }

  std::unique_ptr<QemuGaProcess> agent_;
};

// xenchand hot-adds the channel with the QEMU guest agent as its default
// framing; Calls without a framing use it.
TEST_F(QemuGuestAgentTest, HotAddedChannelAnswersPingAndInfo) {
  ASSERT_TRUE(sim_->CreateDomain(kGuest).ok());
  StartServer();
  v1::ChannelConfig config;
  config.mutable_default_framing()->mutable_qemu_guest_agent();
  const v1::Channel ch = CreateConnectedChannel(kGuest, kAgentChannel, config);
  ASSERT_FALSE(HasFailure());
  EXPECT_TRUE(ch.config().default_framing().has_qemu_guest_agent()) << ch.DebugString();
  StartAgent();

  auto ping = PingUntilAnswered(/*with_framing=*/false);
  ASSERT_TRUE(ping.ok()) << ping.status();
  auto pong = ParseJson(ping->response());
  ASSERT_TRUE(pong.ok()) << pong.status();
  ASSERT_TRUE(pong->fields().contains("return")) << ping->response();
  EXPECT_TRUE(pong->fields().at("return").has_struct_value()) << ping->response();
  EXPECT_EQ(pong->fields().at("return").struct_value().fields_size(), 0) << ping->response();

  auto info = client_->Call(AgentCall("guest-info", false), absl::Seconds(20));
  ASSERT_TRUE(info.ok()) << info.status();
  auto parsed = ParseJson(info->response());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const auto& ret = parsed->fields().at("return").struct_value();
  ASSERT_TRUE(ret.fields().contains("version")) << info->response();
  EXPECT_FALSE(ret.fields().at("version").string_value().empty());
  // The blocked commands are reported disabled: the reply really comes from
  // this qemu-ga with these flags.
  bool saw_shutdown_disabled = false;
  for (const auto& c : ret.fields().at("supported_commands").list_value().values()) {
    const auto& f = c.struct_value().fields();
    if (f.at("name").string_value() == "guest-shutdown") {
      saw_shutdown_disabled = !f.at("enabled").bool_value();
    }
  }
  EXPECT_TRUE(saw_shutdown_disabled) << info->response();
  EXPECT_GT(info->response_offset(), ping->response_offset());
  EXPECT_GT(info->request_offset(), ping->request_offset());

  // A command the agent refuses is still one framed reply.
  auto refused = client_->Call(AgentCall("guest-shutdown", false), absl::Seconds(20));
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_THAT(refused->response(), HasSubstr("\"error\"")) << refused->response();

  // Resynchronisation: a half-sent command leaves qemu-ga's parser inside a
  // JSON object and gets no reply (GUEST_TIMEOUT); the next Call's 0xFF
  // resets the parser and the sync id skips anything stale.
  v1::CallRequest broken = AgentCall("guest-ping", false);
  broken.set_request("{\"execute\": \"guest-ping\", \"arguments\": {");
  auto stuck = client_->Call(broken, absl::Seconds(2));
  EXPECT_EQ(stuck.status().code(), absl::StatusCode::kDeadlineExceeded) << stuck.status();
  EXPECT_EQ(ReasonOf(stuck.status()), "GUEST_TIMEOUT");
  auto again = client_->Call(AgentCall("guest-ping", false), absl::Seconds(20));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->response(), "{\"return\": {}}");

  // A reply that is not JSON at all from qemu-ga's point of view.
  v1::CallRequest garbage = AgentCall("guest-ping", false);
  garbage.set_request("garbage");
  auto parse_error = client_->Call(garbage, absl::Seconds(20));
  ASSERT_TRUE(parse_error.ok()) << parse_error.status();
  EXPECT_THAT(parse_error->response(), HasSubstr("GenericError"));
  ASSERT_TRUE(client_->Call(AgentCall("guest-ping", false), absl::Seconds(20)).ok());

  // Through the CLI, with and without naming the framing.
  const std::string spec = absl::StrCat(kGuest, "/", kAgentChannel);
  ProcessResult cli = Ctl({"call", spec, "{\"execute\":\"guest-ping\"}", "--framing", "qga"});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(cli.out, "{\"return\": {}}\n");
  cli = Ctl({"call", spec, "{\"execute\":\"guest-info\"}"});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_THAT(cli.out, HasSubstr("\"version\""));
  cli = Ctl({"--output", "json", "call", spec, "{\"execute\":\"guest-ping\"}", "--framing",
             "qemu-guest-agent"});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  auto json = ParseJson(cli.out);
  ASSERT_TRUE(json.ok()) << json.status();
  std::string decoded;
  ASSERT_TRUE(absl::Base64Unescape(json->fields().at("response").string_value(), &decoded));
  EXPECT_EQ(decoded, "{\"return\": {}}");

  EXPECT_TRUE(agent_->Running()) << agent_->log();
  EXPECT_EQ(agent_->Stop(), 0) << agent_->log();
}

// The channel is declared in the domain's configuration (xl.cfg, served by
// the simulated QEMU on a Unix socket); xenchand reaches it through QEMU, and
// the framing is named per call.
TEST_F(QemuGuestAgentTest, ToolstackChannelAnswersThroughQemu) {
  const std::string qemu_socket = sim_->scratch_dir() + "/qga.sock";
  ASSERT_TRUE(sim_->CreateDomain(kGuest, {absl::StrCat("name=", kAgentChannel,
                                                       ",connection=socket,path=", qemu_socket)})
                  .ok());
  StartServer();
  StartAgent();
  auto ch = client_->GetChannel(absl::StrCat("domains/", kGuest, "/channels/", kAgentChannel));
  ASSERT_TRUE(ch.ok()) << ch.status();
  EXPECT_EQ(ch->transport(), v1::TRANSPORT_TOOLSTACK_SOCKET);

  auto ping = PingUntilAnswered(/*with_framing=*/true);
  ASSERT_TRUE(ping.ok()) << ping.status();
  EXPECT_EQ(ping->response(), "{\"return\": {}}");
  auto info = client_->Call(AgentCall("guest-info", true), absl::Seconds(20));
  ASSERT_TRUE(info.ok()) << info.status();
  auto parsed = ParseJson(info->response());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(
      parsed->fields().at("return").struct_value().fields().at("version").string_value().empty());

  ProcessResult cli = Ctl({"call", absl::StrCat(kGuest, "/", kAgentChannel),
                           "{\"execute\":\"guest-ping\"}", "--framing", "qga"});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(cli.out, "{\"return\": {}}\n");
}

}  // namespace
}  // namespace xenchan
