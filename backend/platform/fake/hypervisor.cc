// FakeHypervisor: grant tables and event channels of the in-memory Xen host.
#include "backend/platform/fake/hypervisor.h"

#include <unistd.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace xenchan {
namespace {

// Xen's limits as xensim uses them (backend/sim/hv/protocol.h).
constexpr uint32_t kGrantRefLimit = 1u << 20;
constexpr size_t kMaxGrantsPerDomain = 1024;
constexpr EvtchnPort kMaxPortsPerDomain = 4096;

void Signal(int fd) {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(fd, &one, sizeof(one));
}

void Drain(int fd) {
  uint64_t value;
  [[maybe_unused]] ssize_t n = read(fd, &value, sizeof(value));
}

}  // namespace

FakeHypervisor::FakeHypervisor(std::shared_ptr<FakeTrace> trace) : trace_(std::move(trace)) {
  MutexLock lock(&mu_);
  domains_[0] = Domain{};
}

absl::Status FakeHypervisor::CreateDomain(uint32_t domid) {
  MutexLock lock(&mu_);
  if (domains_.count(domid) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("domain ", domid, " exists"));
  }
  domains_[domid] = Domain{};
  trace_->Add(absl::StrCat("domain create ", domid));
  return absl::OkStatus();
}

absl::Status FakeHypervisor::DestroyDomain(uint32_t domid) {
  if (domid == 0) return absl::InvalidArgumentError("domain 0 cannot be destroyed");
  MutexLock lock(&mu_);
  auto it = domains_.find(domid);
  if (it == domains_.end() || it->second.dying) {
    return absl::NotFoundError(absl::StrCat("no live domain ", domid));
  }
  trace_->Add(absl::StrCat("domain destroy ", domid));
  std::vector<EvtchnPort> ports;
  for (const auto& [port, state] : it->second.ports) ports.push_back(port);
  for (EvtchnPort port : ports) ClosePortLocked(domid, port);
  for (auto& [id, handle] : handles_) {
    if (handle.domid == domid) handle.dead = true;
  }
  Domain& d = domains_.at(domid);
  d.dying = true;
  for (auto g = d.grants.begin(); g != d.grants.end();) {
    g = g->second.map_count == 0 ? d.grants.erase(g) : std::next(g);
  }
  MaybeReapLocked(domid);
  return absl::OkStatus();
}

