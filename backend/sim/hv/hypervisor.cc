#include "backend/sim/hv/hypervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace xenchan {
namespace hv {
namespace {

// epoll tokens: the low two bits say what the rest is.
constexpr uint64_t kWakeToken = 0;
constexpr uint64_t kListenTag = 1;  // rest: domid
constexpr uint64_t kConnTag = 2;    // rest: connection id
constexpr uint64_t kEventTag = 3;   // rest: connection id

uint64_t Token(uint64_t id, uint64_t tag) { return (id << 2) | tag; }

// At most this many requests are served per wake-up of one connection, so a
// chatty client cannot starve the others (epoll is level-triggered).
constexpr int kRequestsPerWake = 64;

absl::Status ErrnoStatus(int err, absl::string_view what) {
  return absl::Status(absl::ErrnoToStatusCode(err), absl::StrCat(what, ": ", strerror(err)));
}

bool EpollAdd(int epfd, int fd, uint32_t events, uint64_t token) {
  struct epoll_event ev;
  std::memset(&ev, 0, sizeof(ev));
  ev.events = events;
  ev.data.u64 = token;
  return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0;
}

void EpollDel(int epfd, int fd) { epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr); }

}  // namespace

absl::StatusOr<std::unique_ptr<Hypervisor>> Hypervisor::Create(Options options) {
  if (options.dom0_socket.empty() || options.domain_socket_dir.empty()) {
    return absl::InvalidArgumentError("dom0_socket and domain_socket_dir are required");
  }
  if (mkdir(options.domain_socket_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, absl::StrCat("mkdir ", options.domain_socket_dir));
  }
  // Every grant is an open memfd here; let them use the hard limit rather
  // than the usually small soft one (best effort).
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  std::unique_ptr<Hypervisor> hv(new Hypervisor(std::move(options)));
  hv->epoll_fd_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!hv->epoll_fd_.valid()) return ErrnoStatus(errno, "epoll_create1");
  hv->reserve_fd_.reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
  hv->wake_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!hv->wake_fd_.valid()) return ErrnoStatus(errno, "eventfd");
  if (!EpollAdd(hv->epoll_fd_.get(), hv->wake_fd_.get(), EPOLLIN, kWakeToken)) {
    return ErrnoStatus(errno, "epoll_ctl");
  }
  {
    MutexLock lock(&hv->mu_);
    absl::Status status = hv->ListenLocked(0, hv->options_.dom0_socket);
    if (!status.ok()) return status;
  }
  hv->thread_ = std::thread([raw = hv.get()] { raw->Run(); });
  return hv;
}

Hypervisor::Hypervisor(Options options) : options_(std::move(options)) {}

Hypervisor::~Hypervisor() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  WakeLoop();
  if (thread_.joinable()) thread_.join();
  MutexLock lock(&mu_);
  std::vector<uint64_t> ids;
  for (const auto& entry : conns_) ids.push_back(entry.first);
  for (uint64_t id : ids) CloseConnectionLocked(id);
  for (auto& entry : domains_) {
    Domain& domain = entry.second;
    if (!domain.socket_path.empty()) {
      unlink(domain.socket_path.c_str());
      if (entry.first != 0) rmdir(absl::StrCat(options_.domain_socket_dir, "/", entry.first).c_str());
    }
  }
  domains_.clear();
}

std::string Hypervisor::DomainSocketPath(uint32_t domid) const {
  if (domid == 0) return options_.dom0_socket;
  return absl::StrCat(options_.domain_socket_dir, "/", domid, "/hypervisor.sock");
}

absl::Status Hypervisor::ListenLocked(uint32_t domid, const std::string& path) {
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path too long: ", path));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(errno, "socket");
  // A socket file left by a previous run that died is in the way; anything
  // else at that path is not ours to remove.
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());
  if (bind(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, absl::StrCat("bind ", path));
  }
  if (listen(fd.get(), 64) != 0) {
    int err = errno;
    unlink(path.c_str());
    return ErrnoStatus(err, "listen");
  }
  if (!EpollAdd(epoll_fd_.get(), fd.get(), EPOLLIN, Token(domid, kListenTag))) {
    int err = errno;
    unlink(path.c_str());
    return ErrnoStatus(err, "epoll_ctl");
  }
  Domain& domain = domains_[domid];
  domain.listen_fd = std::move(fd);
  domain.socket_path = path;
  return absl::OkStatus();
}

