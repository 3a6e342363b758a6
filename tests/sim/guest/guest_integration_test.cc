// Integration tests of xensim's simulated guest: a real simulated xenstored
// and hypervisor run in this process, the guest runs in a child process (this
// binary re-executed with --run-guest), and the test plays the dom0 backend
// written against the real ring layout (xen/io/console.h) through
// LibXenStore and the hypervisor client, as XEN-CHANNELS §1.5, §2 and §3
// describe.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstdint>
// console.h uses uint32_t without including anything.
#include <xen/io/console.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backend/platform/xen/lib_xenstore.h"
#include "backend/sim/guest/guest.h"
#include "backend/sim/hv/client.h"
#include "backend/sim/hv/hypervisor.h"
#include "backend/sim/xenstore/server.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"

namespace xenchan {
namespace {

constexpr uint32_t kDomid = 5;
constexpr absl::Duration kTimeout = absl::Seconds(20);

std::string FrontendPath(int devid) {
  return absl::StrCat("/local/domain/", kDomid, "/device/console/", devid);
}
std::string BackendPath(int devid) {
  return absl::StrCat("/local/domain/0/backend/console/", kDomid, "/", devid);
}

// Backend-side ring operations (XEN-CHANNELS §3.3), on a mapped page.
uint32_t Load(const uint32_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
void Store(uint32_t* p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

std::string DrainOut(xencons_interface* intf) {
  const uint32_t cons = Load(&intf->out_cons);
  const uint32_t prod = Load(&intf->out_prod);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const uint32_t n = prod - cons;
  if (n == 0 || n > sizeof(intf->out)) return "";
  std::string data;
  for (uint32_t i = 0; i < n; ++i) data += intf->out[MASK_XENCONS_IDX(cons + i, intf->out)];
  std::atomic_thread_fence(std::memory_order_seq_cst);
  Store(&intf->out_cons, prod);
  return data;
}

size_t FillIn(xencons_interface* intf, const std::string& data) {
  const uint32_t cons = Load(&intf->in_cons);
  uint32_t prod = Load(&intf->in_prod);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const uint32_t used = prod - cons;
  if (used > sizeof(intf->in)) return 0;
  size_t sent = 0;
  while (sent < data.size() && prod - cons < sizeof(intf->in)) {
    intf->in[MASK_XENCONS_IDX(prod++, intf->in)] = data[sent++];
  }
  std::atomic_thread_fence(std::memory_order_release);
  Store(&intf->in_prod, prod);
  return sent;
}

class GuestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A socket path must fit sun_path.
    dir_ = testcommon::MakeShortTempDir("guest");
    ASSERT_FALSE(dir_.empty());
    sim::xenstore::XenstoreServer::Options xo;
    xo.socket_path = dir_ + "/xenstored.sock";
    xo.state_dir = dir_;
    auto xenstored = sim::xenstore::XenstoreServer::Create(xo);
    ASSERT_TRUE(xenstored.ok()) << xenstored.status();
    xenstored_ = *std::move(xenstored);
    sim::hv::Hypervisor::Options ho;
    ho.dom0_socket = dir_ + "/hypervisor.sock";
    ho.domain_socket_dir = dir_ + "/domains";
    auto hypervisor = sim::hv::Hypervisor::Create(ho);
    ASSERT_TRUE(hypervisor.ok()) << hypervisor.status();
    hypervisor_ = *std::move(hypervisor);

    auto xs = LibXenStore::Open(xenstored_->socket_path());
    ASSERT_TRUE(xs.ok()) << xs.status();
    xs_ = *std::move(xs);
    auto grants = sim::hv::HvConnection::Connect(ho.dom0_socket);
    ASSERT_TRUE(grants.ok()) << grants.status();
    grants_ = *std::move(grants);
    auto evtchn = sim::hv::HvEvtchn::Open(ho.dom0_socket);
    ASSERT_TRUE(evtchn.ok()) << evtchn.status();
    evtchn_ = *std::move(evtchn);

    // What a toolstack does for a new domain.
    ASSERT_TRUE(hypervisor_->CreateDomain(kDomid).ok());
    const std::string dom = absl::StrCat("/local/domain/", kDomid);
    ASSERT_TRUE(xs_->Write(kNoTransaction, dom + "/name", "guest1").ok());
    ASSERT_TRUE(xs_->Write(kNoTransaction, dom + "/domid", absl::StrCat(kDomid)).ok());
    ASSERT_TRUE(xs_->SetPermissions(kNoTransaction, dom,
                                    {{0, XsPermission::kNone}, {kDomid, XsPermission::kRead}})
                    .ok());
    for (const char* sub : {"device", "error", "control", "data"}) {
      ASSERT_TRUE(xs_->Mkdir(kNoTransaction, dom + "/" + sub).ok());
      ASSERT_TRUE(
          xs_->SetPermissions(kNoTransaction, dom + "/" + sub, {{kDomid, XsPermission::kNone}})
              .ok());
    }
    ASSERT_TRUE(xs_->IntroduceDomain(kDomid, 0, 1).ok());
    ASSERT_TRUE(xs_->Watch("/local/domain", "test").ok());
    root_ = dir_ + "/guests/guest1/root";
    control_ = dir_ + "/domains/" + std::to_string(kDomid) + "/guest.sock";
  }

  void TearDown() override {
    if (guest_pid_ > 0) {
      kill(guest_pid_, SIGKILL);
      waitpid(guest_pid_, nullptr, 0);
    }
  }

  void StartGuest() {
    const std::string self = "/proc/self/exe";
    char exe[4096];
    const ssize_t n = readlink(self.c_str(), exe, sizeof(exe) - 1);
    ASSERT_GT(n, 0);
    exe[n] = 0;
    std::vector<std::string> args = {exe,
                                     "--run-guest",
                                     dir_,
                                     std::to_string(kDomid),
                                     "guest1",
                                     root_,
                                     xenstored_->DomainSocketPath(kDomid),
                                     hypervisor_->DomainSocketPath(kDomid),
                                     control_};
    guest_pid_ = fork();
    ASSERT_GE(guest_pid_, 0);
    if (guest_pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    // Ready once the control socket answers.
    ASSERT_TRUE(WaitUntil([&] { return Control("status").has_value(); }));
  }

  // Waits for `pred`, waking on xenstore watch events (bounded by kTimeout).
  bool WaitUntil(const std::function<bool()>& pred, absl::Duration timeout = kTimeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      while (xs_->ReadWatch().has_value()) {
      }
      if (pred()) return true;
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      pollfd p{xs_->WatchFd(), POLLIN, 0};
      poll(&p, 1, static_cast<int>(std::min<int64_t>(50, absl::ToInt64Milliseconds(left) + 1)));
    }
  }

  std::optional<std::string> Read(const std::string& path) {
    auto v = xs_->Read(kNoTransaction, path);
    if (!v.ok()) return std::nullopt;
    return *v;
  }
  bool StateIs(const std::string& dir, const std::string& state) {
    return Read(dir + "/state") == state;
  }

  // Sends one control command; returns the whole reply (status: every line).
  std::optional<std::string> Control(const std::string& cmd) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, control_.c_str(), sizeof(addr.sun_path) - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd);
      return std::nullopt;
    }
    const std::string line = cmd + "\n";
    if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      close(fd);
      return std::nullopt;
    }
    std::string reply;
    size_t expected_lines = 1;
    const absl::Time deadline = absl::Now() + kTimeout;
    while (absl::Now() < deadline) {
      const size_t lines = std::count(reply.begin(), reply.end(), '\n');
      if (lines >= 1 && expected_lines == 1 && cmd == "status") {
        int n = 0;
        if (absl::SimpleAtoi(reply.substr(3, reply.find('\n') - 3), &n)) expected_lines = 1 + n;
      }
      if (lines >= expected_lines) break;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      reply.append(buf, n);
    }
    close(fd);
    if (reply.empty()) return std::nullopt;
    return reply;
  }

  // libxl__device_generic_add, in one transaction (XEN-CHANNELS §2.5).
  void HotAdd(int devid, const std::string& name, bool with_backend_dir = true,
              bool backend_readable = true) {
    const std::string fe = FrontendPath(devid);
    const std::string be = BackendPath(devid);
    while (true) {
      auto t = xs_->StartTransaction();
      ASSERT_TRUE(t.ok());
      if (with_backend_dir) {
        ASSERT_TRUE(xs_->Mkdir(*t, be).ok());
        std::vector<XsPermission> perms = {{0, XsPermission::kNone}};
        if (backend_readable) perms.push_back({kDomid, XsPermission::kRead});
        ASSERT_TRUE(xs_->SetPermissions(*t, be, perms).ok());
        ASSERT_TRUE(xs_->Write(*t, be + "/frontend", fe).ok());
        ASSERT_TRUE(xs_->Write(*t, be + "/frontend-id", absl::StrCat(kDomid)).ok());
        ASSERT_TRUE(xs_->Write(*t, be + "/online", "1").ok());
        ASSERT_TRUE(xs_->Write(*t, be + "/state", "1").ok());
        ASSERT_TRUE(xs_->Write(*t, be + "/protocol", "vt100").ok());
      }
      ASSERT_TRUE(xs_->Mkdir(*t, fe).ok());
      ASSERT_TRUE(
          xs_->SetPermissions(*t, fe, {{kDomid, XsPermission::kNone}, {0, XsPermission::kRead}})
              .ok());
      ASSERT_TRUE(xs_->Write(*t, fe + "/backend", be).ok());
      ASSERT_TRUE(xs_->Write(*t, fe + "/backend-id", "0").ok());
      ASSERT_TRUE(xs_->Write(*t, fe + "/state", "1").ok());
      ASSERT_TRUE(xs_->Write(*t, fe + "/protocol", "vt100").ok());
      for (const auto& [key, value] :
           std::vector<std::pair<std::string, std::string>>{{"name", name},
                                                            {"limit", "1048576"},
                                                            {"type", "xenchan"},
                                                            {"output", "pty"},
                                                            {"tty", ""}}) {
        ASSERT_TRUE(xs_->Write(*t, fe + "/" + key, value).ok());
        ASSERT_TRUE(xs_->SetPermissions(*t, fe + "/" + key,
                                        {{0, XsPermission::kNone}, {kDomid, XsPermission::kRead}})
                        .ok());
      }
      absl::Status s = xs_->EndTransaction(*t, true);
      if (s.code() == absl::StatusCode::kAborted) continue;
      ASSERT_TRUE(s.ok()) << s;
      return;
    }
  }

  // The backend's view of one connected channel.
  struct Conn {
    uint32_t ref = 0;
    uint32_t remote_port = 0;
    uint32_t local_port = 0;
    std::unique_ptr<sim::hv::HvMapping> map;
    xencons_interface* intf() { return static_cast<xencons_interface*>(map->data()); }
  };

  // FE=3 seen: map ring-ref, bind port, BE=4, wait for FE=4.
  std::unique_ptr<Conn> Connect(int devid) {
    auto c = std::make_unique<Conn>();
    const std::string fe = FrontendPath(devid);
    EXPECT_TRUE(WaitUntil([&] { return StateIs(fe, "3") || StateIs(fe, "4"); }));
    EXPECT_TRUE(absl::SimpleAtoi(Read(fe + "/ring-ref").value_or("x"), &c->ref));
    EXPECT_TRUE(absl::SimpleAtoi(Read(fe + "/port").value_or("x"), &c->remote_port));
    auto map = grants_->MapGrant(kDomid, c->ref, true);
    EXPECT_TRUE(map.ok()) << map.status();
    if (!map.ok()) return nullptr;
    c->map = *std::move(map);
    auto port = evtchn_->BindInterdomain(kDomid, c->remote_port);
    EXPECT_TRUE(port.ok()) << port.status();
    if (!port.ok()) return nullptr;
    c->local_port = *port;
    EXPECT_TRUE(xs_->Write(kNoTransaction, BackendPath(devid) + "/state", "4").ok());
    EXPECT_TRUE(WaitUntil([&] { return StateIs(fe, "4"); }));
    return c;
  }

  // Serves backend events (unmask) until `pred` holds or the deadline.
  bool ServeUntil(const std::function<bool()>& pred, absl::Duration timeout = kTimeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      if (pred()) return true;
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      pollfd p{evtchn_->fd(), POLLIN, 0};
      poll(&p, 1, static_cast<int>(std::min<int64_t>(50, absl::ToInt64Milliseconds(left) + 1)));
      while (true) {
        auto port = evtchn_->Pending();
        if (!port.ok() || !port->has_value()) break;
        (void)evtchn_->Unmask(**port);
      }
    }
  }

  // True once `fd` (a pty slave) reports hangup: EOF or EIO on read.
  static bool HungUp(int fd) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(kTimeout))) <= 0) return false;
    char b;
    return read(fd, &b, 1) <= 0;
  }

  std::string Link(const std::string& rel) {
    char buf[4096];
    const ssize_t n = readlink((root_ + "/" + rel).c_str(), buf, sizeof(buf) - 1);
    if (n < 0) return "";
    return std::string(buf, n);
  }

  int OpenChannel(const std::string& name, bool raw) {
    const int fd =
        open((root_ + "/dev/xen-channel/" + name).c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    EXPECT_GE(fd, 0) << strerror(errno);
    if (fd >= 0 && raw) {
      termios t;
      EXPECT_EQ(tcgetattr(fd, &t), 0);
      cfmakeraw(&t);
      EXPECT_EQ(tcsetattr(fd, TCSANOW, &t), 0);
    }
    return fd;
  }

  // Reads from `fd` until `want` bytes arrived (or the deadline).
  std::string ReadFd(int fd, size_t want) {
    std::string got;
    const absl::Time deadline = absl::Now() + kTimeout;
    while (got.size() < want && absl::Now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(fd, buf, std::min(sizeof(buf), want - got.size()));
      if (n <= 0) break;
      got.append(buf, n);
    }
    return got;
  }

  void Unplug(int devid, Conn* c) {
    const std::string fe = FrontendPath(devid);
    const std::string be = BackendPath(devid);
    ASSERT_TRUE(xs_->Write(kNoTransaction, be + "/state", "5").ok());
    ASSERT_TRUE(WaitUntil([&] { return StateIs(fe, "6"); }));
    if (c != nullptr) {
      c->map.reset();
      ASSERT_TRUE(evtchn_->Unbind(c->local_port).ok());
    }
    ASSERT_TRUE(xs_->Write(kNoTransaction, be + "/state", "6").ok());
    ASSERT_TRUE(xs_->Remove(kNoTransaction, fe).ok());
    ASSERT_TRUE(xs_->Remove(kNoTransaction, be).ok());
  }

  std::string dir_;
  std::string root_;
  std::string control_;
  std::unique_ptr<sim::xenstore::XenstoreServer> xenstored_;
  std::unique_ptr<sim::hv::Hypervisor> hypervisor_;
  std::unique_ptr<LibXenStore> xs_;
  std::unique_ptr<sim::hv::HvConnection> grants_;
  std::unique_ptr<sim::hv::HvEvtchn> evtchn_;
  pid_t guest_pid_ = -1;
};

