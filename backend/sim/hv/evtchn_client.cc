// HvEvtchn: the client's half of xensim's event channels (protocol.h, "Event
// channels"). Bindings arrive in the bind reply or as notices on the event
// socket; notify, delivery and unmask then run on the shared words and the
// wake-up sockets, without the hypervisor.
#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/sim/hv/client.h"

namespace xenchan {
namespace sim {
namespace hv {
namespace {

// epoll tokens: the event socket, the redelivery eventfd, and a port's wake-up socket
// as (binding serial << 32) | port, serials starting at 1.
constexpr uint64_t kEventSockToken = 0;
constexpr uint64_t kRedeliverToken = 1;
constexpr int kEventsPerFetch = 64;

uint64_t PortToken(uint64_t serial, uint32_t port) { return (serial << 32) | port; }

bool EpollCtl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
  struct epoll_event ev;
  std::memset(&ev, 0, sizeof(ev));
  ev.events = events;
  ev.data.u64 = token;
  return epoll_ctl(epfd, op, fd, &ev) == 0;
}

absl::Status NotOurs(uint32_t port) {
  return absl::InvalidArgumentError(absl::StrCat("port ", port, " is not bound here"));
}

}  // namespace

HvEvtchn::Binding::~Binding() {
  if (words != nullptr) munmap(words, kPageSize);
}

absl::StatusOr<std::unique_ptr<HvEvtchn>> HvEvtchn::Open(const std::string& socket_path) {
  // Every bound port holds two descriptors here (its wake-up socket and the
  // peer's); let them use the hard limit rather than the usually small soft
  // one, as the hypervisor does (best effort).
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  auto channel = internal::RpcChannel::Connect(socket_path);
  if (!channel.ok()) return channel.status();
  UniqueFd event_sock;
  absl::Status status = (*channel)->Call(kEvtchnOpen, 0, 0, 0, -1, nullptr, &event_sock);
  if (!status.ok()) return status;
  std::unique_ptr<HvEvtchn> handle(new HvEvtchn(*std::move(channel), std::move(event_sock)));
  if (absl::Status s = handle->Init(); !s.ok()) return s;
  return handle;
}

absl::Status HvEvtchn::Init() {
  epoll_fd_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_fd_.valid()) return HvErrnoToStatus(errno, "epoll_create1");
  redeliver_fd_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!redeliver_fd_.valid()) return HvErrnoToStatus(errno, "eventfd");
  if (!EpollCtl(epoll_fd_.get(), EPOLL_CTL_ADD, event_sock_.get(), EPOLLIN, kEventSockToken) ||
      !EpollCtl(epoll_fd_.get(), EPOLL_CTL_ADD, redeliver_fd_.get(), EPOLLIN, kRedeliverToken)) {
    return HvErrnoToStatus(errno, "epoll_ctl");
  }
  return absl::OkStatus();
}

HvEvtchn::~HvEvtchn() = default;

absl::StatusOr<uint32_t> HvEvtchn::AllocUnbound(uint32_t remote_domid) {
  MutexLock lock(&mu_);
  uint32_t port = 0;
  absl::Status status = channel_->Call(kAllocUnbound, remote_domid, 0, 0, -1, &port, nullptr);
  if (!status.ok()) return status;
  ports_[port] = LocalPort();
  return port;
}

absl::StatusOr<uint32_t> HvEvtchn::BindInterdomain(uint32_t remote_domid, uint32_t remote_port) {
  MutexLock lock(&mu_);
  uint32_t port = 0;
  UniqueFd fds[3];
  absl::Status status =
      channel_->Call(kBindInterdomain, remote_domid, remote_port, 0, -1, &port, fds, 3);
  if (!status.ok()) return status;
  ports_[port] = LocalPort();
  if (absl::Status s = InstallLocked(port, kSideBinder, fds); !s.ok()) {
    (void)channel_->Call(kUnbind, port, 0, 0, -1, nullptr, nullptr);
    ports_.erase(port);
    return s;
  }
  return port;
}

absl::Status HvEvtchn::Unbind(uint32_t port) {
  MutexLock lock(&mu_);
  auto it = ports_.find(port);
  if (it == ports_.end()) return NotOurs(port);
  absl::Status status = channel_->Call(kUnbind, port, 0, 0, -1, nullptr, nullptr);
  if (!status.ok()) return status;
  if (it->second.binding != nullptr) {
    epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, it->second.binding->read_end.get(), nullptr);
  }
  ports_.erase(it);
  redeliver_.erase(port);
  // Every notice about the port's old life was sent before the reply; apply
  // them now (they find the port gone), so none is taken for a new port
  // that reuses the number.
  if (!broken_) (void)ReadNoticesLocked();
  return absl::OkStatus();
}

