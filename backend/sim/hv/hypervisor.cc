// The simulated hypervisor's construction, teardown and domain lifecycle
// (create, destroy, dying domains reaped when their last mapping goes). The
// server thread's loop is in hypervisor_loop.cc, the grant table in
// hypervisor_grants.cc and event channels in hypervisor_evtchn.cc.
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
#include "backend/sim/hv/epoll_tokens.h"
#include "backend/util/errno_status.h"

namespace xenchan {
namespace sim {
namespace hv {
namespace {

using internal::EpollAdd;
using internal::EpollDel;
using internal::kListenTag;
using internal::kWakeToken;
using internal::Token;

// The shared errno table, except EBUSY, which keeps the FAILED_PRECONDITION
// of absl's table that the hypervisor's set-up always returned for it (the
// shared table says UNAVAILABLE).
absl::Status ErrnoStatus(int err, absl::string_view what) {
  static constexpr ErrnoCode kOverrides[] = {{EBUSY, absl::StatusCode::kFailedPrecondition}};
  return ErrnoToStatus(err, what, ErrnoMapping{kOverrides, std::nullopt});
}

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
      if (entry.first != 0)
        rmdir(absl::StrCat(options_.domain_socket_dir, "/", entry.first).c_str());
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
    domain.vcpu_process = -1;  // the toolstack kills it
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
  info.pause_count = it->second.pause_count;
  return info;
}

void Hypervisor::MaybeReapLocked(uint32_t domid) {
  auto it = domains_.find(domid);
  if (it == domains_.end() || !it->second.dying || it->second.mapped_pages != 0) return;
  domains_.erase(it);
  gone_.push_back(domid);
  WakeLoop();
}

}  // namespace hv
}  // namespace sim
}  // namespace xenchan
