// FakeHypervisor: the grant tables and interdomain event channels of an
// in-memory Xen host, for tests that run the channel engine and scripted
// guests in one process with no sockets and no child processes.
//
// It keeps the semantics of Xen that the engine can observe, as xensim's
// hypervisor (backend/sim/hv/hypervisor.h) does over sockets:
//  * Grants: a domain grants one heap page to one other domain, read-only or
//    read-write; refs start at 8 (0..7 are reserved in Xen) and are handed
//    out next-fit, so a re-grant gets a fresh ref. Only the grantee maps
//    (PERMISSION_DENIED otherwise, or for a writable map of a read-only
//    grant); EndAccess fails FAILED_PRECONDITION while the grant is mapped.
//    A mapping shares the page (a shared_ptr), so the memory stays valid
//    until the mapping goes even if the granter dies. Read-only is
//    not enforced by the MMU: the page is plain heap memory.
//  * Event channels: ports are numbered per domain from 1 (lowest free).
//    BindInterdomain needs a remote port that is unbound and earmarked for
//    the binder (INVALID_ARGUMENT otherwise) and marks the new local port
//    pending at once. A port that fires is queued on its handle and masked
//    until Unmask; a notify while masked is delivered on Unmask. Closing a
//    port (Unbind, the handle going, the domain dying) reverts an
//    interdomain peer to unbound, earmarked for the closer, so a restarted
//    backend can bind it again.
//  * Domains: DestroyDomain closes the domain's ports, makes its handles
//    dead (their calls fail UNAVAILABLE), drops its unmapped grants, and
//    leaves it dying (a zombie, as Xen does) until the last mapping of one
//    of its pages by another domain is released.
//  * Pause: one controller pause count per domain (as Xen's, see
//    backend/platform/domain_control.h), 1 at creation; the fake host's
//    toolstack unpauses a domain once built. Nothing runs in a fake domain,
//    so the count is only recorded (and traced) for tests to check.
//
// Handles: each event-channel handle (FakeEventChannels) registers an
// eventfd; the hypervisor makes it readable while the handle has a fired
// port queued and drains it when the queue empties (level-triggered, as
// xenevtchn's fd behaves for its user).
//
// Ownership: shared (shared_ptr) by the fake host, the handles and the
// mappings. Thread safety: every method is thread-safe; one mutex guards all
// state and is held only for short sections (an eventfd write at most).
#ifndef XENCHAN_BACKEND_PLATFORM_FAKE_HYPERVISOR_H_
#define XENCHAN_BACKEND_PLATFORM_FAKE_HYPERVISOR_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backend/platform/event_channels.h"
#include "backend/platform/fake/trace.h"
#include "backend/platform/grant_tables.h"
#include "backend/util/mutex.h"

namespace xenchan {

// One guest page: kXenPageSize bytes of zeroed, page-aligned heap memory.
struct alignas(kXenPageSize) FakePage {
  unsigned char bytes[kXenPageSize] = {};
};

class FakeHypervisor {
 public:
  using HandleId = uint64_t;
  static constexpr uint32_t kFirstGrantRef = 8;

  struct DomainInfo {
    bool exists = false;  // created and not yet gone (includes dying)
    bool dying = false;   // destroyed, some page still mapped by others
    size_t mapped_pages_by_others = 0;
    uint32_t pause_count = 0;
  };
  struct PortInfo {
    bool exists = false;
    bool interdomain = false;    // false: unbound
    uint32_t remote_domid = 0;   // earmark (unbound) or peer
    EvtchnPort remote_port = 0;  // peer port when interdomain
    bool masked = false;
  };

  explicit FakeHypervisor(std::shared_ptr<FakeTrace> trace);
  FakeHypervisor(const FakeHypervisor&) = delete;
  FakeHypervisor& operator=(const FakeHypervisor&) = delete;

  // --- Domains. Domain 0 exists from the start. ---
  // ALREADY_EXISTS if `domid` exists (or is dying).
  absl::Status CreateDomain(uint32_t domid) ABSL_LOCKS_EXCLUDED(mu_);
  // NOT_FOUND if no such live domain; INVALID_ARGUMENT for domain 0.
  absl::Status DestroyDomain(uint32_t domid) ABSL_LOCKS_EXCLUDED(mu_);
  DomainInfo Info(uint32_t domid) const ABSL_LOCKS_EXCLUDED(mu_);
  // DomainControl's codes: NOT_FOUND (no such live domain), INVALID_ARGUMENT
  // (domain 0, or an unpause at 0), OUT_OF_RANGE (255 pauses).
  absl::Status Pause(uint32_t domid) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Unpause(uint32_t domid) ABSL_LOCKS_EXCLUDED(mu_);

