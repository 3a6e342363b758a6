// The simulated hypervisor's server thread: the epoll loop, accepting
// connections on the domain sockets, reading requests and dispatching each to
// its grant or event channel handler, and closing connections (which releases
// their mappings and closes their ports).
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <utility>
#include <vector>

#include "backend/sim/hv/epoll_tokens.h"
#include "backend/sim/hv/hypervisor.h"

namespace xenchan {
namespace sim {
namespace hv {
namespace {

using internal::EpollAdd;
using internal::EpollDel;
using internal::kConnTag;
using internal::kEventTag;
using internal::kListenTag;
using internal::kWakeToken;
using internal::Token;

// At most this many requests are served per wake-up of one connection, so a
// chatty client cannot starve the others (epoll is level-triggered).
constexpr int kRequestsPerWake = 64;

}  // namespace

void Hypervisor::WakeLoop() {
  uint64_t one = 1;
  // Only fails if the counter would overflow, and then the loop is awake.
  (void)!write(wake_fd_.get(), &one, sizeof(one));
}

void Hypervisor::Run() {
  constexpr int kMaxEvents = 64;
  struct epoll_event events[kMaxEvents];
  for (;;) {
    int n = epoll_wait(epoll_fd_.get(), events, kMaxEvents, -1);
    if (n < 0 && errno != EINTR) return;  // a broken epoll fd: nothing left to serve
    std::vector<uint32_t> gone;
    {
      MutexLock lock(&mu_);
      if (stopping_) return;
      for (int i = 0; i < n; ++i) HandleEventLocked(events[i].data.u64, events[i].events);
      gone.swap(gone_);
    }
    if (options_.on_domain_gone) {
      for (uint32_t domid : gone) options_.on_domain_gone(domid);
    }
  }
}

void Hypervisor::HandleEventLocked(uint64_t token, uint32_t events) {
  const uint64_t id = token >> 2;
  switch (token & 3) {
    case kWakeToken: {
      uint64_t count;
      (void)!read(wake_fd_.get(), &count, sizeof(count));
      break;
    }
    case kListenTag:
      AcceptLocked(static_cast<uint32_t>(id));
      break;
    case kConnTag:
      ServeLocked(id);
      break;
    case kEventTag:
      FlushNoticesLocked(id);
      break;
  }
}

void Hypervisor::AcceptLocked(uint32_t domid) {
  auto it = domains_.find(domid);
  if (it == domains_.end() || !it->second.listen_fd.valid()) return;  // stale event
  Domain& domain = it->second;
  for (;;) {
    UniqueFd fd(accept4(domain.listen_fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid() && (errno == EMFILE || errno == ENFILE) && reserve_fd_.valid()) {
      // Out of descriptors: the pending connection would keep the listening
      // socket readable and spin this loop. Spend the reserve to accept it,
      // refuse it (close), and take the reserve back.
      reserve_fd_.reset();
      UniqueFd(accept4(domain.listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
      reserve_fd_.reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
      continue;
    }
    if (!fd.valid()) return;  // EAGAIN, or a transient failure the next wake retries
    if (domain.conns.size() >= kMaxConnectionsPerDomain) continue;  // refused: closed
    const uint64_t conn_id = next_conn_id_++;
    if (!EpollAdd(epoll_fd_.get(), fd.get(), EPOLLIN | EPOLLRDHUP, Token(conn_id, kConnTag))) {
      continue;
    }
    Connection& conn = conns_[conn_id];
    conn.domid = domid;
    conn.sock = std::move(fd);
    domain.conns.insert(conn_id);
  }
}

void Hypervisor::ServeLocked(uint64_t conn_id) {
  for (int i = 0; i < kRequestsPerWake; ++i) {
    auto it = conns_.find(conn_id);
    if (it == conns_.end()) return;  // stale event, or closed below
    // One byte more than a request, so that a longer message shows as such.
    alignas(Request) char buf[sizeof(Request) + 1];
    ReceivedMessage msg;
    int err = ReceiveMessage(it->second.sock.get(), buf, sizeof(buf), MSG_DONTWAIT, &msg);
    if (err == EAGAIN || err == EWOULDBLOCK) return;
    if (err != 0 || msg.size != sizeof(Request) || msg.truncated || msg.bad_control) {
      // End of stream, a broken socket, or a message no client of ours sends.
      CloseConnectionLocked(conn_id);
      return;
    }
    Request req;
    std::memcpy(&req, buf, sizeof(req));
    if (!HandleRequestLocked(conn_id, req, std::move(msg.fd))) {
      CloseConnectionLocked(conn_id);
      return;
    }
  }
}

bool Hypervisor::HandleRequestLocked(uint64_t conn_id, const Request& req, UniqueFd fd) {
  Connection& conn = conns_.at(conn_id);
  Reply reply;
  reply.type = kReply;
  reply.request_id = req.request_id;
  reply.error = 0;
  reply.value = 0;
  UniqueFd out_fds[3];  // the reply's fds: one, or a binding's three
  if (req.type == kNotify) {
    // Fire-and-forget even when malformed: a reply would desynchronise the
    // client. A stray fd is simply closed.
    if (!fd.valid()) NotifyLocked(conn, req);
    return true;
  }
  const bool wants_fd = req.type == kGrant;
  if (fd.valid() != wants_fd) {
    reply.error = EINVAL;  // fd where none is expected, or a missing one
  } else {
    switch (req.type) {
      case kGrant:
        reply.error = GrantLocked(conn, req, std::move(fd), &reply.value);
        break;
      case kEndAccess:
        reply.error = EndAccessLocked(conn, req);
        break;
      case kMap:
        reply.error = MapLocked(conn, req, &reply.value, &out_fds[0]);
        break;
      case kUnmap:
        reply.error = UnmapLocked(conn, req);
        break;
      case kEvtchnOpen:
        reply.error = EvtchnOpenLocked(conn_id, conn, &out_fds[0]);
        break;
      case kAllocUnbound:
        reply.error = AllocUnboundLocked(conn_id, conn, req, &reply.value);
        break;
      case kBindInterdomain:
        reply.error = BindInterdomainLocked(conn_id, conn, req, &reply.value, out_fds);
        break;
      case kUnbind:
        reply.error = UnbindLocked(conn, req);
        break;
      case kPauseDomain:
      case kUnpauseDomain:
        reply.error = PauseRequestLocked(conn, req);
        break;
      default:
        reply.error = EINVAL;
        break;
    }
  }
  int fds[3];
  size_t nfds = 0;
  if (reply.error != 0) {
    reply.value = 0;
  } else {
    for (const UniqueFd& fd : out_fds) {
      if (fd.valid()) fds[nfds++] = fd.get();
    }
  }
  // The client waits for each reply, so its receive buffer always has room;
  // one that does not read its replies is closed rather than queued for.
  return SendMessageFds(conn.sock.get(), &reply, sizeof(reply), fds, nfds, MSG_DONTWAIT) == 0;
}

void Hypervisor::CloseConnectionLocked(uint64_t conn_id) {
  auto it = conns_.find(conn_id);
  if (it == conns_.end()) return;
  Connection& conn = it->second;
  const uint32_t domid = conn.domid;
  EpollDel(epoll_fd_.get(), conn.sock.get());
  if (conn.event_blocked) EpollDel(epoll_fd_.get(), conn.event_sock.get());
  std::set<uint32_t> ports = conn.ports;
  for (uint32_t port : ports) ClosePortLocked(domid, port);
  std::vector<Mapping> mappings;
  for (const auto& entry : conn.mappings) mappings.push_back(entry.second);
  conns_.erase(it);
  auto domain = domains_.find(domid);
  if (domain != domains_.end()) domain->second.conns.erase(conn_id);
  for (const Mapping& mapping : mappings) ReleaseMappingLocked(mapping);
}

}  // namespace hv
}  // namespace sim
}  // namespace xenchan