TEST_F(GuestTest, HandshakeCookedTtyAndDataBothWays) {
  StartGuest();
  ASSERT_FALSE(Link("dev/hvc0").empty());  // the primary console
  HotAdd(1, "org.test.chan.1");
  std::unique_ptr<Conn> c = Connect(1);
  ASSERT_NE(c, nullptr);
  EXPECT_GE(c->ref, 8u);
  // The tty appeared at probe, with the udev helper's link.
  EXPECT_TRUE(absl::StartsWith(Link("dev/hvc1"), "/dev/pts/")) << Link("dev/hvc1");
  EXPECT_EQ(Link("dev/xen-channel/org.test.chan.1"), "../hvc1");

  const int fd = OpenChannel("org.test.chan.1", /*raw=*/false);
  ASSERT_GE(fd, 0);
  termios t;
  ASSERT_EQ(tcgetattr(fd, &t), 0);
  EXPECT_TRUE(t.c_lflag & ICANON);
  EXPECT_TRUE(t.c_lflag & ECHO);
  EXPECT_TRUE(t.c_iflag & IXON);
  EXPECT_TRUE(t.c_oflag & ONLCR);
  // Cooked: "\n" goes out as "\r\n".
  ASSERT_EQ(write(fd, "hi\n", 3), 3);
  std::string out;
  ASSERT_TRUE(ServeUntil([&] {
    out += DrainOut(c->intf());
    return out.size() >= 4;
  }));
  EXPECT_EQ(out, "hi\r\n");
  cfmakeraw(&t);
  ASSERT_EQ(tcsetattr(fd, TCSANOW, &t), 0);

  ASSERT_EQ(write(fd, "hello", 5), 5);
  out.clear();
  ASSERT_TRUE(ServeUntil([&] {
    out += DrainOut(c->intf());
    return out.size() >= 5;
  }));
  EXPECT_EQ(out, "hello");

  ASSERT_EQ(FillIn(c->intf(), "world"), 5u);
  ASSERT_TRUE(evtchn_->Notify(c->local_port).ok());
  EXPECT_EQ(ReadFd(fd, 5), "world");
  // The guest consumed what it delivered.
  EXPECT_TRUE(ServeUntil([&] { return Load(&c->intf()->in_cons) == Load(&c->intf()->in_prod); }));

  auto status = Control("status");
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(absl::StartsWith(*status, "ok 1\n")) << *status;
  EXPECT_TRUE(absl::StrContains(*status, "\"name\":\"org.test.chan.1\"")) << *status;
  EXPECT_TRUE(absl::StrContains(*status, "\"state\":4")) << *status;
  EXPECT_TRUE(absl::StrContains(*status, absl::StrCat("\"ring_ref\":", c->ref))) << *status;
  EXPECT_TRUE(absl::StrContains(*status, "\"bytes_in\":5")) << *status;
  close(fd);
}

