// kill -9 of the engine process, and a new engine process that recovers
// from xenstore alone:
//  - with data in flight (XEN-CHANNELS §2.4, §7 last row): nothing that was
//    still in the ring is lost, in either direction, and the channel goes on
//    with a new epoch;
//  - in the middle of an unplug (§2.3) whose guest does not answer: the new
//    engine carries the unplug on, finishing when the guest answers late or
//    forcing it at the deadline the first engine set.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backend/engine/types.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"
#include "tests/engine/sim_fixture.h"

namespace xenchan {
namespace {

using testing_sim::OpenRawTty;
using testing_sim::Pattern;
using testing_sim::ReadExactly;
using testing_sim::SimHost;
using testing_sim::WriteAll;

// An engine_child process with pipes to its stdin and stdout.
class Child {
 public:
  explicit Child(const std::string& state_dir, const std::string& devid_reuse_delay_ms = "") {
    const std::string bin = testcommon::RunfilePath("tests/engine/engine_child");
    int in[2], out[2];
    EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      if (devid_reuse_delay_ms.empty()) {
        execl(bin.c_str(), bin.c_str(), state_dir.c_str(), nullptr);
      } else {
        execl(bin.c_str(), bin.c_str(), state_dir.c_str(), devid_reuse_delay_ms.c_str(), nullptr);
      }
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    in_ = in[1];
    out_ = out[0];
  }
  ~Child() {
    if (pid_ > 0) Kill();
    close(in_);
    close(out_);
  }
  void Send(const std::string& line) { WriteAll(in_, line + "\n"); }
  // Reads lines until one starts with `prefix` (returned) or the deadline.
  std::string WaitLine(const std::string& prefix, absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      size_t nl;
      while ((nl = buf_.find('\n')) != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        lines_.push_back(line);
        if (absl::StartsWith(line, prefix)) return line;
      }
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return "";
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
      char b[65536];
      const ssize_t n = read(out_, b, sizeof(b));
      if (n <= 0) return "";
      buf_.append(b, static_cast<size_t>(n));
    }
  }
  // As WaitLine, but first looks at the lines already read (the order of
  // lines from the engine thread and from the child's main loop may vary).
  std::string SeenOrWaitLine(const std::string& prefix) {
    for (const std::string& line : lines_) {
      if (absl::StartsWith(line, prefix)) return line;
    }
    return WaitLine(prefix);
  }
  // Collects "data <hex>" payloads until `n` bytes.
  std::string ReadData(size_t n) {
    std::string got;
    while (got.size() < n) {
      const std::string line = WaitLine("data ");
      if (line.empty()) break;
      got += absl::HexStringToBytes(line.substr(5));
    }
    return got;
  }
  void Kill() {
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  std::string Transcript() const { return absl::StrJoin(lines_, "\n"); }

 private:
  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
  std::string buf_;
  std::vector<std::string> lines_;
};

TEST(EngineRestart, KillNineWithDataInFlightLosesNothingStillInTheRings) {
  auto sim = SimHost::Start();
  ASSERT_TRUE(sim.ok()) << sim.status();
  ASSERT_TRUE((*sim)->CreateDomain("vm1").ok());

  auto first = std::make_unique<Child>((*sim)->state_dir());
  ASSERT_EQ(first->WaitLine("ready"), "ready") << first->Transcript();
  // A 100-byte BLOCK buffer: the engine takes 100 bytes and stalls.
  first->Send("create vm1 chan 100");
  ASSERT_EQ(first->WaitLine("created"), "created 1") << first->Transcript();
  const int tty = OpenRawTty((*sim)->GuestChannelPath("vm1", "chan"));
  ASSERT_GE(tty, 0);
  const std::string up = Pattern(3000, 11);
  ASSERT_TRUE(WriteAll(tty, up));
  ASSERT_FALSE(first->WaitLine("event STALLED").empty()) << first->Transcript();
  // Host -> guest bytes in flight: the guest's tty is not read yet.
  const std::string down = Pattern(500, 12);
  first->Send("write vm1 chan " + absl::BytesToHexString(down));
  ASSERT_EQ(first->WaitLine("wrote"), "wrote 500") << first->Transcript();
  ASSERT_EQ(first->WaitLine("delivered"), "delivered 500") << first->Transcript();
  const std::string connected = first->Transcript();

  first->Kill();  // kill -9: no cleanup at all

  Child second((*sim)->state_dir());
  ASSERT_EQ(second.WaitLine("ready"), "ready") << second.Transcript();
  const std::string appeared = second.WaitLine("event APPEARED vm1/chan");
  ASSERT_FALSE(appeared.empty()) << second.Transcript();
  const std::string reconnected = second.WaitLine("event CONNECTED vm1/chan");
  ASSERT_FALSE(reconnected.empty()) << second.Transcript();
  // SERVER_RESTARTED, and a new epoch (the first engine used epoch 1).
  EXPECT_TRUE(absl::StrContains(reconnected, "reason=4")) << reconnected;
  EXPECT_TRUE(absl::StrContains(reconnected, "epoch=2")) << reconnected;
  second.Send("read vm1 chan");
  // The first engine's 100 buffered bytes died with it; everything that was
  // still in the ring (and behind it in the guest) arrives.
  EXPECT_EQ(second.ReadData(up.size() - 100), up.substr(100)) << second.Transcript();
  EXPECT_EQ(ReadExactly(tty, down.size()), down);
  // And the channel works on.
  ASSERT_TRUE(WriteAll(tty, "more"));
  EXPECT_EQ(second.ReadData(4), "more");
  close(tty);
}

std::string Read(SimHost& sim, const std::string& path) {
  auto v = sim.xs().Read(kNoTransaction, path);
  return v.ok() ? *v : "<" + std::string(absl::StatusCodeToString(v.status().code())) + ">";
}

// Starts an unplug of vm1/chan on `child` while the guest is frozen, waits
// until the backend says Closing, and kills the child.
void StartUnplugAndKill(SimHost& sim, Child& child, int64_t force_ms) {
  ASSERT_TRUE(sim.host().SuspendDomain("vm1").ok());  // the guest cannot answer
  child.Send(absl::StrCat("delete vm1 chan ", force_ms));
  ASSERT_EQ(child.WaitLine("deleting"), "deleting") << child.Transcript();
  // Emitted after the intent and BE 5 were written.
  ASSERT_FALSE(child.WaitLine("event DISCONNECTED vm1/chan state=CLOSING").empty())
      << child.Transcript();
  child.Kill();
}

TEST(EngineRestart, UnplugInterruptedByKillNineFinishesWhenTheGuestAnswersLate) {
  auto sim = SimHost::Start();
  ASSERT_TRUE(sim.ok()) << sim.status();
  auto D = (*sim)->CreateDomain("vm1");
  ASSERT_TRUE(D.ok());
  const std::string fe = absl::StrCat("/local/domain/", *D, "/device/console/1");
  const std::string be = absl::StrCat("/local/domain/0/backend/xenchan/", *D, "/1");

  Child first((*sim)->state_dir());
  ASSERT_EQ(first.WaitLine("ready"), "ready") << first.Transcript();
  first.Send("create vm1 chan 0");
  ASSERT_EQ(first.WaitLine("created"), "created 1") << first.Transcript();
  StartUnplugAndKill(**sim, first, 600000);
  EXPECT_EQ(Read(**sim, be + "/state"), "5");
  EXPECT_NE(Read(**sim, be + "/xenchan-unplugging"), "<NOT_FOUND>");
  EXPECT_EQ(Read(**sim, fe + "/state"), "4");  // the frozen guest did not answer

  Child second((*sim)->state_dir());
  ASSERT_EQ(second.WaitLine("ready"), "ready") << second.Transcript();
  const std::string appeared = second.WaitLine("event APPEARED vm1/chan");
  EXPECT_TRUE(absl::StrContains(appeared, "state=CLOSING")) << second.Transcript();
  // The guest wakes up (it resumes: FE 3 with a new ring), sees BE 5 and
  // closes; the new engine then finishes the unplug in §2.3 order.
  ASSERT_TRUE((*sim)->host().ResumeDomain("vm1").ok());
  const std::string removed = second.WaitLine("event REMOVED vm1/chan");
  ASSERT_FALSE(removed.empty()) << second.Transcript();
  EXPECT_TRUE(absl::StrContains(removed, "state=CLOSED")) << removed;
  EXPECT_FALSE(absl::StrContains(
      removed, absl::StrCat("error=", static_cast<int>(ChannelErrorKind::kUnplugForced))))
      << removed;
  EXPECT_EQ(Read(**sim, fe), "<NOT_FOUND>");
  EXPECT_EQ(Read(**sim, be), "<NOT_FOUND>");
}

TEST(EngineRestart, UnplugInterruptedByKillNineIsForcedAtTheFirstEnginesDeadline) {
  auto sim = SimHost::Start();
  ASSERT_TRUE(sim.ok()) << sim.status();
  auto D = (*sim)->CreateDomain("vm1");
  ASSERT_TRUE(D.ok());
  const std::string fe = absl::StrCat("/local/domain/", *D, "/device/console/1");
  const std::string be = absl::StrCat("/local/domain/0/backend/xenchan/", *D, "/1");

  Child first((*sim)->state_dir());
  ASSERT_EQ(first.WaitLine("ready"), "ready") << first.Transcript();
  first.Send("create vm1 chan 0");
  ASSERT_EQ(first.WaitLine("created"), "created 1") << first.Transcript();
  const absl::Time asked = absl::Now();
  // Long enough for the kill and the restart to happen before it.
  const absl::Duration force_after = absl::Seconds(5);
  StartUnplugAndKill(**sim, first, absl::ToInt64Milliseconds(force_after));

  Child second((*sim)->state_dir());
  ASSERT_EQ(second.WaitLine("ready"), "ready") << second.Transcript();
  // A delete on the new engine joins the unplug under way (its own, longer
  // deadline does not replace the persisted one).
  second.Send("delete vm1 chan 600000");
  ASSERT_FALSE(second.WaitLine("event APPEARED vm1/chan state=CLOSING").empty())
      << second.Transcript();
  ASSERT_EQ(second.SeenOrWaitLine("deleting"), "deleting") << second.Transcript();
  EXPECT_EQ(second.SeenOrWaitLine("deleted"), "deleted forced=1") << second.Transcript();
  const std::string removed = second.SeenOrWaitLine("event REMOVED vm1/chan");
  EXPECT_TRUE(absl::StrContains(
      removed, absl::StrCat("error=", static_cast<int>(ChannelErrorKind::kUnplugForced))))
      << second.Transcript();
  EXPECT_GE(absl::Now() - asked, force_after);
  EXPECT_EQ(Read(**sim, fe), "<NOT_FOUND>");
  EXPECT_EQ(Read(**sim, be), "<NOT_FOUND>");
}

}  // namespace
}  // namespace xenchan
