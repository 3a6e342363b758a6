// See qemu_console.h.
#include "backend/sim/qemu_console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "backend/platform/xen/lib_xenstore.h"
#include "backend/ring/console_ring.h"
#include "backend/sim/hv/client.h"
#include "backend/sim/hv/wire.h"
#include "backend/util/errno_status.h"

namespace xenchan {
namespace sim {
namespace {

using hv::UniqueFd;

constexpr size_t kDefaultLimit = 1 << 20;
constexpr size_t kMinLimit = 4096;
constexpr size_t kMaxLimit = 16 << 20;

// Strict unsigned decimal: 1-10 digits, no sign, no spaces, value <= max.
std::optional<uint32_t> ParseStrict(const std::string& s, uint64_t max) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > max) return std::nullopt;
  return static_cast<uint32_t>(v);
}

void Log(const std::string& msg) { std::fprintf(stderr, "xensim-qemu: %s\n", msg.c_str()); }

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// One toolstack channel and its chardev.
struct Channel {
  uint32_t devid = 0;
  std::string be_path;
  std::string fe_path;
  std::string name;
  bool socket = false;
  std::string path;  // socket path
  UniqueFd listen_fd;
  UniqueFd client_fd;
  UniqueFd pty_master;
  UniqueFd pty_slave;  // held open so the master never sees a hang-up
  int be_state = 1;
  // The connection to the guest's ring (valid while `ring` is set).
  std::unique_ptr<hv::HvMapping> mapping;
  std::optional<ConsoleRing> ring;
  uint32_t local_port = 0;
  uint32_t ring_ref = 0;
  uint32_t remote_port = 0;
  size_t limit = kDefaultLimit;
  std::string out_buf;  // guest output not yet written to the chardev
  uint64_t discarded = 0;

  int data_fd() const { return socket ? client_fd.get() : pty_master.get(); }
};

class Qemu {
 public:
  Qemu(const QemuOptions& options, std::unique_ptr<LibXenStore> xs,
       std::unique_ptr<hv::HvConnection> gnt, std::unique_ptr<hv::HvEvtchn> evt)
      : options_(options), xs_(std::move(xs)), gnt_(std::move(gnt)), evt_(std::move(evt)) {
    root_ = absl::StrCat("/local/domain/0/backend/console/", options_.domid);
  }
  ~Qemu() {
    for (auto& [devid, ch] : channels_) {
      Disconnect(*ch);
      if (ch->socket && ch->listen_fd.valid()) unlink(ch->path.c_str());
    }
  }

  absl::Status Init();
  absl::Status Loop(int signal_fd);

 private:
  absl::Status SetUpChardev(Channel& ch);
  void WriteBeState(Channel& ch, int state);
  int ReadFeState(const Channel& ch);
  void CheckFrontend(Channel& ch);
  absl::Status Connect(Channel& ch);
  void Disconnect(Channel& ch);
  void ServiceRing(Channel& ch);
  void FlushOut(Channel& ch);
  void ReadIn(Channel& ch);
  void CloseClient(Channel& ch);
  size_t InFree(Channel& ch);
  // False when the domain's backend directory is gone.
  bool HandleWatches();
  void HandleEvents();

