// The hypervisor operations the simulated guest's frontend drivers make: the
// guest half of grant tables and event channels (what Linux reaches through
// gnttab_grant_foreign_access_ref and EVTCHNOP_alloc_unbound & co).
//
// RunGuest binds this to xensim's hypervisor client; the interface keeps the
// guest logic apart from that transport.
//
// Status codes: INVALID_ARGUMENT (bad port or ref), RESOURCE_EXHAUSTED (no
// free grant ref or port), FAILED_PRECONDITION (EndAccess while the grant is
// mapped), UNAVAILABLE (the hypervisor connection is gone).
// Blocking: grant operations, AllocUnbound and Unbind are one short round
// trip to the hypervisor; Notify, Pending and Unmask are local (shared words
// and wake-up sockets, backend/sim/hv/protocol.h), as they are for a real
// guest: no exit to the hypervisor beyond the notify's hypercall.
// Thread safety: not thread-safe; the guest's event loop owns it.
#ifndef XENCHAN_BACKEND_SIM_GUEST_HYPERCALLS_H_
#define XENCHAN_BACKEND_SIM_GUEST_HYPERCALLS_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace xenchan {
namespace sim {
namespace guest {

class GuestHypercalls {
 public:
  virtual ~GuestHypercalls() = default;

  // Grants the page behind `memfd` (4096 bytes) to `to_domid`; returns the ref.
  virtual absl::StatusOr<uint32_t> GrantPage(int memfd, uint32_t to_domid, bool readonly) = 0;
  // Revokes a grant.
  virtual absl::Status EndAccess(uint32_t ref) = 0;

  // Allocates a port UNBOUND and earmarked for `remote_domid`.
  virtual absl::StatusOr<uint32_t> AllocUnbound(uint32_t remote_domid) = 0;
  virtual absl::Status Notify(uint32_t port) = 0;
  virtual absl::Status Unbind(uint32_t port) = 0;
  // Polls readable when Pending() may return a port.
  virtual int EventFd() const = 0;
  // A fired port (now masked), or nullopt when none fired.
  virtual absl::StatusOr<std::optional<uint32_t>> Pending() = 0;
  virtual absl::Status Unmask(uint32_t port) = 0;
};

}  // namespace guest
}  // namespace sim
}  // namespace xenchan

#endif  // XENCHAN_BACKEND_SIM_GUEST_HYPERCALLS_H_