absl::Status Hypervisor::CreateDomain(uint32_t domid) {
  if (domid >= kDomidLimit) {
    return absl::InvalidArgumentError(absl::StrCat("reserved domid ", domid));
  }
  MutexLock lock(&mu_);
  if (domains_.count(domid) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("domain ", domid, " exists"));
  }
  std::string dir = absl::StrCat(options_.domain_socket_dir, "/", domid);
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, absl::StrCat("mkdir ", dir));
  }
  absl::Status status = ListenLocked(domid, DomainSocketPath(domid));
  if (!status.ok()) rmdir(dir.c_str());
  return status;
}

absl::Status Hypervisor::DestroyDomain(uint32_t domid) {
  if (domid == 0) return absl::InvalidArgumentError("domain 0 cannot be destroyed");
  MutexLock lock(&mu_);
  auto it = domains_.find(domid);
  if (it == domains_.end() || it->second.dying) {
    return absl::NotFoundError(absl::StrCat("no live domain ", domid));
  }
  {
    Domain& domain = it->second;
    domain.dying = true;
    EpollDel(epoll_fd_.get(), domain.listen_fd.get());
    domain.listen_fd.reset();
    unlink(domain.socket_path.c_str());
    rmdir(absl::StrCat(options_.domain_socket_dir, "/", domid).c_str());
    domain.socket_path.clear();
  }
  std::vector<uint64_t> ids(it->second.conns.begin(), it->second.conns.end());
  for (uint64_t id : ids) CloseConnectionLocked(id);
  // The map may have been touched by the closes, but never this entry:
  // MaybeReapLocked is the only place that erases domains and it runs below.
  Domain& domain = domains_.at(domid);
  for (auto grant = domain.grants.begin(); grant != domain.grants.end();) {
    if (grant->second.map_count == 0) {
      grant = domain.grants.erase(grant);
    } else {
      ++grant;
    }
  }
  MaybeReapLocked(domid);
  return absl::OkStatus();
}

Hypervisor::DomainInfo Hypervisor::Info(uint32_t domid) const {
  MutexLock lock(&mu_);
  DomainInfo info;
  auto it = domains_.find(domid);
  if (it == domains_.end()) return info;
  info.exists = true;
  info.dying = it->second.dying;
  info.mapped_pages_by_others = it->second.mapped_pages;
  return info;
}

void Hypervisor::MaybeReapLocked(uint32_t domid) {
  auto it = domains_.find(domid);
  if (it == domains_.end() || !it->second.dying || it->second.mapped_pages != 0) return;
  domains_.erase(it);
  gone_.push_back(domid);
  WakeLoop();
}

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
      FlushEventsLocked(id);
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
  UniqueFd out_fd;
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
        reply.error = MapLocked(conn, req, &reply.value, &out_fd);
        break;
      case kUnmap:
        reply.error = UnmapLocked(conn, req);
        break;
      case kEvtchnOpen:
        reply.error = EvtchnOpenLocked(conn_id, conn, &out_fd);
        break;
      case kAllocUnbound:
        reply.error = AllocUnboundLocked(conn_id, conn, req, &reply.value);
        break;
      case kBindInterdomain:
        reply.error = BindInterdomainLocked(conn_id, conn, req, &reply.value);
        break;
      case kUnbind:
        reply.error = UnbindLocked(conn, req);
        break;
      case kUnmask:
        reply.error = UnmaskLocked(conn, req);
        break;
      default:
        reply.error = EINVAL;
        break;
    }
  }
  if (reply.error != 0) reply.value = 0;
  // The client waits for each reply, so its receive buffer always has room;
  // one that does not read its replies is closed rather than queued for.
  return SendMessage(conn.sock.get(), &reply, sizeof(reply), out_fd.get(), MSG_DONTWAIT) == 0;
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

// ---- grants ----

