// End-to-end test of the xenchan-agent binary in a simulated guest: `xensim
// serve` runs as a child (XensimProcess), a domain gets a toolstack socket
// channel named org.xenchan.agent.0, the agent runs as a child with
// `--root <guest root> --target-root <tmp>`, and the test talks to it as a
// host would, through the simulated QEMU's Unix socket: hello, ping, facts,
// provision (files checked on disk with their modes), a malformed line, an
// oversize line, and a guest suspend/resume (the tty hangs up; the agent
// reopens the channel by name and answers again). A second test runs the
// real-guest connection wait (sysfs + xenstore watch) against the simulated
// guest's xenstore.
//
// The agent's stderr is read to wait for "opened" before sending: a request
// that arrives between the agent's open() and its switch to raw mode would be
// echoed by the cooked tty (see clients/agent/README.md).
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/platform/xen/lib_xenstore.h"
#include "clients/agent/json.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"
#include "tests/sim/xensim_process.h"

namespace xenchan {
namespace agent {
namespace {

using json::Value;

constexpr absl::Duration kTimeout = absl::Seconds(30);
constexpr char kChannel[] = "org.xenchan.agent.0";

std::string AgentPath() { return testcommon::RunfilePath("clients/agent/xenchan-agent"); }

mode_t ModeOf(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// The agent as a child process, with its stderr on a pipe the test reads.
class AgentProcess {
 public:
  AgentProcess(const std::vector<std::string>& args,
               const std::map<std::string, std::string>& env) {
    int err[2];
    EXPECT_EQ(pipe2(err, O_CLOEXEC), 0);
    std::vector<std::string> argv = {AgentPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ == 0) {
      dup2(err[1], 2);
      for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
      std::vector<char*> cargv;
      for (std::string& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
    close(err[1]);
    err_ = err[0];
  }

  ~AgentProcess() {
    if (pid_ > 0) Stop();
    if (err_ >= 0) close(err_);
  }

  // Reads the agent's log until it contains `want` `count` times in total.
  bool WaitForLog(const std::string& want, int count = 1) {
    const absl::Time deadline = absl::Now() + kTimeout;
    while (Count(want) < count) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      pollfd p{err_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(err_, buf, sizeof(buf));
      if (n <= 0) return false;
      log_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }

  int Count(const std::string& want) const {
    int n = 0;
    for (size_t at = log_.find(want); at != std::string::npos; at = log_.find(want, at + 1)) ++n;
    return n;
  }

  // SIGTERM, then the exit status (exit code, or 128 + signal).
  int Stop() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    WaitForLog("\x01never");  // drain the rest of the log (EOF ends it)
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  const std::string& log() const { return log_; }

 private:
  pid_t pid_ = -1;
  int err_ = -1;
  std::string log_;
};

int ConnectUnix(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

class AgentIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto xensim = simtest::XensimProcess::Start();
    ASSERT_TRUE(xensim.ok()) << xensim.status();
    xensim_ = *std::move(xensim);
    auto xs = LibXenStore::Open(xensim_->xenstored_socket());
    ASSERT_TRUE(xs.ok()) << xs.status();
    xs_ = *std::move(xs);
    target_ = testcommon::MakeTempDir("target");
    ASSERT_FALSE(target_.empty());
  }

  void TearDown() override {
    if (host_ >= 0) close(host_);
    if (agent_ != nullptr) {
      EXPECT_EQ(agent_->Stop(), 0) << agent_->log();
      EXPECT_TRUE(absl::StrContains(agent_->log(), "stopping")) << agent_->log();
    }
    agent_.reset();
    xs_.reset();
    if (xensim_ != nullptr) {
      EXPECT_EQ(xensim_->Stop(), 0);
    }
  }

  std::string Read(const std::string& path) {
    auto v = xs_->Read(kNoTransaction, path);
    return v.ok() ? *v : "<absent>";
  }

  // Waits, driven by a xenstore watch, until `pred` holds.
  bool WaitFor(const std::string& watch_path, const std::function<bool()>& pred) {
    auto xs = LibXenStore::Open(xensim_->xenstored_socket());
    if (!xs.ok() || !(*xs)->Watch(watch_path, "w").ok()) return false;
    const absl::Time deadline = absl::Now() + kTimeout;
    while (!pred()) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      pollfd p{(*xs)->WatchFd(), POLLIN, 0};
      poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
      while ((*xs)->ReadWatch().has_value()) {
      }
    }
    return true;
  }

  // Creates domain `vm` with the agent's socket channel, waits until QEMU
  // and the guest are Connected, and connects to QEMU's socket.
  void CreateGuest() {
    const std::string sock = xensim_->scratch_dir() + "/agent.sock";
    auto domid = xensim_->CreateDomain(
        "vm", {absl::StrCat("name=", kChannel, ",connection=socket,path=", sock)});
    ASSERT_TRUE(domid.ok()) << domid.status();
    domid_ = *domid;
    fe_ = absl::StrCat("/local/domain/", domid_, "/device/console/1");
    be_ = absl::StrCat("/local/domain/0/backend/console/", domid_, "/1");
    ASSERT_TRUE(WaitFor(be_, [&] { return Read(be_ + "/state") == "4"; })) << Read(be_ + "/state");
    guest_root_ = xensim_->guest_root("vm");
    host_ = ConnectUnix(sock);
    ASSERT_GE(host_, 0) << std::strerror(errno);
  }

  void StartAgent(std::vector<std::string> extra = {},
                  std::map<std::string, std::string> env = {}) {
    std::vector<std::string> args = {"--root", guest_root_, "--target-root", target_};
    args.insert(args.end(), extra.begin(), extra.end());
    agent_ = std::make_unique<AgentProcess>(args, env);
  }

  void Send(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = write(host_, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      ASSERT_GT(n, 0) << std::strerror(errno);
      done += static_cast<size_t>(n);
    }
  }

  // The next reply line from the agent (without "\n"), or "" on timeout.
  std::string ReadLine(absl::Duration timeout = kTimeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (pending_.find('\n') == std::string::npos) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return "";
      pollfd p{host_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
      char buf[65536];
      const ssize_t n = read(host_, buf, sizeof(buf));
      if (n <= 0) return "";
      pending_.append(buf, static_cast<size_t>(n));
    }
    const size_t nl = pending_.find('\n');
    std::string line = pending_.substr(0, nl);
    pending_.erase(0, nl + 1);
    return line;
  }

  Value Call(const std::string& request) {
    Send(request + "\n");
    const std::string line = ReadLine();
    absl::StatusOr<Value> v = json::Parse(line);
    EXPECT_TRUE(v.ok()) << "reply: " << line << "\nagent log:\n" << agent_->log();
    return v.ok() ? *v : Value();
  }

  static std::string ErrorCode(const Value& reply) {
    const Value* ok = reply.Find("ok");
    if (ok == nullptr) return "<no reply>";
    if (ok->bool_value()) return "<ok>";
    return reply.Find("error")->Find("code")->string_value();
  }

  std::unique_ptr<simtest::XensimProcess> xensim_;
  std::unique_ptr<LibXenStore> xs_;
  std::unique_ptr<AgentProcess> agent_;
  uint32_t domid_ = 0;
  std::string fe_, be_, guest_root_, target_;
  int host_ = -1;
  std::string pending_;
};

TEST_F(AgentIntegrationTest, ServesPingFactsProvisionErrorsAndSurvivesResume) {
  ASSERT_NO_FATAL_FAILURE(CreateGuest());
  ASSERT_EQ(mkdir((guest_root_ + "/etc").c_str(), 0755), 0);
  std::ofstream(guest_root_ + "/etc/os-release") << "ID=xensim\nNAME=\"Simulated Guest\"\n";
  StartAgent();
  ASSERT_TRUE(agent_->WaitForLog("opened ")) << agent_->log();
  // No sysfs under the simulated guest's root: the hello path.
  ASSERT_TRUE(agent_->WaitForLog("relying on the application-level hello")) << agent_->log();

  // The agent wrote nothing on its own: the first bytes are the hello reply.
  Value hello = Call(R"({"op":"hello"})");
  EXPECT_EQ(hello.Find("op")->string_value(), "hello") << json::Serialize(hello);

  Value pong = Call(R"({"op":"ping","id":1})");
  EXPECT_EQ(pong.Find("op")->string_value(), "pong");
  EXPECT_EQ(pong.Find("agent")->string_value(), "xenchan-agent");
  EXPECT_EQ(pong.Find("id")->int_value(), 1);

  Value facts = Call(R"({"op":"facts"})");
  ASSERT_TRUE(facts.Find("ok")->bool_value()) << json::Serialize(facts);
  EXPECT_EQ(facts.Find("os")->Find("id")->string_value(), "xensim");
  EXPECT_EQ(facts.Find("os")->Find("name")->string_value(), "Simulated Guest");
  EXPECT_FALSE(facts.Find("hostname")->string_value().empty());
  EXPECT_TRUE(facts.Find("kernel")->is_object());

  // Provision: a file with a mode, SSH keys, the hostname; "\r\n" from the
  // host is accepted.
  Send(absl::StrCat(
      R"({"op":"provision","hostname":"vm-1","ssh_authorized_keys":["ssh-ed25519 AAAA k@h"],)",
      R"("files":[{"path":"/etc/xenchan/config.json","content":")",
      absl::Base64Escape("{\"a\":1}\n"), R"(","mode":"0600"}]})", "\r\n"));
  absl::StatusOr<Value> provisioned = json::Parse(ReadLine());
  ASSERT_TRUE(provisioned.ok());
  ASSERT_TRUE(provisioned->Find("ok")->bool_value()) << json::Serialize(*provisioned);
  EXPECT_EQ(json::Serialize(*provisioned->Find("written")),
            R"(["/etc/xenchan/config.json","/root/.ssh/authorized_keys","/etc/hostname"])");
  EXPECT_EQ(testcommon::ReadFileOrEmpty(target_ + "/etc/xenchan/config.json"), "{\"a\":1}\n");
  EXPECT_EQ(ModeOf(target_ + "/etc/xenchan/config.json"), 0600u);
  EXPECT_EQ(testcommon::ReadFileOrEmpty(target_ + "/root/.ssh/authorized_keys"),
            "ssh-ed25519 AAAA k@h\n");
  EXPECT_EQ(ModeOf(target_ + "/root/.ssh/authorized_keys"), 0600u);
  EXPECT_EQ(ModeOf(target_ + "/root/.ssh"), 0700u);
  EXPECT_EQ(testcommon::ReadFileOrEmpty(target_ + "/etc/hostname"), "vm-1\n");

