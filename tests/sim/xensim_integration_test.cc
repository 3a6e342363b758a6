// End-to-end test of the xensim binary: `xensim serve` runs as a child
// process on a fresh state directory; the test drives it with the CLI and
// checks the result with Debian's xenstore tools, libxenstore (LibXenStore),
// the simulated guest's ttys and the simulated QEMU's socket and pty.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/platform/xen/lib_xenstore.h"
#include "backend/sim/hv/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/io.h"
#include "tests/sim/xensim_process.h"

namespace xenchan {
namespace sim {
namespace {

using testcommon::OpenRawTty;
using testcommon::ReadUntil;
using testcommon::WriteAll;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kTimeout = absl::Seconds(30);

std::string XensimPath() { return simtest::XensimProcess::BinaryPath(); }

using RunResult = simtest::ProcessResult;
using simtest::RunProcess;

class XensimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto xensim = simtest::XensimProcess::Start();
    ASSERT_TRUE(xensim.ok()) << xensim.status();
    xensim_ = *std::move(xensim);
    dir_ = xensim_->scratch_dir();
    state_dir_ = xensim_->state_dir();
    auto xs = LibXenStore::Open(xensim_->xenstored_socket());
    ASSERT_TRUE(xs.ok()) << xs.status();
    xs_ = *std::move(xs);
  }

  void TearDown() override {
    xs_.reset();
    if (xensim_ != nullptr) {
      EXPECT_EQ(xensim_->Stop(), 0);
      struct stat st;
      EXPECT_NE(stat((state_dir_ + "/xenstored.sock").c_str(), &st), 0);
      EXPECT_NE(stat((state_dir_ + "/control.sock").c_str(), &st), 0);
    }
  }

  RunResult Cli(std::vector<std::string> args) { return xensim_->Cli(args); }

  RunResult Xenstore(const std::string& tool, std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/" + tool);
    return RunProcess(args, {{"XENSTORED_PATH", state_dir_ + "/xenstored.sock"}});
  }

  std::string Read(const std::string& path) {
    auto v = xs_->Read(kNoTransaction, path);
    return v.ok() ? *v : "<" + v.status().ToString() + ">";
  }

  std::vector<XsPermission> Perms(const std::string& path) {
    auto p = xs_->GetPermissions(kNoTransaction, path);
    EXPECT_TRUE(p.ok()) << path << ": " << p.status();
    return p.ok() ? *p : std::vector<XsPermission>{};
  }

