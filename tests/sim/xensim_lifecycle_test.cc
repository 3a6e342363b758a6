// End-to-end tests of xensim's domain life cycle (issue 12 item 4): reboot,
// save / restore and migration between two xensim hosts, each a real
// `xensim serve` process on its own temporary state dir. Checked through
// xenstore (libxenstore and Debian's xenstore tools), the simulated guest's
// control socket (boot id, devices) and its ttys. Every wait is on a
// condition with a deadline (xenstore watches, tty reads), never a sleep.
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/platform/xen/lib_xenstore.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/io.h"
#include "tests/sim/xensim_process.h"

namespace xenchan {
namespace sim {
namespace {

using simtest::ProcessResult;
using simtest::XensimProcess;
using testcommon::OpenRawTty;
using testcommon::ReadUntil;
using testcommon::WriteAll;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kTimeout = absl::Seconds(30);

// One xensim host as the test sees it.
class Host {
 public:
  explicit Host(std::unique_ptr<XensimProcess> p) : p_(std::move(p)) {
    auto xs = LibXenStore::Open(p_->xenstored_socket());
    EXPECT_TRUE(xs.ok()) << xs.status();
    if (xs.ok()) xs_ = *std::move(xs);
  }
  XensimProcess& proc() { return *p_; }
  LibXenStore& xs() { return *xs_; }
  ProcessResult Cli(const std::vector<std::string>& args) { return p_->Cli(args); }

  std::string Read(const std::string& path) {
    auto v = xs_->Read(kNoTransaction, path);
    return v.ok() ? *v : "<" + std::string(absl::StatusCodeToString(v.status().code())) + ">";
  }
  std::vector<std::string> Dir(const std::string& path) {
    auto v = xs_->Directory(kNoTransaction, path);
    return v.ok() ? *v : std::vector<std::string>{};
  }

  // Waits, woken by a xenstore watch on `watch_path`, until `pred` holds.
  bool WaitFor(const std::string& watch_path, const std::function<bool()>& pred) {
    auto xs = LibXenStore::Open(p_->xenstored_socket());
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
  bool WaitState(uint32_t domid, int devid, const std::string& state) {
    const std::string fe = absl::StrCat("/local/domain/", domid, "/device/console/", devid);
    return WaitFor(fe, [&] { return Read(fe + "/state") == state; });
  }

  // One command to the guest's control socket; the reply's first line plus
  // the n JSON lines of a `status` reply.
  std::string Guest(uint32_t domid, const std::string& command) {
    const std::string path = absl::StrCat(p_->state_dir(), "/domains/", domid, "/guest.sock");
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd);
      return "<connect failed>";
    }
    WriteAll(fd, command + "\n");
    std::string reply = ReadUntil(fd, "\n", kTimeout);
    int lines = 0;
    if (command == "status" && absl::StartsWith(reply, "ok ") &&
        absl::SimpleAtoi(reply.substr(3, reply.find('\n') - 3), &lines)) {
      while (std::count(reply.begin(), reply.end(), '\n') < lines + 1) {
        const std::string more = ReadUntil(fd, "\n", kTimeout);
        if (more.empty()) break;
        reply += more;
      }
    }
    close(fd);
    return reply;
  }
  // The status JSON line of `nodename`, or "".
  std::string DeviceStatus(uint32_t domid, const std::string& nodename) {
    for (absl::string_view line : absl::StrSplit(Guest(domid, "status"), '\n')) {
      if (absl::StrContains(line, absl::StrCat("\"nodename\":\"", nodename, "\""))) {
        return std::string(line);
      }
    }
    return "";
  }
  std::string BootId(uint32_t domid) {
    const std::string info = Guest(domid, "info");
    const size_t at = info.find("\"boot_id\":\"");
    if (at == std::string::npos) return info;
    return info.substr(at + 11, 36);
  }