TEST_F(GuestTest, UnplugHangsUpTtyAndTearsDownOnlyWhenDirectoryGoes) {
  StartGuest();
  HotAdd(2, "org.test.unplug");
  std::unique_ptr<Conn> c = Connect(2);
  ASSERT_NE(c, nullptr);
  const int fd = OpenChannel("org.test.unplug", true);
  ASSERT_GE(fd, 0);

  const std::string fe = FrontendPath(2);
  ASSERT_TRUE(xs_->Write(kNoTransaction, BackendPath(2) + "/state", "5").ok());
  ASSERT_TRUE(WaitUntil([&] { return StateIs(fe, "6"); }));
  // Hung up: links gone, the open fd reads EOF/EIO.
  EXPECT_EQ(Link("dev/hvc2"), "");
  EXPECT_EQ(Link("dev/hvc1"), "");
  EXPECT_EQ(Link("dev/xen-channel/org.test.unplug"), "");
  EXPECT_TRUE(HungUp(fd));
  close(fd);
  // Grant and port are kept until the directory goes: the grant still maps.
  auto again = grants_->MapGrant(kDomid, c->ref, true);
  EXPECT_TRUE(again.ok()) << again.status();
  if (again.ok()) again->reset();

  c->map.reset();
  ASSERT_TRUE(evtchn_->Unbind(c->local_port).ok());
  ASSERT_TRUE(xs_->Write(kNoTransaction, BackendPath(2) + "/state", "6").ok());
  ASSERT_TRUE(xs_->Remove(kNoTransaction, fe).ok());
  ASSERT_TRUE(xs_->Remove(kNoTransaction, BackendPath(2)).ok());
  ASSERT_TRUE(WaitUntil([&] { return Control("status") == std::optional<std::string>("ok 0\n"); }));
  // The guest ended access to the grant.
  EXPECT_FALSE(grants_->MapGrant(kDomid, c->ref, true).ok());
  EXPECT_FALSE(Read(fe).has_value());  // and did not re-create the node

  // The same devid can be used again once the guest saw it go.
  HotAdd(2, "org.test.unplug");
  std::unique_ptr<Conn> c2 = Connect(2);
  ASSERT_NE(c2, nullptr);
  EXPECT_EQ(Link("dev/xen-channel/org.test.unplug"), "../hvc1");
}