  // Waits, driven by a xenstore watch, until `pred` holds.
  bool WaitFor(const std::string& watch_path, const std::function<bool()>& pred) {
    auto xs = LibXenStore::Open(state_dir_ + "/xenstored.sock");
    if (!xs.ok()) return false;
    if (!(*xs)->Watch(watch_path, "w").ok()) return false;
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

  std::unique_ptr<simtest::XensimProcess> xensim_;
  std::string dir_;        // scratch dir (short, for socket paths)
  std::string state_dir_;  // xensim's state dir
  std::unique_ptr<LibXenStore> xs_;
};

TEST_F(XensimTest, Dom0EntriesAndEmptyList) {
  RunResult ls = Xenstore("xenstore-ls", {"/local/domain/0"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_THAT(ls.out, HasSubstr("name = \"Domain-0\""));
  EXPECT_THAT(ls.out, HasSubstr("domid = \"0\""));
  RunResult pool = Xenstore("xenstore-read", {"/local/pool/0/name"});
  EXPECT_EQ(pool.out, "Pool-0\n");
  RunResult list = Cli({"domain", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("0\tDomain-0"));
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(list.out, '\n', absl::SkipEmpty())).size(), 2u);
}

TEST_F(XensimTest, CreateWritesToolstackEntriesAndDestroyRemovesThem) {
  const std::string uuid = "12345678-9abc-def0-1234-56789abcdef0";
  RunResult create = Cli({"domain", "create", "--name", "vm1", "--uuid", uuid});
  ASSERT_EQ(create.exit_code, 0) << create.err;
  EXPECT_EQ(create.out, "1\n");

  RunResult name = Xenstore("xenstore-read", {"/local/domain/1/name"});
  EXPECT_EQ(name.exit_code, 0) << name.err;
  EXPECT_EQ(name.out, "vm1\n");
  EXPECT_EQ(Read("/local/domain/1/domid"), "1");
  EXPECT_EQ(Read("/local/domain/1/memory/target"), "262144");
  EXPECT_EQ(Read("/local/domain/1/store/port"), "1");
  EXPECT_EQ(Read("/local/domain/1/vm"), "/vm/" + uuid);
  EXPECT_EQ(Read("/vm/" + uuid + "/name"), "vm1");
  EXPECT_EQ(Read("/vm/" + uuid + "/uuid"), uuid);
  EXPECT_EQ(Read("/libxl/1/type"), "pv");
  const std::vector<XsPermission> roperm = {{0, XsPermission::kNone}, {1, XsPermission::kRead}};
  const std::vector<XsPermission> rwperm = {{1, XsPermission::kNone}};
  EXPECT_EQ(Perms("/local/domain/1"), roperm);
  EXPECT_EQ(Perms("/local/domain/1/control"), roperm);
  EXPECT_EQ(Perms("/vm/" + uuid), roperm);
  for (const char* sub : {"data", "attr", "error", "drivers", "feature", "control/shutdown",
                          "device/suspend/event-channel"}) {
    EXPECT_EQ(Perms(absl::StrCat("/local/domain/1/", sub)), rwperm) << sub;
  }
  EXPECT_EQ(Perms("/libxl/1"), std::vector<XsPermission>({{0, XsPermission::kNone}}));
  auto introduced = xs_->IsDomainIntroduced(1);
  ASSERT_TRUE(introduced.ok()) << introduced.status();
  EXPECT_TRUE(*introduced);
  struct stat st;
  EXPECT_EQ(stat((state_dir_ + "/guests/vm1/root/dev").c_str(), &st), 0);

  RunResult list = Cli({"domain", "list"});
  EXPECT_THAT(list.out, HasSubstr(absl::StrCat("1\tvm1\t", uuid, "\trunning\t-")));
  RunResult json = Cli({"domain", "list", "--output", "json"});
  EXPECT_THAT(json.out, HasSubstr("{\"domid\":1,\"name\":\"vm1\",\"uuid\":\"" + uuid +
                                  "\",\"state\":\"running\",\"channels\":[]}"));

  // Same name again: refused.
  RunResult again = Cli({"domain", "create", "--name", "vm1"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("exists"));

  // Destroy: @releaseDomain fires, the toolstack's entries go.
  ASSERT_TRUE(xs_->Watch("@releaseDomain", "rel").ok());
  while (xs_->ReadWatch().has_value()) {
  }
  RunResult destroy = Cli({"domain", "destroy", "vm1"});
  ASSERT_EQ(destroy.exit_code, 0) << destroy.err;
  bool released = false;
  const absl::Time deadline = absl::Now() + kTimeout;
  while (!released && absl::Now() < deadline) {
    pollfd p{xs_->WatchFd(), POLLIN, 0};
    poll(&p, 1, 1000);
    while (auto ev = xs_->ReadWatch()) released = released || ev->path == "@releaseDomain";
  }
  EXPECT_TRUE(released);
  for (const std::string& path :
       {std::string("/local/domain/1"), "/vm/" + uuid, std::string("/libxl/1")}) {
    EXPECT_EQ(xs_->Read(kNoTransaction, path).status().code(), absl::StatusCode::kNotFound) << path;
  }
  introduced = xs_->IsDomainIntroduced(1);
  EXPECT_TRUE(introduced.ok() && !*introduced);
  list = Cli({"domain", "list"});
  EXPECT_THAT(list.out, Not(HasSubstr("vm1")));
}

TEST_F(XensimTest, ChannelsCarryBytesThroughQemuSocketAndPty) {
  const std::string sock = dir_ + "/agent.sock";
  RunResult create = Cli({"domain", "create", "--name", "vm2", "--channel",
                          "name=org.example.sock.0,connection=socket,path=" + sock, "--channel",
                          "name=org.example.pty.0,connection=pty,colour=blue"});
  ASSERT_EQ(create.exit_code, 0) << create.err;
  EXPECT_THAT(create.err, HasSubstr("colour"));  // unknown key: warned, ignored
  ASSERT_EQ(create.out, "1\n");

  // libxl's frontend and backend keys and permissions.
  const std::string fe1 = "/local/domain/1/device/console/1";
  const std::string be1 = "/local/domain/0/backend/console/1/1";
  const std::string fe2 = "/local/domain/1/device/console/2";
  const std::string be2 = "/local/domain/0/backend/console/1/2";
  EXPECT_EQ(Read(fe1 + "/backend"), be1);
  EXPECT_EQ(Read(fe1 + "/backend-id"), "0");
  EXPECT_EQ(Read(fe1 + "/protocol"), "vt100");
  EXPECT_EQ(Read(fe1 + "/name"), "org.example.sock.0");
  EXPECT_EQ(Read(fe1 + "/limit"), "1048576");
  EXPECT_EQ(Read(fe1 + "/type"), "ioemu");
  EXPECT_EQ(Read(fe1 + "/output"), "chardev:libxl-channel1");
  EXPECT_EQ(Read(fe1 + "/tty"), "");
  EXPECT_EQ(Read(fe2 + "/output"), "pty");
  const std::vector<XsPermission> fe_perms = {{1, XsPermission::kNone}, {0, XsPermission::kRead}};
  const std::vector<XsPermission> ro_perms = {{0, XsPermission::kNone}, {1, XsPermission::kRead}};
  EXPECT_EQ(Perms(fe1), fe_perms);
  EXPECT_EQ(Perms(fe1 + "/backend-id"), fe_perms);
  EXPECT_EQ(Perms(fe1 + "/name"), ro_perms);
  EXPECT_EQ(Perms(fe1 + "/tty"), ro_perms);
  EXPECT_EQ(Perms(be1), ro_perms);
  EXPECT_EQ(Read(be1 + "/frontend"), fe1);
  EXPECT_EQ(Read(be1 + "/frontend-id"), "1");
  EXPECT_EQ(Read(be1 + "/online"), "1");
  EXPECT_EQ(Read(be1 + "/connection"), "socket");
  EXPECT_EQ(Read(be1 + "/path"), sock);
  EXPECT_EQ(Read(be1 + "/name"), "org.example.sock.0");
  EXPECT_EQ(Read(be1 + "/hotplug-status"), "connected");
  EXPECT_EQ(Read(be2 + "/connection"), "pty");
  EXPECT_EQ(xs_->Read(kNoTransaction, be2 + "/path").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Read("/libxl/1/device/console/1/frontend"), fe1);
  EXPECT_EQ(Read("/libxl/1/device/console/1/backend"), be1);
  EXPECT_EQ(Read("/libxl/1/device/console/1/path"), sock);

  // The guest connects both; QEMU answers Connected.
  ASSERT_TRUE(WaitFor("/local/domain/0/backend/console/1",
                      [&] {
                        return Read(be1 + "/state") == "4" && Read(be2 + "/state") == "4" &&
                               Read(fe1 + "/state") == "4" && Read(fe2 + "/state") == "4";
                      }))
      << Read(be1 + "/state") << Read(fe1 + "/state") << Read(be2 + "/state")
      << Read(fe2 + "/state");
  const std::string pty = Read(fe2 + "/tty");
  ASSERT_TRUE(absl::StartsWith(pty, "/dev/pts/")) << pty;

  RunResult list = Cli({"domain", "list"});
  EXPECT_THAT(list.out, HasSubstr("1:org.example.sock.0:socket:" + sock));
  EXPECT_THAT(list.out, HasSubstr("2:org.example.pty.0:pty:" + pty));

  // Socket channel: host <-> guest.
  const std::string root = state_dir_ + "/guests/vm2/root";
  const int guest1 = OpenRawTty(root + "/dev/xen-channel/org.example.sock.0");
  ASSERT_GE(guest1, 0) << std::strerror(errno);
  const int host1 = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(connect(host1, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_TRUE(WriteAll(host1, "ping from host\n"));
  EXPECT_THAT(ReadUntil(guest1, "ping from host\n", kTimeout), HasSubstr("ping from host\n"));
  ASSERT_TRUE(WriteAll(guest1, "pong from guest\n"));
  EXPECT_THAT(ReadUntil(host1, "pong from guest\n", kTimeout), HasSubstr("pong from guest\n"));
  // More than one ring's worth each way.
  const std::string big(10000, 'x');
  ASSERT_TRUE(WriteAll(host1, big + "!"));
  EXPECT_EQ(ReadUntil(guest1, "!", kTimeout).size(), big.size() + 1);
  ASSERT_TRUE(WriteAll(guest1, big + "!"));
  EXPECT_EQ(ReadUntil(host1, "!", kTimeout).size(), big.size() + 1);

  // Pty channel.
  const int guest2 = OpenRawTty(root + "/dev/xen-channel/org.example.pty.0");
  ASSERT_GE(guest2, 0) << std::strerror(errno);
  const int host2 = OpenRawTty(pty);
  ASSERT_GE(host2, 0) << std::strerror(errno);
  ASSERT_TRUE(WriteAll(host2, "to guest via pty"));
  EXPECT_THAT(ReadUntil(guest2, "via pty", kTimeout), HasSubstr("to guest via pty"));
  ASSERT_TRUE(WriteAll(guest2, "to host via pty"));
  EXPECT_THAT(ReadUntil(host2, "via pty", kTimeout), HasSubstr("to host via pty"));
  close(guest1);
  close(guest2);

  // Suspend / resume: the guest republishes its ring; QEMU reconnects.
  const std::string old_ref = Read(fe1 + "/ring-ref");
  RunResult suspend = Cli({"domain", "suspend", "vm2"});
  ASSERT_EQ(suspend.exit_code, 0) << suspend.err;
  EXPECT_THAT(Cli({"domain", "list"}).out, HasSubstr("vm2\t"));
  EXPECT_THAT(Cli({"domain", "list"}).out, HasSubstr("\tsuspended\t"));
  RunResult resume = Cli({"domain", "resume", "vm2"});
  ASSERT_EQ(resume.exit_code, 0) << resume.err;
  EXPECT_THAT(Cli({"domain", "list"}).out, HasSubstr("\trunning\t"));
  ASSERT_TRUE(WaitFor(fe1, [&] {
    return Read(fe1 + "/ring-ref") != old_ref && Read(fe1 + "/state") == "4";
  })) << Read(fe1 + "/state");
  const int guest1b = OpenRawTty(root + "/dev/xen-channel/org.example.sock.0");
  ASSERT_GE(guest1b, 0);
  ASSERT_TRUE(WriteAll(host1, "after resume\n"));
  EXPECT_THAT(ReadUntil(guest1b, "after resume\n", kTimeout), HasSubstr("after resume\n"));
  ASSERT_TRUE(WriteAll(guest1b, "guest after resume\n"));
  EXPECT_THAT(ReadUntil(host1, "guest after resume\n", kTimeout),
              HasSubstr("guest after resume\n"));
  close(guest1b);

  // Kill: the guest process dies; the domain stays, crashed.
  RunResult kill_r = Cli({"domain", "kill", "vm2"});
  ASSERT_EQ(kill_r.exit_code, 0) << kill_r.err;
  EXPECT_THAT(Cli({"domain", "list"}).out, HasSubstr("\tcrashed\t"));

  // Destroy: QEMU goes (its socket too), every libxl path goes, but backend
  // directories of devices libxl does not know (other backends') stay.
  ASSERT_TRUE(xs_->Write(kNoTransaction, "/local/domain/0/backend/console/1/7/state", "4").ok());
  ASSERT_TRUE(xs_->Write(kNoTransaction, "/local/domain/0/backend/xenchan/1/3/state", "4").ok());
  RunResult destroy = Cli({"domain", "destroy", "1"});
  ASSERT_EQ(destroy.exit_code, 0) << destroy.err;
  EXPECT_EQ(xs_->Read(kNoTransaction, be1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(xs_->Read(kNoTransaction, be2).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Read("/local/domain/0/backend/console/1/7/state"), "4");
  EXPECT_EQ(Read("/local/domain/0/backend/xenchan/1/3/state"), "4");
  EXPECT_EQ(xs_->Read(kNoTransaction, "/local/domain/1").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadUntil(host1, "never", kTimeout), "");  // QEMU closed the connection
  close(host1);
  close(host2);
  struct stat st;
  EXPECT_NE(stat(sock.c_str(), &st), 0);
  EXPECT_THAT(Cli({"domain", "list"}).out, Not(HasSubstr("vm2")));
}

TEST_F(XensimTest, OutputIsKeptUntilAClientConnectsAndShutdownIsGraceful) {
  const std::string sock = dir_ + "/late.sock";
  RunResult create = Cli({"domain", "create", "--name", "vm3", "--output", "json", "--channel",
                          "name=org.example.late.0,connection=socket,path=" + sock});
  ASSERT_EQ(create.exit_code, 0) << create.err;
  EXPECT_THAT(create.out, HasSubstr("{\"domid\":1,\"name\":\"vm3\""));
  EXPECT_THAT(create.out, HasSubstr("\"connection\":\"socket\",\"path\":\"" + sock + "\""));
  const std::string fe = "/local/domain/1/device/console/1";
  const std::string be = "/local/domain/0/backend/console/1/1";
  ASSERT_TRUE(
      WaitFor(be, [&] { return Read(be + "/state") == "4" && Read(fe + "/state") == "4"; }));
  // Far more than the ring and the tty buffer hold: the write completes only
  // because QEMU drains into its own buffer while no client is connected.
  const int guest = OpenRawTty(state_dir_ + "/guests/vm3/root/dev/xen-channel/org.example.late.0");
  ASSERT_GE(guest, 0) << std::strerror(errno);
  std::string data;
  for (int i = 0; data.size() < 20000; ++i) absl::StrAppend(&data, "line ", i, "\n");
  ASSERT_TRUE(WriteAll(guest, data + "END"));
  const int host = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(connect(host, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(ReadUntil(host, "END", kTimeout), data + "END");
  close(guest);

  // Graceful shutdown: the frontend closes (5 -> 6), QEMU follows (5 -> 6).
  RunResult shutdown = Cli({"domain", "shutdown", "vm3"});
  ASSERT_EQ(shutdown.exit_code, 0) << shutdown.err;
  EXPECT_EQ(Read(fe + "/state"), "6");
  EXPECT_TRUE(WaitFor(be, [&] { return Read(be + "/state") == "6"; })) << Read(be + "/state");
  EXPECT_THAT(Cli({"domain", "list"}).out, HasSubstr("vm3\t"));
  EXPECT_THAT(Cli({"domain", "list"}).out, HasSubstr("\tshutdown\t"));
  EXPECT_EQ(Cli({"domain", "suspend", "vm3"}).exit_code, 1);  // not running
  close(host);
  EXPECT_EQ(Cli({"domain", "destroy", "vm3"}).exit_code, 0);
  // libxl's path cleanup also removes the emptied per-domain backend dirs.
  EXPECT_EQ(xs_->Read(kNoTransaction, "/local/domain/0/backend/console/1").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(xs_->Read(kNoTransaction, "/local/domain/1").status().code(),
            absl::StatusCode::kNotFound);
}

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

TEST_F(XensimTest, QemuSocketServesOneClientAtATime) {
  const std::string sock = dir_ + "/one.sock";
  auto domid =
      xensim_->CreateDomain("vm5", {"name=org.example.one.0,connection=socket,path=" + sock});
  ASSERT_TRUE(domid.ok()) << domid.status();
  const std::string fe = absl::StrCat("/local/domain/", *domid, "/device/console/1");
  ASSERT_TRUE(WaitFor(fe, [&] { return Read(fe + "/state") == "4"; }));
  const int guest = OpenRawTty(xensim_->guest_root("vm5") + "/dev/xen-channel/org.example.one.0");
  ASSERT_GE(guest, 0);
  const int first = ConnectUnix(sock);
  ASSERT_GE(first, 0);
  // The first client is served; a second one waits in the backlog.
  ASSERT_TRUE(WriteAll(first, "hello\n"));
  EXPECT_THAT(ReadUntil(guest, "hello\n", kTimeout), HasSubstr("hello\n"));
  const int second = ConnectUnix(sock);
  ASSERT_GE(second, 0);
  ASSERT_TRUE(WriteAll(guest, "for the first\n"));
  EXPECT_EQ(ReadUntil(first, "for the first\n", kTimeout), "for the first\n");
  close(first);
  // Once the first leaves, the second is accepted and gets only new output.
  ASSERT_TRUE(WriteAll(guest, "for the second\n"));
  EXPECT_EQ(ReadUntil(second, "for the second\n", kTimeout), "for the second\n");
  close(second);
  close(guest);
}

// After the guest process dies, the test plays a hostile guest on the
// frontend directory: QEMU must shrug off bad values and keep following the
// state machine.
TEST_F(XensimTest, QemuSurvivesHostileFrontendValues) {
  auto domid = xensim_->CreateDomain("vm6", {"name=org.example.h.0,connection=pty"});
  ASSERT_TRUE(domid.ok()) << domid.status();
  const std::string fe = absl::StrCat("/local/domain/", *domid, "/device/console/1");
  const std::string be = absl::StrCat("/local/domain/0/backend/console/", *domid, "/1");
  ASSERT_TRUE(WaitFor(fe, [&] { return Read(fe + "/state") == "4"; }));
  ASSERT_EQ(Cli({"domain", "kill", "vm6"}).exit_code, 0);

  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"ring-ref", "12abc"},
                                                        {"port", "99999999999"},
                                                        {"limit", "-1"},
                                                        {"state", "3"},
                                                        {"ring-ref", ""},
                                                        {"state", "4"},
                                                        {"state", "9"},
                                                        {"state", "banana"}}) {
    ASSERT_TRUE(xs_->Write(kNoTransaction, fe + "/" + key, value).ok());
  }
  // Still alive and following the protocol: Closing, Closed, then a reset.
  ASSERT_TRUE(xs_->Write(kNoTransaction, fe + "/state", "5").ok());
  EXPECT_TRUE(WaitFor(be, [&] { return Read(be + "/state") == "5"; })) << Read(be + "/state");
  ASSERT_TRUE(xs_->Write(kNoTransaction, fe + "/state", "6").ok());
  EXPECT_TRUE(WaitFor(be, [&] { return Read(be + "/state") == "6"; })) << Read(be + "/state");
  ASSERT_TRUE(xs_->Write(kNoTransaction, fe + "/state", "1").ok());
  EXPECT_TRUE(WaitFor(be, [&] { return Read(be + "/state") == "2"; })) << Read(be + "/state");
  // The frontend directory vanishing is "Closed" too.
  ASSERT_TRUE(xs_->Remove(kNoTransaction, fe).ok());
  EXPECT_TRUE(WaitFor(be, [&] { return Read(be + "/state") == "6"; })) << Read(be + "/state");
  EXPECT_EQ(Cli({"domain", "destroy", "vm6"}).exit_code, 0);
}

TEST_F(XensimTest, DestroyedDomainStaysDyingWhileItsPageIsMapped) {
  RunResult create = Cli(
      {"domain", "create", "--name", "vm4", "--channel", "name=org.example.z.0,connection=pty"});
  ASSERT_EQ(create.exit_code, 0) << create.err;
  const std::string fe = "/local/domain/1/device/console/1";
  ASSERT_TRUE(WaitFor(fe, [&] { return Read(fe + "/state") == "4"; }));
  const uint32_t ref = static_cast<uint32_t>(std::stoul(Read(fe + "/ring-ref")));
  // A backend of our own maps the guest's ring page, and "forgets" it.
  auto hv = hv::HvConnection::Connect(state_dir_ + "/hypervisor.sock");
  ASSERT_TRUE(hv.ok()) << hv.status();
  auto mapping = (*hv)->MapGrant(1, ref, /*writable=*/true);
  ASSERT_TRUE(mapping.ok()) << mapping.status();

  ASSERT_EQ(Cli({"domain", "destroy", "vm4"}).exit_code, 0);
  EXPECT_THAT(Cli({"domain", "list"}).out, HasSubstr("1\tvm4\t"));
  EXPECT_THAT(Cli({"domain", "list"}).out, HasSubstr("\tdying\t"));
  EXPECT_EQ(Cli({"domain", "destroy", "vm4"}).exit_code, 1);  // already destroyed
  // The same name can be used again while the zombie lingers.
  RunResult again = Cli({"domain", "create", "--name", "vm4"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "2\n");

  mapping->reset();  // the last mapping goes: the domain is finally gone
  const absl::Time deadline = absl::Now() + kTimeout;
  std::string list;
  do {
    list = Cli({"domain", "list"}).out;
  } while (absl::StrContains(list, "\tdying\t") && absl::Now() < deadline);
  EXPECT_THAT(list, Not(HasSubstr("\tdying\t")));
  EXPECT_THAT(list, Not(HasSubstr("1\tvm4\t")));
  EXPECT_THAT(list, HasSubstr("2\tvm4\t"));
}

TEST_F(XensimTest, ClearErrors) {
  RunResult bad = Cli(
      {"domain", "create", "--name", "vm", "--channel", "name=a,connection=SOCKET,path=/tmp/x"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("unknown channel connection 'SOCKET'"));
  RunResult noname = Cli({"domain", "create", "--name", "vm", "--channel", "connection=pty"});
  EXPECT_EQ(noname.exit_code, 1);
  EXPECT_THAT(noname.err, HasSubstr("no name"));
  RunResult unknown = Cli({"domain", "destroy", "nosuch"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("no such domain 'nosuch'"));
  EXPECT_EQ(Cli({"domain", "suspend", "42"}).exit_code, 1);
  RunResult usage = Cli({"domain", "frobnicate"});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_THAT(usage.err, HasSubstr("usage"));
  EXPECT_EQ(RunProcess({XensimPath()}).exit_code, 2);
  EXPECT_EQ(Cli({"domain", "create"}).exit_code, 2);
  RunResult bad_uuid = Cli({"domain", "create", "--name", "vm", "--uuid", "nope"});
  EXPECT_EQ(bad_uuid.exit_code, 1);
  EXPECT_THAT(bad_uuid.err, HasSubstr("invalid uuid"));
  // QEMU cannot listen there: the device model fails, create fails, undone.
  RunResult bad_path = Cli({"domain", "create", "--name", "vm", "--channel",
                            "name=a,connection=socket,path=" + dir_ + "/no/such/dir/a.sock"});
  EXPECT_EQ(bad_path.exit_code, 1);
  EXPECT_THAT(bad_path.err, HasSubstr("QEMU"));
  EXPECT_THAT(Cli({"domain", "list"}).out, Not(HasSubstr("\tvm\t")));
  // Nothing was created by the failures.
  EXPECT_EQ(xs_->Read(kNoTransaction, "/local/domain/1").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(xs_->Read(kNoTransaction, "/local/domain/0/backend").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(xs_->Read(kNoTransaction, "/libxl/1").status().code(), absl::StatusCode::kNotFound);
  RunResult no_server = RunProcess({XensimPath(), "--state-dir", dir_ + "/none", "domain", "list"});
  EXPECT_EQ(no_server.exit_code, 1);
  EXPECT_THAT(no_server.err, HasSubstr("is `xensim serve` running?"));
}

}  // namespace
}  // namespace sim
}  // namespace xenchan
