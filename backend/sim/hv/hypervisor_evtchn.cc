// The simulated hypervisor's interdomain event channels: the per-connection
// event socket, allocating unbound ports earmarked for a domain, binding to
// them, unbinding (the peer reverts to unbound), notify and unmask, and
// delivering pending ports over the event socket with back-pressure.
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <set>
#include <utility>

#include "backend/sim/hv/epoll_tokens.h"
#include "backend/sim/hv/hypervisor.h"

namespace xenchan {
namespace sim {
namespace hv {
namespace {

using internal::EpollAdd;
using internal::EpollDel;
using internal::kEventTag;
using internal::Token;

}  // namespace

int Hypervisor::EvtchnOpenLocked(uint64_t conn_id, Connection& conn, UniqueFd* client_end) {
  if (conn.event_sock.valid()) return EBUSY;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) return errno;
  UniqueFd server_end(fds[0]);
  client_end->reset(fds[1]);
  int flags = fcntl(server_end.get(), F_GETFL);
  if (flags < 0 || fcntl(server_end.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    client_end->reset();
    return errno;
  }
  // The server never reads from it; shutting the read side lets a client
  // that writes into it get EPIPE instead of filling our buffer.
  shutdown(server_end.get(), SHUT_RD);
  conn.event_sock = std::move(server_end);
  return 0;
}

uint32_t Hypervisor::FreePort(const Domain& domain) {
  if (domain.ports.size() >= kMaxPortsPerDomain) return 0;
  uint32_t port = 1;
  for (const auto& entry : domain.ports) {
    if (entry.first != port) break;
    ++port;
  }
  return port;
}

int Hypervisor::AllocUnboundLocked(uint64_t conn_id, Connection& conn, const Request& req,
                                   uint32_t* port) {
  if (!conn.event_sock.valid()) return EBADF;
  const uint32_t remote_domid = req.args[0];
  if (remote_domid >= kDomidLimit || req.args[1] != 0 || req.args[2] != 0 || req.args[3] != 0) {
    return EINVAL;
  }
  Domain& domain = domains_.at(conn.domid);
  uint32_t local = FreePort(domain);
  if (local == 0) return ENOSPC;
  Port& p = domain.ports[local];
  p.state = Port::State::kUnbound;
  p.conn = conn_id;
  p.remote_domid = remote_domid;
  conn.ports.insert(local);
  *port = local;
  return 0;
}

int Hypervisor::BindInterdomainLocked(uint64_t conn_id, Connection& conn, const Request& req,
                                      uint32_t* port) {
  if (!conn.event_sock.valid()) return EBADF;
  const uint32_t remote_domid = req.args[0];
  const uint32_t remote_port = req.args[1];
  if (req.args[2] != 0 || req.args[3] != 0) return EINVAL;
  auto remote_domain = domains_.find(remote_domid);
  if (remote_domain == domains_.end() || remote_domain->second.dying) return ESRCH;
  auto remote = remote_domain->second.ports.find(remote_port);
  if (remote == remote_domain->second.ports.end() ||
      remote->second.state != Port::State::kUnbound || remote->second.remote_domid != conn.domid) {
    return EINVAL;
  }
  Domain& domain = domains_.at(conn.domid);
  uint32_t local = FreePort(domain);
  if (local == 0) return ENOSPC;
  Port& p = domain.ports[local];  // std::map: `remote` stays valid
  p.state = Port::State::kInterdomain;
  p.conn = conn_id;
  p.remote_domid = remote_domid;
  p.remote_port = remote_port;
  p.pending = true;  // Xen raises the new port at once
  remote->second.state = Port::State::kInterdomain;
  remote->second.remote_domid = conn.domid;
  remote->second.remote_port = local;
  conn.ports.insert(local);
  *port = local;
  DeliverLocked(conn.domid, local);
  return 0;
}

int Hypervisor::UnbindLocked(Connection& conn, const Request& req) {
  if (req.args[1] != 0 || req.args[2] != 0 || req.args[3] != 0) return EINVAL;
  if (conn.ports.count(req.args[0]) == 0) return EINVAL;
  ClosePortLocked(conn.domid, req.args[0]);
  return 0;
}

void Hypervisor::ClosePortLocked(uint32_t domid, uint32_t port) {
  Domain& domain = domains_.at(domid);
  auto it = domain.ports.find(port);
  if (it == domain.ports.end()) return;
  if (it->second.state == Port::State::kInterdomain) {
    auto remote_domain = domains_.find(it->second.remote_domid);
    if (remote_domain != domains_.end()) {
      auto remote = remote_domain->second.ports.find(it->second.remote_port);
      if (remote != remote_domain->second.ports.end()) {
        remote->second.state = Port::State::kUnbound;
        remote->second.remote_domid = domid;
        remote->second.remote_port = 0;
      }
    }
  }
  auto conn = conns_.find(it->second.conn);
  if (conn != conns_.end()) conn->second.ports.erase(port);
  domain.ports.erase(it);
}

void Hypervisor::NotifyLocked(Connection& conn, const Request& req) {
  if (req.args[1] != 0 || req.args[2] != 0 || req.args[3] != 0) return;
  auto& ports = domains_.at(conn.domid).ports;
  auto it = ports.find(req.args[0]);
  if (it == ports.end() || conn.ports.count(req.args[0]) == 0 ||
      it->second.state != Port::State::kInterdomain) {
    return;  // Xen fails such a send; with no reply there is nobody to tell
  }
  auto remote_domain = domains_.find(it->second.remote_domid);
  if (remote_domain == domains_.end()) return;
  auto remote = remote_domain->second.ports.find(it->second.remote_port);
  if (remote == remote_domain->second.ports.end()) return;
  remote->second.pending = true;
  DeliverLocked(it->second.remote_domid, it->second.remote_port);
}

int Hypervisor::UnmaskLocked(Connection& conn, const Request& req) {
  if (req.args[1] != 0 || req.args[2] != 0 || req.args[3] != 0) return EINVAL;
  if (conn.ports.count(req.args[0]) == 0) return EINVAL;
  Port& port = domains_.at(conn.domid).ports.at(req.args[0]);
  port.masked = false;
  DeliverLocked(conn.domid, req.args[0]);
  return 0;
}

void Hypervisor::DeliverLocked(uint32_t domid, uint32_t port) {
  auto domain = domains_.find(domid);
  if (domain == domains_.end()) return;
  auto it = domain->second.ports.find(port);
  if (it == domain->second.ports.end()) return;
  Port& p = it->second;
  if (!p.pending || p.masked) return;
  auto conn_it = conns_.find(p.conn);
  if (conn_it == conns_.end()) return;
  Connection& conn = conn_it->second;
  if (!conn.event_sock.valid() || conn.event_dead || conn.event_blocked) return;
  uint32_t word = port;
  int err = SendMessage(conn.event_sock.get(), &word, sizeof(word), -1, MSG_DONTWAIT);
  if (err == 0) {
    p.pending = false;
    p.masked = true;
  } else if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
    // Full: keep it pending and try again when the client has read.
    if (EpollAdd(epoll_fd_.get(), conn.event_sock.get(), EPOLLOUT, Token(p.conn, kEventTag))) {
      conn.event_blocked = true;
    }
  } else {
    conn.event_dead = true;  // the client closed its end; nobody will read
  }
}

void Hypervisor::FlushEventsLocked(uint64_t conn_id) {
  auto it = conns_.find(conn_id);
  if (it == conns_.end() || !it->second.event_blocked) return;
  Connection& conn = it->second;
  EpollDel(epoll_fd_.get(), conn.event_sock.get());
  conn.event_blocked = false;
  for (uint32_t port : std::set<uint32_t>(conn.ports)) {
    DeliverLocked(conn.domid, port);
    if (conn.event_blocked || conn.event_dead) break;
  }
}

}  // namespace hv
}  // namespace sim
}  // namespace xenchan
