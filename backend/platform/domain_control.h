// Pausing and unpausing domains: the one domain-control operation the engine
// needs (xc_domain_pause/xc_domain_unpause in xenctrl.h), to hold a domain
// that is being restored, migrated in or rebooted until its durable channels
// exist, so that the guest finds them when it resumes or boots.
// Implementations: XenDomainControl (libxenctrl), SimDomainControl (xensim)
// and FakeDomainControl (in memory).
#ifndef XENCHAN_BACKEND_PLATFORM_DOMAIN_CONTROL_H_
#define XENCHAN_BACKEND_PLATFORM_DOMAIN_CONTROL_H_

#include <cstdint>

#include "absl/status/status.h"

namespace xenchan {

// Xen keeps one controller pause count per domain, shared by every dom0
// program that pauses it; a new domain starts at 1 and the toolstack
// unpauses it once built. The domain runs only while the count is 0, so a
// program that pauses a domain the toolstack is still building keeps it
// paused past the toolstack's unpause until its own Unpause. Each Pause must
// be matched by exactly one Unpause.
//
// Thread safety: every method may be called from any thread. Blocking: one
// hypercall (or one round trip to the simulated hypervisor), never a wait
// for the guest.
class DomainControl {
 public:
  virtual ~DomainControl() = default;
  // NOT_FOUND if no such live domain; INVALID_ARGUMENT for the caller's own
  // domain; OUT_OF_RANGE if the count is at its bound; PERMISSION_DENIED if
  // the caller may not control domains.
  virtual absl::Status Pause(uint32_t domid) = 0;
  // As Pause; INVALID_ARGUMENT also when the count is already 0.
  virtual absl::Status Unpause(uint32_t domid) = 0;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_DOMAIN_CONTROL_H_