TEST_F(GuestTest, SuspendResumeZeroesPageAndPublishesNewRefAndPort) {
  StartGuest();
  HotAdd(1, "org.test.resume");
  std::unique_ptr<Conn> c = Connect(1);
  ASSERT_NE(c, nullptr);
  const int fd = OpenChannel("org.test.resume", true);
  ASSERT_GE(fd, 0);
  const std::string old_tty = Link("dev/hvc1");

  ASSERT_EQ(Control("suspend"), std::optional<std::string>("ok suspended\n"));
  // While suspended the guest does not touch the page.
  ASSERT_EQ(FillIn(c->intf(), "lost"), 4u);
  ASSERT_TRUE(evtchn_->Notify(c->local_port).ok());
  c->intf()->out[100] = 'x';
  ASSERT_EQ(Control("resume"), std::optional<std::string>("ok resumed 1\n"));

  const std::string fe = FrontendPath(1);
  // FE went back to 3 with new values, then to 4 (the backend is at 4).
  ASSERT_TRUE(WaitUntil([&] { return StateIs(fe, "4"); }));
  uint32_t ref = 0, port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Read(fe + "/ring-ref").value_or("x"), &ref));
  ASSERT_TRUE(absl::SimpleAtoi(Read(fe + "/port").value_or("x"), &port));
  // A new grant ref. The port was closed and a new one allocated: like Xen,
  // the hypervisor may hand out the same (lowest free) number again.
  EXPECT_NE(ref, c->ref);
  EXPECT_GT(port, 0u);
  // The page (still mapped through the old grant) was zeroed.
  const char* page = static_cast<const char*>(c->map->data());
  bool zero = true;
  for (size_t i = 0; i < 4096; ++i) zero = zero && page[i] == 0;
  EXPECT_TRUE(zero);
  // The old tty was hung up and a new one made.
  EXPECT_TRUE(HungUp(fd));
  close(fd);
  EXPECT_FALSE(Link("dev/hvc1").empty());
  EXPECT_NE(Link("dev/hvc1"), old_tty);

  // Reconnect on the new ref and port; data flows again.
  c->map.reset();
  (void)evtchn_->Unbind(c->local_port);
  auto map = grants_->MapGrant(kDomid, ref, true);
  ASSERT_TRUE(map.ok()) << map.status();
  auto lport = evtchn_->BindInterdomain(kDomid, port);
  ASSERT_TRUE(lport.ok()) << lport.status();
  auto* intf = static_cast<xencons_interface*>((*map)->data());
  const int fd2 = OpenChannel("org.test.resume", true);
  ASSERT_GE(fd2, 0);
  ASSERT_EQ(write(fd2, "again", 5), 5);
  std::string out;
  ASSERT_TRUE(ServeUntil([&] {
    out += DrainOut(intf);
    return out.size() >= 5;
  }));
  EXPECT_EQ(out, "again");
  close(fd2);
}