  // An escape attempt, a malformed line and an oversize line: each gets its
  // error, and the agent carries on with the next line.
  EXPECT_EQ(ErrorCode(Call(R"({"op":"provision","files":[{"path":"/../x","content":""}]})")),
            "PATH_NOT_ALLOWED");
  EXPECT_EQ(ErrorCode(Call("{this is not json")), "PARSE_ERROR");
  Send(std::string(1100 * 1024, 'x') + "\n");  // more than the 1 MiB default
  EXPECT_EQ(ErrorCode(json::Parse(ReadLine()).value_or(Value())), "LINE_TOO_LONG");
  EXPECT_EQ(Call(R"({"op":"ping"})").Find("op")->string_value(), "pong");

  // Suspend and resume: hvc_xen hangs up the tty and makes a new one; the
  // agent reopens the channel by name.
  const std::string old_ref = Read(fe_ + "/ring-ref");
  ASSERT_EQ(xensim_->Cli({"domain", "suspend", "vm"}).exit_code, 0);
  ASSERT_EQ(xensim_->Cli({"domain", "resume", "vm"}).exit_code, 0);
  ASSERT_TRUE(WaitFor(
      fe_, [&] { return Read(fe_ + "/ring-ref") != old_ref && Read(fe_ + "/state") == "4"; }));
  ASSERT_TRUE(agent_->WaitForLog("reopening")) << agent_->log();
  ASSERT_TRUE(agent_->WaitForLog("opened ", 2)) << agent_->log();
  // A resume is a loss window (XEN-CHANNELS §5.4): bytes in flight can be
  // lost, so the host resynchronises as the README tells hosts to: hello
  // with an id, resent until one is answered.
  bool answered = false;
  int attempts = 0;
  for (int attempt = 0; attempt < 15 && !answered; ++attempt) {
    ++attempts;
    Send(absl::StrCat(R"({"op":"hello","id":"resync-)", attempt, "\"}\n"));
    const std::string line = ReadLine(absl::Seconds(2));
    answered = absl::StrContains(line, "\"id\":\"resync-");
  }
  ASSERT_TRUE(answered) << agent_->log();
  RecordProperty("resync_attempts", attempts);
  Send(R"({"op":"ping","id":"after-resume"})"
       "\n");
  std::string line;
  do {
    line = ReadLine();  // skips late answers to earlier resync attempts
  } while (absl::StrContains(line, "resync-"));
  absl::StatusOr<Value> again = json::Parse(line);
  ASSERT_TRUE(again.ok()) << line << agent_->log();
  EXPECT_EQ(again->Find("op")->string_value(), "pong") << agent_->log();
  EXPECT_EQ(again->Find("id")->string_value(), "after-resume");
}

// The real-guest path: a sysfs xen bus with a console device whose xenstore
// name is the channel's. The sysfs tree is a plain directory made by the test
// (sysfs itself cannot be simulated); the xenstore is the simulated guest's
// own (relative paths, guest permissions). The device's `nodename` points at
// a frontend-like directory the test controls, so the test decides when it
// becomes Connected and can see that the agent waits until then.
TEST_F(AgentIntegrationTest, WaitsForConnectedThroughSysfsAndXenstore) {
  ASSERT_NO_FATAL_FAILURE(CreateGuest());
  const std::string dev = guest_root_ + "/sys/bus/xen/devices/console-3";
  ASSERT_EQ(system(absl::StrCat("mkdir -p '", dev, "'").c_str()), 0);
  std::ofstream(dev + "/nodename") << "data/fakecon/3\n";
  std::ofstream(dev + "/state") << "Initialised\n";
  const std::string node = absl::StrCat("/local/domain/", domid_, "/data/fakecon/3");
  ASSERT_TRUE(xs_->Write(kNoTransaction, node + "/name", kChannel).ok());
  ASSERT_TRUE(xs_->Write(kNoTransaction, node + "/state", "3").ok());

  StartAgent({}, {{"XENSTORED_PATH",
                   absl::StrCat(xensim_->state_dir(), "/domains/", domid_, "/xenstored.sock")}});
  ASSERT_TRUE(agent_->WaitForLog("to be Connected (state 3)")) << agent_->log();
  EXPECT_EQ(agent_->Count("connected: "), 0);
  // A request sent now stays unanswered while the agent waits...
  Send("{\"op\":\"ping\",\"id\":\"early\"}\n");
  ASSERT_TRUE(xs_->Write(kNoTransaction, node + "/state", "4").ok());
  ASSERT_TRUE(agent_->WaitForLog("connected: console-3 (data/fakecon/3) is Connected"))
      << agent_->log();
  // ...and is answered once it is connected.
  absl::StatusOr<Value> reply = json::Parse(ReadLine());
  ASSERT_TRUE(reply.ok()) << agent_->log();
  EXPECT_EQ(reply->Find("id")->string_value(), "early");
  EXPECT_EQ(Call(R"({"op":"ping"})").Find("op")->string_value(), "pong");
}

TEST(AgentCommandLineTest, RejectsBadArguments) {
  const simtest::ProcessResult bad_channel =
      simtest::RunProcess({AgentPath(), "--channel", "../etc/passwd"});
  EXPECT_EQ(bad_channel.exit_code, 2) << bad_channel.err;
  const simtest::ProcessResult unknown = simtest::RunProcess({AgentPath(), "--frobnicate"});
  EXPECT_EQ(unknown.exit_code, 2);
  const simtest::ProcessResult no_target =
      simtest::RunProcess({AgentPath(), "--target-root", "/nonexistent/target"});
  EXPECT_EQ(no_target.exit_code, 1);
  const simtest::ProcessResult version = simtest::RunProcess({AgentPath(), "--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_TRUE(absl::StartsWith(version.out, "xenchan-agent ")) << version.out;
}

}  // namespace
}  // namespace agent
}  // namespace xenchan