FakeHypervisor::DomainInfo FakeHypervisor::Info(uint32_t domid) const {
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

absl::Status FakeHypervisor::Pause(uint32_t domid) {
  if (domid == 0) return absl::InvalidArgumentError("domain 0 cannot be paused");
  MutexLock lock(&mu_);
  auto it = domains_.find(domid);
  if (it == domains_.end() || it->second.dying) {
    return absl::NotFoundError(absl::StrCat("no live domain ", domid));
  }
  if (it->second.pause_count >= 255) {
    return absl::OutOfRangeError(absl::StrCat("domain ", domid, " has 255 pauses"));
  }
  ++it->second.pause_count;
  trace_->Add(absl::StrCat("domain pause ", domid));
  return absl::OkStatus();
}

absl::Status FakeHypervisor::Unpause(uint32_t domid) {
  if (domid == 0) return absl::InvalidArgumentError("domain 0 cannot be unpaused");
  MutexLock lock(&mu_);
  auto it = domains_.find(domid);
  if (it == domains_.end() || it->second.dying) {
    return absl::NotFoundError(absl::StrCat("no live domain ", domid));
  }
  if (it->second.pause_count == 0) {
    return absl::InvalidArgumentError(absl::StrCat("domain ", domid, " is not paused"));
  }
  --it->second.pause_count;
  trace_->Add(absl::StrCat("domain unpause ", domid));
  return absl::OkStatus();
}

void FakeHypervisor::MaybeReapLocked(uint32_t domid) {
  auto it = domains_.find(domid);
  if (it == domains_.end() || !it->second.dying || it->second.mapped_pages != 0) return;
  domains_.erase(it);
  trace_->Add(absl::StrCat("domain gone ", domid));
}

// ---------------------------------------------------------------------------
// Grants.

absl::StatusOr<uint32_t> FakeHypervisor::GrantPage(uint32_t domid, uint32_t to_domid, bool readonly,
                                                   std::shared_ptr<FakePage> page) {
  if (page == nullptr || to_domid == domid) {
    return absl::InvalidArgumentError("grant of no page, or to the granter itself");
  }
  MutexLock lock(&mu_);
  auto it = domains_.find(domid);
  if (it == domains_.end() || it->second.dying) {
    return absl::NotFoundError(absl::StrCat("no live domain ", domid));
  }
  Domain& d = it->second;
  if (d.grants.size() >= kMaxGrantsPerDomain) {
    return absl::ResourceExhaustedError("grant table full");
  }
  uint32_t ref = d.next_ref;
  while (d.grants.count(ref) != 0) ref = ref + 1 >= kGrantRefLimit ? kFirstGrantRef : ref + 1;
  d.next_ref = ref + 1 >= kGrantRefLimit ? kFirstGrantRef : ref + 1;
  Grant& g = d.grants[ref];
  g.page = std::move(page);
  g.to_domid = to_domid;
  g.readonly = readonly;
  trace_->Add(absl::StrCat("gnttab grant ", domid, ":", ref));
  return ref;
}

absl::Status FakeHypervisor::EndAccess(uint32_t domid, uint32_t ref) {
  MutexLock lock(&mu_);
  auto it = domains_.find(domid);
  if (it == domains_.end()) return absl::NotFoundError(absl::StrCat("no domain ", domid));
  auto g = it->second.grants.find(ref);
  if (g == it->second.grants.end()) {
    return absl::InvalidArgumentError(absl::StrCat("no grant ", ref, " of domain ", domid));
  }
  if (g->second.map_count != 0) {
    return absl::FailedPreconditionError(absl::StrCat("grant ", ref, " is still mapped"));
  }
  it->second.grants.erase(g);
  trace_->Add(absl::StrCat("gnttab end ", domid, ":", ref));
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<FakePage>> FakeHypervisor::MapGrant(uint32_t mapper, uint32_t domid,
                                                                   uint32_t ref, bool writable) {
  MutexLock lock(&mu_);
  auto it = domains_.find(domid);
  if (it == domains_.end() || it->second.dying) {
    return absl::NotFoundError(absl::StrCat("no live domain ", domid));
  }
  auto g = it->second.grants.find(ref);
  if (g == it->second.grants.end()) {
    return absl::InvalidArgumentError(absl::StrCat("no grant ", ref, " of domain ", domid));
  }
  if (g->second.to_domid != mapper) {
    return absl::PermissionDeniedError(absl::StrCat("grant ", ref, " is not for domain ", mapper));
  }
  if (g->second.readonly && writable) {
    return absl::PermissionDeniedError(absl::StrCat("grant ", ref, " is read-only"));
  }
  ++g->second.map_count;
  ++it->second.mapped_pages;
  trace_->Add(absl::StrCat("gnttab map ", domid, ":", ref, " by ", mapper));
  return g->second.page;
}

void FakeHypervisor::UnmapGrant(uint32_t mapper, uint32_t domid, uint32_t ref) {
  MutexLock lock(&mu_);
  trace_->Add(absl::StrCat("gnttab unmap ", domid, ":", ref, " by ", mapper));
  auto it = domains_.find(domid);
  if (it == domains_.end()) return;
  auto g = it->second.grants.find(ref);
  if (g == it->second.grants.end() || g->second.map_count == 0) return;
  --g->second.map_count;
  --it->second.mapped_pages;
  if (it->second.dying && g->second.map_count == 0) it->second.grants.erase(g);
  MaybeReapLocked(domid);
}

size_t FakeHypervisor::MapCount(uint32_t domid, uint32_t ref) const {
  MutexLock lock(&mu_);
  auto it = domains_.find(domid);
  if (it == domains_.end()) return 0;
  auto g = it->second.grants.find(ref);
  return g == it->second.grants.end() ? 0 : g->second.map_count;
}

// ---------------------------------------------------------------------------
// Event channels.

absl::StatusOr<FakeHypervisor::HandleId> FakeHypervisor::OpenHandle(uint32_t domid, int event_fd) {
  MutexLock lock(&mu_);
  auto it = domains_.find(domid);
  if (it == domains_.end() || it->second.dying) {
    return absl::NotFoundError(absl::StrCat("no live domain ", domid));
  }
  const HandleId id = next_handle_++;
  Handle& h = handles_[id];
  h.domid = domid;
  h.event_fd = event_fd;
  return id;
}

void FakeHypervisor::CloseHandle(HandleId handle) {
  MutexLock lock(&mu_);
  auto it = handles_.find(handle);
  if (it == handles_.end()) return;
  const uint32_t domid = it->second.domid;
  const std::set<EvtchnPort> ports = it->second.ports;
  for (EvtchnPort port : ports) ClosePortLocked(domid, port);
  handles_.erase(handle);
}

absl::StatusOr<FakeHypervisor::Handle*> FakeHypervisor::LiveHandleLocked(HandleId handle) {
  auto it = handles_.find(handle);
  if (it == handles_.end() || it->second.dead) {
    return absl::UnavailableError("the event channel handle's domain is gone");
  }
  return &it->second;
}

absl::StatusOr<EvtchnPort> FakeHypervisor::AllocUnbound(HandleId handle, uint32_t remote_domid) {
  MutexLock lock(&mu_);
  absl::StatusOr<Handle*> h = LiveHandleLocked(handle);
  if (!h.ok()) return h.status();
  Domain& d = domains_.at((*h)->domid);
  EvtchnPort port = 1;
  while (d.ports.count(port) != 0) ++port;
  if (port > kMaxPortsPerDomain) return absl::ResourceExhaustedError("no free port");
  PortState& p = d.ports[port];
  p.handle = handle;
  p.remote_domid = remote_domid;
  (*h)->ports.insert(port);
  return port;
}

absl::StatusOr<EvtchnPort> FakeHypervisor::BindInterdomain(HandleId handle, uint32_t remote_domid,
                                                           EvtchnPort remote_port) {
  MutexLock lock(&mu_);
  absl::StatusOr<Handle*> h = LiveHandleLocked(handle);
  if (!h.ok()) return h.status();
  const uint32_t domid = (*h)->domid;
  auto rd = domains_.find(remote_domid);
  if (rd == domains_.end() || rd->second.dying) {
    return absl::NotFoundError(absl::StrCat("no live domain ", remote_domid));
  }
  auto remote = rd->second.ports.find(remote_port);
  if (remote == rd->second.ports.end() || remote->second.interdomain ||
      remote->second.remote_domid != domid) {
    return absl::InvalidArgumentError(
        absl::StrCat("port ", remote_port, " of domain ", remote_domid, " is not unbound for us"));
  }
  Domain& d = domains_.at(domid);
  EvtchnPort local = 1;
  while (d.ports.count(local) != 0) ++local;
  if (local > kMaxPortsPerDomain) return absl::ResourceExhaustedError("no free port");
  PortState& p = d.ports[local];  // std::map: `remote` stays valid
  p.handle = handle;
  p.interdomain = true;
  p.remote_domid = remote_domid;
  p.remote_port = remote_port;
  p.pending = true;  // Xen raises the new port at once
  remote->second.interdomain = true;
  remote->second.remote_domid = domid;
  remote->second.remote_port = local;
  (*h)->ports.insert(local);
  trace_->Add(absl::StrCat("evtchn bind ", domid, ":", local, " ", remote_domid, ":", remote_port));
  DeliverLocked(domid, local);
  return local;
}

absl::Status FakeHypervisor::Unbind(HandleId handle, EvtchnPort port) {
  MutexLock lock(&mu_);
  absl::StatusOr<Handle*> h = LiveHandleLocked(handle);
  if (!h.ok()) return h.status();
  if ((*h)->ports.count(port) == 0) {
    return absl::InvalidArgumentError(absl::StrCat("port ", port, " is not ours"));
  }
  ClosePortLocked((*h)->domid, port);
  return absl::OkStatus();
}

void FakeHypervisor::ClosePortLocked(uint32_t domid, EvtchnPort port) {
  Domain& d = domains_.at(domid);
  auto it = d.ports.find(port);
  if (it == d.ports.end()) return;
  if (it->second.interdomain) {
    auto rd = domains_.find(it->second.remote_domid);
    if (rd != domains_.end()) {
      auto remote = rd->second.ports.find(it->second.remote_port);
      if (remote != rd->second.ports.end()) {
        remote->second.interdomain = false;
        remote->second.remote_domid = domid;
        remote->second.remote_port = 0;
      }
    }
  }
  auto h = handles_.find(it->second.handle);
  if (h != handles_.end()) {
    h->second.ports.erase(port);
    auto& fired = h->second.fired;
    fired.erase(std::remove(fired.begin(), fired.end(), port), fired.end());
    if (fired.empty()) Drain(h->second.event_fd);
  }
  d.ports.erase(it);
  trace_->Add(absl::StrCat("evtchn close ", domid, ":", port));
}

absl::Status FakeHypervisor::Notify(HandleId handle, EvtchnPort port) {
  MutexLock lock(&mu_);
  absl::StatusOr<Handle*> h = LiveHandleLocked(handle);
  if (!h.ok()) return h.status();
  if ((*h)->ports.count(port) == 0) {
    return absl::InvalidArgumentError(absl::StrCat("port ", port, " is not ours"));
  }
  const PortState& p = domains_.at((*h)->domid).ports.at(port);
  if (!p.interdomain) return absl::OkStatus();
  auto rd = domains_.find(p.remote_domid);
  if (rd == domains_.end()) return absl::OkStatus();
  auto remote = rd->second.ports.find(p.remote_port);
  if (remote == rd->second.ports.end()) return absl::OkStatus();
  remote->second.pending = true;
  DeliverLocked(p.remote_domid, p.remote_port);
  return absl::OkStatus();
}

void FakeHypervisor::DeliverLocked(uint32_t domid, EvtchnPort port) {
  auto d = domains_.find(domid);
  if (d == domains_.end()) return;
  auto it = d->second.ports.find(port);
  if (it == d->second.ports.end()) return;
  PortState& p = it->second;
  if (!p.pending || p.masked) return;
  auto h = handles_.find(p.handle);
  if (h == handles_.end() || h->second.dead) return;
  p.pending = false;
  p.masked = true;
  h->second.fired.push_back(port);
  Signal(h->second.event_fd);
}

absl::StatusOr<std::optional<EvtchnPort>> FakeHypervisor::Pending(HandleId handle) {
  MutexLock lock(&mu_);
  absl::StatusOr<Handle*> h = LiveHandleLocked(handle);
  if (!h.ok()) return h.status();
  auto& fired = (*h)->fired;
  if (fired.empty()) {
    Drain((*h)->event_fd);
    return std::optional<EvtchnPort>();
  }
  const EvtchnPort port = fired.front();
  fired.pop_front();
  if (fired.empty()) Drain((*h)->event_fd);
  return std::optional<EvtchnPort>(port);
}

absl::Status FakeHypervisor::Unmask(HandleId handle, EvtchnPort port) {
  MutexLock lock(&mu_);
  absl::StatusOr<Handle*> h = LiveHandleLocked(handle);
  if (!h.ok()) return h.status();
  if ((*h)->ports.count(port) == 0) {
    return absl::InvalidArgumentError(absl::StrCat("port ", port, " is not ours"));
  }
  const uint32_t domid = (*h)->domid;
  domains_.at(domid).ports.at(port).masked = false;
  DeliverLocked(domid, port);
  return absl::OkStatus();
}

FakeHypervisor::PortInfo FakeHypervisor::Port(uint32_t domid, EvtchnPort port) const {
  MutexLock lock(&mu_);
  PortInfo info;
  auto d = domains_.find(domid);
  if (d == domains_.end()) return info;
  auto it = d->second.ports.find(port);
  if (it == d->second.ports.end()) return info;
  info.exists = true;
  info.interdomain = it->second.interdomain;
  info.remote_domid = it->second.remote_domid;
  info.remote_port = it->second.remote_port;
  info.masked = it->second.masked;
  return info;
}

}  // namespace xenchan
