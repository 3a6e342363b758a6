// Host's life cycle: starting xenstored and the hypervisor with dom0's
// entries, tearing everything down, and finding and reaping domains. Domain
// create and destroy (libxl's order) are in host_libxl.cc; the control
// commands and `domain list` in host_control.cc. See host.h.
#include "backend/sim/host.h"

#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "backend/sim/child_process.h"
#include "backend/util/make_dirs.h"

namespace xenchan {
namespace sim {

absl::StatusOr<std::unique_ptr<Host>> Host::Create(HostOptions options) {
  if (options.state_dir.empty()) return absl::InvalidArgumentError("empty state dir");
  std::unique_ptr<Host> host(new Host(std::move(options)));
  if (absl::Status s = host->Start(); !s.ok()) return s;
  return host;
}

Host::Host(HostOptions options) : options_(std::move(options)) {}

absl::Status Host::Start() {
  const std::string& dir = options_.state_dir;
  for (const std::string& d : {dir, dir + "/guests", dir + "/domains"}) {
    if (absl::Status s = MakeDirs(d, 0755); !s.ok()) return s;
  }
  xenstore::XenstoreServer::Options xo;
  xo.socket_path = dir + "/xenstored.sock";
  xo.state_dir = dir;
  auto xenstored = xenstore::XenstoreServer::Create(std::move(xo));
  if (!xenstored.ok()) return xenstored.status();
  xenstored_ = *std::move(xenstored);

  hv::Hypervisor::Options ho;
  ho.dom0_socket = dir + "/hypervisor.sock";
  ho.domain_socket_dir = dir + "/domains";
  ho.on_domain_gone = [this](uint32_t domid) { OnDomainGone(domid); };
  auto hypervisor = hv::Hypervisor::Create(std::move(ho));
  if (!hypervisor.ok()) return hypervisor.status();
  hypervisor_ = *std::move(hypervisor);

  auto xs = LibXenStore::Open(dir + "/xenstored.sock");
  if (!xs.ok()) return xs.status();
  xs_ = *std::move(xs);
  // xen-init-dom0: dom0's domid and name, then one entry per cpupool (the
  // simulated host has one, Pool-0).
  if (absl::Status s = xs_->Write(kNoTransaction, "/local/domain/0/domid", "0"); !s.ok()) return s;
  if (absl::Status s = xs_->Write(kNoTransaction, "/local/domain/0/name", "Domain-0"); !s.ok()) {
    return s;
  }
  return xs_->Write(kNoTransaction, "/local/pool/0/name", "Pool-0");
}

Host::~Host() {
  DestroyAllDomains();
  xs_.reset();
  hypervisor_.reset();
  xenstored_.reset();
}

void Host::DestroyAllDomains() {
  MutexLock lock(&mu_);
  std::vector<uint32_t> ids;
  for (auto& [domid, d] : domains_) {
    if (d.state != State::kDying) ids.push_back(domid);
  }
  for (uint32_t domid : ids) {
    auto it = domains_.find(domid);
    if (it == domains_.end()) continue;
    absl::Status s = DestroyLocked(it->second);
    if (!s.ok()) std::fprintf(stderr, "xensim: destroy %u: %s\n", domid, s.ToString().c_str());
  }
}

void Host::OnDomainGone(uint32_t domid) {
  MutexLock lock(&gone_mu_);
  gone_.push_back(domid);
}

void Host::SweepGoneLocked() {
  std::vector<uint32_t> gone;
  {
    MutexLock lock(&gone_mu_);
    gone.swap(gone_);
  }
  for (uint32_t domid : gone) {
    auto it = domains_.find(domid);
    if (it != domains_.end() && it->second.state == State::kDying) domains_.erase(it);
  }
}

absl::StatusOr<Host::Domain*> Host::FindLocked(const std::string& domain) {
  SweepGoneLocked();
  uint32_t domid;
  const bool numeric = absl::SimpleAtoi(domain, &domid);
  for (auto& [id, d] : domains_) {
    if (d.state == State::kDying) continue;
    if ((numeric && id == domid) || d.name == domain) return &d;
  }
  if (domain == "0" || domain == "Domain-0") {
    return absl::InvalidArgumentError("Domain-0 cannot be managed");
  }
  return absl::NotFoundError(absl::StrCat("no such domain '", domain, "'"));
}

void Host::ReapLocked(Domain& d) {
  if (d.guest_pid <= 0) return;
  if (ReapIfExited(d.guest_pid)) {
    d.guest_pid = -1;
    if (d.state != State::kShutdown) d.state = State::kCrashed;
  }
}

}  // namespace sim
}  // namespace xenchan