  // A channel added by someone other than the toolstack (as xenchand does,
  // libxl__device_generic_add's layout; no backend will connect).
  void HotAdd(uint32_t domid, int devid, const std::string& name) {
    const std::string fe = absl::StrCat("/local/domain/", domid, "/device/console/", devid);
    const std::string be = absl::StrCat("/local/domain/0/backend/console/", domid, "/", devid);
    while (true) {
      auto t = xs_->StartTransaction();
      ASSERT_TRUE(t.ok());
      ASSERT_TRUE(xs_->Write(*t, be + "/frontend", fe).ok());
      ASSERT_TRUE(xs_->Write(*t, be + "/state", "1").ok());
      ASSERT_TRUE(
          xs_->SetPermissions(*t, be, {{0, XsPermission::kNone}, {domid, XsPermission::kRead}})
              .ok());
      ASSERT_TRUE(xs_->Mkdir(*t, fe).ok());
      ASSERT_TRUE(
          xs_->SetPermissions(*t, fe, {{domid, XsPermission::kNone}, {0, XsPermission::kRead}})
              .ok());
      for (const auto& [k, v] :
           std::vector<std::pair<std::string, std::string>>{{"backend", be},
                                                            {"backend-id", "0"},
                                                            {"state", "1"},
                                                            {"protocol", "vt100"},
                                                            {"name", name},
                                                            {"type", "xenchan"},
                                                            {"output", "pty"},
                                                            {"tty", ""}}) {
        ASSERT_TRUE(xs_->Write(*t, fe + "/" + k, v).ok());
      }
      absl::Status s = xs_->EndTransaction(*t, true);
      if (s.code() == absl::StatusCode::kAborted) continue;
      ASSERT_TRUE(s.ok()) << s;
      return;
    }
  }