  const QemuOptions options_;
  std::unique_ptr<LibXenStore> xs_;
  std::unique_ptr<hv::HvConnection> gnt_;
  std::unique_ptr<hv::HvEvtchn> evt_;
  std::string root_;
  std::map<uint32_t, std::unique_ptr<Channel>> channels_;
};

absl::Status Qemu::Init() {
  auto devids = xs_->Directory(kNoTransaction, root_);
  if (!devids.ok()) {
    return absl::NotFoundError(absl::StrCat("no toolstack channels for domain ", options_.domid,
                                            ": ", devids.status().ToString()));
  }
  for (const std::string& n : *devids) {
    auto devid = ParseStrict(n, 0xFFFF);
    if (!devid.has_value()) continue;
    auto ch = std::make_unique<Channel>();
    ch->devid = *devid;
    ch->be_path = absl::StrCat(root_, "/", n);
    // The backend dir is dom0's own (written by the toolstack): trusted.
    auto fe = xs_->Read(kNoTransaction, ch->be_path + "/frontend");
    auto conn = xs_->Read(kNoTransaction, ch->be_path + "/connection");
    auto name = xs_->Read(kNoTransaction, ch->be_path + "/name");
    if (!fe.ok() || !conn.ok() || !name.ok()) {
      Log(absl::StrCat("devid ", n, ": incomplete backend directory, skipped"));
      continue;
    }
    // QEMU only handles consoles whose frontend type is ioemu.
    auto type = xs_->Read(kNoTransaction, *fe + "/type");
    if (!type.ok() || *type != "ioemu") {
      Log(absl::StrCat("devid ", n, ": declining console type '", type.ok() ? *type : "", "'"));
      continue;
    }
    ch->fe_path = *fe;
    ch->name = *name;
    if (*conn == "socket") {
      auto path = xs_->Read(kNoTransaction, ch->be_path + "/path");
      if (!path.ok()) {
        Log(absl::StrCat("devid ", n, ": socket channel without a path, skipped"));
        continue;
      }
      ch->socket = true;
      ch->path = *path;
    } else if (*conn != "pty") {
      Log(absl::StrCat("devid ", n, ": unknown connection '", *conn, "', skipped"));
      continue;
    }
    // Like QEMU, a chardev that cannot be created is fatal: the toolstack
    // sees the device model fail to start.
    if (absl::Status s = SetUpChardev(*ch); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("channel ", ch->name, ": ", s.message()));
    }
    if (absl::Status s = xs_->Write(kNoTransaction, ch->be_path + "/hotplug-status", "connected");
        !s.ok()) {
      return s;
    }
    WriteBeState(*ch, 2);
    for (const std::string& path : {ch->fe_path, ch->be_path}) {
      if (absl::Status s = xs_->Watch(path, absl::StrCat("qemu/", n)); !s.ok()) return s;
    }
    channels_[ch->devid] = std::move(ch);
  }
  if (channels_.empty()) {
    return absl::NotFoundError(absl::StrCat("domain ", options_.domid, " has no usable channels"));
  }
  if (absl::Status s = xs_->Watch(root_, "qemu/root"); !s.ok()) return s;
  return absl::OkStatus();
}

absl::Status Qemu::SetUpChardev(Channel& ch) {
  if (ch.socket) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (ch.path.empty() || ch.path.size() >= sizeof(addr.sun_path)) {
      return absl::InvalidArgumentError(absl::StrCat("bad socket path '", ch.path, "'"));
    }
    std::memcpy(addr.sun_path, ch.path.data(), ch.path.size());
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.valid()) return absl::UnavailableError(std::strerror(errno));
    unlink(ch.path.c_str());
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(fd.get(), 4) != 0) {
      const int err = errno;
      return absl::UnavailableError(ErrnoMessage(err, absl::StrCat("listen on ", ch.path)));
    }
    ch.listen_fd = std::move(fd);
    return absl::OkStatus();
  }
  UniqueFd master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master.valid() || grantpt(master.get()) != 0 || unlockpt(master.get()) != 0) {
    return absl::UnavailableError(ErrnoMessage(errno, "pty"));
  }
  char name[128];
  if (ptsname_r(master.get(), name, sizeof(name)) != 0) {
    return absl::UnavailableError("ptsname failed");
  }
  UniqueFd slave(open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave.valid()) return absl::UnavailableError(absl::StrCat("open ", name));
  termios t;
  if (tcgetattr(slave.get(), &t) == 0) {
    cfmakeraw(&t);
    tcsetattr(slave.get(), TCSANOW, &t);
  }
  SetNonBlocking(master.get());
  ch.pty_master = std::move(master);
  ch.pty_slave = std::move(slave);
  // Like QEMU: publish the slave's path in the frontend's `tty` node.
  return xs_->Write(kNoTransaction, ch.fe_path + "/tty", name);
}

void Qemu::WriteBeState(Channel& ch, int state) {
  ch.be_state = state;
  absl::Status s = xs_->Write(kNoTransaction, ch.be_path + "/state", absl::StrCat(state));
  if (!s.ok()) Log(absl::StrCat("devid ", ch.devid, ": write state: ", s.ToString()));
}

int Qemu::ReadFeState(const Channel& ch) {
  auto v = xs_->Read(kNoTransaction, ch.fe_path + "/state");
  if (!v.ok()) return 0;  // gone or unreadable: XenbusStateUnknown
  auto state = ParseStrict(*v, 8);
  return state.has_value() ? static_cast<int>(*state) : -1;  // -1: ignore
}