TEST_F(GuestTest, KillNineHangsUpTheTtys) {
  StartGuest();
  HotAdd(1, "org.test.kill");
  std::unique_ptr<Conn> c = Connect(1);
  ASSERT_NE(c, nullptr);
  const int fd = OpenChannel("org.test.kill", true);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(kill(guest_pid_, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(guest_pid_, &status, 0), guest_pid_);
  guest_pid_ = -1;
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_TRUE(HungUp(fd));
  close(fd);
  // The guest's port closed with its process: the backend can still notify
  // its own (now dangling) port without harm, and the frontend stays at 4.
  EXPECT_TRUE(StateIs(FrontendPath(1), "4"));
  EXPECT_FALSE(Control("status").has_value());
}

TEST_F(GuestTest, DevidRules) {
  // Present at boot: console/0 is ignored outright.
  HotAdd(0, "org.test.zero");
  StartGuest();
  HotAdd(10, "org.test.ten");
  // device/console/10 has devid 0: the probe fails with ENODEV.
  ASSERT_TRUE(WaitUntil([&] {
    return Read(absl::StrCat("/local/domain/", kDomid, "/error/device/console/10/error"))
        .has_value();
  }));
  EXPECT_EQ(Read(absl::StrCat("/local/domain/", kDomid, "/error/device/console/10/error")),
            "19 xenbus_dev_probe on device/console/10");
  EXPECT_TRUE(StateIs(FrontendPath(10), "1"));
  EXPECT_FALSE(Read(FrontendPath(10) + "/ring-ref").has_value());
  EXPECT_FALSE(Read(absl::StrCat("/local/domain/", kDomid, "/error/device/console/0")).has_value());
  EXPECT_TRUE(StateIs(FrontendPath(0), "1"));
  EXPECT_EQ(Link("dev/hvc1"), "");
}

TEST_F(GuestTest, AtMostSevenChannels) {
  StartGuest();
  for (int devid = 1; devid <= 8; ++devid) HotAdd(devid, absl::StrCat("org.test.n", devid));
  for (int devid = 1; devid <= 7; ++devid) {
    ASSERT_TRUE(WaitUntil([&] { return StateIs(FrontendPath(devid), "3"); })) << devid;
    EXPECT_EQ(Link(absl::StrCat("dev/xen-channel/org.test.n", devid)).substr(0, 6), "../hvc");
  }
  const std::string err = absl::StrCat("/local/domain/", kDomid, "/error/device/console/8/error");
  ASSERT_TRUE(WaitUntil([&] { return Read(err).has_value(); }));
  EXPECT_EQ(Read(err), "12 xenbus_dev_probe on device/console/8");
  EXPECT_TRUE(StateIs(FrontendPath(8), "1"));
  EXPECT_EQ(Link("dev/xen-channel/org.test.n8"), "");
  for (int i = 1; i <= 7; ++i) EXPECT_FALSE(Link(absl::StrCat("dev/hvc", i)).empty()) << i;
}

TEST_F(GuestTest, WriterBlocksWhileOutRingIsFullAndResumesWhenDrained) {
  StartGuest();
  HotAdd(1, "org.test.block");
  std::unique_ptr<Conn> c = Connect(1);
  ASSERT_NE(c, nullptr);
  const int fd = OpenChannel("org.test.block", true);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);

  // Write a numbered pattern until the tty stops taking it.
  std::string sent;
  auto pattern = [](size_t i) { return static_cast<char>('a' + (i * 7 + i / 26) % 26); };
  auto write_until_eagain = [&] {
    while (sent.size() < (8u << 20)) {
      char buf[512];
      for (size_t i = 0; i < sizeof(buf); ++i) buf[i] = pattern(sent.size() + i);
      const ssize_t n = write(fd, buf, sizeof(buf));
      if (n <= 0) {
        EXPECT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << strerror(errno);
        return;
      }
      sent.append(buf, n);
    }
  };
  auto ring_full = [&] { return Load(&c->intf()->out_prod) - Load(&c->intf()->out_cons) == 2048; };
  // The guest fills the out ring and then stops reading the pty, so the
  // writer ends up blocked for good: the tty stays unwritable.
  bool blocked = false;
  const absl::Time deadline = absl::Now() + kTimeout;
  while (!blocked && absl::Now() < deadline) {
    write_until_eagain();
    if (!ServeUntil(ring_full, absl::Seconds(2))) continue;
    // The pty frees buffer space asynchronously for a moment after a write;
    // blocked means still no room after a quiet window.
    pollfd p{fd, POLLOUT, 0};
    poll(&p, 1, 300);
    const char next = pattern(sent.size());
    if (write(fd, &next, 1) == 1) {
      sent += next;
      continue;
    }
    ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << strerror(errno);
    blocked = true;
  }
  ASSERT_TRUE(blocked) << "writer never blocked after " << sent.size() << " bytes";
  EXPECT_TRUE(ring_full());
  EXPECT_LT(sent.size(), 1u << 20);  // bounded by ring + pty buffer

  // Drain: everything written arrives in order, and the writer can go on.
  std::string got;
  ASSERT_TRUE(ServeUntil([&] {
    const std::string d = DrainOut(c->intf());
    if (!d.empty()) {
      got += d;
      (void)evtchn_->Notify(c->local_port);
    }
    return got.size() >= sent.size();
  }));
  EXPECT_EQ(got.size(), sent.size());
  EXPECT_TRUE(got == sent);
  EXPECT_EQ(write(fd, "z", 1), 1);
  close(fd);
}