  // --- Grants. ---
  // The granter's side: grants `page` to `to_domid`. NOT_FOUND for a dead
  // granter, INVALID_ARGUMENT for a grant to itself or a null page.
  absl::StatusOr<uint32_t> GrantPage(uint32_t domid, uint32_t to_domid, bool readonly,
                                     std::shared_ptr<FakePage> page) ABSL_LOCKS_EXCLUDED(mu_);
  // INVALID_ARGUMENT for an unknown ref; FAILED_PRECONDITION while mapped.
  absl::Status EndAccess(uint32_t domid, uint32_t ref) ABSL_LOCKS_EXCLUDED(mu_);
  // The mapper's side (GrantTables::Map codes). Every successful map must be
  // paired with one UnmapGrant.
  absl::StatusOr<std::shared_ptr<FakePage>> MapGrant(uint32_t mapper, uint32_t domid, uint32_t ref,
                                                     bool writable) ABSL_LOCKS_EXCLUDED(mu_);
  void UnmapGrant(uint32_t mapper, uint32_t domid, uint32_t ref) ABSL_LOCKS_EXCLUDED(mu_);
  // Live mappings of a grant (0 if there is no such grant).
  size_t MapCount(uint32_t domid, uint32_t ref) const ABSL_LOCKS_EXCLUDED(mu_);

  // --- Event channels (EventChannels codes; UNAVAILABLE for a dead handle). ---
  // Registers a handle of `domid` signalling `event_fd` (owned by the
  // caller, which keeps it open until CloseHandle). NOT_FOUND if no such
  // live domain.
  absl::StatusOr<HandleId> OpenHandle(uint32_t domid, int event_fd) ABSL_LOCKS_EXCLUDED(mu_);
  // Closes every port of the handle. Idempotent.
  void CloseHandle(HandleId handle) ABSL_LOCKS_EXCLUDED(mu_);
  // A new unbound port earmarked for `remote_domid` (the guest's
  // EVTCHNOP_alloc_unbound).
  absl::StatusOr<EvtchnPort> AllocUnbound(HandleId handle, uint32_t remote_domid)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<EvtchnPort> BindInterdomain(HandleId handle, uint32_t remote_domid,
                                             EvtchnPort remote_port) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Unbind(HandleId handle, EvtchnPort port) ABSL_LOCKS_EXCLUDED(mu_);
  // Xen drops a send on an unbound port silently; a port that is not the
  // handle's is INVALID_ARGUMENT.
  absl::Status Notify(HandleId handle, EvtchnPort port) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::optional<EvtchnPort>> Pending(HandleId handle) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Unmask(HandleId handle, EvtchnPort port) ABSL_LOCKS_EXCLUDED(mu_);
  PortInfo Port(uint32_t domid, EvtchnPort port) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Grant {
    std::shared_ptr<FakePage> page;
    uint32_t to_domid = 0;
    bool readonly = false;
    size_t map_count = 0;
  };
  struct PortState {
    HandleId handle = 0;
    bool interdomain = false;
    uint32_t remote_domid = 0;
    EvtchnPort remote_port = 0;
    bool pending = false;
    bool masked = false;
  };
  struct Domain {
    bool dying = false;
    std::map<uint32_t, Grant> grants;
    uint32_t next_ref = kFirstGrantRef;
    size_t mapped_pages = 0;  // sum of map_count over grants
    std::map<EvtchnPort, PortState> ports;
    uint32_t pause_count = 1;  // created paused
  };
  struct Handle {
    uint32_t domid = 0;
    int event_fd = -1;
    bool dead = false;
    std::set<EvtchnPort> ports;
    std::deque<EvtchnPort> fired;  // delivered, not yet taken by Pending
  };

  // The live handle, or UNAVAILABLE/INVALID_ARGUMENT.
  absl::StatusOr<Handle*> LiveHandleLocked(HandleId handle) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Closes `port` of `domid`; the interdomain peer reverts to unbound.
  void ClosePortLocked(uint32_t domid, EvtchnPort port) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues `port` on its handle if pending and unmasked (then masks it).
  void DeliverLocked(uint32_t domid, EvtchnPort port) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets a dying domain once nothing maps its pages.
  void MaybeReapLocked(uint32_t domid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<FakeTrace> trace_;
  mutable Mutex mu_;
  std::map<uint32_t, Domain> domains_ ABSL_GUARDED_BY(mu_);
  std::map<HandleId, Handle> handles_ ABSL_GUARDED_BY(mu_);
  HandleId next_handle_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace xenchan

#endif  // XENCHAN_BACKEND_PLATFORM_FAKE_HYPERVISOR_H_
