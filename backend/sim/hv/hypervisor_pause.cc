// The simulated hypervisor's domain pause (protocol.h, "Domain pause"): the
// controller pause count shared by the toolstack (in process) and dom0
// daemons (kPauseDomain/kUnpauseDomain), and the process that plays a
// domain's vCPUs, stopped while the count is above 0.
#include <errno.h>
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "backend/sim/hv/hypervisor.h"
#include "backend/util/errno_status.h"

namespace xenchan {
namespace sim {
namespace hv {
namespace {

absl::Status PauseStatus(int err, const char* what, uint32_t domid) {
  if (err == 0) return absl::OkStatus();
  return ErrnoToStatus(err, absl::StrCat(what, " domain ", domid));
}

}  // namespace

int Hypervisor::PauseLocked(uint32_t domid) {
  if (domid == 0) return EINVAL;
  auto it = domains_.find(domid);
  if (it == domains_.end() || it->second.dying) return ESRCH;
  Domain& domain = it->second;
  if (domain.pause_count >= kMaxControllerPauses) return EOVERFLOW;
  if (++domain.pause_count == 1 && domain.vcpu_process > 0) kill(domain.vcpu_process, SIGSTOP);
  return 0;
}

int Hypervisor::UnpauseLocked(uint32_t domid) {
  if (domid == 0) return EINVAL;
  auto it = domains_.find(domid);
  if (it == domains_.end() || it->second.dying) return ESRCH;
  Domain& domain = it->second;
  if (domain.pause_count == 0) return EINVAL;
  if (--domain.pause_count == 0 && domain.vcpu_process > 0) kill(domain.vcpu_process, SIGCONT);
  return 0;
}

int Hypervisor::PauseRequestLocked(const Connection& conn, const Request& req) {
  if (req.args[1] != 0 || req.args[2] != 0 || req.args[3] != 0) return EINVAL;
  if (conn.domid != 0) return EPERM;
  return req.type == kPauseDomain ? PauseLocked(req.args[0]) : UnpauseLocked(req.args[0]);
}

absl::Status Hypervisor::Pause(uint32_t domid) {
  MutexLock lock(&mu_);
  return PauseStatus(PauseLocked(domid), "pause", domid);
}

absl::Status Hypervisor::Unpause(uint32_t domid) {
  MutexLock lock(&mu_);
  return PauseStatus(UnpauseLocked(domid), "unpause", domid);
}

absl::Status Hypervisor::AttachVcpuProcess(uint32_t domid, pid_t pid) {
  MutexLock lock(&mu_);
  auto it = domains_.find(domid);
  if (it == domains_.end() || it->second.dying) {
    return absl::NotFoundError(absl::StrCat("no live domain ", domid));
  }
  it->second.vcpu_process = pid;
  if (it->second.pause_count == 0) kill(pid, SIGCONT);
  return absl::OkStatus();
}

}  // namespace hv
}  // namespace sim
}  // namespace xenchan