absl::Status HvEvtchn::InstallLocked(uint32_t port, uint32_t side, UniqueFd fds[3]) {
  LocalPort& lp = ports_.at(port);
  if (lp.binding != nullptr) DropBindingLocked(port, lp);
  void* addr = mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0].get(), 0);
  if (addr == MAP_FAILED) return HvErrnoToStatus(errno, "mmap of event channel page");
  auto binding = std::make_unique<Binding>();
  binding->serial = next_serial_++;
  binding->side = side;
  binding->words = static_cast<EvtchnSharedWords*>(addr);
  binding->read_end = std::move(fds[1]);
  binding->peer_write_end = std::move(fds[2]);
  StoreWord(&binding->words->mask[side], lp.masked ? 1 : 0);
  // Armed even when masked: a firing then is remembered for the unmask.
  if (!EpollCtl(epoll_fd_.get(), EPOLL_CTL_ADD, binding->read_end.get(), EPOLLIN,
                PortToken(binding->serial, port))) {
    return HvErrnoToStatus(errno, "epoll_ctl");
  }
  lp.disarmed = false;
  lp.binding = std::move(binding);
  return absl::OkStatus();
}

void HvEvtchn::DropBindingLocked(uint32_t port, LocalPort& lp) {
  Binding& b = *lp.binding;
  epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, b.read_end.get(), nullptr);
  const bool pending = LoadWord(&b.words->pending[b.side]) != 0;
  lp.binding.reset();
  lp.disarmed = false;
  if (!pending) return;
  if (lp.masked) {
    lp.fired_while_masked = true;
  } else {
    RedeliverLocked(port);
  }
}

absl::Status HvEvtchn::ReadNoticesLocked() {
  for (;;) {
    alignas(EvtchnNotice) char buf[sizeof(EvtchnNotice) + 1];
    ReceivedMessage msg;
    const int err =
        ReceiveMessage(event_sock_.get(), buf, sizeof(buf), MSG_DONTWAIT, &msg, kMaxFdsPerMessage);
    if (err == EAGAIN || err == EWOULDBLOCK) return absl::OkStatus();
    if (err != 0 || msg.size == 0 || msg.size != sizeof(EvtchnNotice) || msg.truncated ||
        msg.bad_control) {
      // The hypervisor went away (or garbled its stream): nothing will come.
      broken_ = true;
      epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, event_sock_.get(), nullptr);
      return err != 0 && err != ECONNRESET
                 ? HvErrnoToStatus(err, "event socket")
                 : absl::UnavailableError("hypervisor closed the event socket");
    }
    EvtchnNotice notice;
    std::memcpy(&notice, buf, sizeof(notice));
    auto it = ports_.find(notice.port);
    if (it == ports_.end()) continue;  // closed since; its fds close with msg
    if (notice.type == kNoticeBound && msg.fd_count == 3 && notice.side <= 1) {
      UniqueFd fds[3] = {std::move(msg.fd), std::move(msg.more_fds[0]), std::move(msg.more_fds[1])};
      if (absl::Status s = InstallLocked(notice.port, notice.side, fds); !s.ok()) return s;
    } else if (notice.type == kNoticeUnbound && it->second.binding != nullptr) {
      DropBindingLocked(notice.port, it->second);
    }
  }
}

void HvEvtchn::RedeliverLocked(uint32_t port) {
  redeliver_.insert(port);
  const uint64_t one = 1;
  (void)!write(redeliver_fd_.get(), &one, sizeof(one));
}