 private:
  std::unique_ptr<XensimProcess> p_;
  std::unique_ptr<LibXenStore> xs_;
};

std::unique_ptr<Host> StartHost() {
  auto p = XensimProcess::Start();
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return nullptr;
  return std::make_unique<Host>(*std::move(p));
}

uint32_t Domid(const ProcessResult& r) {
  uint32_t domid = 0;
  EXPECT_TRUE(absl::SimpleAtoi(absl::StripSuffix(r.out, "\n"), &domid)) << r.out << r.err;
  return domid;
}

// True once the tty behind `fd` has been hung up (read fails or hits EOF).
bool HungUp(int fd) {
  const absl::Time deadline = absl::Now() + kTimeout;
  while (absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    poll(&p, 1, 1000);
    if (p.revents & (POLLHUP | POLLERR)) return true;
    if (p.revents & POLLIN) {
      char c;
      if (read(fd, &c, 1) <= 0) return true;
    }
  }
  return false;
}

// Bytes from the guest's tty for channel `name` reach the QEMU pty in dom0.
void ExpectGuestToHost(Host& h, uint32_t domid, int devid, const std::string& name,
                       const std::string& text) {
  const std::string pty =
      h.Read(absl::StrCat("/local/domain/", domid, "/device/console/", devid, "/tty"));
  ASSERT_TRUE(absl::StartsWith(pty, "/dev/pts/")) << pty;
  const int host = OpenRawTty(pty);
  ASSERT_GE(host, 0) << std::strerror(errno);
  const int guest = OpenRawTty(h.proc().guest_root("vm") + "/dev/xen-channel/" + name);
  ASSERT_GE(guest, 0) << std::strerror(errno);
  ASSERT_TRUE(WriteAll(guest, text));
  EXPECT_THAT(ReadUntil(host, text, kTimeout), HasSubstr(text));
  close(guest);
  close(host);
}

TEST(XensimLifecycleTest, RebootIsANewIncarnationWithOnlyTheConfiguredChannels) {
  auto h = StartHost();
  ASSERT_NE(h, nullptr);
  const std::string sock = h->proc().scratch_dir() + "/cfg1.sock";
  ProcessResult create =
      h->Cli({"domain", "create", "--name", "vm", "--channel", "name=org.cfg.0,connection=pty",
              "--channel", "name=org.cfg.1,connection=socket,path=" + sock});
  ASSERT_EQ(create.exit_code, 0) << create.err;
  ASSERT_EQ(Domid(create), 1u);
  const std::string uuid = h->Read("/vm/" + h->Read("/local/domain/1/vm").substr(4) + "/uuid");
  ASSERT_TRUE(h->WaitState(1, 1, "4"));
  h->HotAdd(1, 3, "org.hot.0");
  ASSERT_TRUE(h->WaitState(1, 3, "3"));
  const std::string boot1 = h->BootId(1);
  ASSERT_EQ(boot1.size(), 36u) << boot1;
  const int old_tty = OpenRawTty(h->proc().guest_root("vm") + "/dev/xen-channel/org.cfg.0");
  ASSERT_GE(old_tty, 0);

  ProcessResult reboot = h->Cli({"domain", "reboot", "vm"});
  ASSERT_EQ(reboot.exit_code, 0) << reboot.err;
  EXPECT_EQ(Domid(reboot), 2u);
  EXPECT_EQ(h->Read("/local/domain/1"), "<NOT_FOUND>");
  EXPECT_EQ(h->Read("/local/domain/2/vm"), "/vm/" + uuid);
  EXPECT_EQ(h->Read("/local/domain/2/name"), "vm");
  EXPECT_EQ(h->Read("/vm/" + uuid + "/name"), "vm");
  // The xl.cfg channel comes back; the hot-added one does not.
  EXPECT_THAT(h->Dir("/local/domain/2/device/console"), ElementsAre("1", "2"));
  EXPECT_THAT(h->Dir("/libxl/2/device/console"), ElementsAre("1", "2"));
  EXPECT_EQ(h->Read("/local/domain/2/device/console/1/name"), "org.cfg.0");
  EXPECT_EQ(h->Read("/local/domain/0/backend/console/2/2/path"), sock);
  ASSERT_TRUE(h->WaitState(2, 1, "4"));
  ASSERT_TRUE(h->WaitState(2, 2, "4"));
  // The guest booted afresh: new boot id, its old tty hung up.
  const std::string boot2 = h->BootId(2);
  EXPECT_EQ(boot2.size(), 36u) << boot2;
  EXPECT_NE(boot2, boot1);
  EXPECT_THAT(h->Guest(2, "info"), HasSubstr("\"restored\":false"));
  EXPECT_TRUE(HungUp(old_tty));
  close(old_tty);
  ExpectGuestToHost(*h, 2, 1, "org.cfg.0", "hello after reboot\n");
  // The socket channel's new QEMU listens on the same path again.
  const int client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << std::strerror(errno);
  const int guest = OpenRawTty(h->proc().guest_root("vm") + "/dev/xen-channel/org.cfg.1");
  ASSERT_GE(guest, 0);
  ASSERT_TRUE(WriteAll(guest, "socket after reboot\n"));
  EXPECT_THAT(ReadUntil(client, "reboot\n", kTimeout), HasSubstr("socket after reboot\n"));
  close(guest);
  close(client);
  ProcessResult list = h->Cli({"domain", "list"});
  EXPECT_THAT(list.out, HasSubstr(absl::StrCat("2\tvm\t", uuid, "\trunning")));
}

TEST(XensimLifecycleTest, SaveRestoreKeepsGuestStateAndUuidWithANewDomid) {
  auto h = StartHost();
  ASSERT_NE(h, nullptr);
  ProcessResult create =
      h->Cli({"domain", "create", "--name", "vm", "--channel", "name=org.a,connection=pty",
              "--channel", "name=org.b,connection=pty"});
  ASSERT_EQ(create.exit_code, 0) << create.err;
  const std::string uuid = h->Read("/local/domain/1/vm").substr(4);
  ASSERT_TRUE(h->WaitState(1, 1, "4"));
  ASSERT_TRUE(h->WaitState(1, 2, "4"));
  h->HotAdd(1, 3, "org.hot");
  ASSERT_TRUE(h->WaitState(1, 3, "3"));
  ExpectGuestToHost(*h, 1, 1, "org.a", "before save\n");
  const std::string boot = h->BootId(1);

  const std::string file = h->proc().scratch_dir() + "/vm.save";
  ProcessResult save = h->Cli({"domain", "save", "vm", file});
  ASSERT_EQ(save.exit_code, 0) << save.err;
  struct stat st;
  EXPECT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(h->Read("/local/domain/1"), "<NOT_FOUND>");
  EXPECT_THAT(h->Cli({"domain", "list"}).out, Not(HasSubstr("\tvm\t")));

  ProcessResult restore = h->Cli({"domain", "restore", file});
  ASSERT_EQ(restore.exit_code, 0) << restore.err;
  ASSERT_EQ(Domid(restore), 2u);
  EXPECT_EQ(h->Read("/local/domain/2/vm"), "/vm/" + uuid);
  // Only the toolstack's own devices, in its create order.
  EXPECT_THAT(h->Dir("/local/domain/2/device/console"), ElementsAre("1", "2"));
  EXPECT_THAT(h->Dir("/libxl/2/device/console"), ElementsAre("1", "2"));
  ASSERT_TRUE(h->WaitState(2, 1, "4"));
  ASSERT_TRUE(h->WaitState(2, 2, "4"));
  // The same guest, resumed: boot id kept, counters kept, rings new.
  EXPECT_EQ(h->BootId(2), boot);
  EXPECT_THAT(h->Guest(2, "info"), HasSubstr("\"resumes\":1,\"restored\":true"));
  const std::string dev1 = h->DeviceStatus(2, "device/console/1");
  EXPECT_THAT(dev1, HasSubstr("\"bytes_out\":12"));
  EXPECT_THAT(dev1, HasSubstr("\"name\":\"org.a\""));
  // The hot-added console is still registered in the guest, its resume
  // failed (no frontend directory): xenbus_dev_fatal's error node.
  EXPECT_THAT(h->DeviceStatus(2, "device/console/3"), HasSubstr("\"bound\":true"));
  EXPECT_THAT(h->Read("/local/domain/2/error/device/console/3/error"),
              HasSubstr("reading other end details"));
  // Re-creating it now is not probed (the stale device is still there);
  // a device the guest never had is. Events are handled in order, so once
  // console/4 is Initialised, console/3's event has been seen.
  h->HotAdd(2, 3, "org.hot");
  h->HotAdd(2, 4, "org.new");
  ASSERT_TRUE(h->WaitState(2, 4, "3"));
  EXPECT_EQ(h->Read("/local/domain/2/device/console/3/state"), "1");
  // Removed and added again, it is probed afresh, provided the guest saw
  // the removal first (an event it handles after the node is back finds it
  // present and keeps the stale device, on Linux too). Barrier: a new device
  // probed after the removal's event.
  ASSERT_TRUE(h->xs().Remove(kNoTransaction, "/local/domain/2/device/console/3").ok());
  h->HotAdd(2, 5, "org.barrier");
  ASSERT_TRUE(h->WaitState(2, 5, "3"));
  EXPECT_EQ(h->DeviceStatus(2, "device/console/3"), "");
  h->HotAdd(2, 3, "org.hot");
  ASSERT_TRUE(h->WaitState(2, 3, "3"));
  ExpectGuestToHost(*h, 2, 1, "org.a", "after restore\n");
  // xenstore tools still work.
  ProcessResult ls = simtest::RunProcess({"/usr/bin/xenstore-ls", "/local/domain/2"},
                                         {{"XENSTORED_PATH", h->proc().xenstored_socket()}});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_THAT(ls.out, HasSubstr("name = \"vm\""));
}

TEST(XensimLifecycleTest, MigrateMovesTheDomainToAnotherHost) {
  auto src = StartHost();
  auto dst = StartHost();
  ASSERT_NE(src, nullptr);
  ASSERT_NE(dst, nullptr);
  ASSERT_EQ(dst->Cli({"domain", "create", "--name", "other"}).exit_code, 0);  // domid 1 there
  ProcessResult create =
      src->Cli({"domain", "create", "--name", "vm", "--channel", "name=org.m,connection=pty"});
  ASSERT_EQ(create.exit_code, 0) << create.err;
  const std::string uuid = src->Read("/local/domain/1/vm").substr(4);
  ASSERT_TRUE(src->WaitState(1, 1, "4"));
  const std::string boot = src->BootId(1);

  ProcessResult migrate = src->Cli({"domain", "migrate", "vm", "--to", dst->proc().state_dir()});
  ASSERT_EQ(migrate.exit_code, 0) << migrate.err;
  EXPECT_EQ(Domid(migrate), 2u);
  // Gone from the source, toolstack entries and all.
  EXPECT_THAT(src->Cli({"domain", "list"}).out, Not(HasSubstr("\tvm\t")));
  EXPECT_EQ(src->Read("/local/domain/1"), "<NOT_FOUND>");
  EXPECT_EQ(src->Read("/vm/" + uuid), "<NOT_FOUND>");
  // There, with the same UUID and the same guest.
  EXPECT_EQ(dst->Read("/local/domain/2/vm"), "/vm/" + uuid);
  EXPECT_THAT(dst->Cli({"domain", "list"}).out, HasSubstr(absl::StrCat("2\tvm\t", uuid)));
  ASSERT_TRUE(dst->WaitState(2, 1, "4"));
  EXPECT_EQ(dst->BootId(2), boot);
  ExpectGuestToHost(*dst, 2, 1, "org.m", "hello from the destination\n");
  for (Host* h : {src.get(), dst.get()}) {
    ProcessResult r = simtest::RunProcess({"/usr/bin/xenstore-read", "/local/domain/0/name"},
                                          {{"XENSTORED_PATH", h->proc().xenstored_socket()}});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "Domain-0\n");
  }
}

TEST(XensimLifecycleTest, ClearErrors) {
  auto h = StartHost();
  ASSERT_NE(h, nullptr);
  const std::string dir = h->proc().scratch_dir();
  ProcessResult r = h->Cli({"domain", "reboot", "nope"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("no such domain 'nope'"));
  r = h->Cli({"domain", "save", "nope", dir + "/x.save"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("no such domain 'nope'"));
  r = h->Cli({"domain", "save", "nope"});
  EXPECT_EQ(r.exit_code, 2);
  r = h->Cli({"domain", "restore", dir + "/missing.save"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("missing.save"));
  {
    ProcessResult w = simtest::RunProcess({"/bin/sh", "-c", "echo garbage > " + dir + "/bad.save"});
    ASSERT_EQ(w.exit_code, 0);
  }
  r = h->Cli({"domain", "restore", dir + "/bad.save"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("not a xensim save image"));

  ASSERT_EQ(h->Cli({"domain", "create", "--name", "vm"}).exit_code, 0);
  r = h->Cli({"domain", "migrate", "vm", "--to", dir + "/no-such-host"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("is not running"));
  r = h->Cli({"domain", "migrate", "vm", "--to", h->proc().state_dir()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("the destination is this host"));
  EXPECT_THAT(h->Cli({"domain", "list"}).out, HasSubstr("\tvm\t"));  // untouched

  // Restoring an image whose domain still runs: refused, nothing created.
  r = h->Cli({"domain", "save", "vm", dir + "/vm.save"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(h->Cli({"domain", "restore", dir + "/vm.save"}).exit_code, 0);
  r = h->Cli({"domain", "restore", dir + "/vm.save"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("exists"));
  // A suspended domain cannot be rebooted or saved.
  ASSERT_EQ(h->Cli({"domain", "suspend", "vm"}).exit_code, 0);
  r = h->Cli({"domain", "save", "vm", dir + "/vm2.save"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("not running"));
  r = h->Cli({"domain", "reboot", "vm"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("suspended"));
}

}  // namespace
}  // namespace sim
}  // namespace xenchan