TEST_F(GuestTest, MissingBackendIsFatal) {
  StartGuest();
  HotAdd(3, "org.test.nobackend", /*with_backend_dir=*/false);
  const std::string fe = FrontendPath(3);
  ASSERT_TRUE(WaitUntil([&] { return StateIs(fe, "5"); }));
  EXPECT_EQ(Read(absl::StrCat("/local/domain/", kDomid, "/error/device/console/3/error")),
            "2 unable to read other end from device/console/3.  missing or inaccessible.");
  EXPECT_FALSE(Read(fe + "/ring-ref").has_value());
  EXPECT_EQ(Link("dev/hvc1"), "");
}

TEST_F(GuestTest, UnreadableBackendIsFatal) {
  StartGuest();
  HotAdd(3, "org.test.hidden", /*with_backend_dir=*/true, /*backend_readable=*/false);
  const std::string fe = FrontendPath(3);
  ASSERT_TRUE(WaitUntil([&] { return StateIs(fe, "5"); }));
  EXPECT_EQ(Read(absl::StrCat("/local/domain/", kDomid, "/error/device/console/3/error")),
            "2 unable to read other end from device/console/3.  missing or inaccessible.");
  EXPECT_FALSE(Read(fe + "/ring-ref").has_value());
}

TEST_F(GuestTest, RemoveAndRecreateInOneTransactionLeavesAStaleDevice) {
  StartGuest();
  HotAdd(1, "org.test.stale");
  std::unique_ptr<Conn> c = Connect(1);
  ASSERT_NE(c, nullptr);
  // XEN-CHANNELS §6.14: the guest never sees the node gone, so it does not
  // probe the new one.
  const std::string fe = FrontendPath(1);
  auto t = xs_->StartTransaction();
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(xs_->Remove(*t, fe).ok());
  ASSERT_TRUE(xs_->Write(*t, fe + "/backend", BackendPath(1)).ok());
  ASSERT_TRUE(xs_->Write(*t, fe + "/backend-id", "0").ok());
  ASSERT_TRUE(xs_->Write(*t, fe + "/state", "1").ok());
  ASSERT_TRUE(xs_->SetPermissions(*t, fe, {{kDomid, XsPermission::kNone}}).ok());
  ASSERT_TRUE(xs_->EndTransaction(*t, true).ok());
  // Barrier: the guest handles watch events in order, so once device 2 is
  // probed it has handled the re-creation too.
  HotAdd(2, "org.test.barrier");
  ASSERT_TRUE(WaitUntil([&] { return StateIs(FrontendPath(2), "3"); }));
  EXPECT_TRUE(StateIs(fe, "1"));
  EXPECT_FALSE(Read(fe + "/ring-ref").has_value());
  EXPECT_EQ(Link("dev/xen-channel/org.test.stale"), "../hvc1");  // old tty still there
}

TEST_F(GuestTest, HostileBackendIdIsRefused) {
  StartGuest();
  HotAdd(4, "org.test.badid");
  // Not created by HotAdd's transaction: rewrite backend-id afterwards would
  // race the probe, so use a fresh devid written with a bad id from the start.
  const std::string fe = FrontendPath(5);
  auto t = xs_->StartTransaction();
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(xs_->Mkdir(*t, BackendPath(5)).ok());
  ASSERT_TRUE(xs_->SetPermissions(*t, BackendPath(5),
                                  {{0, XsPermission::kNone}, {kDomid, XsPermission::kRead}})
                  .ok());
  ASSERT_TRUE(xs_->Write(*t, fe + "/backend", BackendPath(5)).ok());
  ASSERT_TRUE(xs_->Write(*t, fe + "/backend-id", "0x0; rm -rf").ok());
  ASSERT_TRUE(xs_->Write(*t, fe + "/state", "1").ok());
  ASSERT_TRUE(xs_->SetPermissions(*t, fe, {{kDomid, XsPermission::kNone}}).ok());
  ASSERT_TRUE(xs_->EndTransaction(*t, true).ok());
  ASSERT_TRUE(WaitUntil([&] { return StateIs(fe, "5"); }));
  EXPECT_EQ(Read(absl::StrCat("/local/domain/", kDomid, "/error/device/console/5/error")),
            "22 reading other end details from device/console/5");
  // The sane device next to it is unaffected.
  ASSERT_TRUE(WaitUntil([&] { return StateIs(FrontendPath(4), "3"); }));
}