absl::Status HvEvtchn::Notify(uint32_t port) {
  MutexLock lock(&mu_);
  auto it = ports_.find(port);
  if (it == ports_.end()) return NotOurs(port);
  Binding* b = it->second.binding.get();
  if (b != nullptr) {
    const uint32_t peer = 1 - b->side;
    StoreWord(&b->words->pending[peer], 1);
    if (LoadWord(&b->words->mask[peer]) == 0) {
      const char byte = 1;
      // EAGAIN: the socket is full, its reader woken already; EPIPE: the
      // binding has ended, which the closed flag says too.
      (void)!send(b->peer_write_end.get(), &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    if (LoadWord(&b->words->closed) == 0) return absl::OkStatus();
  }
  // Not bound as far as we know, or the binding ended under us: the
  // hypervisor knows what the port is bound to now.
  return channel_->Send(kNotify, port);
}

void HvEvtchn::QueueFiredLocked(uint32_t port) {
  auto it = ports_.find(port);
  if (it == ports_.end() || it->second.queued) return;
  it->second.queued = true;
  fired_.push_back(port);
}

bool HvEvtchn::TakeLocked(uint32_t port) {
  auto it = ports_.find(port);
  if (it == ports_.end()) return false;
  LocalPort& lp = it->second;
  lp.queued = false;
  Binding* b = lp.binding.get();
  if (lp.masked) {
    // A notifier that raced our mask (or ignored it): deliver at unmask, and
    // stop listening to the wake-up socket until then.
    lp.fired_while_masked = true;
    if (b != nullptr && !lp.disarmed &&
        EpollCtl(epoll_fd_.get(), EPOLL_CTL_MOD, b->read_end.get(), 0,
                 PortToken(b->serial, port))) {
      lp.disarmed = true;
    }
    return false;
  }
  lp.masked = true;
  if (b != nullptr) {
    StoreWord(&b->words->mask[b->side], 1);
    ExchangeWord(&b->words->pending[b->side], 0);
  }
  return true;
}

absl::StatusOr<std::optional<uint32_t>> HvEvtchn::Pending() {
  MutexLock lock(&mu_);
  for (int round = 0; round < 4; ++round) {
    while (!fired_.empty()) {
      const uint32_t port = fired_.front();
      fired_.pop_front();
      if (TakeLocked(port)) return port;
    }
    if (broken_) return absl::UnavailableError("hypervisor closed the event socket");
    struct epoll_event events[kEventsPerFetch];
    const int n = epoll_wait(epoll_fd_.get(), events, kEventsPerFetch, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return HvErrnoToStatus(errno, "epoll_wait");
    }
    if (n == 0) return std::nullopt;
    bool notices = false;
    for (int i = 0; i < n; ++i) {
      const uint64_t token = events[i].data.u64;
      if (token == kEventSockToken) {
        notices = true;
      } else if (token == kRedeliverToken) {
        uint64_t count;
        (void)!read(redeliver_fd_.get(), &count, sizeof(count));
        for (uint32_t port : redeliver_) QueueFiredLocked(port);
        redeliver_.clear();
      } else {
        const uint32_t port = static_cast<uint32_t>(token);
        auto it = ports_.find(port);
        if (it == ports_.end() || it->second.binding == nullptr ||
            it->second.binding->serial != token >> 32) {
          continue;  // an event of a binding dropped since
        }
        // Drain what the peer sent (one byte per notify; more only from a
        // peer that ignored our mask), so the socket is quiet until the
        // next wake-up. A short read means it is empty.
        char drain[4096];
        ssize_t got = 0;
        for (int reads = 0; reads < 64; ++reads) {
          got = recv(it->second.binding->read_end.get(), drain, sizeof(drain), MSG_DONTWAIT);
          if (got < static_cast<ssize_t>(sizeof(drain))) break;
        }
        if (got == 0) {
          // Every writer has gone: the binding ended; its notice follows.
          epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, it->second.binding->read_end.get(), nullptr);
          it->second.disarmed = true;
        }
        QueueFiredLocked(port);
      }
    }
    // Notices after the ports: a binding they install is fetched next round.
    if (notices) {
      if (absl::Status s = ReadNoticesLocked(); !s.ok()) return s;
    }
  }
  while (!fired_.empty()) {
    const uint32_t port = fired_.front();
    fired_.pop_front();
    if (TakeLocked(port)) return port;
  }
  return std::nullopt;
}

absl::Status HvEvtchn::Unmask(uint32_t port) {
  MutexLock lock(&mu_);
  auto it = ports_.find(port);
  if (it == ports_.end()) return NotOurs(port);
  LocalPort& lp = it->second;
  if (!lp.masked) return absl::OkStatus();
  lp.masked = false;
  bool again = lp.fired_while_masked;
  lp.fired_while_masked = false;
  if (Binding* b = lp.binding.get(); b != nullptr) {
    StoreWord(&b->words->mask[b->side], 0);
    // After the store: a notifier that saw the mask set left its pending
    // word for us to find here.
    if (LoadWord(&b->words->pending[b->side]) != 0) again = true;
    if (lp.disarmed && EpollCtl(epoll_fd_.get(), EPOLL_CTL_MOD, b->read_end.get(), EPOLLIN,
                                PortToken(b->serial, port))) {
      lp.disarmed = false;
    }
  }
  if (again) RedeliverLocked(port);
  return absl::OkStatus();
}

}  // namespace hv
}  // namespace sim
}  // namespace xenchan