void Qemu::CheckFrontend(Channel& ch) {
  const int fe = ReadFeState(ch);
  switch (fe) {
    case 3:
    case 4:
      if (ch.be_state == 5 || ch.be_state == 6) return;
      if (!ch.ring.has_value()) {
        if (absl::Status s = Connect(ch); !s.ok()) {
          Log(absl::StrCat("devid ", ch.devid, ": connect: ", s.ToString()));
        }
        return;
      }
      {
        // A resume publishes a new ring-ref (and maybe port) and sets
        // Initialised; the guest moves on to Connected as soon as it sees our
        // state 4, possibly before we read its 3. So check at 3 and at 4.
        auto ref = xs_->Read(kNoTransaction, ch.fe_path + "/ring-ref");
        auto port = xs_->Read(kNoTransaction, ch.fe_path + "/port");
        if (ref.ok() && port.ok() &&
            (ParseStrict(*ref, 0xFFFFFFFFu) != ch.ring_ref ||
             ParseStrict(*port, 0xFFFFFFFFu) != ch.remote_port)) {
          Disconnect(ch);
          if (absl::Status s = Connect(ch); !s.ok()) {
            Log(absl::StrCat("devid ", ch.devid, ": reconnect: ", s.ToString()));
          }
        } else if (fe == 3 && ch.be_state == 4) {
          WriteBeState(ch, 4);  // let the frontend see Connected again
        }
      }
      return;
    case 5:
      if (ch.be_state != 5 && ch.be_state != 6) WriteBeState(ch, 5);
      return;
    case 6:
    case 0:
      Disconnect(ch);
      if (ch.be_state != 6) WriteBeState(ch, 6);
      return;
    case 1:
      if (ch.be_state == 6) WriteBeState(ch, 2);
      return;
    default:
      return;
  }
}

absl::Status Qemu::Connect(Channel& ch) {
  auto ref_s = xs_->Read(kNoTransaction, ch.fe_path + "/ring-ref");
  auto port_s = xs_->Read(kNoTransaction, ch.fe_path + "/port");
  if (!ref_s.ok()) return ref_s.status();
  if (!port_s.ok()) return port_s.status();
  auto ref = ParseStrict(*ref_s, 0xFFFFFFFFu);
  auto port = ParseStrict(*port_s, 0xFFFFFFFFu);
  if (!ref.has_value() || !port.has_value()) {
    return absl::InvalidArgumentError("malformed ring-ref or port");
  }
  ch.limit = kDefaultLimit;
  auto limit_s = xs_->Read(kNoTransaction, ch.fe_path + "/limit");
  if (limit_s.ok()) {
    auto limit = ParseStrict(*limit_s, 0xFFFFFFFFu);
    if (limit.has_value()) ch.limit = std::min(std::max<size_t>(*limit, kMinLimit), kMaxLimit);
  }
  auto mapping = gnt_->MapGrant(options_.domid, *ref, /*writable=*/true);
  if (!mapping.ok()) return mapping.status();
  auto local = evt_->BindInterdomain(options_.domid, *port);
  if (!local.ok()) return local.status();
  ch.mapping = *std::move(mapping);
  ch.ring.emplace(ch.mapping->data());
  ch.local_port = *local;
  ch.ring_ref = *ref;
  ch.remote_port = *port;
  WriteBeState(ch, 4);
  ServiceRing(ch);
  return absl::OkStatus();
}

void Qemu::Disconnect(Channel& ch) {
  if (!ch.ring.has_value()) return;
  ch.ring.reset();
  (void)evt_->Unbind(ch.local_port);
  ch.mapping.reset();
  ch.local_port = 0;
}

size_t Qemu::InFree(Channel& ch) {
  if (!ch.ring.has_value() || ch.be_state != 4) return 0;
  auto free = ch.ring->InFree();
  return free.ok() ? *free : 0;
}

void Qemu::ServiceRing(Channel& ch) {
  if (!ch.ring.has_value()) return;
  char buf[ConsoleRing::kOutSize];
  bool moved = false;
  while (true) {
    auto n = ch.ring->DrainOut(buf, sizeof(buf));
    if (!n.ok()) {
      Log(absl::StrCat("devid ", ch.devid, ": ", n.status().ToString(), " (ignored this round)"));
      break;
    }
    if (*n == 0) break;
    moved = true;
    ch.discarded += AppendDiscardingMiddle(&ch.out_buf, buf, *n, ch.limit);
  }
  if (moved) (void)evt_->Notify(ch.local_port);
  FlushOut(ch);
}

void Qemu::FlushOut(Channel& ch) {
  const int fd = ch.data_fd();
  if (fd < 0) return;  // no client: keep the output (up to limit)
  while (!ch.out_buf.empty()) {
    const ssize_t n =
        ch.socket ? send(fd, ch.out_buf.data(), ch.out_buf.size(), MSG_NOSIGNAL | MSG_DONTWAIT)
                  : write(fd, ch.out_buf.data(), ch.out_buf.size());
    if (n > 0) {
      ch.out_buf.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (ch.socket) CloseClient(ch);
    return;
  }
}

void Qemu::ReadIn(Channel& ch) {
  const int fd = ch.data_fd();
  const size_t free = InFree(ch);
  if (fd < 0 || free == 0) return;
  char buf[ConsoleRing::kInSize];
  const ssize_t n = read(fd, buf, std::min(free, sizeof(buf)));
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR && errno != EWOULDBLOCK)) {
    if (ch.socket) CloseClient(ch);
    return;
  }
  if (n < 0) return;
  auto written = ch.ring->FillIn(buf, static_cast<size_t>(n));
  if (!written.ok()) {
    Log(absl::StrCat("devid ", ch.devid, ": ", written.status().ToString()));
    return;
  }
  // We read at most the free space, so everything fits unless the guest
  // scribbled on the indices meanwhile; such bytes are lost, as with QEMU.
  if (*written > 0) (void)evt_->Notify(ch.local_port);
}

