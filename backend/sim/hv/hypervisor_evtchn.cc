// The simulated hypervisor's interdomain event channels: the per-connection
// event socket, allocating unbound ports earmarked for a domain, binding to
// them (the binding: shared page and wake-up sockets, protocol.h), unbinding (the peer
// reverts to unbound), the relayed notify, and notices about bindings sent
// over the event socket with back-pressure.
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
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

// One end's wake-up socket (protocol.h): a stream socketpair whose first
// end only the owner reads and whose second end the peer (and the server)
// write. Every send and receive passes MSG_DONTWAIT (and sends
// MSG_NOSIGNAL), so neither what a peer does to the file flags of the ends
// it holds nor a reader that has gone can block or kill a writer.
int MakeWakeSocket(UniqueFd* read_end, UniqueFd* write_end) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return errno;
  read_end->reset(fds[0]);
  write_end->reset(fds[1]);
  return 0;
}

}  // namespace

Hypervisor::Binding::~Binding() {
  if (words != nullptr) {
    // Peers still holding the binding learn from this that it ended.
    StoreWord(&words->closed, 1);
    munmap(words, kPageSize);
  }
}

int Hypervisor::MakeBinding(std::shared_ptr<Binding>* out, UniqueFd* read_end1) {
  auto binding = std::make_shared<Binding>();
  binding->page.reset(memfd_create("xensim-evtchn", MFD_ALLOW_SEALING | MFD_CLOEXEC));
  if (!binding->page.valid()) return errno;
  if (ftruncate(binding->page.get(), kPageSize) != 0) return errno;
  // Neither peer may resize it (a mapper would take SIGBUS) or seal it further.
  if (fcntl(binding->page.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return errno;
  }
  void* addr = mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, binding->page.get(), 0);
  if (addr == MAP_FAILED) return errno;
  binding->words = static_cast<EvtchnSharedWords*>(addr);
  if (int err = MakeWakeSocket(&binding->read_end0, &binding->write_end[0]); err != 0) return err;
  if (int err = MakeWakeSocket(read_end1, &binding->write_end[1]); err != 0) return err;
  *out = std::move(binding);
  return 0;
}

void Hypervisor::RaiseLocked(Binding& binding, uint32_t side) {
  StoreWord(&binding.words->pending[side], 1);
  if (LoadWord(&binding.words->mask[side]) != 0) return;
  const char byte = 1;
  // EAGAIN: the socket is full, so its reader is woken already.
  (void)!send(binding.write_end[side].get(), &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

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
                                      uint32_t* port, UniqueFd out[3]) {
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
  std::shared_ptr<Binding> binding;
  UniqueFd read_end1;
  if (int err = MakeBinding(&binding, &read_end1); err != 0) return err;
  // The binder's three fds: the page, its own socket, the peer's socket.
  out[0].reset(fcntl(binding->page.get(), F_DUPFD_CLOEXEC, 0));
  out[1] = std::move(read_end1);
  out[2].reset(fcntl(binding->write_end[kSideUnbound].get(), F_DUPFD_CLOEXEC, 0));
  if (!out[0].valid() || !out[2].valid()) return errno;
  Port& p = domain.ports[local];  // std::map: `remote` stays valid
  p.state = Port::State::kInterdomain;
  p.conn = conn_id;
  p.remote_domid = remote_domid;
  p.remote_port = remote_port;
  p.side = kSideBinder;
  p.binding = binding;
  remote->second.state = Port::State::kInterdomain;
  remote->second.remote_domid = conn.domid;
  remote->second.remote_port = local;
  remote->second.side = kSideUnbound;
  remote->second.binding = binding;
  conn.ports.insert(local);
  *port = local;
  RaiseLocked(*binding, kSideBinder);  // Xen raises the new port at once
  QueueNoticeLocked(remote_domid, remote_port);
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
        remote->second.binding.reset();
        QueueNoticeLocked(remote_domain->first, remote->first);
      }
    }
  }
  auto conn = conns_.find(it->second.conn);
  if (conn != conns_.end()) {
    conn->second.ports.erase(port);
    conn->second.notices.erase(port);
  }
  domain.ports.erase(it);  // the last reference ends the binding (closed flag)
}

void Hypervisor::NotifyLocked(Connection& conn, const Request& req) {
  if (req.args[1] != 0 || req.args[2] != 0 || req.args[3] != 0) return;
  auto& ports = domains_.at(conn.domid).ports;
  auto it = ports.find(req.args[0]);
  if (it == ports.end() || conn.ports.count(req.args[0]) == 0 ||
      it->second.state != Port::State::kInterdomain || it->second.binding == nullptr) {
    return;  // Xen fails such a send; with no reply there is nobody to tell
  }
  RaiseLocked(*it->second.binding, 1 - it->second.side);
}

void Hypervisor::QueueNoticeLocked(uint32_t domid, uint32_t port) {
  auto domain = domains_.find(domid);
  if (domain == domains_.end()) return;
  auto it = domain->second.ports.find(port);
  if (it == domain->second.ports.end()) return;
  auto conn = conns_.find(it->second.conn);
  if (conn == conns_.end() || conn->second.event_dead) return;
  conn->second.notices.insert(port);
  if (!conn->second.event_blocked) FlushNoticesLocked(it->second.conn);
}

void Hypervisor::FlushNoticesLocked(uint64_t conn_id) {
  auto it = conns_.find(conn_id);
  if (it == conns_.end()) return;
  Connection& conn = it->second;
  if (conn.event_blocked) {
    EpollDel(epoll_fd_.get(), conn.event_sock.get());
    conn.event_blocked = false;
  }
  auto& ports = domains_.at(conn.domid).ports;
  while (!conn.notices.empty() && !conn.event_dead) {
    const uint32_t port = *conn.notices.begin();
    auto p = ports.find(port);
    if (p == ports.end() || p->second.conn != conn_id) {
      conn.notices.erase(conn.notices.begin());
      continue;
    }
    EvtchnNotice notice = {kNoticeUnbound, port, 0, 0};
    int fds[3];
    size_t nfds = 0;
    Binding* binding = p->second.binding.get();
    if (p->second.state == Port::State::kInterdomain && binding != nullptr) {
      // Only side 0 learns its binding from a notice, and only once.
      if (p->second.side != kSideUnbound || !binding->read_end0.valid()) {
        conn.notices.erase(conn.notices.begin());
        continue;
      }
      notice.type = kNoticeBound;
      notice.side = kSideUnbound;
      fds[0] = binding->page.get();
      fds[1] = binding->read_end0.get();
      fds[2] = binding->write_end[kSideBinder].get();
      nfds = 3;
    }
    const int err =
        SendMessageFds(conn.event_sock.get(), &notice, sizeof(notice), fds, nfds, MSG_DONTWAIT);
    if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
      // Full: try again when the client has read.
      if (EpollAdd(epoll_fd_.get(), conn.event_sock.get(), EPOLLOUT, Token(conn_id, kEventTag))) {
        conn.event_blocked = true;
      }
      return;
    }
    if (err != 0) {
      conn.event_dead = true;  // the client closed its end; nobody will read
      conn.notices.clear();
      return;
    }
    conn.notices.erase(conn.notices.begin());
    if (nfds > 0) {
      // Delivered: the server keeps only what relayed notifies need.
      binding->page.reset();
      binding->read_end0.reset();
    }
  }
}

}  // namespace hv
}  // namespace sim
}  // namespace xenchan