TEST_F(GuestTest, InputWaitsInTheRingUntilSomeoneOpensTheTty) {
  StartGuest();
  HotAdd(1, "org.test.closed");
  std::unique_ptr<Conn> c = Connect(1);
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(FillIn(c->intf(), "early"), 5u);
  ASSERT_TRUE(evtchn_->Notify(c->local_port).ok());
  // Nobody has /dev/hvc1 open: hvc_poll leaves the input in the ring.
  auto consumed = [&] { return Load(&c->intf()->in_cons) == Load(&c->intf()->in_prod); };
  EXPECT_FALSE(ServeUntil(consumed, absl::Milliseconds(300)));
  const int fd = OpenChannel("org.test.closed", true);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(ReadFd(fd, 5), "early");
  EXPECT_TRUE(ServeUntil(consumed));
  // Closed again: new input waits again.
  close(fd);
  ASSERT_EQ(FillIn(c->intf(), "late"), 4u);
  ASSERT_TRUE(evtchn_->Notify(c->local_port).ok());
  EXPECT_FALSE(ServeUntil(consumed, absl::Milliseconds(300)));
  const int fd2 = OpenChannel("org.test.closed", true);
  ASSERT_GE(fd2, 0);
  EXPECT_EQ(ReadFd(fd2, 4), "late");
  close(fd2);
}

TEST_F(GuestTest, InputStaysInTheRingWhileTheTtyIsFull) {
  StartGuest();
  HotAdd(1, "org.test.input");
  std::unique_ptr<Conn> c = Connect(1);
  ASSERT_NE(c, nullptr);
  // A reader that has the tty open in raw mode but does not read yet.
  const int fd = OpenChannel("org.test.input", true);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);

  constexpr size_t kTotal = 512 * 1024;
  auto pattern = [](size_t i) { return static_cast<char>('A' + (i * 13 + i / 26) % 26); };
  size_t pushed = 0;
  auto push = [&] {
    std::string chunk;
    for (size_t i = 0; i < 1024 && pushed + i < kTotal; ++i) chunk += pattern(pushed + i);
    const size_t n = FillIn(c->intf(), chunk);
    pushed += n;
    if (n > 0) (void)evtchn_->Notify(c->local_port);
  };
  auto ring_empty = [&] { return Load(&c->intf()->in_cons) == Load(&c->intf()->in_prod); };
  // Push until the guest stops consuming (the tty would not take more):
  // what it could not deliver stays in the ring, over two quiet windows.
  bool stuck = false;
  const absl::Time deadline = absl::Now() + kTimeout;
  while (!stuck && pushed < kTotal && absl::Now() < deadline) {
    push();
    stuck = !ServeUntil(ring_empty, absl::Milliseconds(300)) &&
            !ServeUntil(ring_empty, absl::Milliseconds(300));
  }
  ASSERT_TRUE(stuck) << "the guest consumed all " << pushed << " bytes";
  EXPECT_LT(pushed, kTotal);
  EXPECT_FALSE(ring_empty());

  // Now read: everything arrives, in order, nothing lost.
  std::string got;
  while (got.size() < kTotal && absl::Now() < deadline + kTimeout) {
    char buf[8192];
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) got.append(buf, n);
    if (pushed < kTotal) push();
    pollfd p[2] = {{fd, POLLIN, 0}, {evtchn_->fd(), POLLIN, 0}};
    poll(p, 2, 50);
    while (true) {
      auto port = evtchn_->Pending();
      if (!port.ok() || !port->has_value()) break;
      (void)evtchn_->Unmask(**port);
    }
  }
  ASSERT_EQ(got.size(), kTotal);
  bool same = true;
  for (size_t i = 0; i < kTotal && same; ++i) same = got[i] == pattern(i);
  EXPECT_TRUE(same);
  close(fd);
}

TEST_F(GuestTest, IllegalRingIndicesFromTheBackend) {
  StartGuest();
  HotAdd(1, "org.test.illegal");
  std::unique_ptr<Conn> c = Connect(1);
  ASSERT_NE(c, nullptr);
  const int fd = OpenChannel("org.test.illegal", true);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
  // out: prod - cons > 2048. hvc_xen refuses the ring and hvc throws the
  // output away, so the writer never blocks and nothing is written.
  Store(&c->intf()->out_prod, Load(&c->intf()->out_cons) + 5000);
  const uint32_t out_prod = Load(&c->intf()->out_prod);
  size_t written = 0;
  const absl::Time deadline = absl::Now() + kTimeout;
  while (written < 256 * 1024 && absl::Now() < deadline) {
    char buf[4096];
    memset(buf, 'q', sizeof(buf));
    const ssize_t n = write(fd, buf, sizeof(buf));
    if (n > 0) {
      written += n;
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    poll(&p, 1, 1000);
  }
  EXPECT_GE(written, 256u * 1024);
  EXPECT_EQ(Load(&c->intf()->out_prod), out_prod);
  // in: prod - cons > 1024: nothing is consumed or delivered.
  const uint32_t in_cons = Load(&c->intf()->in_cons);
  Store(&c->intf()->in_prod, in_cons + 2000);
  ASSERT_TRUE(evtchn_->Notify(c->local_port).ok());
  EXPECT_FALSE(
      ServeUntil([&] { return Load(&c->intf()->in_cons) != in_cons; }, absl::Milliseconds(300)));
  char b;
  EXPECT_EQ(read(fd, &b, 1), -1);
  // Once the backend repairs the indices, data flows again.
  Store(&c->intf()->in_prod, in_cons);
  Store(&c->intf()->out_cons, Load(&c->intf()->out_prod));
  ASSERT_EQ(FillIn(c->intf(), "ok"), 2u);
  ASSERT_TRUE(evtchn_->Notify(c->local_port).ok());
  EXPECT_EQ(ReadFd(fd, 2), "ok");
  EXPECT_TRUE(Control("status").has_value());
  close(fd);
}

TEST_F(GuestTest, Devid11SharesDevid1Vtermno) {
  StartGuest();
  HotAdd(1, "org.test.one");
  std::unique_ptr<Conn> c1 = Connect(1);
  ASSERT_NE(c1, nullptr);
  HotAdd(11, "org.test.eleven");
  std::unique_ptr<Conn> c11 = Connect(11);
  ASSERT_NE(c11, nullptr);
  EXPECT_EQ(Link("dev/xen-channel/org.test.eleven"), "../hvc2");
  // hvc_xen finds the ring by vtermno (devid + cookie): the first console
  // with devid 1 wins, so device 11's tty writes into device 1's ring.
  const int fd = OpenChannel("org.test.eleven", true);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "x11", 3), 3);
  std::string out1;
  ASSERT_TRUE(ServeUntil([&] {
    out1 += DrainOut(c1->intf());
    return out1.size() >= 3;
  }));
  EXPECT_EQ(out1, "x11");
  EXPECT_EQ(DrainOut(c11->intf()), "");
  close(fd);
}