int Hypervisor::GrantLocked(Connection& conn, const Request& req, UniqueFd fd, uint32_t* ref) {
  const uint32_t to_domid = req.args[0];
  const uint32_t readonly = req.args[1];
  if (to_domid >= kDomidLimit || to_domid == conn.domid || readonly > 1 || req.args[2] != 0 ||
      req.args[3] != 0) {
    return EINVAL;
  }
  Domain& domain = domains_.at(conn.domid);
  if (domain.grants.size() >= kMaxGrantsPerDomain) return ENOSPC;
  // The page must be a read-write memfd of exactly one page that we can seal
  // against resizing: a mapper must never see it shrink under its mmap.
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_size != static_cast<off_t>(kPageSize)) {
    return EINVAL;
  }
  int flags = fcntl(fd.get(), F_GETFL);
  if (flags < 0 || (flags & O_ACCMODE) != O_RDWR) return EINVAL;
  if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) return EINVAL;
  if (fstat(fd.get(), &st) != 0 || st.st_size != static_cast<off_t>(kPageSize)) return EINVAL;
  // Next-fit, so that a re-grant after EndAccess gets a different ref.
  uint32_t candidate = domain.next_ref;
  for (;;) {
    if (domain.grants.count(candidate) == 0) break;
    candidate = candidate + 1 >= kGrantRefLimit ? kFirstGrantRef : candidate + 1;
  }
  domain.next_ref = candidate + 1 >= kGrantRefLimit ? kFirstGrantRef : candidate + 1;
  Grant& grant = domain.grants[candidate];
  grant.memfd = std::move(fd);
  grant.to_domid = to_domid;
  grant.readonly = readonly != 0;
  *ref = candidate;
  return 0;
}

int Hypervisor::EndAccessLocked(Connection& conn, const Request& req) {
  if (req.args[1] != 0 || req.args[2] != 0 || req.args[3] != 0) return EINVAL;
  Domain& domain = domains_.at(conn.domid);
  auto it = domain.grants.find(req.args[0]);
  if (it == domain.grants.end()) return EINVAL;
  if (it->second.map_count != 0) return EBUSY;
  domain.grants.erase(it);
  return 0;
}

int Hypervisor::MapLocked(Connection& conn, const Request& req, uint32_t* id, UniqueFd* page) {
  const uint32_t domid = req.args[0];
  const uint32_t ref = req.args[1];
  const uint32_t writable = req.args[2];
  if (writable > 1 || req.args[3] != 0) return EINVAL;
  auto domain = domains_.find(domid);
  if (domain == domains_.end() || domain->second.dying) return ESRCH;
  auto grant = domain->second.grants.find(ref);
  if (grant == domain->second.grants.end()) return EINVAL;
  if (grant->second.to_domid != conn.domid) return EACCES;
  if (grant->second.readonly && writable != 0) return EACCES;
  if (conn.mappings.size() >= kMaxMappingsPerConnection) return ENOSPC;
  // A fresh open file description with exactly the access granted: a
  // read-only mapper cannot mprotect its way to writing.
  std::string proc = absl::StrCat("/proc/self/fd/", grant->second.memfd.get());
  UniqueFd fd(open(proc.c_str(), (writable != 0 ? O_RDWR : O_RDONLY) | O_CLOEXEC));
  if (!fd.valid()) return errno;
  uint32_t mapping_id = conn.next_mapping_id;
  while (mapping_id == 0 || conn.mappings.count(mapping_id) != 0) ++mapping_id;
  conn.next_mapping_id = mapping_id + 1;
  conn.mappings[mapping_id] = Mapping{domid, ref};
  ++grant->second.map_count;
  ++domain->second.mapped_pages;
  *id = mapping_id;
  *page = std::move(fd);
  return 0;
}

int Hypervisor::UnmapLocked(Connection& conn, const Request& req) {
  if (req.args[1] != 0 || req.args[2] != 0 || req.args[3] != 0) return EINVAL;
  auto it = conn.mappings.find(req.args[0]);
  if (it == conn.mappings.end()) return EINVAL;
  Mapping mapping = it->second;
  conn.mappings.erase(it);
  ReleaseMappingLocked(mapping);
  return 0;
}

void Hypervisor::ReleaseMappingLocked(const Mapping& mapping) {
  auto domain = domains_.find(mapping.domid);
  if (domain == domains_.end()) return;
  auto grant = domain->second.grants.find(mapping.ref);
  if (grant == domain->second.grants.end()) return;
  --grant->second.map_count;
  --domain->second.mapped_pages;
  if (domain->second.dying && grant->second.map_count == 0) domain->second.grants.erase(grant);
  MaybeReapLocked(mapping.domid);
}

// ---- event channels ----

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
      remote->second.state != Port::State::kUnbound ||
      remote->second.remote_domid != conn.domid) {
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
}  // namespace xenchan