void Qemu::CloseClient(Channel& ch) { ch.client_fd.reset(); }

bool Qemu::HandleWatches() {
  bool any = false;
  while (auto event = xs_->ReadWatch()) {
    (void)event;
    any = true;
  }
  if (!any) return true;
  if (!xs_->Directory(kNoTransaction, root_).ok()) return false;
  for (auto& [devid, ch] : channels_) CheckFrontend(*ch);
  return true;
}

void Qemu::HandleEvents() {
  while (true) {
    auto port = evt_->Pending();
    if (!port.ok() || !port->has_value()) return;
    for (auto& [devid, ch] : channels_) {
      if (ch->ring.has_value() && ch->local_port == **port) ServiceRing(*ch);
    }
    (void)evt_->Unmask(**port);
  }
}

absl::Status Qemu::Loop(int signal_fd) {
  for (auto& [devid, ch] : channels_) CheckFrontend(*ch);
  while (true) {
    std::vector<pollfd> fds;
    std::vector<Channel*> owners;
    fds.push_back({signal_fd, POLLIN, 0});
    fds.push_back({xs_->WatchFd(), POLLIN, 0});
    fds.push_back({evt_->fd(), POLLIN, 0});
    for (auto& [devid, chp] : channels_) {
      Channel& ch = *chp;
      if (ch.socket && !ch.client_fd.valid()) {
        fds.push_back({ch.listen_fd.get(), POLLIN, 0});
        owners.push_back(&ch);
        continue;
      }
      short events = 0;
      if (InFree(ch) > 0) events |= POLLIN;
      if (!ch.out_buf.empty()) events |= POLLOUT;
      fds.push_back({ch.data_fd(), events, 0});
      owners.push_back(&ch);
    }
    const int r = poll(fds.data(), fds.size(), -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return absl::InternalError(ErrnoMessage(errno, "poll"));
    if (fds[0].revents & POLLIN) return absl::OkStatus();
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (!HandleWatches()) return absl::OkStatus();  // domain gone
    }
    if (fds[2].revents & (POLLHUP | POLLERR)) return absl::UnavailableError("hypervisor gone");
    if (fds[2].revents & POLLIN) HandleEvents();
    for (size_t i = 0; i < owners.size(); ++i) {
      Channel& ch = *owners[i];
      const short rev = fds[i + 3].revents;
      if (rev == 0) continue;
      if (ch.socket && fds[i + 3].fd == ch.listen_fd.get()) {
        UniqueFd client(
            accept4(ch.listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
        if (client.valid()) {
          ch.client_fd = std::move(client);
          FlushOut(ch);
        }
        continue;
      }
      if (rev & POLLOUT) FlushOut(ch);
      if (rev & POLLIN) ReadIn(ch);
      if ((rev & (POLLHUP | POLLERR)) && ch.socket && !(rev & POLLIN)) CloseClient(ch);
    }
  }
}

}  // namespace

size_t AppendDiscardingMiddle(std::string* buffer, const char* data, size_t len, size_t limit) {
  buffer->append(data, len);
  if (buffer->size() <= limit) return 0;
  const size_t over = buffer->size() - limit;
  // Drop the `over` bytes that end at offset `limit` (QEMU's "discard the
  // middle"); if `over` >= `limit`, drop from the start instead.
  const size_t start = limit > over ? limit - over : 0;
  buffer->erase(start, over);
  return over;
}

absl::Status RunQemu(const QemuOptions& options) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  UniqueFd signal_fd(signalfd(-1, &mask, SFD_CLOEXEC));
  if (!signal_fd.valid()) return absl::InternalError("signalfd failed");

  auto xs = LibXenStore::Open(options.state_dir + "/xenstored.sock");
  if (!xs.ok()) return xs.status();
  const std::string hv_sock = options.state_dir + "/hypervisor.sock";
  auto gnt = hv::HvConnection::Connect(hv_sock);
  if (!gnt.ok()) return gnt.status();
  auto evt = hv::HvEvtchn::Open(hv_sock);
  if (!evt.ok()) return evt.status();
  Qemu qemu(options, *std::move(xs), *std::move(gnt), *std::move(evt));
  if (absl::Status s = qemu.Init(); !s.ok()) return s;
  return qemu.Loop(signal_fd.get());
}

}  // namespace sim
}  // namespace xenchan