TEST_F(GuestTest, PrimaryConsoleOutputGoesToTheConsoleLog) {
  StartGuest();
  const std::string log = dir_ + "/guests/guest1/console.log";
  const int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  ASSERT_GE(in, 0);
  ASSERT_GE(inotify_add_watch(in, log.c_str(), IN_MODIFY), 0);
  const int fd = open((root_ + "/dev/hvc0").c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "boot ok\n", 8), 8);
  std::string content;
  const absl::Time deadline = absl::Now() + kTimeout;
  while (absl::Now() < deadline) {
    FILE* f = fopen(log.c_str(), "r");
    ASSERT_NE(f, nullptr);
    char buf[256];
    const size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    content.assign(buf, n);
    if (content.size() >= 9) break;
    pollfd p{in, POLLIN, 0};
    poll(&p, 1, 100);
    char ev[4096];
    (void)!read(in, ev, sizeof(ev));
  }
  EXPECT_EQ(content, "boot ok\r\n") << absl::CHexEscape(content);
  close(fd);
  close(in);
}

TEST_F(GuestTest, ShutdownClosesConnectedDevicesAndExits) {
  StartGuest();
  HotAdd(1, "org.test.shutdown");
  std::unique_ptr<Conn> c = Connect(1);
  ASSERT_NE(c, nullptr);
  // A backend that answers FE=5 with BE=5, on a thread of its own.
  std::atomic<bool> stop{false};
  std::thread backend([&] {
    auto xs = LibXenStore::Open(xenstored_->socket_path());
    ASSERT_TRUE(xs.ok());
    ASSERT_TRUE((*xs)->Watch(FrontendPath(1) + "/state", "fe").ok());
    const absl::Time deadline = absl::Now() + kTimeout;
    while (!stop && absl::Now() < deadline) {
      auto v = (*xs)->Read(kNoTransaction, FrontendPath(1) + "/state");
      if (v.ok() && *v == "5") {
        ASSERT_TRUE((*xs)->Write(kNoTransaction, BackendPath(1) + "/state", "5").ok());
        return;
      }
      pollfd p{(*xs)->WatchFd(), POLLIN, 0};
      poll(&p, 1, 100);
      while ((*xs)->ReadWatch().has_value()) {
      }
    }
  });
  auto reply = Control("shutdown");
  stop = true;
  backend.join();
  ASSERT_TRUE(reply.has_value());
  EXPECT_TRUE(absl::StartsWith(*reply, "ok shutdown device/console/1=closed:")) << *reply;
  int status = 0;
  ASSERT_EQ(waitpid(guest_pid_, &status, 0), guest_pid_);
  guest_pid_ = -1;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(StateIs(FrontendPath(1), "6"));
}

TEST_F(GuestTest, ShutdownTimesOutAfterFiveSecondsWithASilentBackend) {
  StartGuest();
  HotAdd(1, "org.test.silent");
  std::unique_ptr<Conn> c = Connect(1);
  ASSERT_NE(c, nullptr);
  const absl::Time start = absl::Now();
  auto reply = Control("shutdown");
  ASSERT_TRUE(reply.has_value());
  EXPECT_GE(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(absl::StartsWith(*reply, "ok shutdown device/console/1=timeout:")) << *reply;
  EXPECT_TRUE(StateIs(FrontendPath(1), "5"));
}

}  // namespace
}  // namespace xenchan

int main(int argc, char** argv) {
  if (argc == 9 && std::string(argv[1]) == "--run-guest") {
    xenchan::GuestOptions o;
    o.state_dir = argv[2];
    o.domid = static_cast<uint32_t>(atoi(argv[3]));
    o.name = argv[4];
    o.root_dir = argv[5];
    o.xenstore_socket = argv[6];
    o.hypervisor_socket = argv[7];
    o.control_socket = argv[8];
    const absl::Status s = xenchan::RunGuest(o);
    if (!s.ok()) fprintf(stderr, "guest: %s\n", s.ToString().c_str());
    return s.ok() ? 0 : 1;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
